package main

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/cfsim"
	"github.com/xsprov/xsprov/provision/infile"
	"github.com/xsprov/xsprov/provision/xsuaa"
)

// Factory holds the dependencies of commands, built lazily: a command that
// needs no network builds no client.
type Factory struct {
	IO     *IOStreams
	Getenv func(string) string
	Clock  cfapi.Clock
	// Backoff overrides the job polling schedule (tests).
	Backoff cfapi.Backoff
	// BaseTransport overrides the HTTP transport under the retry layer (tests).
	BaseTransport http.RoundTripper

	// plugin is the cf CLI session when running as `cf xsprov …`.
	plugin *pluginSession

	closers []func()
	rep     *reporter
	simCA   *x509.CertPool // trusted for the embedded simulator's mTLS listener
}

func (f *Factory) getenv(k string) string {
	if f.Getenv == nil {
		return os.Getenv(k)
	}
	return f.Getenv(k)
}

func (f *Factory) close() {
	for i := len(f.closers) - 1; i >= 0; i-- {
		f.closers[i]()
	}
	f.closers = nil
}

// newRootCmd builds the command tree.
func newRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "xsprov",
		Short: "Provision SAP XSUAA service instances and keys on Cloud Foundry",
		Long: `xsprov creates (or converges) an XSUAA service instance with its xs-security
parameters through the Cloud Foundry v3 API, creates or reuses a service key, and
writes the key's credentials to a local file, atomically and with mode 0600.

Authentication (never a secret as a flag value), first match wins:
  CF_CLIENT_ID + CF_CLIENT_SECRET   (or --client-id + --client-secret-file)
  CF_USERNAME + CF_PASSWORD         (client "cf"; --origin for another identity provider)
  the cf CLI login in CF_HOME       (~/.cf/config.json, with its target)

Try it without a Cloud Foundry: xsprov up my-xsuaa --api sim --xsappname myAppName`,
		Version:       "-",
		Args:          unknownSubcommand,
		RunE:          groupHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	// --version prints what `xsprov version` does (read when asked: the
	// build info is not needed for other commands).
	cobra.AddTemplateFunc("xsprovVersion", func() string { return buildInfo().String() })
	root.SetVersionTemplate("{{xsprovVersion}}\n")
	root.SetUsageTemplate(root.UsageTemplate() + "\n" + exitCodesHelp + "\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &flagError{err: err} })
	root.AddCommand(
		newUpCmd(f, nil),
		newDownCmd(f, nil),
		newRecreateCmd(f, nil),
		newStatusCmd(f, nil),
		newCredsCmd(f, nil),
		newSimCmd(f, nil),
		newTemplatesCmd(f),
		newValidateCmd(f, nil),
		newTokenCmd(f, nil),
		newRotateCmd(f, nil),
		newSpecCmd(f, "apply", nil),
		newSpecCmd(f, "plan", nil),
		newSpecCmd(f, "destroy", nil),
		newVersionCmd(f, nil),
		newListCmd(f, nil),
		newExportCmd(f, nil),
		newDoctorCmd(f, nil),
		newSchemaCmd(f),
	)
	registerCompletions(f, root)
	return root
}

// targetFlags are the flags every command that talks to Cloud Foundry has.
type targetFlags struct {
	API, Org, Space  string
	SkipSSL          bool
	ClientID         string
	ClientSecretFile string
	Origin           string
	Timeout          time.Duration
	Trace            bool
	CACert           string
	AllowInsecure    bool
	MaxRPS           float64
}

func (t *targetFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&t.API, "api", "", "Cloud Foundry API URL, or \"sim\" for the embedded simulator (default: $CF_API, then the cf CLI target)")
	fl.StringVarP(&t.Org, "org", "o", "", "organization (default: $CF_ORG, then the cf CLI target)")
	fl.StringVarP(&t.Space, "space", "s", "", "space (default: $CF_SPACE, then the cf CLI target)")
	fl.BoolVar(&t.SkipSSL, "skip-ssl-validation", false, "do not verify TLS certificates (API and token endpoints)")
	fl.StringVar(&t.CACert, "cacert", "", "PEM file of extra CAs to trust (API and token endpoints, e.g. the simulator's /_sim/ca.pem)")
	fl.StringVar(&t.ClientID, "client-id", "", "log in with this OAuth client (secret from --client-secret-file or $CF_CLIENT_SECRET)")
	fl.StringVar(&t.ClientSecretFile, "client-secret-file", "", "file holding the client secret")
	fl.StringVar(&t.Origin, "origin", "", "identity provider origin for CF_USERNAME/CF_PASSWORD")
	fl.DurationVar(&t.Timeout, "timeout", 15*time.Minute, "give up waiting after this long (exit 3); re-running resumes")
	fl.Float64Var(&t.MaxRPS, "max-rps", 0, "cap the requests per second to Cloud Foundry (the whole run, all workers; 0: none)")
	fl.BoolVar(&t.AllowInsecure, "allow-insecure-http", false, "let credentials go to plain http:// hosts that are not loopback (labs only)")
	fl.BoolVar(&t.Trace, "trace", false, "trace HTTP requests on stderr with secrets hidden (also $CF_TRACE=true or a file path)")
}

// settings is the resolved, validated target: everything is known before the
// first request.
type settings struct {
	api        string
	sim        bool
	org, space string
	auth       cfapi.Auth
	skipSSL    bool
	trace      io.Writer
	timeout    time.Duration
	roots      *x509.CertPool
	// allowInsecure lets credentials go over plain http:// to hosts that
	// are not loopback.
	allowInsecure bool
	maxRPS        float64
}

// resolve turns flags, environment and the cf CLI config into settings.
// Every problem is a usage error (exit 2) and nothing is sent.
func (f *Factory) resolve(t targetFlags) (*settings, error) { return f.resolveFor(t, true) }

// resolveFor is resolve; a spec command needs an org but no space.
func (f *Factory) resolveFor(t targetFlags, needSpace bool) (*settings, error) {
	if t.Timeout <= 0 {
		return nil, flagErrorf("--timeout must be positive, got %s", t.Timeout)
	}
	if t.MaxRPS < 0 {
		return nil, flagErrorf("--max-rps must not be negative, got %g", t.MaxRPS)
	}
	roots, err := loadCAs(t.CACert)
	if err != nil {
		return nil, err
	}
	s := &settings{skipSSL: t.SkipSSL, timeout: t.Timeout, roots: roots, allowInsecure: t.AllowInsecure, maxRPS: t.MaxRPS}
	cfHome := f.getenv("CF_HOME")
	if cfHome == "" {
		cfHome, _ = os.UserHomeDir()
	}
	cfc, err := cfapi.LoadCFConfig(cfHome)
	if err != nil {
		return nil, err
	}
	if f.plugin != nil && t.API != "" && strings.TrimRight(t.API, "/") != strings.TrimRight(f.plugin.api, "/") {
		return nil, flagErrorf("--api %s: as a cf CLI plugin, xsprov works on the cf CLI's target %s (run 'cf api' to change it, or run xsprov directly)", t.API, f.plugin.api)
	}
	if f.plugin != nil && f.plugin.skipSSL {
		s.skipSSL = true
	}
	api, apiFromCF := cmp.Or(t.API, f.getenv("CF_API")), false
	if api == "" && cfc != nil && cfc.Target != "" {
		api, apiFromCF = cfc.Target, true
		s.skipSSL = s.skipSSL || cfc.SSLDisabled
	}
	switch {
	case api == "":
		return nil, cfapi.Usagef("no Cloud Foundry API: use --api URL, set CF_API, or run 'cf api URL' (or try --api sim)")
	case api == "sim":
		s.sim = true
	default:
		if err := cfapi.ValidateAPI(api, t.AllowInsecure); err != nil {
			switch {
			case t.API != "":
				return nil, err
			case apiFromCF:
				return nil, cfapi.Usagef("the cf CLI's target: %v", err)
			}
			return nil, cfapi.Usagef("CF_API: %v", err)
		}
		s.api = strings.TrimRight(api, "/")
	}
	s.org, s.space = cmp.Or(t.Org, f.getenv("CF_ORG")), cmp.Or(t.Space, f.getenv("CF_SPACE"))
	useCF := cfc != nil && (apiFromCF || strings.TrimRight(cfc.Target, "/") == s.api)
	if useCF {
		s.org = cmp.Or(s.org, cfc.OrganizationFields.Name)
		s.space = cmp.Or(s.space, cfc.SpaceFields.Name)
	}
	if s.sim {
		s.org, s.space = cmp.Or(s.org, cfsim.DefaultOrg), cmp.Or(s.space, cfsim.DefaultSpace)
	}
	if s.org == "" || (needSpace && s.space == "") {
		return nil, cfapi.Usagef("no org and space: use --org and --space, set CF_ORG and CF_SPACE, or run 'cf target -o ORG -s SPACE'")
	}
	if s.auth, err = f.resolveAuth(t, s.sim, cfHome); err != nil {
		return nil, err
	}
	if s.trace, err = f.resolveTrace(t); err != nil {
		return nil, err
	}
	return s, nil
}

// resolveAuth picks the login: client credentials, user and password, the
// simulator's client, or the cf CLI's saved login.
func (f *Factory) resolveAuth(t targetFlags, sim bool, cfHome string) (cfapi.Auth, error) {
	var auth cfapi.Auth
	switch {
	case t.ClientID != "":
		secret := f.getenv("CF_CLIENT_SECRET")
		if t.ClientSecretFile != "" {
			b, err := infile.Read(t.ClientSecretFile, infile.Small)
			if err != nil {
				return auth, flagErrorf("--client-secret-file: %v", err)
			}
			secret = strings.TrimRight(string(b), "\r\n")
		}
		if secret == "" {
			return auth, flagErrorf("--client-id %s needs --client-secret-file or $CF_CLIENT_SECRET", t.ClientID)
		}
		auth = cfapi.Auth{ClientID: t.ClientID, ClientSecret: secret}
	case t.ClientSecretFile != "":
		return auth, flagErrorf("--client-secret-file needs --client-id")
	case f.plugin != nil:
		// cf xsprov …: the running cf CLI's session
		auth = cfapi.Auth{Token: f.plugin.token}
	case f.getenv("CF_CLIENT_ID") != "":
		if f.getenv("CF_CLIENT_SECRET") == "" {
			return auth, cfapi.Usagef("CF_CLIENT_ID is set but CF_CLIENT_SECRET is empty")
		}
		auth = cfapi.Auth{ClientID: f.getenv("CF_CLIENT_ID"), ClientSecret: f.getenv("CF_CLIENT_SECRET")}
	case f.getenv("CF_USERNAME") != "":
		if f.getenv("CF_PASSWORD") == "" {
			return auth, cfapi.Usagef("CF_USERNAME is set but CF_PASSWORD is empty")
		}
		auth = cfapi.Auth{Username: f.getenv("CF_USERNAME"), Password: f.getenv("CF_PASSWORD"), Origin: t.Origin}
	case sim:
		auth = cfapi.Auth{ClientID: cfsim.CIClientID, ClientSecret: cfsim.CIClientSecret}
	default:
		auth = cfapi.Auth{CFHome: cfHome}
	}
	if t.Origin != "" && auth.Username == "" {
		return auth, flagErrorf("--origin applies to CF_USERNAME/CF_PASSWORD logins only")
	}
	return auth, nil
}

// resolveTrace: --trace or CF_TRACE=true trace to stderr, CF_TRACE=PATH to
// a file.
func (f *Factory) resolveTrace(t targetFlags) (io.Writer, error) {
	switch tr := f.getenv("CF_TRACE"); {
	case t.Trace || strings.EqualFold(tr, "true"):
		return f.IO.ErrOut, nil
	case tr != "" && !strings.EqualFold(tr, "false"):
		fh, err := os.OpenFile(tr, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, cfapi.Usagef("CF_TRACE: cannot open trace file: %v", err)
		}
		f.closers = append(f.closers, func() { fh.Close() })
		return fh, nil
	}
	return nil, nil
}

// conn is a logged-in session with its progress reporter and the way to
// reach token endpoints.
type conn struct {
	sess      *cfapi.Session
	rep       *reporter
	httpOpts  cfapi.HTTPOptions
	tokenOpts xsuaa.Options
}

// engine builds the provisioner for one command, configured once.
func (c *conn) engine(verify bool, onSecrets func([]string), extra ...provision.Option) *provision.Provisioner {
	opts := append([]provision.Option{provision.WithReporter(c.rep), provision.WithVerify(verify, c.tokenOpts), provision.WithSecretsHook(onSecrets)}, extra...)
	return provision.New(c.sess, opts...)
}

// connect starts the embedded simulator when asked, logs in, and returns the
// session. ctx's deadline (--timeout) bounds every request and wait.
func (f *Factory) connect(ctx context.Context, s *settings) (*conn, error) {
	if s.sim {
		path := f.simStatePath()
		h, err := startEmbeddedSim(path)
		if err != nil {
			var se *simStateError
			if errors.As(err, &se) {
				return nil, cfapi.Usagef("embedded simulator state %s (XSPROV_SIM_STATE): %v", path, se.err)
			}
			return nil, err
		}
		f.closers = append(f.closers, h.Close)
		s.api = h.URL
		f.simCA = h.CA
	}
	rep := f.reporter()
	ho := cfapi.HTTPOptions{Base: f.BaseTransport, SkipTLS: s.skipSSL, RootCAs: s.roots, Clock: f.Clock, Trace: s.trace, AllowInsecureHTTP: s.allowInsecure}
	cfOpts := ho
	cfOpts.OnWarning = rep.Warn
	cfOpts.MaxRPS = s.maxRPS
	sess, err := cfapi.Connect(ctx, s.api, s.auth, cfapi.NewHTTPClient(cfOpts), cfapi.Options{SkipTLS: s.skipSSL, Clock: f.Clock, Backoff: f.Backoff})
	if err != nil {
		return nil, err
	}
	roots := s.roots
	if f.simCA != nil {
		roots = f.simCA
	}
	return &conn{sess: sess, rep: rep, httpOpts: ho,
		tokenOpts: xsuaa.Options{TLS: xsuaa.TLSOptions{RootCAs: roots, SkipVerify: s.skipSSL}, Wrap: ho.Wrap, Now: f.now, CheckURL: urlCheck(s.allowInsecure)}}, nil
}

func (f *Factory) simStatePath() string {
	if p := f.getenv("XSPROV_SIM_STATE"); p != "" {
		return p
	}
	dir := f.getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "xsprov", "sim-state.json")
}

// reporter returns the command's progress reporter.
func (f *Factory) reporter() *reporter {
	if f.rep == nil {
		f.rep = newReporter(f.IO, f.getenv)
	}
	return f.rep
}

func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// connectWithin bounds the command by --timeout and connects; the caller
// defers cancel.
func (f *Factory) connectWithin(ctx context.Context, s *settings) (context.Context, context.CancelFunc, *conn, error) {
	ctx, cancel := withTimeout(ctx, s.timeout)
	c, err := f.connect(ctx, s)
	if err != nil {
		cancel()
		return nil, func() {}, nil, err
	}
	return ctx, cancel, c, nil
}

// now is the factory's clock (tests) or the wall clock.
func (f *Factory) now() time.Time {
	if f.Clock != nil {
		return f.Clock.Now()
	}
	return time.Now()
}

// urlCheck is the clear-text check for token endpoints (nil when allowed).
func urlCheck(allowInsecure bool) func(*url.URL) error {
	if allowInsecure {
		return nil
	}
	return cfapi.CheckSecureURL
}
