package cfapi

import (
	"context"
	"runtime"
	"strings"

	"github.com/cloudfoundry/go-cfclient/v3/client"
	"github.com/cloudfoundry/go-cfclient/v3/resource"
)

// go-cfclient (v3.0.0-alpha.21) reads the "included" object of include=…
// answers without a check (client/space.go ListIncludeOrganizations,
// client/service_plan.go GetIncludeServiceOffering and
// ListIncludeServiceOffering, client/role.go ListIncludeUsers): a Cloud
// Controller that omits it makes the client panic. These wrappers ask with
// include=… (one request) and, when "included" is missing, fetch the related
// resources by GUID instead.

// missingIncluded runs f and reports a nil dereference of the missing
// "included" as false; other panics go on.
func missingIncluded(f func() error) (err error, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			re, isRuntime := r.(runtime.Error)
			if !isRuntime || !strings.Contains(re.Error(), "nil pointer") {
				panic(r)
			}
			err, ok = nil, false
		}
	}()
	return f(), true
}

// SpacesWithOrgs lists spaces with their organizations.
func (s *Session) SpacesWithOrgs(ctx context.Context, opts *client.SpaceListOptions) ([]*resource.Space, []*resource.Organization, error) {
	var spaces []*resource.Space
	var orgs []*resource.Organization
	err, ok := missingIncluded(func() (err error) {
		spaces, orgs, _, err = s.CF.Spaces.ListIncludeOrganizations(ctx, opts)
		return err
	})
	if ok || err != nil {
		return spaces, orgs, err
	}
	opts.Include = resource.SpaceIncludeNone
	if spaces, _, err = s.CF.Spaces.List(ctx, opts); err != nil || len(spaces) == 0 {
		return spaces, nil, err
	}
	oopts := client.NewOrganizationListOptions()
	oopts.GUIDs = client.Filter{Values: guidsOf(spaces, func(sp *resource.Space) string { return sp.Relationships.Organization.Data.GUID })}
	oopts.PerPage = 5000
	orgs, err = s.CF.Organizations.ListAll(ctx, oopts)
	return spaces, orgs, err
}

// PlansWithOfferings lists service plans with their offerings.
func (s *Session) PlansWithOfferings(ctx context.Context, opts *client.ServicePlanListOptions) ([]*resource.ServicePlan, []*resource.ServiceOffering, error) {
	var plans []*resource.ServicePlan
	var offs []*resource.ServiceOffering
	err, ok := missingIncluded(func() (err error) {
		plans, offs, _, err = s.CF.ServicePlans.ListIncludeServiceOffering(ctx, opts)
		return err
	})
	if ok || err != nil {
		return plans, offs, err
	}
	opts.Include = resource.ServicePlanIncludeNone
	if plans, _, err = s.CF.ServicePlans.List(ctx, opts); err != nil || len(plans) == 0 {
		return plans, nil, err
	}
	// offerings have no guids filter: one read each (plans of one name
	// usually share one offering)
	for _, g := range guidsOf(plans, func(p *resource.ServicePlan) string { return p.Relationships.ServiceOffering.Data.GUID }) {
		o, err := s.CF.ServiceOfferings.Get(ctx, g)
		if err != nil {
			return nil, nil, err
		}
		offs = append(offs, o)
	}
	return plans, offs, nil
}

// PlanWithOffering reads a service plan and its offering.
func (s *Session) PlanWithOffering(ctx context.Context, guid string) (*resource.ServicePlan, *resource.ServiceOffering, error) {
	var plan *resource.ServicePlan
	var off *resource.ServiceOffering
	err, ok := missingIncluded(func() (err error) {
		plan, off, err = s.CF.ServicePlans.GetIncludeServiceOffering(ctx, guid)
		return err
	})
	if ok || err != nil {
		return plan, off, err
	}
	if plan, err = s.CF.ServicePlans.Get(ctx, guid); err != nil {
		return nil, nil, err
	}
	off, err = s.CF.ServiceOfferings.Get(ctx, plan.Relationships.ServiceOffering.Data.GUID)
	return plan, off, err
}

// RolesWithUsers lists roles with their users.
func (s *Session) RolesWithUsers(ctx context.Context, opts *client.RoleListOptions) ([]*resource.Role, []*resource.User, error) {
	var roles []*resource.Role
	var users []*resource.User
	err, ok := missingIncluded(func() (err error) {
		roles, users, err = s.CF.Roles.ListIncludeUsersAll(ctx, opts)
		return err
	})
	if ok || err != nil {
		return roles, users, err
	}
	opts.Include = resource.RoleIncludeNone
	if roles, err = s.CF.Roles.ListAll(ctx, opts); err != nil || len(roles) == 0 {
		return roles, nil, err
	}
	uopts := client.NewUserListOptions()
	uopts.GUIDs = client.Filter{Values: guidsOf(roles, func(r *resource.Role) string {
		if r.Relationships.User.Data == nil {
			return ""
		}
		return r.Relationships.User.Data.GUID
	})}
	uopts.PerPage = 5000
	users, err = s.CF.Users.ListAll(ctx, uopts)
	return roles, users, err
}

// guidsOf are the distinct non-empty GUIDs of items.
func guidsOf[T any](items []T, guid func(T) string) []string {
	seen := map[string]bool{}
	var out []string
	for _, it := range items {
		if g := guid(it); g != "" && !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	return out
}
