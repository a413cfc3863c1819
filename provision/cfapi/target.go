package cfapi

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/cloudfoundry/go-cfclient/v3/client"
	"github.com/cloudfoundry/go-cfclient/v3/resource"

	"github.com/xsprov/xsprov/provision/remedy"
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

// ResolveTarget finds org and space in one request (spaces by name with
// their orgs included); the error path lists what exists.
func (s *Session) ResolveTarget(ctx context.Context, org, space string) (Target, error) {
	if org == "" || space == "" {
		return Target{}, remedy.With(&UsageError{Msg: "no org and space targeted"}, remedy.Remedy{Action: remedy.SetTarget})
	}
	opts := client.NewSpaceListOptions()
	opts.Names = client.Filter{Values: []string{space}}
	opts.Include = resource.SpaceIncludeOrganization
	opts.PerPage = 5000
	spaces, orgs, err := s.SpacesWithOrgs(ctx, opts)
	if err != nil {
		return Target{}, Classify("look up space "+quote(space), err)
	}
	orgByGUID := map[string]*resource.Organization{}
	for _, o := range orgs {
		orgByGUID[o.GUID] = o
	}
	for _, sp := range spaces {
		o := orgByGUID[sp.Relationships.Organization.Data.GUID]
		if o != nil && strings.EqualFold(o.Name, org) {
			return Target{OrgName: o.Name, OrgGUID: o.GUID, SpaceName: sp.Name, SpaceGUID: sp.GUID}, nil
		}
	}
	return Target{}, s.TargetNotFound(ctx, org, space)
}

// TargetNotFound says which of org and space is missing, with the names close to it.
func (s *Session) TargetNotFound(ctx context.Context, org, space string) error {
	all, err := s.CF.Organizations.ListAll(ctx, nil)
	if err != nil {
		return Classify("list organizations", err)
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
		return remedy.With(fmt.Errorf("organization %q not found", org), remedy.Remedy{Note: closeMatches("organizations", org, names)})
	}
	opts := client.NewSpaceListOptions()
	opts.OrganizationGUIDs = client.Filter{Values: []string{found.GUID}}
	spaces, err := s.CF.Spaces.ListAll(ctx, opts)
	if err != nil {
		return Classify("list spaces", err)
	}
	names = names[:0]
	for _, sp := range spaces {
		names = append(names, sp.Name)
	}
	return remedy.With(fmt.Errorf("space %q not found in organization %q", space, found.Name), remedy.Remedy{Note: closeMatches("spaces in "+found.Name, space, names)})
}

// ResolvePlan finds the plan visible in the space, in one request.
func (s *Session) ResolvePlan(ctx context.Context, t Target, offering, plan, broker string) (Plan, error) {
	opts := client.NewServicePlanListOptions()
	opts.Names = client.Filter{Values: []string{plan}}
	opts.ServiceOfferingNames = client.Filter{Values: []string{offering}}
	opts.SpaceGUIDs = client.Filter{Values: []string{t.SpaceGUID}}
	if broker != "" {
		opts.ServiceBrokerNames = client.Filter{Values: []string{broker}}
	}
	opts.Include = resource.ServicePlanIncludeServiceOffering
	plans, offs, err := s.PlansWithOfferings(ctx, opts)
	if err != nil {
		return Plan{}, Classify("look up service plan "+quote(plan), err)
	}
	offByGUID := map[string]*resource.ServiceOffering{}
	for _, o := range offs {
		offByGUID[o.GUID] = o
	}
	switch len(plans) {
	case 0:
		return Plan{}, s.planNotFound(ctx, t, offering, plan, broker)
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
	names, err := s.brokerNames(ctx, brokers)
	if err != nil {
		return Plan{}, err
	}
	return Plan{}, remedy.With(&UsageError{Msg: fmt.Sprintf("service offering %q with plan %q is offered by %d service brokers (%s)",
		offering, plan, len(plans), strings.Join(names, ", "))}, remedy.Remedy{Action: remedy.ChooseBroker, Names: names})
}

func (s *Session) brokerNames(ctx context.Context, guids []string) ([]string, error) {
	bs, err := s.CF.ServiceBrokers.ListAll(ctx, nil)
	if err != nil {
		return nil, Classify("list service brokers", err)
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

func (s *Session) planNotFound(ctx context.Context, t Target, offering, plan, broker string) error {
	opts := client.NewServicePlanListOptions()
	opts.ServiceOfferingNames = client.Filter{Values: []string{offering}}
	opts.SpaceGUIDs = client.Filter{Values: []string{t.SpaceGUID}}
	if broker != "" {
		opts.ServiceBrokerNames = client.Filter{Values: []string{broker}}
	}
	visible, err := s.CF.ServicePlans.ListAll(ctx, opts)
	if err != nil {
		return Classify("list service plans", err)
	}
	where := fmt.Sprintf("in org %s / space %s", t.OrgName, t.SpaceName)
	if len(visible) == 0 {
		return remedy.With(fmt.Errorf("service offering %q is not available %s", offering, where), remedy.Remedy{Action: remedy.CheckOffering})
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
	return remedy.With(fmt.Errorf("service plan %q of offering %q is not visible %s", plan, offering, where), remedy.Remedy{Action: remedy.ChoosePlan, Names: names})
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
