package apply

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/cloudfoundry/go-cfclient/v3/resource"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/spec"
)

// Apply converges the landscape to the spec: spaces, then roles, then
// each instance with its keys and files, instances in parallel (bounded by
// Parallel). One failing item does not stop independent ones; the result
// says what failed. It returns an error only when planning fails.
func (w *Runner) Apply(ctx context.Context, s *spec.Spec, o Options) (*Result, error) {
	w = w.withFleet(ctx)
	res, st, err := w.plan(ctx, s, o)
	if err != nil {
		return nil, err
	}
	if o.Expect != nil {
		if err := o.Expect(res); err != nil {
			return nil, err
		}
	}
	labels := st.specLabels()
	// Spaces first: instances need them.
	for _, c := range res.Changes {
		if c.Kind == "space" && c.Action == ActCreate {
			w.run(c, func() error { return w.createSpace(ctx, st, c.space.Name, labels) })
		}
	}
	var roles, groups []*Change
	var order []string
	byInst := map[string][]*Change{}
	for _, c := range res.Changes {
		switch {
		case c.Kind == "role" && c.Action == ActCreate:
			roles = append(roles, c)
		case c.inst != nil && c.Action != ActDelete:
			addr := instAddr(c.inst.Space, c.inst.Name)
			if byInst[addr] == nil {
				order = append(order, addr)
			}
			byInst[addr] = append(byInst[addr], c)
		case c.Action == ActDelete:
			groups = append(groups, c)
		}
	}
	w.workers(ctx, o.Parallel, len(roles), nil, func(q *Runner, i int) {
		c := roles[i]
		q.run(c, func() error { return q.createRole(ctx, st, c.space.Name, c.role) })
	})
	w.inWaves(ctx, o.Parallel, order, byInst, func(q *Runner, addr string) {
		q.applyInstance(ctx, st, byInst[addr], labels)
	})
	w.workers(ctx, o.Parallel, len(groups), func(i int) string { return itemPrefix(groups[i].Address) }, func(q *Runner, i int) {
		c := groups[i]
		eng := q.engine(labels)
		switch c.Kind {
		case "instance":
			q.run(c, func() error { return eng.DeleteInstance(ctx, c.cur) })
		case "key":
			q.run(c, func() error { return eng.DeleteKey(ctx, c.curKey, c.inst.Name) })
		}
	})
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.summarize()
	return res, nil
}

// applyInstance runs an instance's changes in order: the instance, then its
// keys, then their files. After a failure the rest is skipped.
func (w *Runner) applyInstance(ctx context.Context, st *planState, cs []*Change, labels map[string]string) {
	ic := cs[0]
	in := ic.inst
	changed := false
	for _, c := range cs {
		changed = changed || c.Changed()
	}
	if !changed {
		// The plan found nothing to do: no request at all.
		for _, c := range cs {
			c.Result = "unchanged"
		}
		return
	}
	if ic.Action == ActError {
		ic.Result, ic.Error = "failed", ic.Reason
		skip(cs[1:], "the instance failed")
		return
	}
	st.mu.Lock()
	sp := st.spaces[strings.ToLower(in.Space)]
	st.mu.Unlock()
	if sp == nil {
		ic.Result, ic.Error = "failed", "space "+strconv.Quote(in.Space)+" is missing"
		skip(cs[1:], "the instance failed")
		return
	}
	t := cfapi.Target{OrgName: st.orgName, OrgGUID: st.orgGUID, SpaceName: sp.Name, SpaceGUID: sp.GUID}
	eng := w.engine(labels)
	var inst *resource.ServiceInstance
	w.run(ic, func() error {
		plan, err := w.cachedPlan(ctx, st, t, in)
		if err != nil {
			return err
		}
		// What the plan saw is where converging starts: no second lookup.
		seen := &provision.Observation{Instance: ic.cur, Params: ic.params, ParamsRead: ic.paramsRead}
		switch ic.Action {
		case ActRecreate:
			if ic.cur != nil {
				if err := eng.DeleteInstance(ctx, ic.cur); err != nil {
					return err
				}
			}
			seen = &provision.Observation{}
		case ActCreate:
			seen = &provision.Observation{}
		case ActWait:
			seen = nil // it changes: look again after the wait
		case ActAdopt:
			w.rep.Info("Adopting service instance " + in.Name + " (labelling it " + spec.OwnerLabel + "=" + st.spec.Metadata.Name + ")")
			tags := ic.cur.Tags
			if tags == nil {
				tags = []string{}
			}
			if _, _, err := w.s.CF.ServiceInstances.UpdateManaged(ctx, ic.cur.GUID, &resource.ServiceInstanceManagedUpdate{Metadata: cfapi.LabelsMeta(labels), Tags: tags}); err != nil {
				return cfapi.Classify("label service instance "+strconv.Quote(in.Name), err)
			}
		}
		req := provision.UpRequest{Ref: provision.Ref{Org: st.orgName, Space: sp.Name, Instance: in.Name},
			Offering: in.Offering, Plan: in.Plan, Broker: in.Broker, Params: in.Descriptor, Tags: in.Tags, Observed: seen}
		if !in.DescriptorGiven && ic.cur != nil && ic.Action != ActRecreate {
			req.Params = nil // nothing asked: an existing descriptor stays as it is
		}
		inst, err = eng.EnsureInstance(ctx, t, plan, req)
		return err
	})
	if ic.Result == "failed" {
		skip(cs[1:], "the instance failed")
		return
	}
	for i := 1; i < len(cs); i++ {
		kc := cs[i]
		if kc.Kind != "key" {
			continue
		}
		var fc *Change
		if i+1 < len(cs) && cs[i+1].Kind == "file" && cs[i+1].key == kc.key {
			fc = cs[i+1]
		}
		k := kc.key
		var key *resource.ServiceCredentialBinding
		w.run(kc, func() error {
			switch kc.Action {
			case ActRotate:
				// the spec's key parameters, else the record on the old key
				rr, err := eng.RotateKey(ctx, t, inst, kc.keys, provision.RotateRequest{Ref: provision.Ref{Org: st.orgName, Space: sp.Name, Instance: in.Name}, Key: k.Name,
					KeyParams: k.Parameters, Out: specOutput(k, in)})
				if err != nil {
					return err
				}
				if fc != nil {
					fc.Result = "ok"
				}
				key = &resource.ServiceCredentialBinding{Name: &rr.NewKey.Name, Resource: resource.Resource{GUID: rr.NewKey.GUID}}
				return nil
			case ActRecreate:
				if kc.curKey != nil {
					if err := eng.DeleteKey(ctx, kc.curKey, in.Name); err != nil {
						return err
					}
				}
			}
			fresh := ic.Action == ActCreate || ic.Action == ActRecreate
			var err error
			key, err = eng.EnsureKey(ctx, inst, k.Name, k.Parameters, fresh)
			return err
		})
		if fc == nil {
			continue
		}
		if kc.Result == "failed" {
			skip([]*Change{fc}, "the key failed")
			continue
		}
		if fc.Result == "ok" {
			continue
		}
		if !fc.Changed() && !kc.Changed() {
			fc.Result = "unchanged"
			continue
		}
		w.run(fc, func() error {
			var creds map[string]any
			if !kc.Changed() {
				creds = fc.creds // the plan read them already (nil: read now)
			}
			return eng.WriteCredentials(ctx, key, creds, specOutput(k, in))
		})
	}
}

// inWaves applies the instances in order of their dependencies (spec
// Instance.After: an IAS instance after the XSUAA instances it is joined to
// and the instances it consumes), each wave in parallel. An instance whose
// dependency failed is skipped.
func (w *Runner) inWaves(ctx context.Context, parallel int, order []string, byInst map[string][]*Change, f func(q *Runner, addr string)) {
	deps := map[string][]string{}
	for _, a := range order {
		in := byInst[a][0].inst
		for _, d := range in.After {
			if da := instAddr(in.Space, d); byInst[da] != nil {
				deps[a] = append(deps[a], da)
			}
		}
	}
	done, bad := map[string]bool{}, map[string]string{}
	for remaining := order; len(remaining) > 0 && ctx.Err() == nil; {
		var wave, rest []string
		for _, a := range remaining {
			ready := true
			for _, d := range deps[a] {
				ready = ready && done[d]
			}
			if ready {
				wave = append(wave, a)
			} else {
				rest = append(rest, a)
			}
		}
		if len(wave) == 0 {
			wave, rest = rest, nil // the spec refuses cycles; never wait forever
		}
		w.workers(ctx, parallel, len(wave), func(i int) string { return itemPrefix(wave[i]) }, func(q *Runner, i int) {
			a := wave[i]
			for _, d := range deps[a] {
				if why, failed := bad[d]; failed {
					skip(byInst[a], strings.TrimPrefix(d, "instance ")+" "+why)
					return
				}
			}
			f(q, a)
		})
		for _, a := range wave {
			done[a] = true
			if r := byInst[a][0].Result; r == "failed" || r == "skipped" {
				bad[a] = map[string]string{"failed": "failed", "skipped": "was skipped"}[r]
			}
		}
		remaining = rest
	}
}

func skip(cs []*Change, why string) {
	for _, c := range cs {
		c.Result, c.Error = "skipped", why
	}
}

// planEntry is a plan resolved once per run, however many workers ask for
// it at the same time.
type planEntry struct {
	once sync.Once
	plan cfapi.Plan
	err  error
}

func (w *Runner) cachedPlan(ctx context.Context, st *planState, t cfapi.Target, in *spec.Instance) (cfapi.Plan, error) {
	id := t.SpaceGUID + "|" + in.Offering + "|" + in.Plan + "|" + in.Broker
	st.mu.Lock()
	e := st.plans[id]
	if e == nil {
		e = &planEntry{}
		st.plans[id] = e
	}
	st.mu.Unlock()
	e.once.Do(func() { e.plan, e.err = w.s.ResolvePlan(ctx, t, in.Offering, in.Plan, in.Broker) })
	return e.plan, e.err
}
