package provision

import (
	"context"

	"github.com/cloudfoundry/go-cfclient/v3/resource"

	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/credfile"
)

// Observation is what a plan saw of an instance, so that applying does not
// look it up again: the instance (nil: absent) and, when ParamsRead, its
// parameters (nil: the offering does not let them be read).
type Observation struct {
	Instance   *resource.ServiceInstance
	Params     map[string]any
	ParamsRead bool
}

// The methods below are the engine's API for plan/apply (package apply):
// the same steps up, down and rotate take, on resources a plan resolved.

// EnsureInstance creates, recreates, waits for or updates the instance of
// req in t as up does; req.Observed spares the first lookup.
func (p *Provisioner) EnsureInstance(ctx context.Context, t cfapi.Target, plan cfapi.Plan, req UpRequest) (*resource.ServiceInstance, error) {
	inst, _, err := p.ensureInstance(ctx, t, plan, req)
	return inst, err
}

// DeleteInstance deletes an instance (with its keys) and waits.
func (p *Provisioner) DeleteInstance(ctx context.Context, inst *resource.ServiceInstance) error {
	return p.deleteInstance(ctx, inst, false)
}

// EnsureKey returns the instance's key name, creating it with params when
// absent; fresh says the instance is new, so it has no keys to look at.
func (p *Provisioner) EnsureKey(ctx context.Context, inst *resource.ServiceInstance, name string, params map[string]any, fresh bool) (*resource.ServiceCredentialBinding, error) {
	key, _, err := p.ensureKey(ctx, inst, name, params, fresh, false)
	return key, err
}

// DeleteKey deletes a key and waits.
func (p *Provisioner) DeleteKey(ctx context.Context, key *resource.ServiceCredentialBinding, instance string) error {
	return p.deleteKey(ctx, key, instance)
}

// RotateKey rotates req.Key among the instance's keys, as Rotate does.
func (p *Provisioner) RotateKey(ctx context.Context, t cfapi.Target, inst *resource.ServiceInstance, keys []*resource.ServiceCredentialBinding, req RotateRequest) (*RotateResult, error) {
	return p.rotate(ctx, t, inst, keys, req)
}

// WriteCredentials writes the key's credentials to out (reading them when
// creds is nil) and verifies them when the provisioner does.
func (p *Provisioner) WriteCredentials(ctx context.Context, key *resource.ServiceCredentialBinding, creds map[string]any, out credfile.Output) error {
	r := &Result{Instance: InstanceResult{Name: out.Instance, Offering: out.Offering, Plan: out.Plan}}
	var err error
	if creds != nil {
		p.secrets(creds)
		err = p.writeCreds(creds, out, r)
	} else {
		err = p.fetchAndWrite(ctx, key, out, r)
	}
	if err != nil {
		return err
	}
	return p.verify(ctx, r)
}
