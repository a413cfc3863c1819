package apply

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/cloudfoundry/go-cfclient/v3/client"
	"github.com/cloudfoundry/go-cfclient/v3/resource"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/remedy"
	"github.com/xsprov/xsprov/provision/spec"
	"github.com/xsprov/xsprov/provision/xssec"
)

// Plan computes what applying the spec would change. It only reads.
func (w *Runner) Plan(ctx context.Context, s *spec.Spec, o Options) (*Result, error) {
	res, _, err := w.plan(ctx, s, o)
	return res, err
}

// loadOrg finds the spec's org and its spaces: what plan and destroy start
// from.
func (w *Runner) loadOrg(ctx context.Context, s *spec.Spec, o Options) (*planState, *Result, error) {
	st := &planState{spec: s, opts: o, spaces: map[string]*resource.Space{}, plans: map[string]*planEntry{}}
	oopts := client.NewOrganizationListOptions()
	oopts.Names = client.Filter{Values: []string{o.Org}}
	orgs, err := w.s.CF.Organizations.ListAll(ctx, oopts)
	if err != nil {
		return nil, nil, cfapi.Classify("look up organization "+strconv.Quote(o.Org), err)
	}
	if len(orgs) == 0 {
		return nil, nil, w.s.TargetNotFound(ctx, o.Org, "-")
	}
	st.orgName, st.orgGUID = orgs[0].Name, orgs[0].GUID
	sopts := client.NewSpaceListOptions()
	sopts.OrganizationGUIDs = client.Filter{Values: []string{st.orgGUID}}
	sopts.PerPage = 5000
	spaces, err := w.s.CF.Spaces.ListAll(ctx, sopts)
	if err != nil {
		return nil, nil, cfapi.Classify("list spaces", err)
	}
	for _, sp := range spaces {
		st.spaces[strings.ToLower(sp.Name)] = sp
	}
	return st, &Result{FormatVersion: provision.FormatVersion, Spec: s.Metadata.Name, Org: st.orgName, Changes: []*Change{}}, nil
}

func (w *Runner) plan(ctx context.Context, s *spec.Spec, o Options) (*Result, *planState, error) {
	st, res, err := w.loadOrg(ctx, s, o)
	if err != nil {
		return nil, nil, err
	}
	// Spaces and roles.
	roleSet, err := w.existingRoles(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	for i := range s.Spaces {
		sp := &s.Spaces[i]
		c := &Change{Kind: "space", Address: "space " + sp.Name, Action: ActNoop, space: sp}
		if st.spaces[strings.ToLower(sp.Name)] == nil {
			c.Action = ActCreate
		}
		res.Changes = append(res.Changes, c)
		for j := range sp.Roles {
			r := &sp.Roles[j]
			rc := &Change{Kind: "role", Address: fmt.Sprintf("role %s %s (%s) in space %s", r.Role, r.User, cmp.Or(r.Origin, "uaa"), sp.Name), Action: ActNoop, space: sp, role: r}
			if !roleSet[roleID(sp.Name, spec.SpaceRoles[r.Role], r.User, cmp.Or(r.Origin, "uaa"))] {
				rc.Action = ActCreate
			}
			res.Changes = append(res.Changes, rc)
		}
	}
	// Instances of this shard.
	var mine []*spec.Instance
	for _, in := range s.Instances {
		if spec.InShard(in.Space, in.Name, o.Shard, o.Shards) {
			mine = append(mine, in)
		}
	}
	existing, err := w.instancesIn(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	keys, err := w.keysOfMany(ctx, st, mine, existing)
	if err != nil {
		return nil, nil, err
	}
	changes := make([][]*Change, len(mine))
	// Planning only reads (an instance's parameters where a comparison
	// needs them, a key's credentials where a file exists): a few readers
	// keep up, and each worker beyond the first costs a login.
	w.workers(ctx, min(o.Parallel, planReaders), len(mine), nil, func(q *Runner, i int) {
		changes[i] = q.planInstance(ctx, st, mine[i], existing, keys)
	})
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	for _, cs := range changes {
		res.Changes = append(res.Changes, cs...)
	}
	for _, in := range mine {
		for _, x := range in.Pairs {
			res.Pairs = append(res.Pairs, Pair{IAS: instAddr(in.Space, in.Name), XSUAA: instAddr(in.Space, x)})
		}
	}
	if o.Prune {
		pr, err := w.planPrune(ctx, st)
		if err != nil {
			return nil, nil, err
		}
		res.Changes = append(res.Changes, pr...)
	}
	res.summarize()
	return res, st, nil
}

func roleID(space, typ, user, origin string) string {
	return strings.ToLower(space) + "|" + typ + "|" + user + "|" + origin
}

func (w *Runner) existingRoles(ctx context.Context, st *planState) (map[string]bool, error) {
	set := map[string]bool{}
	var guids []string
	byGUID := map[string]string{}
	for _, sp := range st.spec.Spaces {
		if cur := st.spaces[strings.ToLower(sp.Name)]; cur != nil && len(sp.Roles) > 0 {
			guids = append(guids, cur.GUID)
			byGUID[cur.GUID] = sp.Name
		}
	}
	if len(guids) == 0 {
		return set, nil
	}
	opts := client.NewRoleListOptions()
	opts.SpaceGUIDs = client.Filter{Values: guids}
	opts.PerPage = 5000
	roles, users, err := w.s.RolesWithUsers(ctx, opts)
	if err != nil {
		return nil, cfapi.Classify("list roles", err)
	}
	userByGUID := map[string]*resource.User{}
	for _, u := range users {
		userByGUID[u.GUID] = u
	}
	for _, r := range roles {
		if r.Relationships.Space.Data == nil || r.Relationships.User.Data == nil {
			continue
		}
		u := userByGUID[r.Relationships.User.Data.GUID]
		if u == nil || u.Username == nil {
			continue
		}
		origin := "uaa"
		if u.Origin != nil {
			origin = *u.Origin
		}
		set[roleID(byGUID[r.Relationships.Space.Data.GUID], r.Type, *u.Username, origin)] = true
	}
	return set, nil
}

// instancesIn lists the instances in the spec's spaces, by space/name.
func (w *Runner) instancesIn(ctx context.Context, st *planState) (map[string]*resource.ServiceInstance, error) {
	out := map[string]*resource.ServiceInstance{}
	var guids []string
	seen := map[string]bool{}
	for _, in := range st.spec.Instances {
		if sp := st.spaces[strings.ToLower(in.Space)]; sp != nil && !seen[sp.GUID] {
			seen[sp.GUID] = true
			guids = append(guids, sp.GUID)
		}
	}
	if len(guids) == 0 {
		return out, nil
	}
	opts := client.NewServiceInstanceListOptions()
	opts.SpaceGUIDs = client.Filter{Values: guids}
	opts.PerPage = 5000
	list, err := w.s.CF.ServiceInstances.ListAll(ctx, opts)
	if err != nil {
		return nil, cfapi.Classify("list service instances", err)
	}
	for _, si := range list {
		out[si.Relationships.Space.Data.GUID+"/"+si.Name] = si
	}
	return out, nil
}

// keysOfMany lists the keys of the spec's existing instances in a few
// requests, by instance GUID.
func (w *Runner) keysOfMany(ctx context.Context, st *planState, ins []*spec.Instance, existing map[string]*resource.ServiceInstance) (map[string][]*resource.ServiceCredentialBinding, error) {
	var guids []string
	for _, in := range ins {
		if sp := st.spaces[strings.ToLower(in.Space)]; sp != nil {
			if si := existing[sp.GUID+"/"+in.Name]; si != nil {
				guids = append(guids, si.GUID)
			}
		}
	}
	return w.s.KeysOfInstances(ctx, guids)
}

func (w *Runner) planInstance(ctx context.Context, st *planState, in *spec.Instance, existing map[string]*resource.ServiceInstance, keysByInst map[string][]*resource.ServiceCredentialBinding) []*Change {
	addr := instAddr(in.Space, in.Name)
	c := &Change{Kind: "instance", Address: addr, Action: ActNoop, inst: in}
	out := []*Change{c}
	sp := st.spaces[strings.ToLower(in.Space)]
	creatingSpace := false
	for _, s := range st.spec.Spaces {
		if strings.EqualFold(s.Name, in.Space) && sp == nil {
			creatingSpace = true
		}
	}
	keysFresh := func(reason string) []*Change {
		for _, k := range in.Keys {
			out = append(out, &Change{Kind: "key", Address: "key " + in.Space + "/" + in.Name + "/" + k.Name, Action: ActCreate, Reason: reason, inst: in, key: k})
			if k.Out != "" {
				out = append(out, &Change{Kind: "file", Address: "file " + k.Out, Action: fileAction(k.Out), inst: in, key: k})
			}
		}
		return out
	}
	if sp == nil {
		if creatingSpace {
			c.Action = ActCreate
			return keysFresh("")
		}
		c.Action, c.Reason = ActError, "space "+strconv.Quote(in.Space)+" does not exist in organization "+st.orgName+" and is not in the spec's spaces"
		return out
	}
	// The offering and plan as apply will resolve them (cached per space):
	// a plan no one can see, or one that two brokers offer, is an error here
	// already, not a clean plan that fails on apply.
	t := cfapi.Target{OrgName: st.orgName, OrgGUID: st.orgGUID, SpaceName: sp.Name, SpaceGUID: sp.GUID}
	if _, err := w.cachedPlan(ctx, st, t, in); err != nil {
		c.Action, c.Reason = ActError, err.Error()
		return out
	}
	// consumed-services that the spec does not create must exist: the
	// broker would refuse the instance otherwise
	for _, name := range in.Consumes {
		if existing[sp.GUID+"/"+name] == nil {
			c.Action, c.Reason = ActError, "consumed-services names "+strconv.Quote(name)+", which is neither in the spec nor in space "+sp.Name
			return out
		}
	}
	cur := existing[sp.GUID+"/"+in.Name]
	c.cur = cur
	if cur == nil {
		c.Action = ActCreate
		return keysFresh("")
	}
	owner := ownedBy(cur.Metadata)
	switch {
	case owner != "" && owner != st.spec.Metadata.Name:
		c.Action, c.Reason = ActError, "owned by spec "+strconv.Quote(owner)+", not this one"
		return out
	case owner == "" && !st.opts.Adopt:
		c.Action, c.Reason, c.Hint = ActError, "exists but is not managed by this spec (no "+spec.OwnerLabel+" label)", remedy.Adopt
		return out
	case owner == "":
		c.Action, c.Reason = ActAdopt, "label it as managed by this spec"
	}
	lo := cur.LastOperation
	switch {
	case lo.Type == "create" && lo.State == "failed":
		c.Action, c.Reason = ActRecreate, "its creation failed: "+lo.Description
		return keysFresh("")
	case cfapi.OpBusy(lo):
		// apply waits, compares the parameters again, then sees to the keys
		c.Action, c.Reason = ActWait, "an operation is in progress ("+cfapi.DescribeOp(lo)+"); apply waits and compares again"
	}
	var params map[string]any
	// Without a descriptor in the spec the instance's stays as it is,
	// unread (as `up` without parameters does).
	if c.Action != ActWait && in.DescriptorGiven {
		// xsprov's record of what it applied spares reading the parameters
		// (which real BTP does not allow anyway)
		if r, ok := provision.RecordOf(cur); ok && !r.Stale && r.Descriptor != nil {
			params = r.Descriptor
		} else {
			var err error
			if params, err = w.s.InstanceParams(ctx, cur.GUID); err != nil {
				c.Action, c.Reason = ActError, err.Error()
				return out
			}
		}
		c.params, c.paramsRead = params, true
		if params == nil {
			if r, ok := provision.RecordOf(cur); !ok || r.Stale || !r.Matches(in.Descriptor) {
				c.Action, c.Hint = ActUpdate, remedy.Confirm
				c.Reason = "its descriptor cannot be read and xsprov has no current record of it: applying replaces it"
			}
		}
	}
	if params != nil {
		diff := xssec.Diff(params, in.Descriptor)
		if imm := xssec.ImmutableChanges(params, in.Descriptor); len(imm) > 0 {
			c.Action, c.Reason, c.Diff = ActRecreate, xssec.JoinAnd(imm)+" cannot change in place ("+xssec.DescribeFields(params, imm)+" → "+xssec.DescribeFields(in.Descriptor, imm)+")", diff
			return keysFresh("")
		}
		if len(diff) > 0 {
			if c.Action == ActAdopt {
				c.Reason += ", then update it"
			} else {
				c.Action = ActUpdate
			}
			c.Diff = diff
			if xssec.Removes(diff) {
				c.Reason, c.Hint = strings.TrimPrefix(c.Reason+"; it removes or replaces parts of the descriptor", "; "), remedy.Confirm
			}
		}
	}
	// Keys of an instance that stays.
	keys := keysByInst[cur.GUID]
	now := w.s.Clock().Now()
	for _, k := range in.Keys {
		kc := &Change{Kind: "key", Address: "key " + in.Space + "/" + in.Name + "/" + k.Name, Action: ActNoop, inst: in, key: k, keys: keys}
		ck := cfapi.PickKey(keys, k.Name)
		kc.curKey = ck
		switch {
		case ck == nil:
			kc.Action = ActCreate
		case cfapi.OpBusy(ck.LastOperation):
			kc.Action, kc.Reason = ActWait, "an operation is in progress ("+cfapi.DescribeOp(ck.LastOperation)+")"
		case ck.LastOperation.State == "failed":
			kc.Action, kc.Reason = ActRecreate, "its last operation failed: "+ck.LastOperation.Description
		case k.Rotate.MaxAgeDuration() > 0 && now.Sub(ck.CreatedAt) > k.Rotate.MaxAgeDuration():
			kc.Action, kc.Reason = ActRotate, fmt.Sprintf("older than rotate.maxAge %s", k.Rotate.MaxAge)
		}
		out = append(out, kc)
		if k.Out == "" {
			continue
		}
		fc := &Change{Kind: "file", Address: "file " + k.Out, Action: ActNoop, inst: in, key: k}
		if kc.Action != ActNoop {
			fc.Action = fileAction(k.Out)
		} else if changed, reason, creds := w.fileDiffers(ctx, ck, k, in); changed {
			fc.creds = creds
			fc.Action, fc.Reason = fileAction(k.Out), reason
		}
		out = append(out, fc)
	}
	return out
}

// planReaders is the most workers a plan reads with.
const planReaders = 8

func (w *Runner) planPrune(ctx context.Context, st *planState) ([]*Change, error) {
	opts := client.NewServiceInstanceListOptions()
	opts.OrganizationGUIDs = client.Filter{Values: []string{st.orgGUID}}
	opts.LabelSel = client.LabelSelector{}
	opts.LabelSel.EqualTo(spec.OwnerLabel, st.spec.Metadata.Name)
	opts.PerPage = 5000
	list, err := w.s.CF.ServiceInstances.ListAll(ctx, opts)
	if err != nil {
		return nil, cfapi.Classify("list instances labelled "+spec.OwnerLabel+"="+st.spec.Metadata.Name, err)
	}
	spaceName := map[string]string{}
	for _, sp := range st.spaces {
		spaceName[sp.GUID] = sp.Name
	}
	var out []*Change
	for _, si := range list {
		if ownedBy(si.Metadata) != st.spec.Metadata.Name {
			continue // never touch what this spec does not own
		}
		space := spaceName[si.Relationships.Space.Data.GUID]
		if !spec.InShard(space, si.Name, st.opts.Shard, st.opts.Shards) {
			continue
		}
		inSpec := false
		for _, in := range st.spec.Instances {
			if in.Name == si.Name && strings.EqualFold(in.Space, space) {
				inSpec = true
			}
		}
		if !inSpec {
			out = append(out, &Change{Kind: "instance", Address: instAddr(space, si.Name), Action: ActDelete, Reason: "no longer in the spec", Hint: remedy.Pruned, cur: si})
		}
	}
	// Labelled keys of spec instances that the spec no longer lists.
	for _, in := range st.spec.Instances {
		sp := st.spaces[strings.ToLower(in.Space)]
		if sp == nil || !spec.InShard(in.Space, in.Name, st.opts.Shard, st.opts.Shards) {
			continue
		}
		var si *resource.ServiceInstance
		for _, x := range list {
			if x.Name == in.Name && x.Relationships.Space.Data.GUID == sp.GUID {
				si = x
			}
		}
		if si == nil {
			continue
		}
		keys, err := w.s.KeysOf(ctx, si.GUID)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if ownedBy(k.Metadata) != st.spec.Metadata.Name {
				continue
			}
			listed := false
			for _, sk := range in.Keys {
				n := cfapi.KeyName(k, "")
				if n == sk.Name || strings.HasPrefix(n, sk.Name+cfapi.RotatedSep) {
					listed = true
				}
			}
			if !listed {
				out = append(out, &Change{Kind: "key", Address: "key " + in.Space + "/" + in.Name + "/" + cfapi.KeyName(k, ""), Action: ActDelete, Reason: "no longer in the spec", Hint: remedy.Pruned, curKey: k, inst: in})
			}
		}
	}
	return out, nil
}
