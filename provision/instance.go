package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/offering"
	"github.com/xsprov/xsprov/provision/remedy"
	"github.com/xsprov/xsprov/provision/xssec"
)

// ensureInstance converges the instance: create, recreate a failed one, wait
// for one that is busy, or update it in place. req.Observed, when set, is
// used instead of the first lookup.
func (p *Provisioner) ensureInstance(ctx context.Context, t cfapi.Target, plan cfapi.Plan, req UpRequest) (*resource.ServiceInstance, Action, error) {
	seen := req.Observed
	var lost error
	for attempt := 0; attempt < 3; attempt++ {
		var inst *resource.ServiceInstance
		if seen != nil {
			inst = seen.Instance
		} else {
			var err error
			if inst, err = p.s.FindInstance(ctx, t, req.Instance); err != nil {
				return nil, "", err
			}
		}
		pre := seen
		seen = nil
		if inst == nil {
			si, err := p.createInstance(ctx, t, plan, req, Created)
			if again(err, &lost) {
				continue
			}
			return si, Created, err
		}
		if inst.Relationships.ServicePlan.Data.GUID != plan.GUID {
			return nil, "", remedy.With(fmt.Errorf("service instance %q exists with another service plan than %s/%s", req.Instance, plan.OfferingName, plan.Name),
				remedy.Remedy{Action: remedy.OtherPlan, Instance: req.Instance})
		}
		lo := inst.LastOperation
		switch {
		case lo.Type == "create" && lo.State == "failed":
			p.rep.Info(fmt.Sprintf("Service instance %s exists but its creation failed (%s); creating it again.", req.Instance, lo.Description))
			si, err := p.createInstance(ctx, t, plan, req, Recreated)
			if again(err, &lost) {
				continue
			}
			return si, Recreated, err
		case cfapi.OpBusy(lo):
			if req.NoWait {
				return inst, Unchanged, nil
			}
			p.rep.Step(fmt.Sprintf("Waiting for the %s of service instance %s to finish", lo.Type, req.Instance))
			if _, err := p.s.WaitInstance(ctx, inst.GUID); err != nil {
				return nil, "", cfapi.TimeoutOr(err, "service instance "+quote(req.Instance), "its "+lo.Type+" is still in progress")
			}
			p.rep.Done()
			continue // decide again on the settled state
		}
		p.rep.Info(fmt.Sprintf("Service instance %s already exists.", req.Instance))
		si, changed, err := p.converge(ctx, t, inst, req, pre)
		if err != nil {
			return nil, "", err
		}
		if changed {
			return si, Updated, nil
		}
		return si, Unchanged, nil
	}
	return nil, "", settleError("service instance", req.Instance, lost)
}

// again tells whether a create should be decided again: its name was taken
// meanwhile, or its answer was lost (remembered in lost).
func again(err error, lost *error) bool {
	if errors.Is(err, errLost) {
		*lost = err
		return true
	}
	return errors.Is(err, errRaced)
}

// settleError says why a resource did not settle in three rounds: lost
// answers, or other runs changing it.
func settleError(kind, name string, lost error) error {
	if lost != nil {
		return fmt.Errorf("%s %q: the API's answers to our requests were lost again and again: %w", kind, name, lost)
	}
	return fmt.Errorf("%s %q keeps changing under us; another run is working on it", kind, name)
}

func (p *Provisioner) createInstance(ctx context.Context, t cfapi.Target, plan cfapi.Plan, req UpRequest, action Action) (*resource.ServiceInstance, error) {
	desired, err := newDescriptor(req)
	if err != nil {
		return nil, err
	}
	params, err := json.Marshal(desired)
	if err != nil {
		return nil, cfapi.Usagef("parameters: %v", err)
	}
	raw := json.RawMessage(params)
	verb := "Creating"
	if action == Recreated {
		verb = "Recreating"
	}
	if p.dryRun {
		p.would(fmt.Sprintf("%s service instance %s in org %s / space %s", map[Action]string{Created: "create", Recreated: "recreate"}[action], req.Instance, t.OrgName, t.SpaceName))
		return &resource.ServiceInstance{Name: req.Instance, LastOperation: resource.LastOperation{Type: "create", State: "dry run"}}, nil
	}
	p.rep.Step(fmt.Sprintf("%s service instance %s in org %s / space %s as %s", verb, req.Instance, t.OrgName, t.SpaceName, p.s.User))
	jobGUID, err := p.s.CF.ServiceInstances.CreateManaged(ctx, &resource.ServiceInstanceManagedCreate{
		Type: "managed", Name: req.Instance, Parameters: &raw, Tags: req.Tags, Metadata: p.recordMeta(desired, ""),
		Relationships: resource.ServiceInstanceRelationships{
			Space:       &resource.ToOneRelationship{Data: &resource.Relationship{GUID: t.SpaceGUID}},
			ServicePlan: &resource.ToOneRelationship{Data: &resource.Relationship{GUID: plan.GUID}},
		},
	})
	switch {
	case cfapi.IsNameTaken(err):
		p.rep.Info("Service instance " + req.Instance + " appeared meanwhile; converging on it.")
		return nil, errRaced
	case errors.Is(err, cfapi.ErrResponseLost):
		// Our create may have gone through: look again instead of creating
		// twice.
		p.rep.Info("The answer to creating service instance " + req.Instance + " was lost; looking it up.")
		return nil, fmt.Errorf("%w: %w", errLost, err)
	case err != nil:
		return nil, cfapi.Classify("create service instance "+quote(req.Instance), err)
	}
	if req.NoWait {
		p.rep.Done()
		return &resource.ServiceInstance{Name: req.Instance, LastOperation: resource.LastOperation{Type: "create", State: "in progress"}}, nil
	}
	out, err := p.s.Await(ctx, cfapi.Op{Job: jobGUID, What: "create service instance " + quote(req.Instance), Kind: cfapi.InstanceOp,
		Scope: t.SpaceGUID, Name: req.Instance, Warn: p.warn})
	if err != nil {
		return nil, cfapi.TimeoutOr(err, "service instance "+quote(req.Instance), "its creation is still in progress")
	}
	p.rep.Done()
	guid := out.GUID
	if guid == "" {
		inst, err := p.s.FindInstance(ctx, t, req.Instance)
		if err != nil || inst == nil {
			return nil, fmt.Errorf("service instance %q vanished after its creation", req.Instance)
		}
		return inst, nil
	}
	return &resource.ServiceInstance{Name: req.Instance, Resource: resource.Resource{GUID: guid},
		LastOperation: resource.LastOperation{Type: "create", State: "succeeded"},
		Relationships: resource.ServiceInstanceRelationships{ServicePlan: &resource.ToOneRelationship{Data: &resource.Relationship{GUID: plan.GUID}}}}, nil
}

// converge brings an existing instance to what the user asked for. The
// desired descriptor is a base plus the overrides: the whole descriptor given
// (Params), else what the instance holds (xsprov's record, or the parameters
// read back where the offering allows it). Nothing asked: nothing changes.
// An update that removes or replaces something, or that replaces a
// descriptor nobody can read, needs consent. seen, when not nil, is what a
// plan read of the instance.
func (p *Provisioner) converge(ctx context.Context, t cfapi.Target, inst *resource.ServiceInstance, req UpRequest, seen *Observation) (*resource.ServiceInstance, bool, error) {
	if req.Params == nil && req.Overrides.Empty() {
		// "give me credentials for this instance": its descriptor stays
		p.rep.Info("Its descriptor is left as it is (no descriptor and no fields of one were given).")
		return inst, false, nil
	}
	current, err := p.current(ctx, inst, seen)
	if err != nil {
		return nil, false, err
	}
	desired := req.Params
	prof := offering.For(req.Offering)
	switch {
	case desired != nil && !req.XSAppNameGiven && current != nil && prof.Named:
		desired = xssec.Overrides{XSAppName: xssec.Field(current, "xsappname")}.Apply(desired)
	case desired == nil && current == nil:
		return nil, false, remedy.With(&cfapi.UsageError{Msg: fmt.Sprintf(
			"service instance %q: its descriptor cannot be read back and xsprov has no record of it, so single fields cannot be merged into it; nothing was sent", req.Instance)},
			remedy.Remedy{Action: remedy.GiveWholeDescriptor, Instance: req.Instance})
	case desired == nil:
		desired = req.Overrides.Apply(current)
		if prof.Validate == nil {
			break
		}
		if errs := prof.Validate(desired).Errors(); len(errs) > 0 {
			return nil, false, &xssec.InvalidError{Source: "the instance's descriptor with the fields given", Problems: errs}
		}
	}
	if current == nil {
		if r, ok := RecordOf(inst); ok && !r.Stale && r.matches(desired) {
			return inst, false, nil
		}
		p.rep.Info("The offering does not let Cloud Foundry read the instance's parameters and xsprov has no current record of them: the update replaces them as a whole.")
		if err := p.ask(Consent{Instance: req.Instance, Blind: true, Changes: xssec.Diff(map[string]any{}, desired)}); err != nil {
			return nil, false, err
		}
		return p.update(ctx, t, inst, req, desired)
	}
	diff := xssec.Diff(current, desired)
	if len(diff) == 0 && !(inst.LastOperation.Type == "update" && inst.LastOperation.State == "failed") {
		return inst, false, nil
	}
	if imm := prof.Immutable(current, desired); len(imm) > 0 {
		r := remedy.Remedy{Action: remedy.Recreate, Instance: req.Instance, Keep: map[string]string{}}
		for _, f := range imm {
			r.Keep[f] = xssec.Field(current, f)
			if f == "tenant-mode" {
				r.Keep[f] = xssec.TenantMode(current)
			}
		}
		for _, d := range mutable(diff) {
			r.Changes = append(r.Changes, d.String())
		}
		return nil, false, remedy.With(fmt.Errorf("service instance %q cannot be updated in place: the broker cannot change %s (have %s, want %s)", req.Instance, xssec.JoinAnd(imm), xssec.DescribeFields(current, imm), xssec.DescribeFields(desired, imm)), r)
	}
	if xssec.Removes(diff) {
		if err := p.ask(Consent{Instance: req.Instance, Changes: diff}); err != nil {
			return nil, false, err
		}
	}
	p.rep.Info("The broker applies these changes in place:")
	for _, d := range diff {
		p.rep.Info("  " + d.String())
	}
	return p.update(ctx, t, inst, req, desired)
}

// current is the instance's descriptor as far as it can be known: what a
// plan read, xsprov's record when no one else changed the instance since, or
// the parameters read back where the offering allows; nil when unknown.
func (p *Provisioner) current(ctx context.Context, inst *resource.ServiceInstance, seen *Observation) (map[string]any, error) {
	if seen != nil && seen.ParamsRead && seen.Params != nil {
		return seen.Params, nil
	}
	if r, ok := RecordOf(inst); ok && !r.Stale && r.Descriptor != nil {
		return r.Descriptor, nil
	}
	if seen != nil && seen.ParamsRead {
		return nil, nil // read already: the offering does not allow it
	}
	return p.s.InstanceParams(ctx, inst.GUID)
}

// update sends desired (recording it on the instance) and waits.
func (p *Provisioner) update(ctx context.Context, t cfapi.Target, inst *resource.ServiceInstance, req UpRequest, desired map[string]any) (*resource.ServiceInstance, bool, error) {
	if p.dryRun {
		p.would("update service instance " + req.Instance)
		return inst, true, nil
	}
	p.rep.Step(fmt.Sprintf("Updating service instance %s in org %s / space %s as %s", req.Instance, t.OrgName, t.SpaceName, p.s.User))
	raw, _ := json.Marshal(desired)
	rm := json.RawMessage(raw)
	tags := inst.Tags
	if req.Tags != nil {
		tags = req.Tags
	}
	if tags == nil {
		tags = []string{}
	}
	jobGUID, _, err := p.s.CF.ServiceInstances.UpdateManaged(ctx, inst.GUID, &resource.ServiceInstanceManagedUpdate{Parameters: &rm, Tags: tags, Metadata: p.recordMeta(desired, "")})
	if cfapi.IsInProgress(err) || errors.Is(err, cfapi.ErrResponseLost) {
		// Someone else is changing it (or our PATCH went through unseen):
		// wait for that, then compare again.
		si, werr := p.s.WaitInstance(ctx, inst.GUID)
		if werr != nil {
			return nil, false, cfapi.TimeoutOr(werr, "service instance "+quote(req.Instance), "an update is in progress")
		}
		if si == nil {
			return nil, false, fmt.Errorf("service instance %q was deleted while being updated", req.Instance)
		}
		return p.converge(ctx, t, si, req, nil)
	}
	if err != nil {
		return nil, false, cfapi.Classify("update service instance "+quote(req.Instance), err)
	}
	if jobGUID == "" {
		p.rep.Done()
		return inst, true, nil
	}
	if req.NoWait {
		p.rep.Done()
		inst.LastOperation = resource.LastOperation{Type: "update", State: "in progress"}
		return inst, true, nil
	}
	out, err := p.s.Await(ctx, cfapi.Op{Job: jobGUID, What: "update service instance " + quote(req.Instance), Kind: cfapi.InstanceOp,
		Scope: t.SpaceGUID, Name: req.Instance, Warn: p.warn})
	if err != nil {
		return nil, false, cfapi.TimeoutOr(err, "service instance "+quote(req.Instance), "its update is still in progress")
	}
	p.rep.Done()
	// Mark the update as xsprov's own, so that a later one by someone else
	// shows (the record is then not trusted).
	at := out.Started.UTC().Format(time.RFC3339)
	if _, _, err := p.s.CF.ServiceInstances.UpdateManaged(ctx, inst.GUID, &resource.ServiceInstanceManagedUpdate{
		Metadata: &resource.Metadata{Annotations: map[string]*string{AnnotationAppliedAt: &at}}, Tags: tags}); err != nil {
		p.rep.Warn("the update went through, but recording it on the instance failed: " + err.Error())
	}
	inst.LastOperation = resource.LastOperation{Type: "update", State: "succeeded"}
	if note := offering.For(req.Offering).Replicates; note != "" {
		p.rep.Info("Note: " + note + ".")
	}
	return inst, true, nil
}

// spaceOf is the GUID of an instance's space ("" when not known).
func spaceOf(inst *resource.ServiceInstance) string {
	if r := inst.Relationships.Space; r != nil && r.Data != nil {
		return r.Data.GUID
	}
	return ""
}

// mutable drops the entries of fields the broker cannot change in place.
func mutable(diff []xssec.DiffEntry) []xssec.DiffEntry {
	var out []xssec.DiffEntry
	for _, d := range diff {
		if d.Path != "$.xsappname" && d.Path != "$.tenant-mode" {
			out = append(out, d)
		}
	}
	return out
}

func (p *Provisioner) deleteInstance(ctx context.Context, inst *resource.ServiceInstance, noWait bool) error {
	if p.dryRun {
		p.would("delete service instance " + inst.Name + " and its keys")
		return nil
	}
	for attempt := 0; attempt < 5; attempt++ {
		if cfapi.OpBusy(inst.LastOperation) {
			p.rep.Step(fmt.Sprintf("Waiting for the %s of service instance %s to finish", inst.LastOperation.Type, inst.Name))
			si, err := p.s.WaitInstance(ctx, inst.GUID)
			if err != nil {
				return cfapi.TimeoutOr(err, "service instance "+quote(inst.Name), "its "+inst.LastOperation.Type+" is still in progress")
			}
			p.rep.Done()
			if si == nil {
				return nil
			}
			inst = si
		}
		p.rep.Step(fmt.Sprintf("Deleting service instance %s%s as %s", inst.Name, p.where(inst), p.s.User))
		jobGUID, err := p.s.CF.ServiceInstances.Delete(ctx, inst.GUID)
		switch {
		case cfapi.IsCode(err, cfapi.CodeResourceNotFound):
			p.rep.Done()
			return nil
		case cfapi.IsInProgress(err), errors.Is(err, cfapi.ErrResponseLost):
			inst.LastOperation = resource.LastOperation{Type: "delete", State: "in progress"}
			continue
		case err != nil:
			return cfapi.Classify("delete service instance "+quote(inst.Name), err)
		}
		if noWait {
			p.rep.Done()
			return nil
		}
		if jobGUID != "" {
			if _, err := p.s.Await(ctx, cfapi.Op{Job: jobGUID, What: "delete service instance " + quote(inst.Name), Kind: cfapi.InstanceOp,
				Scope: spaceOf(inst), Name: inst.Name, Gone: true, Warn: p.warn}); err != nil {
				return cfapi.TimeoutOr(err, "service instance "+quote(inst.Name), "its deletion is still in progress")
			}
		}
		p.rep.Done()
		return nil
	}
	return fmt.Errorf("service instance %q is busy with other operations; try again later", inst.Name)
}

// newDescriptor is a new instance's descriptor: the whole one given, else
// the minimal one (xsappname the instance's name) with the overrides.
func newDescriptor(req UpRequest) (map[string]any, error) {
	if req.Params != nil {
		return req.Params, nil
	}
	if prof := offering.For(req.Offering); !prof.Named {
		return prof.Minimal(req.Instance), nil
	}
	d, _, err := xssec.Build(xssec.Input{Instance: req.Instance, Overrides: req.Overrides})
	return d, err
}
