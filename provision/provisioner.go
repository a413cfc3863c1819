package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/cloudfoundry/go-cfclient/v3/resource"

	"github.com/xsprov/xsprov/provision/xssec"
)

// FormatVersion is the version of every --json document.
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

type nopReporter struct{}

func (nopReporter) Step(string) {}
func (nopReporter) Done()       {}
func (nopReporter) Info(string) {}
func (nopReporter) Warn(string) {}

// Provisioner converges instances and keys through one Session.
type Provisioner struct {
	S        *Session
	Reporter Reporter
	Clock    Clock
	Backoff  Backoff

	// OnSecrets receives the secret values of credentials as soon as they
	// are read, before anything else is printed (CI log masking).
	OnSecrets func(values []string)
	// Verify fetches a token with freshly written credentials.
	Verify bool
	// TokenTLS says which token servers to trust (certurl of x509 keys).
	TokenTLS TLSOptions
	// Labels are set on every instance and key this provisioner creates
	// (ownership by a spec).
	Labels map[string]string

	seenWarn map[string]bool
	pool     *sessionPool // sessions of parallel workers, shared by clones
}

// NewProvisioner returns a Provisioner for a session.
func NewProvisioner(s *Session, r Reporter) *Provisioner {
	return &Provisioner{S: s, Reporter: r}
}

func (p *Provisioner) rep() Reporter {
	if p.Reporter == nil {
		return nopReporter{}
	}
	return p.Reporter
}

func (p *Provisioner) clock() Clock {
	if p.Clock == nil {
		return RealClock
	}
	return p.Clock
}

func (p *Provisioner) backoff() Backoff {
	if p.Backoff.Min == 0 {
		return DefaultBackoff
	}
	return p.Backoff
}

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

// UpRequest is what `xsprov up` converges to.
type UpRequest struct {
	Ref
	Offering, Plan, Broker string
	// Params is the desired xs-security descriptor.
	Params map[string]any
	Tags   []string
	Key    string
	// KeyParams are the parameters of a new key (credential-type, x509).
	KeyParams map[string]any
	Out       Output
	NoWait    bool
}

// Action says what was done to a resource.
type Action string

// Actions.
const (
	Created   Action = "created"
	Updated   Action = "updated"
	Unchanged Action = "unchanged"
	Recreated Action = "recreated"
	Deleted   Action = "deleted"
	Absent    Action = "absent"
	Submitted Action = "submitted"
)

// InstanceResult describes the instance after a command.
type InstanceResult struct {
	Name     string `json:"name"`
	GUID     string `json:"guid,omitempty"`
	Offering string `json:"offering,omitempty"`
	Plan     string `json:"plan,omitempty"`
	State    string `json:"state,omitempty"`
	Action   Action `json:"action"`
}

// KeyResult describes the key after a command.
type KeyResult struct {
	Name   string `json:"name"`
	GUID   string `json:"guid,omitempty"`
	State  string `json:"state,omitempty"`
	Action Action `json:"action"`
}

// Result is the machine-readable result of up, down, recreate and creds.
// It never holds secret values.
type Result struct {
	FormatVersion string         `json:"format_version"`
	API           string         `json:"api"`
	Org           string         `json:"org"`
	Space         string         `json:"space"`
	Instance      InstanceResult `json:"instance"`
	Key           *KeyResult     `json:"key,omitempty"`
	File          string         `json:"credentials_file,omitempty"`
	ExtraFiles    []string       `json:"extra_files,omitempty"`
	Token         *Token         `json:"verified_token,omitempty"`
	FileAction    Action         `json:"credentials_file_action,omitempty"`
	ClientID      string         `json:"client_id,omitempty"`
	URL           string         `json:"url,omitempty"`
	Warnings      []string       `json:"warnings,omitempty"`
	creds         map[string]any // for --verify and the file; never serialised
}

// Credentials returns the credentials fetched by the command, if any.
func (r *Result) Credentials() map[string]any { return r.creds }

func (p *Provisioner) newResult(t Target, name string) *Result {
	return &Result{FormatVersion: FormatVersion, API: p.S.API, Org: t.OrgName, Space: t.SpaceName, Instance: InstanceResult{Name: name}}
}

// Up creates or converges the instance, creates or reuses the key, and writes
// the credentials file.
func (p *Provisioner) Up(ctx context.Context, req UpRequest) (*Result, error) {
	req.Key = req.keyName(req.Key)
	t, err := p.resolveTarget(ctx, req.Org, req.Space)
	if err != nil {
		return nil, err
	}
	plan, err := p.resolvePlan(ctx, t, req.Offering, req.Plan, req.Broker)
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
	res.Instance.GUID, res.Instance.State = inst.GUID, describeOp(inst.LastOperation)
	if req.NoWait && opBusy(inst.LastOperation) {
		return res, nil
	}
	fresh := action == Created || action == Recreated
	key, kaction, err := p.ensureKey(ctx, inst, req.Key, req.KeyParams, fresh, req.NoWait)
	if err != nil {
		return nil, err
	}
	res.Key = &KeyResult{Name: keyName(key, req.Key), GUID: key.GUID, State: describeOp(key.LastOperation), Action: kaction}
	if req.NoWait && opBusy(key.LastOperation) {
		return res, nil
	}
	if err := p.fetchAndWrite(ctx, key, req.Out, res); err != nil {
		return nil, err
	}
	// Prove new credentials; a re-run that changed nothing was proven before.
	if kaction != Unchanged || (res.FileAction != Unchanged && res.FileAction != "") {
		if err := p.verify(ctx, res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// verify proves that the credentials work by getting a token with them.
func (p *Provisioner) verify(ctx context.Context, res *Result) error {
	if !p.Verify || res.creds == nil {
		return nil
	}
	p.rep().Step("Verifying the credentials: getting a token from " + firstNonEmpty(str(res.creds, "certurl"), str(res.creds, "url")))
	tok, err := FetchToken(ctx, p.S.HTTP.Transport, TokenRequest{Creds: res.creds}, p.TokenTLS)
	if err != nil {
		var ae *AuthError
		if errors.As(err, &ae) {
			ae.Msg = "the new credentials do not work: " + ae.Msg
			ae.Hint = "the file was written; the key is broken at the broker. Delete it ('xsprov down --keep-instance') and run 'xsprov up' again"
		}
		return err
	}
	p.rep().Done()
	res.Token = tok
	return nil
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

func keyName(k *resource.ServiceCredentialBinding, def string) string {
	if k != nil && k.Name != nil {
		return *k.Name
	}
	return def
}

func (p *Provisioner) ensureInstance(ctx context.Context, t Target, plan Plan, req UpRequest) (*resource.ServiceInstance, Action, error) {
	for attempt := 0; attempt < 3; attempt++ {
		inst, err := p.findInstance(ctx, t, req.Instance)
		if err != nil {
			return nil, "", err
		}
		if inst == nil {
			si, err := p.createInstance(ctx, t, plan, req, Created)
			if errors.Is(err, errRaced) {
				continue
			}
			return si, Created, err
		}
		if inst.Relationships.ServicePlan.Data.GUID != plan.GUID {
			return nil, "", &Hinted{Err: fmt.Errorf("service instance %q exists with another service plan than %s/%s", req.Instance, plan.OfferingName, plan.Name),
				Hint: "name the instance's plan with --plan, or replace the instance with 'xsprov recreate'"}
		}
		lo := inst.LastOperation
		switch {
		case lo.Type == "create" && lo.State == "failed":
			p.rep().Info(fmt.Sprintf("Service instance %s exists but its creation failed (%s); creating it again.", req.Instance, lo.Description))
			si, err := p.createInstance(ctx, t, plan, req, Recreated)
			if errors.Is(err, errRaced) {
				continue
			}
			return si, Recreated, err
		case opBusy(lo):
			if req.NoWait {
				return inst, Unchanged, nil
			}
			p.rep().Step(fmt.Sprintf("Waiting for the %s of service instance %s to finish", lo.Type, req.Instance))
			if _, err := p.waitInstance(ctx, inst.GUID); err != nil {
				return nil, "", p.timeoutOr(err, "service instance "+quote(req.Instance), "its "+lo.Type+" is still in progress")
			}
			p.rep().Done()
			continue // decide again on the settled state
		}
		p.rep().Info(fmt.Sprintf("Service instance %s already exists.", req.Instance))
		si, changed, err := p.converge(ctx, t, inst, req)
		if err != nil {
			return nil, "", err
		}
		if changed {
			return si, Updated, nil
		}
		return si, Unchanged, nil
	}
	return nil, "", fmt.Errorf("service instance %q keeps changing under us; another run is working on it", req.Instance)
}

// errRaced: a concurrent run created the same name between our lookup and
// our create. The caller looks again and converges on what exists.
var errRaced = errors.New("name taken by a concurrent run")

func (p *Provisioner) createInstance(ctx context.Context, t Target, plan Plan, req UpRequest, action Action) (*resource.ServiceInstance, error) {
	params, err := json.Marshal(req.Params)
	if err != nil {
		return nil, Usagef("parameters: %v", err)
	}
	raw := json.RawMessage(params)
	verb := "Creating"
	if action == Recreated {
		verb = "Recreating"
	}
	p.rep().Step(fmt.Sprintf("%s service instance %s in org %s / space %s as %s", verb, req.Instance, t.OrgName, t.SpaceName, p.S.User))
	jobGUID, err := p.S.CF.ServiceInstances.CreateManaged(ctx, &resource.ServiceInstanceManagedCreate{
		Type: "managed", Name: req.Instance, Parameters: &raw, Tags: req.Tags, Metadata: labelsMeta(p.Labels),
		Relationships: resource.ServiceInstanceRelationships{
			Space:       &resource.ToOneRelationship{Data: &resource.Relationship{GUID: t.SpaceGUID}},
			ServicePlan: &resource.ToOneRelationship{Data: &resource.Relationship{GUID: plan.GUID}},
		},
	})
	switch {
	case isNameTaken(err), errors.Is(err, ErrResponseLost):
		// Either another run won, or our own create went through and its
		// answer was lost: look again instead of creating twice.
		p.rep().Info("Service instance " + req.Instance + " appeared meanwhile; converging on it.")
		return nil, errRaced
	case err != nil:
		return nil, classify("create service instance "+quote(req.Instance), err)
	}
	if req.NoWait {
		p.rep().Done()
		return &resource.ServiceInstance{Name: req.Instance, LastOperation: resource.LastOperation{Type: "create", State: "in progress"}}, nil
	}
	job, err := p.waitJob(ctx, jobGUID, "create service instance "+quote(req.Instance))
	if err != nil {
		return nil, p.timeoutOr(err, "service instance "+quote(req.Instance), "its creation is still in progress")
	}
	p.rep().Done()
	guid := jobResourceGUID(job, "service_instances")
	if guid == "" {
		inst, err := p.findInstance(ctx, t, req.Instance)
		if err != nil || inst == nil {
			return nil, fmt.Errorf("service instance %q vanished after its creation", req.Instance)
		}
		return inst, nil
	}
	return &resource.ServiceInstance{Name: req.Instance, Resource: resource.Resource{GUID: guid},
		LastOperation: resource.LastOperation{Type: "create", State: "succeeded"},
		Relationships: resource.ServiceInstanceRelationships{ServicePlan: &resource.ToOneRelationship{Data: &resource.Relationship{GUID: plan.GUID}}}}, nil
}

// converge compares the instance's parameters with the desired ones and
// applies an update when they differ.
func (p *Provisioner) converge(ctx context.Context, t Target, inst *resource.ServiceInstance, req UpRequest) (*resource.ServiceInstance, bool, error) {
	current, err := p.instanceParams(ctx, inst.GUID)
	if err != nil {
		return nil, false, err
	}
	if current == nil {
		p.rep().Info("The offering does not let Cloud Foundry read the instance's parameters; they were not compared. Use 'xsprov recreate' to apply new ones.")
		return inst, false, nil
	}
	desired := req.Params
	diff := Diff(current, desired)
	if len(diff) == 0 && !(inst.LastOperation.Type == "update" && inst.LastOperation.State == "failed") {
		return inst, false, nil
	}
	if imm := xssec.ImmutableChanges(current, desired); len(imm) > 0 {
		hint := "run 'xsprov recreate " + req.Instance + "' to delete and create it again (its keys and credentials change)"
		if inPlace := mutable(diff); len(inPlace) > 0 {
			hint += "; the broker could apply the other change(s) in place:"
			for _, d := range inPlace {
				hint += "\n  " + d.String()
			}
		}
		return nil, false, &Hinted{
			Err:  fmt.Errorf("service instance %q cannot be updated in place: the broker cannot change %s (have %s, want %s)", req.Instance, joinAnd(imm), describeImmutable(current, imm), describeImmutable(desired, imm)),
			Hint: hint,
		}
	}
	p.rep().Info("The broker applies these changes in place:")
	for _, d := range diff {
		p.rep().Info("  " + d.String())
	}
	p.rep().Step(fmt.Sprintf("Updating service instance %s in org %s / space %s as %s", req.Instance, t.OrgName, t.SpaceName, p.S.User))
	raw, _ := json.Marshal(desired)
	rm := json.RawMessage(raw)
	tags := inst.Tags
	if req.Tags != nil {
		tags = req.Tags
	}
	if tags == nil {
		tags = []string{}
	}
	jobGUID, _, err := p.S.CF.ServiceInstances.UpdateManaged(ctx, inst.GUID, &resource.ServiceInstanceManagedUpdate{Parameters: &rm, Tags: tags})
	if isInProgress(err) || errors.Is(err, ErrResponseLost) {
		// Someone else is changing it (or our PATCH went through unseen):
		// wait for that, then compare again on the next run of the loop.
		si, werr := p.waitInstance(ctx, inst.GUID)
		if werr != nil {
			return nil, false, p.timeoutOr(werr, "service instance "+quote(req.Instance), "an update is in progress")
		}
		if si == nil {
			return nil, false, fmt.Errorf("service instance %q was deleted while being updated", req.Instance)
		}
		return p.converge(ctx, t, si, req)
	}
	if err != nil {
		return nil, false, classify("update service instance "+quote(req.Instance), err)
	}
	if jobGUID == "" {
		p.rep().Done()
		return inst, true, nil
	}
	if req.NoWait {
		p.rep().Done()
		inst.LastOperation = resource.LastOperation{Type: "update", State: "in progress"}
		return inst, true, nil
	}
	if _, err := p.waitJob(ctx, jobGUID, "update service instance "+quote(req.Instance)); err != nil {
		return nil, false, p.timeoutOr(err, "service instance "+quote(req.Instance), "its update is still in progress")
	}
	p.rep().Done()
	inst.LastOperation = resource.LastOperation{Type: "update", State: "succeeded"}
	return inst, true, nil
}

// mutable drops the entries of fields the broker cannot change in place.
func mutable(diff []DiffEntry) []DiffEntry {
	var out []DiffEntry
	for _, d := range diff {
		if d.Path != "$.xsappname" && d.Path != "$.tenant-mode" {
			out = append(out, d)
		}
	}
	return out
}

func describeImmutable(d map[string]any, fields []string) string {
	s := ""
	for i, f := range fields {
		if i > 0 {
			s += ", "
		}
		v := xssec.Field(d, f)
		if f == "tenant-mode" {
			v = xssec.TenantMode(d)
		}
		s += f + " " + quote(v)
	}
	return s
}

func joinAnd(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	s := ""
	for i, x := range xs {
		switch {
		case i == len(xs)-1:
			s += " and " + x
		case i > 0:
			s += ", " + x
		default:
			s += x
		}
	}
	return s
}

// instanceParams reads the instance's parameters; nil when the offering does
// not allow it (400 120004).
func (p *Provisioner) instanceParams(ctx context.Context, guid string) (map[string]any, error) {
	for {
		raw, err := p.S.CF.ServiceInstances.GetManagedParameters(ctx, guid)
		if ce, ok := cfError(err); ok && ce.Code == 120004 {
			return nil, nil
		}
		if isInProgress(err) {
			if _, werr := p.waitInstance(ctx, guid); werr != nil {
				return nil, werr
			}
			continue
		}
		if err != nil {
			return nil, classify("read parameters of service instance", err)
		}
		m := map[string]any{}
		if raw != nil {
			if err := json.Unmarshal(*raw, &m); err != nil {
				return nil, fmt.Errorf("parameters of service instance %s are not a JSON object: %w", guid, err)
			}
		}
		return m, nil
	}
}

// ensureKey returns the instance's key, creating it when absent.
func (p *Provisioner) ensureKey(ctx context.Context, inst *resource.ServiceInstance, name string, params map[string]any, fresh, noWait bool) (*resource.ServiceCredentialBinding, Action, error) {
	for attempt := 0; attempt < 3; attempt++ {
		var key *resource.ServiceCredentialBinding
		if !fresh {
			keys, err := p.keysOf(ctx, inst.GUID)
			if err != nil {
				return nil, "", err
			}
			key = pickKey(keys, name)
		}
		fresh = false
		if key == nil {
			k, err := p.createKey(ctx, inst, name, params, noWait)
			if errors.Is(err, errRaced) {
				continue
			}
			return k, Created, err
		}
		lo := key.LastOperation
		switch {
		case lo.Type == "create" && lo.State == "failed":
			p.rep().Info(fmt.Sprintf("Service key %s exists but its creation failed (%s); creating it again.", *key.Name, lo.Description))
			if err := p.deleteKey(ctx, key, inst.Name); err != nil {
				return nil, "", err
			}
			k, err := p.createKey(ctx, inst, name, params, noWait)
			if errors.Is(err, errRaced) {
				continue
			}
			return k, Recreated, err
		case opBusy(lo):
			if noWait {
				return key, Unchanged, nil
			}
			p.rep().Step(fmt.Sprintf("Waiting for the %s of service key %s to finish", lo.Type, *key.Name))
			if _, err := p.waitKey(ctx, key.GUID); err != nil {
				return nil, "", p.timeoutOr(err, "service key "+quote(*key.Name), "its "+lo.Type+" is still in progress")
			}
			p.rep().Done()
			continue
		case lo.Type == "delete":
			// a failed delete leaves a key that may no longer work
			p.rep().Info(fmt.Sprintf("Service key %s has a failed deletion (%s); replacing it.", *key.Name, lo.Description))
			if err := p.deleteKey(ctx, key, inst.Name); err != nil {
				return nil, "", err
			}
			continue
		}
		p.rep().Info(fmt.Sprintf("Service key %s already exists.", *key.Name))
		return key, Unchanged, nil
	}
	return nil, "", fmt.Errorf("service key %q keeps changing under us; another run is working on it", name)
}

func (p *Provisioner) createKey(ctx context.Context, inst *resource.ServiceInstance, name string, params map[string]any, noWait bool) (*resource.ServiceCredentialBinding, error) {
	p.rep().Step(fmt.Sprintf("Creating service key %s for service instance %s as %s", name, inst.Name, p.S.User))
	create := resource.NewServiceCredentialBindingCreateKey(inst.GUID, name)
	create.Metadata = labelsMeta(p.Labels)
	if len(params) > 0 {
		b, err := json.Marshal(params)
		if err != nil {
			return nil, Usagef("key parameters: %v", err)
		}
		raw := json.RawMessage(b)
		create.Parameters = &raw
	}
	jobGUID, _, err := p.S.CF.ServiceCredentialBindings.Create(ctx, create)
	switch {
	case isNameTaken(err), errors.Is(err, ErrResponseLost):
		p.rep().Info("Service key " + name + " appeared meanwhile; converging on it.")
		return nil, errRaced
	case err != nil:
		return nil, classify("create service key "+quote(name)+" for service instance "+quote(inst.Name), err)
	}
	if noWait {
		p.rep().Done()
		return &resource.ServiceCredentialBinding{Name: &name, LastOperation: resource.LastOperation{Type: "create", State: "in progress"}}, nil
	}
	job, err := p.waitJob(ctx, jobGUID, "create service key "+quote(name))
	if err != nil {
		return nil, p.timeoutOr(err, "service key "+quote(name), "its creation is still in progress")
	}
	p.rep().Done()
	guid := jobResourceGUID(job, "service_credential_binding")
	if guid == "" {
		keys, err := p.keysOf(ctx, inst.GUID)
		if err != nil {
			return nil, err
		}
		k := pickKey(keys, name)
		if k == nil {
			return nil, fmt.Errorf("service key %q vanished after its creation", name)
		}
		return k, nil
	}
	return &resource.ServiceCredentialBinding{Name: &name, Resource: resource.Resource{GUID: guid},
		LastOperation: resource.LastOperation{Type: "create", State: "succeeded"}}, nil
}

func (p *Provisioner) deleteKey(ctx context.Context, key *resource.ServiceCredentialBinding, instName string) error {
	name := keyName(key, key.GUID)
	p.rep().Step(fmt.Sprintf("Deleting key %s for service instance %s as %s", name, instName, p.S.User))
	jobGUID, err := p.S.CF.ServiceCredentialBindings.Delete(ctx, key.GUID)
	if isCode(err, codeResourceNotFound) {
		p.rep().Done()
		return nil
	}
	if isInProgress(err) {
		if _, err := p.waitKey(ctx, key.GUID); err != nil {
			return p.timeoutOr(err, "service key "+quote(name), "an operation on it is in progress")
		}
		return p.deleteKey(ctx, key, instName)
	}
	if errors.Is(err, ErrResponseLost) {
		k, werr := p.waitKey(ctx, key.GUID)
		if werr != nil {
			return werr
		}
		if k == nil {
			p.rep().Done()
			return nil
		}
		return p.deleteKey(ctx, key, instName)
	}
	if err != nil {
		return classify("delete service key "+quote(name), err)
	}
	if jobGUID != "" {
		if _, err := p.waitJob(ctx, jobGUID, "delete service key "+quote(name)); err != nil {
			return p.timeoutOr(err, "service key "+quote(name), "its deletion is still in progress")
		}
	}
	p.rep().Done()
	return nil
}

// fetchAndWrite reads a key's credentials and writes the credentials file.
func (p *Provisioner) fetchAndWrite(ctx context.Context, key *resource.ServiceCredentialBinding, out Output, res *Result) error {
	det, err := p.S.CF.ServiceCredentialBindings.GetDetails(ctx, key.GUID)
	if err != nil {
		return classify("read credentials of service key "+quote(keyName(key, "")), err)
	}
	if p.OnSecrets != nil {
		p.OnSecrets(SecretValues(det.Credentials))
	}
	return p.writeCreds(det.Credentials, out, res)
}

// writeCreds writes credentials to the file (and, for pem, its .crt/.key).
func (p *Provisioner) writeCreds(creds map[string]any, out Output, res *Result) error {
	res.creds = creds
	res.ClientID, _ = creds["clientid"].(string)
	res.URL, _ = creds["url"].(string)
	if out.Path == "" {
		return nil
	}
	if out.Instance == "" {
		out.Instance = res.Instance.Name
	}
	out.Offering, out.Plan = firstNonEmpty(out.Offering, res.Instance.Offering), firstNonEmpty(out.Plan, res.Instance.Plan)
	data, err := Render(creds, out)
	if err != nil {
		return err
	}
	var extra map[string][]byte
	if out.Format == FormatPEM {
		if extra, err = PEMFiles(creds, out.Path); err != nil {
			return err
		}
	}
	res.File = out.Path
	switch prev, err := os.ReadFile(out.Path); {
	case err == nil && string(prev) == string(data):
		res.FileAction = Unchanged
	case err == nil:
		res.FileAction = Updated
	default:
		res.FileAction = Created
	}
	if res.FileAction != Unchanged {
		p.rep().Step("Writing credentials to " + out.Path)
		if err := WriteFileAtomic(out.Path, data); err != nil {
			return err
		}
		p.rep().Done()
	}
	for path, b := range extra {
		if err := WriteFileAtomic(path, b); err != nil {
			return err
		}
		res.ExtraFiles = append(res.ExtraFiles, path)
	}
	sort.Strings(res.ExtraFiles)
	if GitExposure(out.Path) {
		w := out.Path + " is inside a git work tree and not ignored; add it to .gitignore so the credentials are never committed"
		p.rep().Warn(w)
		res.Warnings = append(res.Warnings, w)
	}
	return nil
}

func (p *Provisioner) timeoutOr(err error, what, left string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &TimeoutError{What: what, Left: left}
	}
	return err
}

// locate resolves the target and finds the instance (nil when absent; an
// error naming what to run when mustExist).
func (p *Provisioner) locate(ctx context.Context, ref Ref, mustExist bool) (Target, *resource.ServiceInstance, error) {
	t, err := p.resolveTarget(ctx, ref.Org, ref.Space)
	if err != nil {
		return Target{}, nil, err
	}
	inst, err := p.findInstance(ctx, t, ref.Instance)
	if err == nil && inst == nil && mustExist {
		err = &Hinted{Err: fmt.Errorf("service instance %q not found in org %s / space %s", ref.Instance, t.OrgName, t.SpaceName), Hint: "create it with 'xsprov up " + ref.Instance + "'"}
	}
	return t, inst, err
}

// DownRequest is what `xsprov down` removes.
type DownRequest struct {
	Ref
	Key          string
	KeepInstance bool
	OutPath      string
	NoWait       bool
}

// Down deletes the key(s) and the instance, and removes the credentials file
// once Cloud Foundry confirmed the deletion.
func (p *Provisioner) Down(ctx context.Context, req DownRequest) (*Result, error) {
	req.Key = req.keyName(req.Key)
	t, inst, err := p.locate(ctx, req.Ref, false)
	if err != nil {
		return nil, err
	}
	res := p.newResult(t, req.Instance)
	if inst == nil {
		p.rep().Info(fmt.Sprintf("Service instance %s does not exist.", req.Instance))
		res.Instance.Action = Absent
	} else {
		res.Instance.GUID = inst.GUID
		if req.KeepInstance {
			res.Instance.Action = Unchanged
			keys, err := p.keysOf(ctx, inst.GUID)
			if err != nil {
				return nil, err
			}
			res.Key = &KeyResult{Name: req.Key, Action: Absent}
			for _, k := range keys {
				if n := keyName(k, ""); n == req.Key || len(n) > len(req.Key) && n[:len(req.Key)+len(RotatedSep)] == req.Key+RotatedSep {
					if err := p.deleteKey(ctx, k, inst.Name); err != nil {
						return nil, err
					}
					res.Key.Action = Deleted
				}
			}
		} else {
			if err := p.deleteInstance(ctx, inst, req.NoWait); err != nil {
				return nil, err
			}
			res.Instance.Action = Deleted
			if req.NoWait {
				res.Instance.Action = Submitted
				return res, nil
			}
		}
	}
	if req.OutPath != "" {
		err := os.Remove(req.OutPath)
		switch {
		case err == nil:
			p.rep().Info("Removed credentials file " + req.OutPath + ".")
			res.File, res.FileAction = req.OutPath, Deleted
		case errors.Is(err, os.ErrNotExist):
			res.File, res.FileAction = req.OutPath, Absent
		default:
			return nil, fmt.Errorf("remove credentials file: %w", err)
		}
	}
	return res, nil
}

func (p *Provisioner) deleteInstance(ctx context.Context, inst *resource.ServiceInstance, noWait bool) error {
	for attempt := 0; attempt < 5; attempt++ {
		if opBusy(inst.LastOperation) {
			p.rep().Step(fmt.Sprintf("Waiting for the %s of service instance %s to finish", inst.LastOperation.Type, inst.Name))
			si, err := p.waitInstance(ctx, inst.GUID)
			if err != nil {
				return p.timeoutOr(err, "service instance "+quote(inst.Name), "its "+inst.LastOperation.Type+" is still in progress")
			}
			p.rep().Done()
			if si == nil {
				return nil
			}
			inst = si
		}
		p.rep().Step(fmt.Sprintf("Deleting service instance %s as %s", inst.Name, p.S.User))
		jobGUID, err := p.S.CF.ServiceInstances.Delete(ctx, inst.GUID)
		switch {
		case isCode(err, codeResourceNotFound):
			p.rep().Done()
			return nil
		case isInProgress(err), errors.Is(err, ErrResponseLost):
			inst.LastOperation = resource.LastOperation{Type: "delete", State: "in progress"}
			continue
		case err != nil:
			return classify("delete service instance "+quote(inst.Name), err)
		}
		if noWait {
			p.rep().Done()
			return nil
		}
		if jobGUID != "" {
			if _, err := p.waitJob(ctx, jobGUID, "delete service instance "+quote(inst.Name)); err != nil {
				return p.timeoutOr(err, "service instance "+quote(inst.Name), "its deletion is still in progress")
			}
		}
		p.rep().Done()
		return nil
	}
	return fmt.Errorf("service instance %q is busy with other operations; try again later", inst.Name)
}

// CredsRequest is what `xsprov creds` reads.
type CredsRequest struct {
	Ref
	Key string
	Out Output
}

// Creds reads the key's credentials and (re)writes the file.
func (p *Provisioner) Creds(ctx context.Context, req CredsRequest) (*Result, error) {
	req.Key = req.keyName(req.Key)
	t, inst, err := p.locate(ctx, req.Ref, true)
	if err != nil {
		return nil, err
	}
	res := p.newResult(t, req.Instance)
	res.Instance.GUID, res.Instance.State, res.Instance.Action = inst.GUID, describeOp(inst.LastOperation), Unchanged
	keys, err := p.keysOf(ctx, inst.GUID)
	if err != nil {
		return nil, err
	}
	key := pickKey(keys, req.Key)
	if key == nil {
		return nil, &Hinted{Err: fmt.Errorf("service key %q of service instance %q not found", req.Key, req.Instance), Hint: "create it with 'xsprov up " + req.Instance + "'"}
	}
	if key.LastOperation.State != "succeeded" || key.LastOperation.Type != "create" {
		return nil, fmt.Errorf("service key %q is not usable: %s", *key.Name, describeOp(key.LastOperation))
	}
	res.Key = &KeyResult{Name: *key.Name, GUID: key.GUID, State: describeOp(key.LastOperation), Action: Unchanged}
	if err := p.fetchAndWrite(ctx, key, req.Out, res); err != nil {
		return nil, err
	}
	return res, nil
}

// StatusRequest asks for the state of an instance, and optionally compares
// its parameters with desired ones.
type StatusRequest struct {
	Ref
	Key     string
	Desired map[string]any // nil: no drift check
	OutPath string
}

// Status is the result of `xsprov status`.
type Status struct {
	FormatVersion string     `json:"format_version"`
	API           string     `json:"api"`
	Org           string     `json:"org"`
	Space         string     `json:"space"`
	Exists        bool       `json:"exists"`
	Instance      *InstState `json:"instance,omitempty"`
	Keys          []KeyState `json:"keys"`
	Drift         *Drift     `json:"drift,omitempty"`
	File          *FileState `json:"credentials_file,omitempty"`
}

// InstState is an instance's state.
type InstState struct {
	Name          string `json:"name"`
	GUID          string `json:"guid"`
	Offering      string `json:"offering"`
	Plan          string `json:"plan"`
	LastOperation OpView `json:"last_operation"`
}

// OpView is a last operation.
type OpView struct {
	Type        string    `json:"type"`
	State       string    `json:"state"`
	Description string    `json:"description,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// KeyState is a key's state.
type KeyState struct {
	Name          string    `json:"name"`
	GUID          string    `json:"guid"`
	Current       bool      `json:"current"`
	CreatedAt     time.Time `json:"created_at"`
	LastOperation OpView    `json:"last_operation"`
}

// Drift compares parameters.
type Drift struct {
	Drifted       bool        `json:"drifted"`
	Changes       []DiffEntry `json:"changes"`
	NeedsRecreate []string    `json:"needs_recreate,omitempty"`
}

// FileState describes the local credentials file.
type FileState struct {
	Path       string     `json:"path"`
	Exists     bool       `json:"exists"`
	ModifiedAt *time.Time `json:"modified_at,omitempty"`
	AgeSeconds int64      `json:"age_seconds,omitempty"`
	Mode       string     `json:"mode,omitempty"`
}

// Status reports the state of an instance and its keys.
func (p *Provisioner) Status(ctx context.Context, req StatusRequest) (*Status, error) {
	req.Key = req.keyName(req.Key)
	t, inst, err := p.locate(ctx, req.Ref, false)
	if err != nil {
		return nil, err
	}
	st := &Status{FormatVersion: FormatVersion, API: p.S.API, Org: t.OrgName, Space: t.SpaceName, Keys: []KeyState{}}
	if req.OutPath != "" {
		fs := &FileState{Path: req.OutPath}
		if fi, err := os.Stat(req.OutPath); err == nil {
			mt := fi.ModTime().UTC()
			fs.Exists, fs.ModifiedAt, fs.Mode = true, &mt, fi.Mode().Perm().String()
			fs.AgeSeconds = int64(p.clock().Now().Sub(fi.ModTime()).Seconds())
		}
		st.File = fs
	}
	if inst == nil {
		return st, nil
	}
	st.Exists = true
	is := &InstState{Name: inst.Name, GUID: inst.GUID, LastOperation: opView(inst.LastOperation)}
	plan, off, err := p.S.CF.ServicePlans.GetIncludeServiceOffering(ctx, inst.Relationships.ServicePlan.Data.GUID)
	if err != nil {
		return nil, classify("read service plan of instance", err)
	}
	is.Plan, is.Offering = plan.Name, off.Name
	st.Instance = is
	keys, err := p.keysOf(ctx, inst.GUID)
	if err != nil {
		return nil, err
	}
	cur := pickKey(keys, req.Key)
	for _, k := range keys {
		st.Keys = append(st.Keys, KeyState{Name: keyName(k, ""), GUID: k.GUID, Current: cur != nil && k.GUID == cur.GUID, CreatedAt: k.CreatedAt, LastOperation: opView(k.LastOperation)})
	}
	if req.Desired != nil && !opBusy(inst.LastOperation) {
		current, err := p.instanceParams(ctx, inst.GUID)
		if err != nil {
			return nil, err
		}
		if current != nil {
			d := Diff(current, req.Desired)
			st.Drift = &Drift{Drifted: len(d) > 0, Changes: d, NeedsRecreate: xssec.ImmutableChanges(current, req.Desired)}
			if st.Drift.Changes == nil {
				st.Drift.Changes = []DiffEntry{}
			}
		}
	}
	return st, nil
}

func opView(o resource.LastOperation) OpView {
	return OpView{Type: o.Type, State: o.State, Description: o.Description, UpdatedAt: o.UpdatedAt}
}
