package provision

import (
	"context"
	"strings"

	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/credfile"
	"github.com/xsprov/xsprov/provision/xssec"
)

// UpRequest is what `xsprov up` converges to.
type UpRequest struct {
	Ref
	Offering, Plan, Broker string
	// Params is the whole xs-security descriptor the user gave (a file or a
	// template, Overrides applied); nil when none was given: a new instance
	// then gets the minimal descriptor, and an existing one keeps what it
	// holds, changed only by Overrides.
	Params map[string]any
	// Overrides are fields given one by one.
	Overrides xssec.Overrides
	// XSAppNameGiven says the user named the xsappname; when not, an
	// existing instance keeps its own.
	XSAppNameGiven bool
	Tags           []string
	Key            string
	// KeyParams are the parameters of a new key (credential-type, x509).
	KeyParams map[string]any
	Out       credfile.Output
	NoWait    bool
	// Observed is what a plan saw of the instance (nil: look it up).
	Observed *Observation
}

// Up creates or converges the instance, creates or reuses the key, and writes
// the credentials file.
func (p *Provisioner) Up(ctx context.Context, req UpRequest) (*Result, error) {
	req.Key = req.keyName(req.Key)
	t, err := p.s.ResolveTarget(ctx, req.Org, req.Space)
	if err != nil {
		return nil, err
	}
	plan, err := p.s.ResolvePlan(ctx, t, req.Offering, req.Plan, req.Broker)
	if err != nil {
		return nil, err
	}
	res := p.newResult(t, req.Instance)
	res.Instance.Offering, res.Instance.Plan = plan.OfferingName, plan.Name

	inst, action, err := p.ensureInstance(ctx, t, plan, req)
	if err != nil {
		return nil, err
	}
	res.Instance.Action = action
	if inst == nil { // --no-wait
		return res, nil
	}
	res.Instance.GUID, res.Instance.State = inst.GUID, cfapi.DescribeOp(inst.LastOperation)
	if req.NoWait && cfapi.OpBusy(inst.LastOperation) {
		return res, nil
	}
	fresh := action == Created || action == Recreated
	key, kaction, err := p.ensureKey(ctx, inst, req.Key, req.KeyParams, fresh, req.NoWait)
	if err != nil {
		return nil, afterChanges(err, res, nil)
	}
	res.Key = &KeyResult{Name: cfapi.KeyName(key, req.Key), GUID: key.GUID, State: cfapi.DescribeOp(key.LastOperation), Action: kaction}
	if req.NoWait && cfapi.OpBusy(key.LastOperation) {
		return res, nil
	}
	if err := p.fetchAndWrite(ctx, key, req.Out, res); err != nil {
		return nil, afterChanges(err, res, res.Key)
	}
	// Prove new credentials; a re-run that changed nothing was proven before.
	if kaction != Unchanged || (res.FileAction != Unchanged && res.FileAction != "") {
		if err := p.verify(ctx, res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// afterChanges: a failure after up changed something is not "nothing was
// sent" (exit 2), whatever caused it; it says what was made.
func afterChanges(err error, res *Result, key *KeyResult) error {
	var made []string
	if a := res.Instance.Action; a == Created || a == Recreated || a == Updated {
		made = append(made, "service instance "+quote(res.Instance.Name)+" was "+string(a))
	}
	if key != nil && (key.Action == Created || key.Action == Recreated) {
		made = append(made, "service key "+quote(key.Name)+" was "+string(key.Action))
	}
	if len(made) == 0 || res.DryRun {
		return err
	}
	return &partialError{err: err, made: strings.Join(made, ", ")}
}

// partialError is a failure after changes were made.
type partialError struct {
	err  error
	made string
}

func (e *partialError) Error() string {
	return e.err.Error() + " (" + e.made + "; re-running converges on them)"
}
func (e *partialError) Unwrap() error { return e.err }

// Usage is false: something was sent (exit code 1, not 2).
func (e *partialError) Usage() bool { return false }
