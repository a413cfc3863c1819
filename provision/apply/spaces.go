package apply

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/cloudfoundry/go-cfclient/v3/client"
	"github.com/cloudfoundry/go-cfclient/v3/resource"

	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/spec"
)

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

func (w *Runner) deleteSpace(ctx context.Context, sp *resource.Space) error {
	w.rep.Step("Deleting space " + sp.Name + " as " + w.s.User)
	job, err := w.s.CF.Spaces.Delete(ctx, sp.GUID)
	if err != nil {
		return cfapi.Classify("delete space "+strconv.Quote(sp.Name), err)
	}
	if job != "" {
		if _, err := w.s.WaitJob(ctx, job, "delete space "+strconv.Quote(sp.Name), w.rep.Warn); err != nil {
			return err
		}
	}
	w.rep.Done()
	return nil
}
