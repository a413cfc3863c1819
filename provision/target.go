package provision

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/cloudfoundry/go-cfclient/v3/client"
	"github.com/cloudfoundry/go-cfclient/v3/resource"
)

// Target is a resolved org and space.
type Target struct {
	OrgName, OrgGUID     string
	SpaceName, SpaceGUID string
}

// Plan is a resolved service plan.
type Plan struct {
	Name, GUID                 string
	OfferingName, OfferingGUID string
	BrokerGUID                 string
}

// resolveTarget finds org and space in one request (spaces by name with
// their orgs included); the error path lists what exists.
func (p *Provisioner) resolveTarget(ctx context.Context, org, space string) (Target, error) {
	if org == "" || space == "" {
		return Target{}, Usagef("no org and space targeted: use --org and --space, set CF_ORG and CF_SPACE, or run 'cf target -o ORG -s SPACE'")
	}
	opts := client.NewSpaceListOptions()
	opts.Names = client.Filter{Values: []string{space}}
	opts.Include = resource.SpaceIncludeOrganization
	opts.PerPage = 5000
	spaces, orgs, _, err := p.S.CF.Spaces.ListIncludeOrganizations(ctx, opts)
	if err != nil {
		return Target{}, classify("look up space "+quote(space), err)
	}
	orgByGUID := map[string]*resource.Organization{}
	for _, o := range orgs {
		orgByGUID[o.GUID] = o
	}
	for _, s := range spaces {
		o := orgByGUID[s.Relationships.Organization.Data.GUID]
		if o != nil && strings.EqualFold(o.Name, org) {
			return Target{OrgName: o.Name, OrgGUID: o.GUID, SpaceName: s.Name, SpaceGUID: s.GUID}, nil
		}
	}
	return Target{}, p.targetNotFound(ctx, org, space)
}

func (p *Provisioner) targetNotFound(ctx context.Context, org, space string) error {
	all, err := p.S.CF.Organizations.ListAll(ctx, nil)
	if err != nil {
		return classify("list organizations", err)
	}
	var names []string
	var found *resource.Organization
	for _, o := range all {
		names = append(names, o.Name)
		if strings.EqualFold(o.Name, org) {
			found = o
		}
	}
	if found == nil {
		return &Hinted{Err: fmt.Errorf("organization %q not found", org), Hint: closeMatches("organizations", org, names)}
	}
	opts := client.NewSpaceListOptions()
	opts.OrganizationGUIDs = client.Filter{Values: []string{found.GUID}}
	spaces, err := p.S.CF.Spaces.ListAll(ctx, opts)
	if err != nil {
		return classify("list spaces", err)
	}
	names = names[:0]
	for _, s := range spaces {
		names = append(names, s.Name)
	}
	return &Hinted{Err: fmt.Errorf("space %q not found in organization %q", space, found.Name), Hint: closeMatches("spaces in "+found.Name, space, names)}
}

// resolvePlan finds the plan visible in the space, in one request.
func (p *Provisioner) resolvePlan(ctx context.Context, t Target, offering, plan, broker string) (Plan, error) {
	opts := client.NewServicePlanListOptions()
	opts.Names = client.Filter{Values: []string{plan}}
	opts.ServiceOfferingNames = client.Filter{Values: []string{offering}}
	opts.SpaceGUIDs = client.Filter{Values: []string{t.SpaceGUID}}
	if broker != "" {
		opts.ServiceBrokerNames = client.Filter{Values: []string{broker}}
	}
	opts.Include = resource.ServicePlanIncludeServiceOffering
	plans, offs, _, err := p.S.CF.ServicePlans.ListIncludeServiceOffering(ctx, opts)
	if err != nil {
		return Plan{}, classify("look up service plan "+quote(plan), err)
	}
	offByGUID := map[string]*resource.ServiceOffering{}
	for _, o := range offs {
		offByGUID[o.GUID] = o
	}
	switch len(plans) {
	case 0:
		return Plan{}, p.planNotFound(ctx, t, offering, plan, broker)
	case 1:
		pl := plans[0]
		o := offByGUID[pl.Relationships.ServiceOffering.Data.GUID]
		res := Plan{Name: pl.Name, GUID: pl.GUID, OfferingGUID: pl.Relationships.ServiceOffering.Data.GUID, OfferingName: offering}
		if o != nil {
			res.OfferingName, res.BrokerGUID = o.Name, o.Relationships.ServiceBroker.Data.GUID
		}
		return res, nil
	}
	var brokers []string
	for _, pl := range plans {
		if o := offByGUID[pl.Relationships.ServiceOffering.Data.GUID]; o != nil {
			brokers = append(brokers, o.Relationships.ServiceBroker.Data.GUID)
		}
	}
	names, err := p.brokerNames(ctx, brokers)
	if err != nil {
		return Plan{}, err
	}
	return Plan{}, &UsageError{Msg: fmt.Sprintf("service offering %q with plan %q is offered by %d service brokers (%s); choose one with --broker",
		offering, plan, len(plans), strings.Join(names, ", "))}
}

func (p *Provisioner) brokerNames(ctx context.Context, guids []string) ([]string, error) {
	bs, err := p.S.CF.ServiceBrokers.ListAll(ctx, nil)
	if err != nil {
		return nil, classify("list service brokers", err)
	}
	var out []string
	for _, b := range bs {
		for _, g := range guids {
			if b.GUID == g {
				out = append(out, b.Name)
				break
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func (p *Provisioner) planNotFound(ctx context.Context, t Target, offering, plan, broker string) error {
	opts := client.NewServicePlanListOptions()
	opts.ServiceOfferingNames = client.Filter{Values: []string{offering}}
	opts.SpaceGUIDs = client.Filter{Values: []string{t.SpaceGUID}}
	if broker != "" {
		opts.ServiceBrokerNames = client.Filter{Values: []string{broker}}
	}
	visible, err := p.S.CF.ServicePlans.ListAll(ctx, opts)
	if err != nil {
		return classify("list service plans", err)
	}
	where := fmt.Sprintf("in org %s / space %s", t.OrgName, t.SpaceName)
	if len(visible) == 0 {
		return &Hinted{Err: fmt.Errorf("service offering %q is not available %s", offering, where),
			Hint: "check the offering name (--offering) and the entitlements of your subaccount"}
	}
	seen := map[string]bool{}
	var names []string
	for _, pl := range visible {
		if !seen[pl.Name] {
			seen[pl.Name] = true
			names = append(names, pl.Name)
		}
	}
	sort.Strings(names)
	return &Hinted{Err: fmt.Errorf("service plan %q of offering %q is not visible %s", plan, offering, where),
		Hint: "plans visible there: " + strings.Join(names, ", ") + " (choose one with --plan, or ask an admin to enable the plan)"}
}

// findInstance looks an instance up by name in the space (nil when absent).
func (p *Provisioner) findInstance(ctx context.Context, t Target, name string) (*resource.ServiceInstance, error) {
	opts := client.NewServiceInstanceListOptions()
	opts.Names = client.Filter{Values: []string{name}}
	opts.SpaceGUIDs = client.Filter{Values: []string{t.SpaceGUID}}
	list, _, err := p.S.CF.ServiceInstances.List(ctx, opts)
	if err != nil {
		return nil, classify("look up service instance "+quote(name), err)
	}
	for _, si := range list {
		if si.Name == name {
			return si, nil
		}
	}
	return nil, nil
}

// keysOf lists the keys of an instance.
func (p *Provisioner) keysOf(ctx context.Context, instGUID string) ([]*resource.ServiceCredentialBinding, error) {
	opts := client.NewServiceCredentialBindingListOptions()
	opts.ServiceInstanceGUIDs = client.Filter{Values: []string{instGUID}}
	opts.Type = client.Filter{Values: []string{"key"}}
	opts.PerPage = 5000
	keys, err := p.S.CF.ServiceCredentialBindings.ListAll(ctx, opts)
	if err != nil {
		return nil, classify("list service keys", err)
	}
	return keys, nil
}

// RotatedSep separates a key's base name from a rotation suffix
// ("my-key--r20261127T043712Z"); suffixes sort by time.
const RotatedSep = "--r"

// pickKey returns the instance's key named base, preferring the newest
// rotated one ("base--r<time>") when there is one.
func pickKey(keys []*resource.ServiceCredentialBinding, base string) *resource.ServiceCredentialBinding {
	var best *resource.ServiceCredentialBinding
	bestName := ""
	for _, k := range keys {
		if k.Name == nil {
			continue
		}
		n := *k.Name
		if n != base && !strings.HasPrefix(n, base+RotatedSep) {
			continue
		}
		if best == nil || n > bestName {
			best, bestName = k, n
		}
	}
	return best
}

// closeMatches suggests names close to want.
func closeMatches(what, want string, have []string) string {
	if len(have) == 0 {
		return "there are no " + what
	}
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	for _, h := range have {
		cs = append(cs, cand{h, distance(strings.ToLower(want), strings.ToLower(h))})
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].d != cs[j].d {
			return cs[i].d < cs[j].d
		}
		return cs[i].name < cs[j].name
	})
	var close []string
	for _, c := range cs {
		if c.d <= 2+len(want)/3 && len(close) < 3 {
			close = append(close, c.name)
		}
	}
	if len(close) > 0 {
		return "did you mean " + strings.Join(close, ", ") + "?"
	}
	var all []string
	for i, c := range cs {
		if i == 10 {
			break
		}
		all = append(all, c.name)
	}
	sort.Strings(all)
	return what + ": " + strings.Join(all, ", ")
}

// distance is the Levenshtein distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
