package cfsim

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// Spaces, users and roles: what onboarding a subaccount needs.

func (s *Sim) createSpace(req *request) {
	body, aerr := decodeBody(req, "name", "relationships", "metadata")
	if aerr != nil {
		writeError(req.w, aerr)
		return
	}
	var name string
	if json.Unmarshal(body["name"], &name) != nil || strings.TrimSpace(name) == "" {
		writeError(req.w, errUnprocessable("Name must be a string, Name can't be blank"))
		return
	}
	orgGUID, ok := relGUID(body["relationships"], "organization")
	if !ok {
		writeError(req.w, errUnprocessable("Relationships Organization can't be blank"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Orgs[orgGUID] == nil {
		writeError(req.w, errUnprocessable("Invalid organization. Ensure the organization exists and you have access to it."))
		return
	}
	for _, sp := range s.st.Spaces {
		if sp.OrgGUID == orgGUID && strings.EqualFold(sp.Name, name) {
			writeError(req.w, errUnprocessable("Name must be unique per organization"))
			return
		}
	}
	sp := &Space{meta: s.newMeta(), Name: name, OrgGUID: orgGUID}
	if aerr := applyMetadata(&sp.meta, body["metadata"]); aerr != nil {
		writeError(req.w, aerr)
		return
	}
	s.st.Spaces[sp.GUID] = sp
	s.dirty = true
	_ = s.saveLocked()
	writeJSON(req.w, http.StatusCreated, s.renderSpace(req.base, sp))
}

// deleteSpace is DELETE /v3/spaces/:guid: a job that fails while the space
// still holds service instances (the simulator has no apps or routes).
func (s *Sim) deleteSpace(req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	sp := or404(req, s.st.Spaces, errNotFound("Space"))
	if sp == nil {
		return
	}
	j := s.newJob("space.delete", "space", sp.GUID, "space", false) // no broker involved
	j.DoneAt, j.PollAt, j.Fail = s.now(), s.now(), ""
	for _, i := range s.st.Instances {
		if i.SpaceGUID == sp.GUID {
			j.State = "FAILED"
			j.Errors = []apiError{{Code: 290008, Title: "CF-SpaceDeletionFailed", Detail: "Deletion of space " + sp.Name + " failed because one or more resources within could not be deleted.\n\n\tThe space contains service instance " + i.Name + "."}}
			s.accepted(req, j)
			return
		}
	}
	for g, r := range s.st.Roles {
		if r.SpaceGUID == sp.GUID {
			delete(s.st.Roles, g)
		}
	}
	delete(s.st.Spaces, sp.GUID)
	j.State = "COMPLETE"
	s.accepted(req, j)
}

func (s *Sim) renderUser(b string, u *User) map[string]any {
	return map[string]any{
		"guid": u.GUID, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
		"username": u.Name, "presentation_name": u.Name, "origin": u.Origin,
		"metadata": map[string]any{"labels": map[string]string{}, "annotations": map[string]string{}},
		"links":    map[string]any{"self": href(b + "/v3/users/" + u.GUID)},
	}
}

func (s *Sim) listUsers(req *request) {
	q := req.r.URL.Query()
	names, origins, guids := queryFilter(q, "usernames"), queryFilter(q, "origins"), queryFilter(q, "guids")
	if origins != nil && names == nil {
		writeError(req.w, errBadQuery("Origins filter requires usernames or partial_usernames"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []any
	for _, u := range s.st.Users {
		if names.has(u.Name, false) && origins.has(u.Origin, false) && guids.has(u.GUID, false) {
			items = append(items, s.renderUser(req.base, u))
		}
	}
	s.page(req, items, nil)
}

var spaceRoleTypes = []string{"space_developer", "space_manager", "space_auditor", "space_supporter"}
var orgRoleTypes = []string{"organization_user", "organization_manager", "organization_auditor", "organization_billing_manager"}

func (s *Sim) renderRole(b string, r *Role) map[string]any {
	out := base(r.meta, b+"/v3/roles/"+r.GUID)
	delete(out, "metadata")
	out["type"] = r.Type
	rels := map[string]any{"user": rel(r.UserGUID), "space": map[string]any{"data": nil}, "organization": map[string]any{"data": nil}}
	if r.SpaceGUID != "" {
		rels["space"] = rel(r.SpaceGUID)
	}
	if r.OrgGUID != "" {
		rels["organization"] = rel(r.OrgGUID)
	}
	out["relationships"] = rels
	return out
}

func (s *Sim) userByGUID(g string) *User {
	for _, u := range s.st.Users {
		if u.GUID == g {
			return u
		}
	}
	return nil
}

func (s *Sim) listRoles(req *request) {
	q := req.r.URL.Query()
	types, users, spaces, orgs, guids := queryFilter(q, "types"), queryFilter(q, "user_guids"), queryFilter(q, "space_guids"), queryFilter(q, "organization_guids"), queryFilter(q, "guids")
	s.mu.Lock()
	defer s.mu.Unlock()
	var items, incUsers []any
	seen := map[string]bool{}
	for _, r := range sorted(s.st.Roles, func(x *Role) int64 { return x.Seq }) {
		if !types.has(r.Type, false) || !users.has(r.UserGUID, false) || !guids.has(r.GUID, false) {
			continue
		}
		if spaces != nil && !spaces.has(r.SpaceGUID, false) || orgs != nil && !orgs.has(r.OrgGUID, false) {
			continue
		}
		items = append(items, s.renderRole(req.base, r))
		if strings.Contains(q.Get("include"), "user") && !seen[r.UserGUID] {
			seen[r.UserGUID] = true
			if u := s.userByGUID(r.UserGUID); u != nil {
				incUsers = append(incUsers, s.renderUser(req.base, u))
			}
		}
	}
	var inc map[string]any
	if strings.Contains(q.Get("include"), "user") {
		inc = map[string]any{"users": orEmptyAny(incUsers)}
	}
	s.page(req, items, inc)
}

func (s *Sim) getRole(req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := or404(req, s.st.Roles, errNotFound("Role"))
	if r == nil {
		return
	}
	writeJSON(req.w, http.StatusOK, s.renderRole(req.base, r))
}

func (s *Sim) deleteRole(req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Roles[req.params[0]] == nil {
		writeError(req.w, errNotFound("Role"))
		return
	}
	delete(s.st.Roles, req.params[0])
	s.dirty = true
	_ = s.saveLocked()
	req.w.WriteHeader(http.StatusNoContent)
}

// createRole is POST /v3/roles with the user by guid, or by username and
// origin (resolved at UAA, as the real Cloud Controller does).
func (s *Sim) createRole(req *request) {
	body, aerr := decodeBody(req, "type", "relationships")
	if aerr != nil {
		writeError(req.w, aerr)
		return
	}
	var typ string
	_ = json.Unmarshal(body["type"], &typ)
	isSpace, isOrg := slices.Contains(spaceRoleTypes, typ), slices.Contains(orgRoleTypes, typ)
	if !isSpace && !isOrg {
		writeError(req.w, errUnprocessable("Type must be one of the allowed types"))
		return
	}
	var rels struct {
		User *struct {
			Data struct {
				GUID     string `json:"guid"`
				Username string `json:"username"`
				Origin   string `json:"origin"`
			} `json:"data"`
		} `json:"user"`
		Space *struct {
			Data struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"space"`
		Organization *struct {
			Data struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"organization"`
	}
	if json.Unmarshal(body["relationships"], &rels) != nil || rels.User == nil {
		writeError(req.w, errUnprocessable("Relationships User can't be blank"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var user *User
	ud := rels.User.Data
	for _, u := range s.st.Users {
		if (ud.GUID != "" && u.GUID == ud.GUID) || (ud.GUID == "" && u.Name == ud.Username && u.Origin == cmp.Or(ud.Origin, "uaa")) {
			user = u
		}
	}
	if user == nil {
		if ud.GUID != "" {
			writeError(req.w, errUnprocessable("Invalid user. Ensure that the user exists and you have access to it."))
		} else {
			writeError(req.w, errUnprocessable("No user exists with the username '"+ud.Username+"' and origin '"+cmp.Or(ud.Origin, "uaa")+"'."))
		}
		return
	}
	r := &Role{Type: typ, UserGUID: user.GUID}
	switch {
	case isSpace:
		if rels.Space == nil || s.st.Spaces[rels.Space.Data.GUID] == nil {
			writeError(req.w, errUnprocessable("Invalid space. Ensure that the space exists and you have access to it."))
			return
		}
		sp := s.st.Spaces[rels.Space.Data.GUID]
		r.SpaceGUID = sp.GUID
		if !s.hasOrgRole(user.GUID, sp.OrgGUID) {
			writeError(req.w, errUnprocessable("Users cannot be assigned roles in a space if they do not have a role in that space's organization."))
			return
		}
	default:
		if rels.Organization == nil || s.st.Orgs[rels.Organization.Data.GUID] == nil {
			writeError(req.w, errUnprocessable("Invalid organization. Ensure that the organization exists and you have access to it."))
			return
		}
		r.OrgGUID = rels.Organization.Data.GUID
	}
	for _, o := range s.st.Roles {
		if o.Type == r.Type && o.UserGUID == r.UserGUID && o.SpaceGUID == r.SpaceGUID && o.OrgGUID == r.OrgGUID {
			where := "space"
			if isOrg {
				where = "organization"
			}
			writeError(req.w, errUnprocessable("User '"+user.Name+"' already has '"+typ+"' role in "+where+"."))
			return
		}
	}
	r.meta = s.newMeta()
	s.st.Roles[r.GUID] = r
	s.dirty = true
	_ = s.saveLocked()
	writeJSON(req.w, http.StatusCreated, s.renderRole(req.base, r))
}

func (s *Sim) hasOrgRole(userGUID, orgGUID string) bool {
	for _, r := range s.st.Roles {
		if r.UserGUID == userGUID && r.OrgGUID == orgGUID {
			return true
		}
	}
	return false
}
