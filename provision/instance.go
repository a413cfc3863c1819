package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
	"github.com/xsprov/xsprov/provision/cfapi"
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
	params, err := json.Marshal(req.Params)
	if err != nil {
		return nil, cfapi.Usagef("parameters: %v", err)
	}
	raw := json.RawMessage(params)
	verb := "Creating"
	if action == Recreated {
		verb = "Recreating"
	}
	p.rep.Step(fmt.Sprintf("%s service instance %s in org %s / space %s as %s", verb, req.Instance, t.OrgName, t.SpaceName, p.s.User))
	jobGUID, err := p.s.CF.ServiceInstances.CreateManaged(ctx, &resource.ServiceInstanceManagedCreate{
		Type: "managed", Name: req.Instance, Parameters: &raw, Tags: req.Tags, Metadata: cfapi.LabelsMeta(p.labels),
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
	job, err := p.s.WaitJob(ctx, jobGUID, "create service instance "+quote(req.Instance), p.warn)
	if err != nil {
		return nil, cfapi.TimeoutOr(err, "service instance "+quote(req.Instance), "its creation is still in progress")
	}
	p.rep.Done()
	guid := cfapi.JobResourceGUID(job, "service_instances")
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

// converge compares the instance's parameters with the desired ones and
// applies an update when they differ.
// seen, when not nil, is what a plan read of the instance, used instead of
// reading the parameters again.
func (p *Provisioner) converge(ctx context.Context, t cfapi.Target, inst *resource.ServiceInstance, req UpRequest, seen *Observation) (*resource.ServiceInstance, bool, error) {
	var current map[string]any
	if seen != nil && seen.ParamsRead {
		current = seen.Params
	} else {
		var err error
		if current, err = p.s.InstanceParams(ctx, inst.GUID); err != nil {
			return nil, false, err
		}
	}
	if current == nil {
		p.rep.Info("The offering does not let Cloud Foundry read the instance's parameters; they were not compared, and new ones are not applied in place.")
		return inst, false, nil
	}
	desired := req.Params
	diff := xssec.Diff(current, desired)
	if len(diff) == 0 && !(inst.LastOperation.Type == "update" && inst.LastOperation.State == "failed") {
		return inst, false, nil
	}
	if imm := xssec.ImmutableChanges(current, desired); len(imm) > 0 {
		r := remedy.Remedy{Action: remedy.Recreate, Instance: req.Instance}
		for _, d := range mutable(diff) {
			r.Changes = append(r.Changes, d.String())
		}
		return nil, false, remedy.With(fmt.Errorf("service instance %q cannot be updated in place: the broker cannot change %s (have %s, want %s)", req.Instance, xssec.JoinAnd(imm), xssec.DescribeFields(current, imm), xssec.DescribeFields(desired, imm)), r)
	}
	p.rep.Info("The broker applies these changes in place:")
	for _, d := range diff {
		p.rep.Info("  " + d.String())
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
	jobGUID, _, err := p.s.CF.ServiceInstances.UpdateManaged(ctx, inst.GUID, &resource.ServiceInstanceManagedUpdate{Parameters: &rm, Tags: tags})
	if cfapi.IsInProgress(err) || errors.Is(err, cfapi.ErrResponseLost) {
		// Someone else is changing it (or our PATCH went through unseen):
		// wait for that, then compare again on the next run of the loop.
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
	if _, err := p.s.WaitJob(ctx, jobGUID, "update service instance "+quote(req.Instance), p.warn); err != nil {
		return nil, false, cfapi.TimeoutOr(err, "service instance "+quote(req.Instance), "its update is still in progress")
	}
	p.rep.Done()
	inst.LastOperation = resource.LastOperation{Type: "update", State: "succeeded"}
	return inst, true, nil
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
		p.rep.Step(fmt.Sprintf("Deleting service instance %s as %s", inst.Name, p.s.User))
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
			if _, err := p.s.WaitJob(ctx, jobGUID, "delete service instance "+quote(inst.Name), p.warn); err != nil {
				return cfapi.TimeoutOr(err, "service instance "+quote(inst.Name), "its deletion is still in progress")
			}
		}
		p.rep.Done()
		return nil
	}
	return fmt.Errorf("service instance %q is busy with other operations; try again later", inst.Name)
}
