// Package apply plans, applies and destroys an onboarding spec over the
// engine's API (Engine): it reads the landscape in batched lists, decides
// what to change, and carries what it observed into the apply instead of
// looking it up again.
package apply

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/cloudfoundry/go-cfclient/v3/client"
	"github.com/cloudfoundry/go-cfclient/v3/resource"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/credfile"
	"github.com/xsprov/xsprov/provision/remedy"
	"github.com/xsprov/xsprov/provision/spec"
	"github.com/xsprov/xsprov/provision/xssec"
)

// Options steer plan, apply and destroy.
type Options struct {
	Org           string
	Parallel      int
	Prune, Adopt  bool
	Shard, Shards int // 1-based shard of Shards; 0 or 1 shard means all
	DeleteSpaces  bool
}

// Actions of a plan.
const (
	ActCreate   = "create"
	ActUpdate   = "update"
	ActRecreate = "recreate"
	ActRotate   = "rotate"
	ActAdopt    = "adopt"
	ActDelete   = "delete"
	ActWait     = "wait"
	ActNoop     = "no-op"
	ActError    = "error"
)

// Change is one planned (and, after apply, attempted) change.
type Change struct {
	Kind    string            `json:"kind"` // space, role, instance, key, file
	Address string            `json:"address"`
	Action  string            `json:"action"`
	Reason  string            `json:"reason,omitempty"`
	Diff    []xssec.DiffEntry `json:"diff,omitempty"`
	Result  string            `json:"result,omitempty"` // ok, failed, skipped
	Error   string            `json:"error,omitempty"`
	// Hint is what the user can do about an error (the face words it).
	Hint remedy.Action `json:"-"`

	space  *spec.Space
	role   *spec.Role
	inst   *spec.Instance
	key    *spec.Key
	cur    *resource.ServiceInstance
	curKey *resource.ServiceCredentialBinding
	keys   []*resource.ServiceCredentialBinding // the instance's keys (rotation)
	creds  map[string]any                       // credentials the plan read for a file change
	// params the plan read (paramsRead), so the apply compares with them
	params     map[string]any
	paramsRead bool
}

// Changed tells whether the change does something.
func (c *Change) Changed() bool { return c.Action != ActNoop }

// Result is the machine-readable plan or apply report.
type Result struct {
	FormatVersion string         `json:"format_version"`
	Spec          string         `json:"spec"`
	Org           string         `json:"org"`
	Changes       []*Change      `json:"changes"`
	Summary       map[string]int `json:"summary"`
	Failed        int            `json:"failed"`
}

// HasChanges tells whether applying would change anything.
func (r *Result) HasChanges() bool {
	for _, c := range r.Changes {
		if c.Changed() {
			return true
		}
	}
	return false
}

func (r *Result) summarize() {
	r.Summary = map[string]int{}
	r.Failed = 0
	for _, c := range r.Changes {
		r.Summary[c.Action]++
		if c.Result == "failed" || (c.Result == "" && c.Action == ActError) {
			r.Failed++
		}
	}
}

// planState is what planning learnt and applying reuses.
type planState struct {
	spec    *spec.Spec
	opts    Options
	orgName string
	orgGUID string
	spaces  map[string]*resource.Space // lower-case name → space
	plans   map[string]cfapi.Plan
	mu      sync.Mutex
}

func (st *planState) specLabels() map[string]string {
	return map[string]string{spec.OwnerLabel: st.spec.Metadata.Name}
}

func ownedBy(m *resource.Metadata) string {
	if m == nil || m.Labels == nil || m.Labels[spec.OwnerLabel] == nil {
		return ""
	}
	return *m.Labels[spec.OwnerLabel]
}

func instAddr(space, name string) string { return "instance " + space + "/" + name }

// itemPrefix marks a worker's progress lines with the item it works on.
func itemPrefix(addr string) string { return "[" + strings.TrimPrefix(addr, "instance ") + "] " }

// Plan computes what applying the spec would change. It only reads.
func (w *Runner) Plan(ctx context.Context, s *spec.Spec, o Options) (*Result, error) {
	res, _, err := w.plan(ctx, s, o)
	return res, err
}

// loadOrg finds the spec's org and its spaces: what plan and destroy start
// from.
func (w *Runner) loadOrg(ctx context.Context, s *spec.Spec, o Options) (*planState, *Result, error) {
	st := &planState{spec: s, opts: o, spaces: map[string]*resource.Space{}, plans: map[string]cfapi.Plan{}}
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
	w.workers(ctx, o.Parallel, len(mine), nil, func(q *Runner, i int) {
		changes[i] = q.planInstance(ctx, st, mine[i], existing, keys)
	})
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	for _, cs := range changes {
		res.Changes = append(res.Changes, cs...)
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
	roles, users, err := w.s.CF.Roles.ListIncludeUsersAll(ctx, opts)
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
				out = append(out, &Change{Kind: "file", Address: "file " + k.Out, Action: map[bool]string{true: ActUpdate, false: ActCreate}[fileExists(k.Out)], inst: in, key: k})
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
	if c.Action != ActWait {
		var err error
		if params, err = w.s.InstanceParams(ctx, cur.GUID); err != nil {
			c.Action, c.Reason = ActError, err.Error()
			return out
		}
		c.params, c.paramsRead = params, true
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
			fc.Action = map[bool]string{true: ActUpdate, false: ActCreate}[fileExists(k.Out)]
		} else if changed, reason, creds := w.fileDiffers(ctx, ck, k, in); changed {
			fc.creds = creds
			fc.Action, fc.Reason = map[bool]string{true: ActUpdate, false: ActCreate}[fileExists(k.Out)], reason
		}
		out = append(out, fc)
	}
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// fileDiffers compares a key's credentials file with what would be written.
// It returns the credentials it read, so that apply need not read them again.
func (w *Runner) fileDiffers(ctx context.Context, k *resource.ServiceCredentialBinding, sk *spec.Key, in *spec.Instance) (bool, string, map[string]any) {
	prev, err := os.ReadFile(sk.Out)
	if err != nil {
		return true, "the file is missing", nil
	}
	det, err := w.s.CF.ServiceCredentialBindings.GetDetails(ctx, k.GUID)
	if err != nil {
		return true, "the key's credentials cannot be read: " + err.Error(), nil
	}
	want, err := credfile.Render(det.Credentials, specOutput(sk, in))
	if err != nil || string(want) != string(prev) {
		return true, "the file differs from the key's credentials", det.Credentials
	}
	return false, "", nil
}

func specOutput(k *spec.Key, in *spec.Instance) credfile.Output {
	return credfile.Output{Path: k.Out, Format: k.Format, EnvPrefix: k.EnvPrefix, Instance: in.Name, Offering: in.Offering, Plan: in.Plan}
}

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

// Apply converges the landscape to the spec: spaces, then roles, then
// each instance with its keys and files, instances in parallel (bounded by
// Parallel). One failing item does not stop independent ones; the result
// says what failed. It returns an error only when planning fails.
func (w *Runner) Apply(ctx context.Context, s *spec.Spec, o Options) (*Result, error) {
	res, st, err := w.plan(ctx, s, o)
	if err != nil {
		return nil, err
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
	w.workers(ctx, o.Parallel, len(order), func(i int) string { return itemPrefix(order[i]) }, func(q *Runner, i int) {
		q.applyInstance(ctx, st, byInst[order[i]], labels)
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

func (w *Runner) createSpace(ctx context.Context, st *planState, name string, labels map[string]string) error {
	w.rep.Step("Creating space " + name + " in org " + st.orgName + " as " + w.s.User)
	sp, err := w.s.CF.Spaces.Create(ctx, &resource.SpaceCreate{Name: name,
		Relationships: &resource.SpaceRelationships{Organization: &resource.ToOneRelationship{Data: &resource.Relationship{GUID: st.orgGUID}}},
		Metadata:      cfapi.LabelsMeta(labels)})
	if d, ok := cfapi.Unprocessable(err); ok && strings.Contains(d, "unique") {
		// created meanwhile (another shard or run): look it up (the 422's
		// detail is the only signal, see cfapi.Unprocessable)
		opts := client.NewSpaceListOptions()
		opts.Names = client.Filter{Values: []string{name}}
		opts.OrganizationGUIDs = client.Filter{Values: []string{st.orgGUID}}
		sp, err = w.s.CF.Spaces.Single(ctx, opts)
	}
	if err != nil {
		return cfapi.Classify("create space "+strconv.Quote(name), err)
	}
	w.rep.Done()
	st.mu.Lock()
	st.spaces[strings.ToLower(name)] = sp
	st.mu.Unlock()
	return nil
}

// createRole gives a user a space role by username and origin, first making
// the user an org user (CF requires an org role), treating "already has" as
// done.
func (w *Runner) createRole(ctx context.Context, st *planState, space string, r *spec.Role) error {
	st.mu.Lock()
	sp := st.spaces[strings.ToLower(space)]
	st.mu.Unlock()
	if sp == nil {
		return fmt.Errorf("space %q does not exist", space)
	}
	origin := cmp.Or(r.Origin, "uaa")
	w.rep.Step(fmt.Sprintf("Assigning role %s to user %s (%s) in space %s as %s", r.Role, r.User, origin, space, w.s.User))
	_, err := w.s.CF.Roles.CreateOrganizationRoleWithUsername(ctx, st.orgGUID, r.User, resource.OrganizationRoleUser, origin)
	if err != nil && !alreadyHasRole(err) {
		return cfapi.Classify("make "+r.User+" a user of org "+st.orgName, err)
	}
	_, err = w.s.CF.Roles.CreateSpaceRoleWithUsername(ctx, sp.GUID, r.User, resource.SpaceRoleType(spaceRoleType(r.Role)), origin)
	if err != nil && !alreadyHasRole(err) {
		return cfapi.Classify("assign role "+r.Role+" to "+r.User, err)
	}
	w.rep.Done()
	return nil
}

func spaceRoleType(role string) int {
	switch role {
	case "manager":
		return int(resource.SpaceRoleManager)
	case "auditor":
		return int(resource.SpaceRoleAuditor)
	case "supporter":
		return int(resource.SpaceRoleSupporter)
	}
	return int(resource.SpaceRoleDeveloper)
}

func alreadyHasRole(err error) bool {
	// CF answers a role the user has with a 422 whose detail says so; see
	// cfapi.Unprocessable for why the text is the only signal.
	d, ok := cfapi.Unprocessable(err)
	return ok && strings.Contains(d, "already has")
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
				rr, err := eng.RotateKey(ctx, t, inst, kc.keys, provision.RotateRequest{Ref: provision.Ref{Org: st.orgName, Space: sp.Name, Instance: in.Name}, Key: k.Name,
					Out: specOutput(k, in)})
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

func skip(cs []*Change, why string) {
	for _, c := range cs {
		c.Result, c.Error = "skipped", why
	}
}

func (w *Runner) cachedPlan(ctx context.Context, st *planState, t cfapi.Target, in *spec.Instance) (cfapi.Plan, error) {
	id := t.SpaceGUID + "|" + in.Offering + "|" + in.Plan + "|" + in.Broker
	st.mu.Lock()
	pl, ok := st.plans[id]
	st.mu.Unlock()
	if ok {
		return pl, nil
	}
	pl, err := w.s.ResolvePlan(ctx, t, in.Offering, in.Plan, in.Broker)
	if err != nil {
		return cfapi.Plan{}, err
	}
	st.mu.Lock()
	st.plans[id] = pl
	st.mu.Unlock()
	return pl, nil
}

// Destroy deletes what the spec owns, in reverse order: each instance
// with its keys (Cloud Foundry deletes keys first), then the files, and with
// DeleteSpaces the spaces the spec created. Unlabelled resources are never
// touched.
func (w *Runner) Destroy(ctx context.Context, s *spec.Spec, o Options) (*Result, error) {
	st, res, err := w.loadOrg(ctx, s, o)
	if err != nil {
		return nil, err
	}
	existing, err := w.instancesIn(ctx, st)
	if err != nil {
		return nil, err
	}
	var items []*Change
	for _, in := range s.Instances {
		if !spec.InShard(in.Space, in.Name, o.Shard, o.Shards) {
			continue
		}
		c := &Change{Kind: "instance", Address: instAddr(in.Space, in.Name), Action: ActDelete, inst: in}
		if sp := st.spaces[strings.ToLower(in.Space)]; sp != nil {
			c.cur = existing[sp.GUID+"/"+in.Name]
		}
		switch {
		case c.cur == nil:
			c.Action = ActNoop
			c.Reason = "absent"
		case ownedBy(c.cur.Metadata) != s.Metadata.Name:
			c.Action, c.Reason = ActNoop, "not managed by this spec; left alone"
		}
		items = append(items, c)
		res.Changes = append(res.Changes, c)
		for _, k := range in.Keys {
			if k.Out != "" {
				fc := &Change{Kind: "file", Address: "file " + k.Out, Action: ActDelete, inst: in, key: k}
				if !fileExists(k.Out) || c.Action == ActNoop && c.Reason != "absent" {
					fc.Action = ActNoop
				}
				res.Changes = append(res.Changes, fc)
			}
		}
	}
	w.workers(ctx, o.Parallel, len(items), func(i int) string { return itemPrefix(items[i].Address) }, func(q *Runner, i int) {
		c := items[i]
		if c.Action != ActDelete {
			return
		}
		q.run(c, func() error { return q.engine(nil).DeleteInstance(ctx, c.cur) })
	})
	for _, c := range res.Changes {
		if c.Kind != "file" || c.Action != ActDelete {
			continue
		}
		owner := c.inst
		failed := false
		for _, ic := range items {
			if ic.inst == owner && ic.Result == "failed" {
				failed = true
			}
		}
		if failed {
			skip([]*Change{c}, "the instance deletion failed; the file is kept")
			continue
		}
		w.run(c, func() error {
			if err := os.Remove(c.key.Out); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return nil
		})
	}
	if o.DeleteSpaces {
		for _, sp := range s.Spaces {
			cur := st.spaces[strings.ToLower(sp.Name)]
			c := &Change{Kind: "space", Address: "space " + sp.Name, Action: ActDelete}
			switch {
			case cur == nil:
				c.Action, c.Reason = ActNoop, "absent"
			case ownedBy(cur.Metadata) != s.Metadata.Name:
				c.Action, c.Reason = ActNoop, "not created by this spec; left alone"
			default:
				w.run(c, func() error { return w.deleteSpace(ctx, cur) })
			}
			res.Changes = append(res.Changes, c)
		}
	}
	sort.SliceStable(res.Changes, func(i, j int) bool { return kindOrder(res.Changes[i].Kind) < kindOrder(res.Changes[j].Kind) })
	res.summarize()
	return res, ctx.Err()
}

func kindOrder(k string) int {
	// the order destroy works in: instances (with their keys), files, spaces
	return map[string]int{"instance": 0, "key": 1, "file": 2, "role": 3, "space": 4}[k]
}

func (w *Runner) deleteSpace(ctx context.Context, sp *resource.Space) error {
	w.rep.Step("Deleting space " + sp.Name + " as " + w.s.User)
	job, err := w.s.CF.Spaces.Delete(ctx, sp.GUID)
	if err != nil {
		return cfapi.Classify("delete space "+strconv.Quote(sp.Name), err)
	}
	if job != "" {
		if _, err := w.s.WaitJob(ctx, job, "delete space "+strconv.Quote(sp.Name)); err != nil {
			return err
		}
	}
	w.rep.Done()
	return nil
}
