package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/cloudfoundry/go-cfclient/v3/client"
	"github.com/cloudfoundry/go-cfclient/v3/resource"

	"github.com/xsprov/xsprov/provision/xssec"
)

// ApplyOptions steer plan, apply and destroy.
type ApplyOptions struct {
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
	Kind    string      `json:"kind"` // space, role, instance, key, file
	Address string      `json:"address"`
	Action  string      `json:"action"`
	Reason  string      `json:"reason,omitempty"`
	Diff    []DiffEntry `json:"diff,omitempty"`
	Result  string      `json:"result,omitempty"` // ok, failed, skipped
	Error   string      `json:"error,omitempty"`

	space  *SpecSpace
	role   *SpecRole
	inst   *SpecInstance
	key    *SpecKey
	cur    *resource.ServiceInstance
	curKey *resource.ServiceCredentialBinding
	creds  map[string]any // credentials the plan read for a file change
}

// Changed tells whether the change does something.
func (c *Change) Changed() bool { return c.Action != ActNoop }

// PlanResult is the machine-readable plan or apply report.
type PlanResult struct {
	FormatVersion string         `json:"format_version"`
	Spec          string         `json:"spec"`
	Org           string         `json:"org"`
	Changes       []*Change      `json:"changes"`
	Summary       map[string]int `json:"summary"`
	Failed        int            `json:"failed"`
}

// HasChanges tells whether applying would change anything.
func (r *PlanResult) HasChanges() bool {
	for _, c := range r.Changes {
		if c.Changed() {
			return true
		}
	}
	return false
}

func (r *PlanResult) summarize() {
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
	spec    *Spec
	opts    ApplyOptions
	orgName string
	orgGUID string
	spaces  map[string]*resource.Space // lower-case name → space
	plans   map[string]Plan
	mu      sync.Mutex
}

func (st *planState) specLabels() map[string]string {
	return map[string]string{SpecLabel: st.spec.Metadata.Name}
}

func ownedBy(m *resource.Metadata) string {
	if m == nil || m.Labels == nil || m.Labels[SpecLabel] == nil {
		return ""
	}
	return *m.Labels[SpecLabel]
}

func instAddr(space, name string) string { return "instance " + space + "/" + name }

// PlanSpec computes what applying the spec would change. It only reads.
func (p *Provisioner) PlanSpec(ctx context.Context, s *Spec, o ApplyOptions) (*PlanResult, error) {
	res, _, err := p.plan(ctx, s, o)
	return res, err
}

// loadOrg finds the spec's org and its spaces: what plan and destroy start
// from.
func (p *Provisioner) loadOrg(ctx context.Context, s *Spec, o ApplyOptions) (*planState, *PlanResult, error) {
	st := &planState{spec: s, opts: o, spaces: map[string]*resource.Space{}, plans: map[string]Plan{}}
	oopts := client.NewOrganizationListOptions()
	oopts.Names = client.Filter{Values: []string{o.Org}}
	orgs, err := p.S.CF.Organizations.ListAll(ctx, oopts)
	if err != nil {
		return nil, nil, classify("look up organization "+quote(o.Org), err)
	}
	if len(orgs) == 0 {
		return nil, nil, p.targetNotFound(ctx, o.Org, "-")
	}
	st.orgName, st.orgGUID = orgs[0].Name, orgs[0].GUID
	sopts := client.NewSpaceListOptions()
	sopts.OrganizationGUIDs = client.Filter{Values: []string{st.orgGUID}}
	sopts.PerPage = 5000
	spaces, err := p.S.CF.Spaces.ListAll(ctx, sopts)
	if err != nil {
		return nil, nil, classify("list spaces", err)
	}
	for _, sp := range spaces {
		st.spaces[strings.ToLower(sp.Name)] = sp
	}
	return st, &PlanResult{FormatVersion: FormatVersion, Spec: s.Metadata.Name, Org: st.orgName, Changes: []*Change{}}, nil
}

func (p *Provisioner) plan(ctx context.Context, s *Spec, o ApplyOptions) (*PlanResult, *planState, error) {
	st, res, err := p.loadOrg(ctx, s, o)
	if err != nil {
		return nil, nil, err
	}
	// Spaces and roles.
	roleSet, err := p.existingRoles(ctx, st)
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
			rc := &Change{Kind: "role", Address: fmt.Sprintf("role %s %s (%s) in space %s", r.Role, r.User, firstNonEmpty(r.Origin, "uaa"), sp.Name), Action: ActNoop, space: sp, role: r}
			if !roleSet[roleID(sp.Name, spaceRoles[r.Role], r.User, firstNonEmpty(r.Origin, "uaa"))] {
				rc.Action = ActCreate
			}
			res.Changes = append(res.Changes, rc)
		}
	}
	// Instances of this shard.
	var mine []*SpecInstance
	for _, in := range s.Instances {
		if InShard(in.Space, in.Name, o.Shard, o.Shards) {
			mine = append(mine, in)
		}
	}
	existing, err := p.instancesIn(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	keys, err := p.keysOfMany(ctx, st, mine, existing)
	if err != nil {
		return nil, nil, err
	}
	changes := make([][]*Change, len(mine))
	p.workers(ctx, o.Parallel, len(mine), func(q *Provisioner, i int) {
		changes[i] = q.planInstance(ctx, st, mine[i], existing, keys)
	})
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	for _, cs := range changes {
		res.Changes = append(res.Changes, cs...)
	}
	if o.Prune {
		pr, err := p.planPrune(ctx, st)
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

func (p *Provisioner) existingRoles(ctx context.Context, st *planState) (map[string]bool, error) {
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
	roles, users, err := p.S.CF.Roles.ListIncludeUsersAll(ctx, opts)
	if err != nil {
		return nil, classify("list roles", err)
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
func (p *Provisioner) instancesIn(ctx context.Context, st *planState) (map[string]*resource.ServiceInstance, error) {
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
	list, err := p.S.CF.ServiceInstances.ListAll(ctx, opts)
	if err != nil {
		return nil, classify("list service instances", err)
	}
	for _, si := range list {
		out[si.Relationships.Space.Data.GUID+"/"+si.Name] = si
	}
	return out, nil
}

// keysOfMany lists the keys of the spec's existing instances in a few
// requests (many instance GUIDs per filter), by instance GUID.
func (p *Provisioner) keysOfMany(ctx context.Context, st *planState, ins []*SpecInstance, existing map[string]*resource.ServiceInstance) (map[string][]*resource.ServiceCredentialBinding, error) {
	var guids []string
	for _, in := range ins {
		if sp := st.spaces[strings.ToLower(in.Space)]; sp != nil {
			if si := existing[sp.GUID+"/"+in.Name]; si != nil {
				guids = append(guids, si.GUID)
			}
		}
	}
	out := map[string][]*resource.ServiceCredentialBinding{}
	const batch = 100 // keeps the URL well below common limits
	for lo := 0; lo < len(guids); lo += batch {
		opts := client.NewServiceCredentialBindingListOptions()
		opts.ServiceInstanceGUIDs = client.Filter{Values: guids[lo:min(lo+batch, len(guids))]}
		opts.Type = client.Filter{Values: []string{"key"}}
		opts.PerPage = 5000
		keys, err := p.S.CF.ServiceCredentialBindings.ListAll(ctx, opts)
		if err != nil {
			return nil, classify("list service keys", err)
		}
		for _, k := range keys {
			if k.Relationships.ServiceInstance != nil && k.Relationships.ServiceInstance.Data != nil {
				g := k.Relationships.ServiceInstance.Data.GUID
				out[g] = append(out[g], k)
			}
		}
	}
	return out, nil
}

func (p *Provisioner) planInstance(ctx context.Context, st *planState, in *SpecInstance, existing map[string]*resource.ServiceInstance, keysByInst map[string][]*resource.ServiceCredentialBinding) []*Change {
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
		c.Action, c.Reason = ActError, "space "+quote(in.Space)+" does not exist in organization "+st.orgName+" and is not in the spec's spaces"
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
		c.Action, c.Reason = ActError, "owned by spec "+quote(owner)+", not this one"
		return out
	case owner == "" && !st.opts.Adopt:
		c.Action, c.Reason = ActError, "exists but is not managed by this spec (no "+SpecLabel+" label); adopt it with --adopt"
		return out
	case owner == "":
		c.Action, c.Reason = ActAdopt, "label it as managed by this spec"
	}
	lo := cur.LastOperation
	switch {
	case lo.Type == "create" && lo.State == "failed":
		c.Action, c.Reason = ActRecreate, "its creation failed: "+lo.Description
		return keysFresh("")
	case opBusy(lo):
		// apply waits, compares the parameters again, then sees to the keys
		c.Action, c.Reason = ActWait, "an operation is in progress ("+describeOp(lo)+"); apply waits and compares again"
	}
	var params map[string]any
	if c.Action != ActWait {
		var err error
		if params, err = p.instanceParams(ctx, cur.GUID); err != nil {
			c.Action, c.Reason = ActError, err.Error()
			return out
		}
	}
	if params != nil {
		diff := Diff(params, in.Descriptor)
		if imm := xssec.ImmutableChanges(params, in.Descriptor); len(imm) > 0 {
			c.Action, c.Reason, c.Diff = ActRecreate, joinAnd(imm)+" cannot change in place ("+describeImmutable(params, imm)+" → "+describeImmutable(in.Descriptor, imm)+")", diff
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
	now := p.clock().Now()
	for _, k := range in.Keys {
		kc := &Change{Kind: "key", Address: "key " + in.Space + "/" + in.Name + "/" + k.Name, Action: ActNoop, inst: in, key: k}
		ck := pickKey(keys, k.Name)
		kc.curKey = ck
		switch {
		case ck == nil:
			kc.Action = ActCreate
		case opBusy(ck.LastOperation):
			kc.Action, kc.Reason = ActWait, "an operation is in progress ("+describeOp(ck.LastOperation)+")"
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
		} else if changed, reason, creds := p.fileDiffers(ctx, ck, k, in); changed {
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
func (p *Provisioner) fileDiffers(ctx context.Context, k *resource.ServiceCredentialBinding, sk *SpecKey, in *SpecInstance) (bool, string, map[string]any) {
	prev, err := os.ReadFile(sk.Out)
	if err != nil {
		return true, "the file is missing", nil
	}
	det, err := p.S.CF.ServiceCredentialBindings.GetDetails(ctx, k.GUID)
	if err != nil {
		return true, "the key's credentials cannot be read: " + err.Error(), nil
	}
	want, err := Render(det.Credentials, specOutput(sk, in))
	if err != nil || string(want) != string(prev) {
		return true, "the file differs from the key's credentials", det.Credentials
	}
	return false, "", nil
}

func specOutput(k *SpecKey, in *SpecInstance) Output {
	return Output{Path: k.Out, Format: k.Format, EnvPrefix: k.EnvPrefix, Instance: in.Name, Offering: in.Offering, Plan: in.Plan}
}

func (p *Provisioner) planPrune(ctx context.Context, st *planState) ([]*Change, error) {
	opts := client.NewServiceInstanceListOptions()
	opts.OrganizationGUIDs = client.Filter{Values: []string{st.orgGUID}}
	opts.LabelSel = client.LabelSelector{}
	opts.LabelSel.EqualTo(SpecLabel, st.spec.Metadata.Name)
	opts.PerPage = 5000
	list, err := p.S.CF.ServiceInstances.ListAll(ctx, opts)
	if err != nil {
		return nil, classify("list instances labelled "+SpecLabel+"="+st.spec.Metadata.Name, err)
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
		if !InShard(space, si.Name, st.opts.Shard, st.opts.Shards) {
			continue
		}
		inSpec := false
		for _, in := range st.spec.Instances {
			if in.Name == si.Name && strings.EqualFold(in.Space, space) {
				inSpec = true
			}
		}
		if !inSpec {
			out = append(out, &Change{Kind: "instance", Address: instAddr(space, si.Name), Action: ActDelete, Reason: "no longer in the spec (--prune)", cur: si})
		}
	}
	// Labelled keys of spec instances that the spec no longer lists.
	for _, in := range st.spec.Instances {
		sp := st.spaces[strings.ToLower(in.Space)]
		if sp == nil || !InShard(in.Space, in.Name, st.opts.Shard, st.opts.Shards) {
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
		keys, err := p.keysOf(ctx, si.GUID)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if ownedBy(k.Metadata) != st.spec.Metadata.Name {
				continue
			}
			listed := false
			for _, sk := range in.Keys {
				n := keyName(k, "")
				if n == sk.Name || strings.HasPrefix(n, sk.Name+RotatedSep) {
					listed = true
				}
			}
			if !listed {
				out = append(out, &Change{Kind: "key", Address: "key " + in.Space + "/" + in.Name + "/" + keyName(k, ""), Action: ActDelete, Reason: "no longer in the spec (--prune)", curKey: k, inst: in})
			}
		}
	}
	return out, nil
}

// ApplySpec converges the landscape to the spec: spaces, then roles, then
// each instance with its keys and files, instances in parallel (bounded by
// Parallel). One failing item does not stop independent ones; the result
// says what failed. It returns an error only when planning fails.
func (p *Provisioner) ApplySpec(ctx context.Context, s *Spec, o ApplyOptions) (*PlanResult, error) {
	res, st, err := p.plan(ctx, s, o)
	if err != nil {
		return nil, err
	}
	labels := st.specLabels()
	// Spaces first: instances need them.
	for _, c := range res.Changes {
		if c.Kind == "space" && c.Action == ActCreate {
			p.run(c, func() error { return p.createSpace(ctx, st, c.space.Name, labels) })
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
	p.workers(ctx, o.Parallel, len(roles), func(q *Provisioner, i int) {
		c := roles[i]
		q.run(c, func() error { return q.createRole(ctx, st, c.space.Name, c.role) })
	})
	p.workers(ctx, o.Parallel, len(order), func(q *Provisioner, i int) {
		q.clone("["+strings.TrimPrefix(order[i], "instance ")+"] ").applyInstance(ctx, st, byInst[order[i]], labels)
	})
	p.workers(ctx, o.Parallel, len(groups), func(w *Provisioner, i int) {
		c := groups[i]
		q := w.clone("[" + strings.TrimPrefix(c.Address, "instance ") + "] ")
		switch c.Kind {
		case "instance":
			q.run(c, func() error { return q.deleteInstance(ctx, c.cur, false) })
		case "key":
			q.run(c, func() error { return q.deleteKey(ctx, c.curKey, c.inst.Name) })
		}
	})
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.summarize()
	return res, nil
}

// clone returns a provisioner for one item: same client, own reporter
// prefix and warning memory, so parallel items do not interleave state.
func (p *Provisioner) clone(prefix string) *Provisioner {
	q := *p
	q.Reporter = prefixReporter{inner: p.rep(), prefix: prefix}
	q.seenWarn = nil
	return &q
}

type prefixReporter struct {
	inner  Reporter
	prefix string
}

func (r prefixReporter) Step(m string) { r.inner.Info(r.prefix + m + "...") }
func (r prefixReporter) Done()         {}
func (r prefixReporter) Info(m string) { r.inner.Info(r.prefix + m) }
func (r prefixReporter) Warn(m string) { r.inner.Warn(r.prefix + m) }

func (p *Provisioner) run(c *Change, f func() error) {
	if err := f(); err != nil {
		c.Result, c.Error = "failed", err.Error()
		p.rep().Warn(c.Address + ": " + err.Error())
		return
	}
	if c.Action == ActNoop {
		c.Result = "unchanged"
	} else {
		c.Result = "ok"
	}
}

// sessionPool keeps the sessions forked for workers, so that plan and apply
// in one run log in once per worker; workers log in concurrently.
type sessionPool struct {
	mu    sync.Mutex
	slots []*poolSlot
}

type poolSlot struct {
	once sync.Once
	s    *Session
	err  error
}

func (sp *sessionPool) get(ctx context.Context, base *Session, i int) (*Session, error) {
	sp.mu.Lock()
	for len(sp.slots) <= i {
		sp.slots = append(sp.slots, &poolSlot{})
	}
	slot := sp.slots[i]
	sp.mu.Unlock()
	slot.once.Do(func() { slot.s, slot.err = base.Fork(ctx) })
	return slot.s, slot.err
}

// workers runs f for items 0..count-1 on at most n workers. The first
// worker uses p's client; each further one forks a session of its own, since
// a go-cfclient client must not re-authenticate from two goroutines at once.
// A worker whose login fails stops; the others take its share.
func (p *Provisioner) workers(ctx context.Context, n, count int, f func(q *Provisioner, i int)) {
	if n < 1 {
		n = 1
	}
	if n > count {
		n = count
	}
	if p.pool == nil {
		p.pool = &sessionPool{}
	}
	items := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			q := p.clone("")
			q.Reporter = p.Reporter
			if w > 0 {
				s, err := p.pool.get(ctx, p.S, w-1)
				if err != nil {
					return // takes no item; the others (worker 0 always can) go on
				}
				q.S = s
			}
			for i := range items {
				f(q, i)
			}
		}(w)
	}
	for i := 0; i < count && ctx.Err() == nil; i++ {
		items <- i
	}
	close(items)
	wg.Wait()
}

func (p *Provisioner) createSpace(ctx context.Context, st *planState, name string, labels map[string]string) error {
	p.rep().Step("Creating space " + name + " in org " + st.orgName + " as " + p.S.User)
	sp, err := p.S.CF.Spaces.Create(ctx, &resource.SpaceCreate{Name: name,
		Relationships: &resource.SpaceRelationships{Organization: &resource.ToOneRelationship{Data: &resource.Relationship{GUID: st.orgGUID}}},
		Metadata:      labelsMeta(labels)})
	if ce, ok := cfError(err); ok && ce.Code == codeUnprocessable && strings.Contains(ce.Detail, "unique") {
		// created meanwhile (another shard or run): look it up
		opts := client.NewSpaceListOptions()
		opts.Names = client.Filter{Values: []string{name}}
		opts.OrganizationGUIDs = client.Filter{Values: []string{st.orgGUID}}
		sp, err = p.S.CF.Spaces.Single(ctx, opts)
	}
	if err != nil {
		return classify("create space "+quote(name), err)
	}
	p.rep().Done()
	st.mu.Lock()
	st.spaces[strings.ToLower(name)] = sp
	st.mu.Unlock()
	return nil
}

func labelsMeta(labels map[string]string) *resource.Metadata {
	if len(labels) == 0 {
		return nil
	}
	m := &resource.Metadata{Labels: map[string]*string{}}
	for k, v := range labels {
		v := v
		m.Labels[k] = &v
	}
	return m
}

// createRole gives a user a space role by username and origin, first making
// the user an org user (CF requires an org role), treating "already has" as
// done.
func (p *Provisioner) createRole(ctx context.Context, st *planState, space string, r *SpecRole) error {
	st.mu.Lock()
	sp := st.spaces[strings.ToLower(space)]
	st.mu.Unlock()
	if sp == nil {
		return fmt.Errorf("space %q does not exist", space)
	}
	origin := firstNonEmpty(r.Origin, "uaa")
	p.rep().Step(fmt.Sprintf("Assigning role %s to user %s (%s) in space %s as %s", r.Role, r.User, origin, space, p.S.User))
	_, err := p.S.CF.Roles.CreateOrganizationRoleWithUsername(ctx, st.orgGUID, r.User, resource.OrganizationRoleUser, origin)
	if err != nil && !alreadyHasRole(err) {
		return classify("make "+r.User+" a user of org "+st.orgName, err)
	}
	_, err = p.S.CF.Roles.CreateSpaceRoleWithUsername(ctx, sp.GUID, r.User, resource.SpaceRoleType(spaceRoleType(r.Role)), origin)
	if err != nil && !alreadyHasRole(err) {
		return classify("assign role "+r.Role+" to "+r.User, err)
	}
	p.rep().Done()
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
	ce, ok := cfError(err)
	return ok && ce.Code == codeUnprocessable && strings.Contains(ce.Detail, "already has")
}

// applyInstance runs an instance's changes in order: the instance, then its
// keys, then their files. After a failure the rest is skipped.
func (p *Provisioner) applyInstance(ctx context.Context, st *planState, cs []*Change, labels map[string]string) {
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
		ic.Result, ic.Error = "failed", "space "+quote(in.Space)+" is missing"
		skip(cs[1:], "the instance failed")
		return
	}
	t := Target{OrgName: st.orgName, OrgGUID: st.orgGUID, SpaceName: sp.Name, SpaceGUID: sp.GUID}
	p.Labels = labels
	var inst *resource.ServiceInstance
	p.run(ic, func() error {
		plan, err := p.cachedPlan(ctx, st, t, in)
		if err != nil {
			return err
		}
		switch ic.Action {
		case ActRecreate:
			if ic.cur != nil {
				if err := p.deleteInstance(ctx, ic.cur, false); err != nil {
					return err
				}
			}
		case ActAdopt:
			p.rep().Info("Adopting service instance " + in.Name + " (labelling it " + SpecLabel + "=" + st.spec.Metadata.Name + ")")
			tags := ic.cur.Tags
			if tags == nil {
				tags = []string{}
			}
			if _, _, err := p.S.CF.ServiceInstances.UpdateManaged(ctx, ic.cur.GUID, &resource.ServiceInstanceManagedUpdate{Metadata: labelsMeta(labels), Tags: tags}); err != nil {
				return classify("label service instance "+quote(in.Name), err)
			}
		}
		req := UpRequest{Ref: Ref{Org: st.orgName, Space: sp.Name, Instance: in.Name},
			Offering: in.Offering, Plan: in.Plan, Broker: in.Broker, Params: in.Descriptor, Tags: in.Tags}
		if ic.Action == ActCreate {
			// The plan saw no instance: create without looking again. If one
			// appeared meanwhile, converge on it as up does.
			si, err := p.createInstance(ctx, t, plan, req, Created)
			if !errors.Is(err, errRaced) {
				inst = si
				return err
			}
		}
		si, _, err := p.ensureInstance(ctx, t, plan, req)
		inst = si
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
		p.run(kc, func() error {
			switch kc.Action {
			case ActRotate:
				rr, err := p.Rotate(ctx, RotateRequest{Ref: Ref{Org: st.orgName, Space: sp.Name, Instance: in.Name}, Key: k.Name,
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
					if err := p.deleteKey(ctx, kc.curKey, in.Name); err != nil {
						return err
					}
				}
			}
			fresh := ic.Action == ActCreate || ic.Action == ActRecreate
			kk, _, err := p.ensureKey(ctx, inst, k.Name, k.Parameters, fresh, false)
			key = kk
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
		p.run(fc, func() error {
			r := &Result{Instance: InstanceResult{Name: in.Name, Offering: in.Offering, Plan: in.Plan}}
			var err error
			if fc.creds != nil && !kc.Changed() {
				// the plan read them already
				if p.OnSecrets != nil {
					p.OnSecrets(SecretValues(fc.creds))
				}
				err = p.writeCreds(fc.creds, specOutput(k, in), r)
			} else {
				err = p.fetchAndWrite(ctx, key, specOutput(k, in), r)
			}
			if err != nil {
				return err
			}
			return p.verify(ctx, r)
		})
	}
}

func skip(cs []*Change, why string) {
	for _, c := range cs {
		c.Result, c.Error = "skipped", why
	}
}

func (p *Provisioner) cachedPlan(ctx context.Context, st *planState, t Target, in *SpecInstance) (Plan, error) {
	id := t.SpaceGUID + "|" + in.Offering + "|" + in.Plan + "|" + in.Broker
	st.mu.Lock()
	pl, ok := st.plans[id]
	st.mu.Unlock()
	if ok {
		return pl, nil
	}
	pl, err := p.resolvePlan(ctx, t, in.Offering, in.Plan, in.Broker)
	if err != nil {
		return Plan{}, err
	}
	st.mu.Lock()
	st.plans[id] = pl
	st.mu.Unlock()
	return pl, nil
}

// DestroySpec deletes what the spec owns, in reverse order: each instance
// with its keys (Cloud Foundry deletes keys first), then the files, and with
// DeleteSpaces the spaces the spec created. Unlabelled resources are never
// touched.
func (p *Provisioner) DestroySpec(ctx context.Context, s *Spec, o ApplyOptions) (*PlanResult, error) {
	st, res, err := p.loadOrg(ctx, s, o)
	if err != nil {
		return nil, err
	}
	existing, err := p.instancesIn(ctx, st)
	if err != nil {
		return nil, err
	}
	var items []*Change
	for _, in := range s.Instances {
		if !InShard(in.Space, in.Name, o.Shard, o.Shards) {
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
	p.workers(ctx, o.Parallel, len(items), func(w *Provisioner, i int) {
		c := items[i]
		if c.Action != ActDelete {
			return
		}
		q := w.clone("[" + strings.TrimPrefix(c.Address, "instance ") + "] ")
		q.run(c, func() error { return q.deleteInstance(ctx, c.cur, false) })
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
		p.run(c, func() error {
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
				p.run(c, func() error { return p.deleteSpace(ctx, cur) })
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

func (p *Provisioner) deleteSpace(ctx context.Context, sp *resource.Space) error {
	p.rep().Step("Deleting space " + sp.Name + " as " + p.S.User)
	job, err := p.S.CF.Spaces.Delete(ctx, sp.GUID)
	if err != nil {
		return classify("delete space "+quote(sp.Name), err)
	}
	if job != "" {
		if _, err := p.waitJob(ctx, job, "delete space "+quote(sp.Name)); err != nil {
			return err
		}
	}
	p.rep().Done()
	return nil
}
