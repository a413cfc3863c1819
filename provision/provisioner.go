// Package provision is xsprov's engine: it converges XSUAA service instances
// and keys on Cloud Foundry through the v3 API and writes credentials files.
//
// It holds no terminal code and no command-line words: progress goes
// through a Reporter, results are returned as values, and failures as errors
// that say what kind they are (Usage, Auth, Timeout) and carry remedies as
// data (package remedy), which the command layer words.
package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/credfile"
	"github.com/xsprov/xsprov/provision/remedy"
	"github.com/xsprov/xsprov/provision/xssec"
	"github.com/xsprov/xsprov/provision/xsuaa"
)

// FormatVersion is the version of every machine-readable result.
const FormatVersion = "1"

// Reporter receives progress. The command layer prints it cf-style on stderr.
type Reporter interface {
	// Step starts an action ("Creating service instance x in org o / space s as u").
	Step(msg string)
	// Done ends the current step with OK.
	Done()
	// Info prints a line that is not an action.
	Info(msg string)
	// Warn prints a warning.
	Warn(msg string)
}

// Discard is a Reporter that drops everything.
var Discard Reporter = nopReporter{}

type nopReporter struct{}

func (nopReporter) Step(string) {}
func (nopReporter) Done()       {}
func (nopReporter) Info(string) {}
func (nopReporter) Warn(string) {}

// Ref names an instance in a target.
type Ref struct {
	Org, Space string
	Instance   string
}

// keyName is key, or the instance's default key name INSTANCE-key.
func (r Ref) keyName(key string) string {
	if key == "" {
		return r.Instance + "-key"
	}
	return key
}

// Provisioner converges instances and keys through one Session. It is
// configured once, by New and its options.
type Provisioner struct {
	s         *cfapi.Session
	rep       Reporter
	verifyOn  bool
	tokenOpts xsuaa.Options
	labels    map[string]string
	onSecrets func(values []string)
	consent   func(Consent) bool
	dryRun    bool
	seenWarn  map[string]bool
	// target is the last one resolved, for messages ("in org … / space …")
	target cfapi.Target
}

// WithDryRun makes the provisioner read only: every change is reported as
// what would be done ("Would create …") and nothing is written, neither to
// Cloud Foundry nor to files.
func WithDryRun(dry bool) Option { return func(p *Provisioner) { p.dryRun = dry } }

// where says where an instance is, as cf does (" in org O / space S"),
// when its space is the one last resolved; "" otherwise.
func (p *Provisioner) where(inst *resource.ServiceInstance) string {
	if p.target.SpaceGUID != "" && spaceOf(inst) == p.target.SpaceGUID {
		return " in org " + p.target.OrgName + " / space " + p.target.SpaceName
	}
	return ""
}

// would reports a change a dry run does not make.
func (p *Provisioner) would(msg string) { p.rep.Info("Would " + msg + " (dry run).") }

// Option configures a Provisioner.
type Option func(*Provisioner)

// WithReporter sends progress to r.
func WithReporter(r Reporter) Option { return func(p *Provisioner) { p.rep = r } }

// WithVerify proves freshly written credentials by getting a token with
// them, reaching the token endpoint as o says.
func WithVerify(verify bool, o xsuaa.Options) Option {
	return func(p *Provisioner) { p.verifyOn, p.tokenOpts = verify, o }
}

// WithLabels sets labels on every instance and key created (ownership by a
// spec).
func WithLabels(labels map[string]string) Option { return func(p *Provisioner) { p.labels = labels } }

// WithSecretsHook receives the secret values of credentials as soon as they
// are read, before anything else is printed (CI log masking).
func WithSecretsHook(f func(values []string)) Option { return func(p *Provisioner) { p.onSecrets = f } }

// Consent is a change that removes or replaces what an instance holds,
// shown to the user before it is made.
type Consent struct {
	Instance string
	// Blind: the current descriptor is unknown; the update replaces it.
	Blind bool
	// Changes from the current descriptor (secret values redacted).
	Changes []xssec.DiffEntry
}

// WithConsent asks before an update that removes or replaces something (a
// terminal prompt, or a --yes given in advance). Without it such updates are
// made as asked.
func WithConsent(ask func(Consent) bool) Option { return func(p *Provisioner) { p.consent = ask } }

// ask gets consent for c, or says that nothing was changed.
func (p *Provisioner) ask(c Consent) error {
	if p.dryRun || p.consent == nil || p.consent(c) {
		return nil
	}
	return &declinedError{instance: c.Instance}
}

// declinedError: a change needing consent did not get it. Nothing was sent.
type declinedError struct{ instance string }

func (e *declinedError) Error() string {
	return fmt.Sprintf("service instance %q was not changed: the update removes or replaces parts of its descriptor and was not confirmed", e.instance)
}

// Usage marks the error as one of input (exit code 2): nothing was sent.
func (e *declinedError) Usage() bool { return true }

// Hint is what to do about it.
func (e *declinedError) Hint() remedy.Remedy { return remedy.Remedy{Action: remedy.Confirm} }

// New returns a Provisioner for a session.
func New(s *cfapi.Session, opts ...Option) *Provisioner {
	p := &Provisioner{s: s, rep: nopReporter{}}
	for _, o := range opts {
		o(p)
	}
	if p.rep == nil {
		p.rep = nopReporter{}
	}
	return p
}

// Session is the provisioner's Cloud Foundry session.
func (p *Provisioner) Session() *cfapi.Session { return p.s }

// warn shows a job's warning once.
func (p *Provisioner) warn(w string) {
	if p.seenWarn[w] {
		return
	}
	if p.seenWarn == nil {
		p.seenWarn = map[string]bool{}
	}
	p.seenWarn[w] = true
	p.rep.Warn(w)
}

func (p *Provisioner) secrets(creds map[string]any) {
	if p.onSecrets != nil {
		p.onSecrets(credfile.SecretValues(creds))
	}
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// errRaced: a concurrent run created the same name between our lookup and
// our create. The caller looks again and converges on what exists.
var errRaced = errors.New("name taken by a concurrent run")

// errLost: the answer to our create was lost; it may or may not have been
// applied. The caller looks again, like after errRaced, but says so.
var errLost = errors.New("the answer to a create was lost")

// locate resolves the target and finds the instance (nil when absent; an
// error naming what to run when mustExist).
func (p *Provisioner) locate(ctx context.Context, ref Ref, mustExist bool) (cfapi.Target, *resource.ServiceInstance, error) {
	t, err := p.s.ResolveTarget(ctx, ref.Org, ref.Space)
	if err != nil {
		return cfapi.Target{}, nil, err
	}
	p.target = t
	inst, err := p.s.FindInstance(ctx, t, ref.Instance)
	if err == nil && inst == nil && mustExist {
		err = remedy.With(fmt.Errorf("service instance %q not found in org %s / space %s", ref.Instance, t.OrgName, t.SpaceName), remedy.Remedy{Action: remedy.Create, Instance: ref.Instance})
	}
	return t, inst, err
}
