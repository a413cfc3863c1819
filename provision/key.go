package provision

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/credfile"
	"github.com/xsprov/xsprov/provision/remedy"
	"github.com/xsprov/xsprov/provision/xsuaa"
)

// ensureKey returns the instance's key, creating it when absent.
func (p *Provisioner) ensureKey(ctx context.Context, inst *resource.ServiceInstance, name string, params map[string]any, fresh, noWait bool) (*resource.ServiceCredentialBinding, Action, error) {
	var lost error
	for attempt := 0; attempt < 3; attempt++ {
		var key *resource.ServiceCredentialBinding
		if !fresh {
			keys, err := p.s.KeysOf(ctx, inst.GUID)
			if err != nil {
				return nil, "", err
			}
			key = cfapi.PickKey(keys, name)
		}
		fresh = false
		if key == nil {
			k, err := p.createKey(ctx, inst, name, params, noWait)
			if again(err, &lost) {
				continue
			}
			return k, Created, err
		}
		lo := key.LastOperation
		switch {
		case lo.Type == "create" && lo.State == "failed":
			p.rep.Info(fmt.Sprintf("Service key %s exists but its creation failed (%s); creating it again.", *key.Name, lo.Description))
			if err := p.deleteKey(ctx, key, inst.Name); err != nil {
				return nil, "", err
			}
			k, err := p.createKey(ctx, inst, name, params, noWait)
			if again(err, &lost) {
				continue
			}
			return k, Recreated, err
		case cfapi.OpBusy(lo):
			if noWait {
				return key, Unchanged, nil
			}
			p.rep.Step(fmt.Sprintf("Waiting for the %s of service key %s to finish", lo.Type, *key.Name))
			if _, err := p.s.WaitKey(ctx, key.GUID); err != nil {
				return nil, "", cfapi.TimeoutOr(err, "service key "+quote(*key.Name), "its "+lo.Type+" is still in progress")
			}
			p.rep.Done()
			continue
		case lo.Type == "delete":
			// a failed delete leaves a key that may no longer work
			p.rep.Info(fmt.Sprintf("Service key %s has a failed deletion (%s); replacing it.", *key.Name, lo.Description))
			if err := p.deleteKey(ctx, key, inst.Name); err != nil {
				return nil, "", err
			}
			continue
		}
		p.rep.Info(fmt.Sprintf("Service key %s already exists.", *key.Name))
		return key, Unchanged, nil
	}
	return nil, "", settleError("service key", name, lost)
}

func (p *Provisioner) createKey(ctx context.Context, inst *resource.ServiceInstance, name string, params map[string]any, noWait bool) (*resource.ServiceCredentialBinding, error) {
	if p.dryRun {
		p.would(fmt.Sprintf("create service key %s for service instance %s", name, inst.Name))
		return &resource.ServiceCredentialBinding{Name: &name, LastOperation: resource.LastOperation{Type: "create", State: "dry run"}}, nil
	}
	p.rep.Step(fmt.Sprintf("Creating service key %s for service instance %s as %s", name, inst.Name, p.s.User))
	create := resource.NewServiceCredentialBindingCreateKey(inst.GUID, name)
	create.Metadata = cfapi.LabelsMeta(p.labels)
	if len(params) > 0 {
		b, err := json.Marshal(params)
		if err != nil {
			return nil, cfapi.Usagef("key parameters: %v", err)
		}
		raw := json.RawMessage(b)
		create.Parameters = &raw
		// remembered on the key: real BTP does not give them back (90007),
		// and a rotation creates the next key with them
		if len(b) <= maxAnnotation {
			if create.Metadata == nil {
				create.Metadata = &resource.Metadata{}
			}
			rec := string(b)
			create.Metadata.Annotations = map[string]*string{AnnotationKeyParameters: &rec}
		}
	}
	jobGUID, _, err := p.s.CF.ServiceCredentialBindings.Create(ctx, create)
	switch {
	case cfapi.IsNameTaken(err):
		p.rep.Info("Service key " + name + " appeared meanwhile; converging on it.")
		return nil, errRaced
	case errors.Is(err, cfapi.ErrResponseLost):
		p.rep.Info("The answer to creating service key " + name + " was lost; looking it up.")
		return nil, fmt.Errorf("%w: %w", errLost, err)
	case err != nil:
		return nil, cfapi.Classify("create service key "+quote(name)+" for service instance "+quote(inst.Name), err)
	}
	if noWait {
		p.rep.Done()
		return &resource.ServiceCredentialBinding{Name: &name, LastOperation: resource.LastOperation{Type: "create", State: "in progress"}}, nil
	}
	out, err := p.s.Await(ctx, cfapi.Op{Job: jobGUID, What: "create service key " + quote(name), Kind: cfapi.KeyOp,
		Scope: inst.GUID, Name: name, Warn: p.warn})
	if err != nil {
		return nil, cfapi.TimeoutOr(err, "service key "+quote(name), "its creation is still in progress")
	}
	p.rep.Done()
	guid := out.GUID
	if guid == "" {
		keys, err := p.s.KeysOf(ctx, inst.GUID)
		if err != nil {
			return nil, err
		}
		k := cfapi.PickKey(keys, name)
		if k == nil {
			return nil, fmt.Errorf("service key %q vanished after its creation", name)
		}
		return k, nil
	}
	return &resource.ServiceCredentialBinding{Name: &name, Resource: resource.Resource{GUID: guid},
		LastOperation: resource.LastOperation{Type: "create", State: "succeeded"}}, nil
}

func (p *Provisioner) deleteKey(ctx context.Context, key *resource.ServiceCredentialBinding, instName string) error {
	name := cfapi.KeyName(key, key.GUID)
	if p.dryRun {
		p.would(fmt.Sprintf("delete key %s of service instance %s", name, instName))
		return nil
	}
	p.rep.Step(fmt.Sprintf("Deleting key %s for service instance %s as %s", name, instName, p.s.User))
	jobGUID, err := p.s.CF.ServiceCredentialBindings.Delete(ctx, key.GUID)
	if cfapi.IsCode(err, cfapi.CodeResourceNotFound) {
		p.rep.Done()
		return nil
	}
	if cfapi.IsInProgress(err) {
		if _, err := p.s.WaitKey(ctx, key.GUID); err != nil {
			return cfapi.TimeoutOr(err, "service key "+quote(name), "an operation on it is in progress")
		}
		return p.deleteKey(ctx, key, instName)
	}
	if errors.Is(err, cfapi.ErrResponseLost) {
		k, werr := p.s.WaitKey(ctx, key.GUID)
		if werr != nil {
			return werr
		}
		if k == nil {
			p.rep.Done()
			return nil
		}
		return p.deleteKey(ctx, key, instName)
	}
	if err != nil {
		return cfapi.Classify("delete service key "+quote(name), err)
	}
	if jobGUID != "" {
		scope := ""
		if r := key.Relationships.ServiceInstance; r != nil && r.Data != nil {
			scope = r.Data.GUID
		}
		if _, err := p.s.Await(ctx, cfapi.Op{Job: jobGUID, What: "delete service key " + quote(name), Kind: cfapi.KeyOp,
			Scope: scope, Name: name, Gone: true, Warn: p.warn}); err != nil {
			return cfapi.TimeoutOr(err, "service key "+quote(name), "its deletion is still in progress")
		}
	}
	p.rep.Done()
	return nil
}

// fetchAndWrite reads a key's credentials and writes the credentials file.
func (p *Provisioner) fetchAndWrite(ctx context.Context, key *resource.ServiceCredentialBinding, out credfile.Output, res *Result) error {
	if p.dryRun && key.GUID == "" {
		// a key a dry run did not create: its file would be written
		if out.Path != "" {
			res.File, res.FileAction = out.Path, Created
			if _, err := os.Stat(out.Path); err == nil {
				res.FileAction = Updated
			}
			p.would("write credentials to " + out.Path)
		}
		return nil
	}
	det, err := p.s.CF.ServiceCredentialBindings.GetDetails(ctx, key.GUID)
	if err != nil {
		return cfapi.Classify("read credentials of service key "+quote(cfapi.KeyName(key, "")), err)
	}
	p.secrets(det.Credentials)
	return p.writeCreds(det.Credentials, out, res)
}

// writeCreds writes credentials to the file (and, for pem, its .crt/.key).
func (p *Provisioner) writeCreds(creds map[string]any, out credfile.Output, res *Result) error {
	res.creds = creds
	res.ClientID, _ = creds["clientid"].(string)
	res.URL, _ = creds["url"].(string)
	if out.Path == "" {
		return nil
	}
	if out.Instance == "" {
		out.Instance = res.Instance.Name
	}
	out.Offering, out.Plan = cmp.Or(out.Offering, res.Instance.Offering), cmp.Or(out.Plan, res.Instance.Plan)
	data, err := credfile.Render(creds, out)
	if err != nil {
		return err
	}
	var extra map[string][]byte
	if out.Format == credfile.FormatPEM {
		if extra, err = credfile.PEMFiles(creds, out.Path); err != nil {
			return err
		}
	}
	res.File = out.Path
	if !p.dryRun {
		for _, tmp := range credfile.RemoveStaleTemps(out.Path, p.s.Clock().Now()) {
			p.rep.Info("Removed " + tmp + ", left by a write that was killed midway.")
		}
	}
	prev, err := os.ReadFile(out.Path)
	if err == nil && credfile.Shared(out.Format) {
		// the file holds other services or environments: change only ours
		if data, err = credfile.Merge(prev, data, out); err != nil {
			return err
		}
	}
	switch {
	case err == nil && string(prev) == string(data):
		res.FileAction = Unchanged
	case err == nil:
		res.FileAction = Updated
	default:
		res.FileAction = Created
	}
	if p.dryRun {
		if res.FileAction != Unchanged {
			p.would("write credentials to " + out.Path)
		}
		return nil
	}
	if res.FileAction != Unchanged {
		p.rep.Step("Writing credentials to " + out.Path)
		if err := credfile.WriteFileAtomic(out.Path, data); err != nil {
			return err
		}
		p.rep.Done()
	} else if err := p.tighten(out.Path, res); err != nil {
		return err
	}
	for path, b := range extra {
		if prev, err := os.ReadFile(path); err == nil && string(prev) == string(b) {
			if err := p.tighten(path, res); err != nil {
				return err
			}
		} else if err := credfile.WriteFileAtomic(path, b); err != nil {
			return err
		}
		res.ExtraFiles = append(res.ExtraFiles, path)
	}
	sort.Strings(res.ExtraFiles)
	return nil
}

// verify proves that the credentials work by getting a token with them.
func (p *Provisioner) verify(ctx context.Context, res *Result) error {
	if !p.verifyOn || res.creds == nil || p.dryRun {
		return nil
	}
	p.rep.Step("Verifying the credentials: getting a token from " + cmp.Or(str(res.creds, "certurl"), str(res.creds, "url")))
	tok, err := xsuaa.FetchToken(ctx, xsuaa.TokenRequest{Creds: res.creds}, p.tokenOpts)
	if err != nil {
		var refused *xsuaa.RefusedError
		if errors.As(err, &refused) {
			return &brokenKeyError{err: err, instance: res.Instance.Name}
		}
		return err
	}
	p.rep.Done()
	res.Token = tok
	return nil
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// brokenKeyError: freshly written credentials were refused by the token
// endpoint. It stays an authentication failure (the inner error says so).
type brokenKeyError struct {
	err      error
	instance string
}

func (e *brokenKeyError) Error() string { return "the new credentials do not work: " + e.err.Error() }
func (e *brokenKeyError) Unwrap() error { return e.err }

// Hint is what to do about it.
func (e *brokenKeyError) Hint() remedy.Remedy {
	return remedy.Remedy{Action: remedy.ReplaceBrokenKey, Instance: e.instance, Note: "the file was written; the key is broken at the broker"}
}

// tighten sets an unchanged file that others can read to 0600, and says so.
func (p *Provisioner) tighten(path string, res *Result) error {
	old, changed, err := credfile.Tighten(path)
	if err != nil || !changed {
		return err
	}
	w := fmt.Sprintf("%s had mode %04o; set it to 0600 (credentials are for the owner only)", path, old)
	p.rep.Warn(w)
	res.Warnings = append(res.Warnings, w)
	return nil
}
