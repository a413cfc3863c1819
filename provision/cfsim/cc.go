package cfsim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

const ts = "2006-01-02T15:04:05Z"

func href(u string) map[string]any { return map[string]any{"href": u} }

func (s *Sim) root(req *request) {
	b := req.base
	writeJSON(req.w, http.StatusOK, map[string]any{"links": map[string]any{
		"self":                href(b),
		"bits_service":        nil,
		"cloud_controller_v2": nil,
		"cloud_controller_v3": map[string]any{"href": b + "/v3", "meta": map[string]any{"version": APIVersion}},
		"network_policy_v0":   href(b + "/networking/v0/external"),
		"network_policy_v1":   href(b + "/networking/v1/external"),
		"login":               href(b + "/uaa"),
		"uaa":                 href(b + "/uaa"),
		"credhub":             nil,
		"routing":             nil,
		"logging":             nil,
		"log_cache":           nil,
		"log_stream":          nil,
		"app_ssh":             map[string]any{"href": "ssh.sim.local:2222", "meta": map[string]any{"host_key_fingerprint": "sim", "oauth_client": "ssh-proxy"}},
	}})
}

func (s *Sim) v3root(req *request) {
	b := req.base + "/v3"
	links := map[string]any{"self": href(b)}
	for _, r := range []string{"organizations", "spaces", "service_brokers", "service_offerings", "service_plans", "service_instances", "service_credential_bindings", "jobs", "info"} {
		links[r] = href(b + "/" + r)
	}
	writeJSON(req.w, http.StatusOK, map[string]any{"links": links})
}

func (s *Sim) info(req *request) {
	writeJSON(req.w, http.StatusOK, map[string]any{
		"build": "cfsim", "cli_version": map[string]any{"minimum": "8.0.0", "recommended": "8.17.0"},
		"custom": map[string]any{}, "description": "xsprov Cloud Foundry simulator", "name": "cfsim", "version": 180,
		"osbapi_version": "2.15",
		"rate_limits":    map[string]any{"enabled": s.opts.rateLimit > 0, "general_limit": s.opts.rateLimit, "reset_interval_in_minutes": int(s.opts.rateWindow.Minutes())},
		"links":          map[string]any{"self": href(req.base + "/v3/info"), "support": href("https://github.com/xsprov/xsprov")},
	})
}

func (m meta) render() map[string]any {
	return map[string]any{"labels": orEmpty(m.Labels), "annotations": orEmpty(m.Annotations)}
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func base(m meta, self string) map[string]any {
	return map[string]any{
		"guid": m.GUID, "created_at": m.Created.Format(ts), "updated_at": m.Updated.Format(ts),
		"metadata": m.render(), "links": map[string]any{"self": href(self)},
	}
}

func rel(guid string) map[string]any { return map[string]any{"data": map[string]any{"guid": guid}} }

func (s *Sim) renderOrg(b string, o *Org) map[string]any {
	r := base(o.meta, b+"/v3/organizations/"+o.GUID)
	r["name"] = o.Name
	r["suspended"] = false
	r["relationships"] = map[string]any{"quota": rel("quota-default")}
	return r
}

func (s *Sim) renderSpace(b string, sp *Space) map[string]any {
	r := base(sp.meta, b+"/v3/spaces/"+sp.GUID)
	r["name"] = sp.Name
	r["relationships"] = map[string]any{"organization": rel(sp.OrgGUID), "quota": map[string]any{"data": nil}}
	r["links"].(map[string]any)["organization"] = href(b + "/v3/organizations/" + sp.OrgGUID)
	return r
}

func (s *Sim) renderBroker(b string, br *Broker) map[string]any {
	r := base(br.meta, b+"/v3/service_brokers/"+br.GUID)
	r["name"] = br.Name
	r["url"] = br.URL
	r["relationships"] = map[string]any{}
	return r
}

func (s *Sim) renderOffering(b string, o *Offering) map[string]any {
	r := base(o.meta, b+"/v3/service_offerings/"+o.GUID)
	r["name"] = o.Name
	r["description"] = "Manage application authorizations and trust to identity providers"
	r["available"] = true
	r["tags"] = []string{"xsuaa"}
	r["requires"] = []string{}
	r["shareable"] = false
	r["documentation_url"] = "https://help.sap.com/docs/btp"
	r["broker_catalog"] = map[string]any{
		"id": o.CatalogID, "metadata": map[string]any{"displayName": "Authorization and Trust Management Service"},
		"features": map[string]any{"plan_updateable": true, "bindable": true, "instances_retrievable": !s.opts.noParams, "bindings_retrievable": true, "allow_context_updates": false},
	}
	r["relationships"] = map[string]any{"service_broker": rel(o.BrokerGUID)}
	r["links"].(map[string]any)["service_plans"] = href(b + "/v3/service_plans?service_offering_guids=" + o.GUID)
	r["links"].(map[string]any)["service_broker"] = href(b + "/v3/service_brokers/" + o.BrokerGUID)
	return r
}

func (s *Sim) renderPlan(b string, p *Plan) map[string]any {
	r := base(p.meta, b+"/v3/service_plans/"+p.GUID)
	r["name"] = p.Name
	r["visibility_type"] = "public"
	if len(p.HiddenIn) > 0 {
		r["visibility_type"] = "organization"
	}
	r["available"] = true
	r["free"] = true
	r["costs"] = []any{}
	r["description"] = "Plan " + p.Name
	r["maintenance_info"] = map[string]any{}
	r["broker_catalog"] = map[string]any{
		"id": p.CatalogID, "metadata": map[string]any{}, "maximum_polling_duration": nil,
		"features": map[string]any{"bindable": true, "plan_updateable": true},
	}
	r["schemas"] = map[string]any{
		"service_instance": map[string]any{"create": map[string]any{"parameters": map[string]any{}}, "update": map[string]any{"parameters": map[string]any{}}},
		"service_binding":  map[string]any{"create": map[string]any{"parameters": map[string]any{}}},
	}
	r["relationships"] = map[string]any{"service_offering": rel(p.OfferingGUID)}
	r["links"].(map[string]any)["service_offering"] = href(b + "/v3/service_offerings/" + p.OfferingGUID)
	r["links"].(map[string]any)["visibility"] = href(b + "/v3/service_plans/" + p.GUID + "/visibility")
	return r
}

func renderLastOp(l LastOp) map[string]any {
	return map[string]any{"type": l.Type, "state": l.State, "description": l.Description,
		"created_at": l.Created.Format(ts), "updated_at": l.Updated.Format(ts)}
}

func (s *Sim) renderInstance(b string, i *Instance) map[string]any {
	self := b + "/v3/service_instances/" + i.GUID
	r := base(i.meta, self)
	r["name"] = i.Name
	r["tags"] = orEmptySlice(i.Tags)
	r["type"] = "managed"
	r["maintenance_info"] = map[string]any{}
	r["upgrade_available"] = false
	r["dashboard_url"] = nil
	r["last_operation"] = renderLastOp(i.LastOp)
	r["relationships"] = map[string]any{"space": rel(i.SpaceGUID), "service_plan": rel(i.PlanGUID)}
	l := r["links"].(map[string]any)
	l["space"] = href(b + "/v3/spaces/" + i.SpaceGUID)
	l["service_plan"] = href(b + "/v3/service_plans/" + i.PlanGUID)
	l["parameters"] = href(self + "/parameters")
	l["shared_spaces"] = href(self + "/relationships/shared_spaces")
	l["service_credential_bindings"] = href(b + "/v3/service_credential_bindings?service_instance_guids=" + i.GUID)
	l["service_route_bindings"] = href(b + "/v3/service_route_bindings?service_instance_guids=" + i.GUID)
	return r
}

func orEmptySlice(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

func (s *Sim) renderKey(b string, k *Key) map[string]any {
	self := b + "/v3/service_credential_bindings/" + k.GUID
	r := base(k.meta, self)
	r["name"] = k.Name
	r["type"] = "key"
	r["last_operation"] = renderLastOp(k.LastOp)
	r["relationships"] = map[string]any{"service_instance": rel(k.InstanceGUID)}
	l := r["links"].(map[string]any)
	l["details"] = href(self + "/details")
	l["parameters"] = href(self + "/parameters")
	l["service_instance"] = href(b + "/v3/service_instances/" + k.InstanceGUID)
	return r
}

func (s *Sim) renderJob(b string, j *Job) map[string]any {
	r := base(j.meta, b+"/v3/jobs/"+j.GUID)
	delete(r, "metadata")
	r["operation"] = j.Operation
	r["state"] = j.State
	errs := make([]map[string]any, 0, len(j.Errors))
	for _, e := range j.Errors {
		errs = append(errs, map[string]any{"code": e.Code, "title": e.Title, "detail": e.Detail})
	}
	r["errors"] = errs
	ws := make([]map[string]any, 0, len(j.Warnings))
	for _, w := range j.Warnings {
		ws = append(ws, map[string]any{"detail": w})
	}
	r["warnings"] = ws
	l := r["links"].(map[string]any)
	switch j.ResourceType {
	case "service_instance":
		if _, ok := s.st.Instances[j.ResourceGUID]; ok {
			name := "service_instances"
			if j.Operation == "service_instance.delete" {
				name = "service_instance"
			}
			l[name] = href(b + "/v3/service_instances/" + j.ResourceGUID)
		}
	case "service_credential_binding":
		if _, ok := s.st.Keys[j.ResourceGUID]; ok {
			l["service_credential_binding"] = href(b + "/v3/service_credential_bindings/" + j.ResourceGUID)
		}
	}
	return r
}

// ---- read endpoints ----

func (s *Sim) listOrgs(req *request) {
	q := req.r.URL.Query()
	names, guids := queryFilter(q, "names"), queryFilter(q, "guids")
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []any
	for _, o := range sorted(s.st.Orgs, func(o *Org) int64 { return o.Seq }) {
		if names.has(o.Name, true) && guids.has(o.GUID, false) && labelSelector(q.Get("label_selector"), o.Labels) {
			items = append(items, s.renderOrg(req.base, o))
		}
	}
	s.page(req, items, nil)
}

func (s *Sim) getOrg(req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.st.Orgs[req.params[0]]
	if o == nil {
		writeError(req.w, errNotFound("Organization"))
		return
	}
	writeJSON(req.w, http.StatusOK, s.renderOrg(req.base, o))
}

func (s *Sim) listSpaces(req *request) {
	q := req.r.URL.Query()
	names, guids, orgs := queryFilter(q, "names"), queryFilter(q, "guids"), queryFilter(q, "organization_guids")
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []any
	var incOrgs []any
	seen := map[string]bool{}
	for _, sp := range sorted(s.st.Spaces, func(x *Space) int64 { return x.Seq }) {
		if !names.has(sp.Name, true) || !guids.has(sp.GUID, false) || !orgs.has(sp.OrgGUID, false) || !labelSelector(q.Get("label_selector"), sp.Labels) {
			continue
		}
		items = append(items, s.renderSpace(req.base, sp))
		if q.Get("include") == "organization" && !seen[sp.OrgGUID] {
			seen[sp.OrgGUID] = true
			incOrgs = append(incOrgs, s.renderOrg(req.base, s.st.Orgs[sp.OrgGUID]))
		}
	}
	var inc map[string]any
	if q.Get("include") == "organization" {
		inc = map[string]any{"organizations": orEmptyAny(incOrgs)}
	}
	s.page(req, items, inc)
}

func orEmptyAny(v []any) []any {
	if v == nil {
		return []any{}
	}
	return v
}

func (s *Sim) getSpace(req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.st.Spaces[req.params[0]]
	if sp == nil {
		writeError(req.w, errNotFound("Space"))
		return
	}
	r := s.renderSpace(req.base, sp)
	if req.r.URL.Query().Get("include") == "organization" {
		r["included"] = map[string]any{"organizations": []any{s.renderOrg(req.base, s.st.Orgs[sp.OrgGUID])}}
	}
	writeJSON(req.w, http.StatusOK, r)
}

func (s *Sim) listBrokers(req *request) {
	q := req.r.URL.Query()
	names, guids := queryFilter(q, "names"), queryFilter(q, "guids")
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []any
	for _, b := range sorted(s.st.Brokers, func(x *Broker) int64 { return x.Seq }) {
		if names.has(b.Name, false) && guids.has(b.GUID, false) {
			items = append(items, s.renderBroker(req.base, b))
		}
	}
	s.page(req, items, nil)
}

func (s *Sim) listOfferings(req *request) {
	q := req.r.URL.Query()
	names, guids := queryFilter(q, "names"), queryFilter(q, "guids")
	bnames, bguids := queryFilter(q, "service_broker_names"), queryFilter(q, "service_broker_guids")
	s.mu.Lock()
	defer s.mu.Unlock()
	var items, brokers []any
	seen := map[string]bool{}
	fields := q.Get("fields[service_broker]")
	for _, o := range sorted(s.st.Offerings, func(x *Offering) int64 { return x.Seq }) {
		br := s.st.Brokers[o.BrokerGUID]
		if names.has(o.Name, true) && guids.has(o.GUID, false) && bnames.has(br.Name, false) && bguids.has(br.GUID, false) {
			items = append(items, s.renderOffering(req.base, o))
			if fields != "" && !seen[br.GUID] {
				seen[br.GUID] = true
				brokers = append(brokers, pickFields(s.renderBroker(req.base, br), strings.Split(fields, ",")))
			}
		}
	}
	var inc map[string]any
	if fields != "" {
		inc = map[string]any{"service_brokers": orEmptyAny(brokers)}
	}
	s.page(req, items, inc)
}

func (s *Sim) getOffering(req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.st.Offerings[req.params[0]]
	if o == nil {
		writeError(req.w, errNotFound("Service offering"))
		return
	}
	writeJSON(req.w, http.StatusOK, s.renderOffering(req.base, o))
}

func (s *Sim) listPlans(req *request) {
	q := req.r.URL.Query()
	names, guids := queryFilter(q, "names"), queryFilter(q, "guids")
	onames, oguids := queryFilter(q, "service_offering_names"), queryFilter(q, "service_offering_guids")
	bnames, bguids := queryFilter(q, "service_broker_names"), queryFilter(q, "service_broker_guids")
	spaces, orgs := queryFilter(q, "space_guids"), queryFilter(q, "organization_guids")
	insts := queryFilter(q, "service_instance_guids")
	s.mu.Lock()
	defer s.mu.Unlock()
	var items, incOff, incBrokers []any
	seen := map[string]bool{}
	for _, p := range sorted(s.st.Plans, func(x *Plan) int64 { return x.Seq }) {
		o := s.st.Offerings[p.OfferingGUID]
		br := s.st.Brokers[o.BrokerGUID]
		if !names.has(p.Name, true) || !guids.has(p.GUID, false) || !onames.has(o.Name, true) || !oguids.has(o.GUID, false) ||
			!bnames.has(br.Name, false) || !bguids.has(br.GUID, false) {
			continue
		}
		if spaces != nil && !s.planVisibleInAny(p, spaces) {
			continue
		}
		if orgs != nil && !s.planVisibleInOrgs(p, orgs) {
			continue
		}
		if insts != nil && !s.planUsedBy(p, insts) {
			continue
		}
		items = append(items, s.renderPlan(req.base, p))
		if strings.Contains(q.Get("include"), "service_offering") && !seen[o.GUID] {
			seen[o.GUID] = true
			incOff = append(incOff, s.renderOffering(req.base, o))
		}
		if bf := q.Get("fields[service_offering.service_broker]"); bf != "" && !seen["broker:"+br.GUID] {
			seen["broker:"+br.GUID] = true
			incBrokers = append(incBrokers, pickFields(s.renderBroker(req.base, br), strings.Split(bf, ",")))
		}
	}
	var inc map[string]any
	if strings.Contains(q.Get("include"), "service_offering") || q.Has("fields[service_offering.service_broker]") {
		inc = map[string]any{}
		if strings.Contains(q.Get("include"), "service_offering") {
			inc["service_offerings"] = orEmptyAny(incOff)
		}
		if q.Has("fields[service_offering.service_broker]") {
			inc["service_brokers"] = orEmptyAny(incBrokers)
		}
	}
	s.page(req, items, inc)
}

func (s *Sim) planVisibleInAny(p *Plan, spaces filter) bool {
	for _, sg := range spaces {
		if _, ok := s.st.Spaces[sg]; ok && p.visibleIn(sg) {
			return true
		}
	}
	return false
}

func (s *Sim) planVisibleInOrgs(p *Plan, orgs filter) bool {
	for _, sp := range s.st.Spaces {
		if orgs.has(sp.OrgGUID, false) && p.visibleIn(sp.GUID) {
			return true
		}
	}
	return false
}

func (s *Sim) planUsedBy(p *Plan, insts filter) bool {
	for _, g := range insts {
		if i := s.st.Instances[g]; i != nil && i.PlanGUID == p.GUID {
			return true
		}
	}
	return false
}

func (s *Sim) getPlan(req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.st.Plans[req.params[0]]
	if p == nil {
		writeError(req.w, errNotFound("Service plan"))
		return
	}
	r := s.renderPlan(req.base, p)
	if strings.Contains(req.r.URL.Query().Get("include"), "service_offering") {
		r["included"] = map[string]any{"service_offerings": []any{s.renderOffering(req.base, s.st.Offerings[p.OfferingGUID])}}
	}
	writeJSON(req.w, http.StatusOK, r)
}

func (s *Sim) listInstances(req *request) {
	q := req.r.URL.Query()
	names, guids, spaces, orgs := queryFilter(q, "names"), queryFilter(q, "guids"), queryFilter(q, "space_guids"), queryFilter(q, "organization_guids")
	plans, planNames := queryFilter(q, "service_plan_guids"), queryFilter(q, "service_plan_names")
	typ := q.Get("type")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	var items []any
	var matched []*Instance
	if typ == "" || typ == "managed" {
		for _, i := range sorted(s.st.Instances, func(x *Instance) int64 { return x.Seq }) {
			sp := s.st.Spaces[i.SpaceGUID]
			p := s.st.Plans[i.PlanGUID]
			if names.has(i.Name, false) && guids.has(i.GUID, false) && spaces.has(i.SpaceGUID, false) && orgs.has(sp.OrgGUID, false) &&
				plans.has(i.PlanGUID, false) && planNames.has(p.Name, true) && labelSelector(q.Get("label_selector"), i.Labels) {
				items = append(items, s.renderInstance(req.base, i))
				matched = append(matched, i)
			}
		}
	}
	s.page(req, items, s.fieldsIncluded(q, matched))
}

// pickFields keeps the guid and the named fields of a rendered resource
// ("relationships.x" keeps one relationship), as CC's fields parameter does.
func pickFields(full map[string]any, fields []string) map[string]any {
	out := map[string]any{"guid": full["guid"]}
	for _, f := range fields {
		if rel, ok := strings.CutPrefix(f, "relationships."); ok {
			rels, _ := out["relationships"].(map[string]any)
			if rels == nil {
				rels = map[string]any{}
				out["relationships"] = rels
			}
			if fr, ok := full["relationships"].(map[string]any); ok {
				rels[rel] = fr[rel]
			}
			continue
		}
		if v, ok := full[f]; ok {
			out[f] = v
		}
	}
	return out
}

// fieldsIncluded answers the fields[...] parameters of service instance
// reads: the named fields of related resources, under "included".
func (s *Sim) fieldsIncluded(q url.Values, insts []*Instance) map[string]any {
	want := map[string][]string{}
	for k, v := range q {
		if strings.HasPrefix(k, "fields[") && strings.HasSuffix(k, "]") {
			want[k[len("fields["):len(k)-1]] = strings.Split(strings.Join(v, ","), ",")
		}
	}
	if len(want) == 0 {
		return nil
	}
	inc := map[string]any{}
	add := func(key, guid string, fields []string, full func() map[string]any) {
		list, _ := inc[key].([]any)
		for _, x := range list {
			if x.(map[string]any)["guid"] == guid {
				return
			}
		}
		m := pickFields(full(), fields)
		inc[key] = append(list, m)
	}
	for _, i := range insts {
		plan := s.st.Plans[i.PlanGUID]
		off := s.st.Offerings[plan.OfferingGUID]
		br := s.st.Brokers[off.BrokerGUID]
		sp := s.st.Spaces[i.SpaceGUID]
		org := s.st.Orgs[sp.OrgGUID]
		b := "http://unused"
		if f, ok := want["service_plan"]; ok {
			add("service_plans", plan.GUID, f, func() map[string]any { return s.renderPlan(b, plan) })
		}
		if f, ok := want["service_plan.service_offering"]; ok {
			add("service_offerings", off.GUID, f, func() map[string]any { return s.renderOffering(b, off) })
		}
		if f, ok := want["service_plan.service_offering.service_broker"]; ok {
			add("service_brokers", br.GUID, f, func() map[string]any { return s.renderBroker(b, br) })
		}
		if f, ok := want["space"]; ok {
			add("spaces", sp.GUID, f, func() map[string]any { return s.renderSpace(b, sp) })
		}
		if f, ok := want["space.organization"]; ok {
			add("organizations", org.GUID, f, func() map[string]any { return s.renderOrg(b, org) })
		}
	}
	return inc
}

// instanceOr404 returns the instance the path names, or answers 404 and
// returns nil. Callers hold s.mu.
func (s *Sim) instanceOr404(req *request) *Instance {
	i := s.st.Instances[req.params[0]]
	if i == nil {
		writeError(req.w, errInstanceNotFound())
	}
	return i
}

// keyOr404 is instanceOr404 for keys.
func (s *Sim) keyOr404(req *request) *Key {
	k := s.st.Keys[req.params[0]]
	if k == nil {
		writeError(req.w, errKeyNotFound())
	}
	return k
}

func (s *Sim) getInstance(req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	i := s.instanceOr404(req)
	if i == nil {
		return
	}
	r := s.renderInstance(req.base, i)
	if inc := s.fieldsIncluded(req.r.URL.Query(), []*Instance{i}); inc != nil {
		r["included"] = inc
	}
	writeJSON(req.w, http.StatusOK, r)
}

func (s *Sim) featureFlag(req *request) {
	name := req.params[0]
	known := map[string]bool{"service_instance_sharing": false, "service_instance_creation": true, "user_org_creation": false,
		"space_developer_env_var_visibility": true, "app_bits_upload": true, "diego_docker": false, "hide_marketplace_from_unauthenticated_users": false}
	enabled, ok := known[name]
	if !ok {
		writeError(req.w, errNotFound("Feature flag"))
		return
	}
	writeJSON(req.w, http.StatusOK, map[string]any{"name": name, "enabled": enabled, "updated_at": nil, "custom_error_message": nil,
		"links": map[string]any{"self": href(req.base + "/v3/feature_flags/" + name)}})
}

func (s *Sim) sharedSpaces(req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Instances[req.params[0]] == nil {
		writeError(req.w, errInstanceNotFound())
		return
	}
	writeJSON(req.w, http.StatusOK, map[string]any{"data": []any{}, "links": map[string]any{"self": href(req.base + "/v3/service_instances/" + req.params[0] + "/relationships/shared_spaces")}})
}

func (s *Sim) instanceParams(req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	i := s.st.Instances[req.params[0]]
	if i == nil || (i.LastOp.Type == "create" && i.LastOp.State == "failed") {
		writeError(req.w, errInstanceNotFound())
		return
	}
	if s.opts.noParams {
		writeError(req.w, &apiError{Code: 120004, Title: "CF-ServiceFetchInstanceParametersNotSupported", Detail: "This service does not support fetching service instance parameters.", status: 400})
		return
	}
	if i.Busy != "" {
		writeError(req.w, errInProgress(i.Name))
		return
	}
	p := i.Params
	if p == nil {
		p = map[string]any{}
	}
	writeJSON(req.w, http.StatusOK, p)
}

func (s *Sim) listKeys(req *request) {
	q := req.r.URL.Query()
	names, guids, insts, instNames := queryFilter(q, "names"), queryFilter(q, "guids"), queryFilter(q, "service_instance_guids"), queryFilter(q, "service_instance_names")
	types := queryFilter(q, "type")
	if q.Has("app_guids") || q.Has("app_names") {
		types = filter{} // the simulator has no apps, so no app bindings
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	var items, incInst []any
	seen := map[string]bool{}
	for _, k := range sorted(s.st.Keys, func(x *Key) int64 { return x.Seq }) {
		i := s.st.Instances[k.InstanceGUID]
		if !names.has(k.Name, false) || !guids.has(k.GUID, false) || !insts.has(k.InstanceGUID, false) || !instNames.has(i.Name, false) ||
			!types.has("key", false) || !labelSelector(q.Get("label_selector"), k.Labels) {
			continue
		}
		items = append(items, s.renderKey(req.base, k))
		if q.Get("include") == "service_instance" && !seen[i.GUID] {
			seen[i.GUID] = true
			incInst = append(incInst, s.renderInstance(req.base, i))
		}
	}
	var inc map[string]any
	if q.Get("include") != "" {
		inc = map[string]any{"service_instances": orEmptyAny(incInst), "apps": []any{}}
	}
	s.page(req, items, inc)
}

func (s *Sim) getKey(req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	k := s.keyOr404(req)
	if k == nil {
		return
	}
	r := s.renderKey(req.base, k)
	if req.r.URL.Query().Get("include") == "service_instance" {
		r["included"] = map[string]any{"service_instances": []any{s.renderInstance(req.base, s.st.Instances[k.InstanceGUID])}}
	}
	writeJSON(req.w, http.StatusOK, r)
}

func (s *Sim) keyDetails(req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	k := s.st.Keys[req.params[0]]
	if k == nil {
		writeError(req.w, errUnknownRequest())
		return
	}
	if k.LastOp.State != "succeeded" || k.LastOp.Type != "create" {
		verb := map[string]string{"create": "Creation", "delete": "Deletion"}[k.LastOp.Type]
		what := "in progress"
		if k.LastOp.State == "failed" {
			what = "failed"
		}
		writeError(req.w, &apiError{Code: 10010, Title: "CF-ResourceNotFound", Detail: verb + " of service key " + what, status: 404})
		return
	}
	writeJSON(req.w, http.StatusOK, map[string]any{"credentials": s.credentials(req.base, k)})
}

func (s *Sim) keyParams(req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.st.Keys[req.params[0]]
	if k == nil {
		writeError(req.w, errUnknownRequest())
		return
	}
	p := map[string]any{}
	for key, v := range k.Params {
		if key != "x509" { // never echo a caller-supplied certificate back
			p[key] = v
		}
	}
	writeJSON(req.w, http.StatusOK, p)
}

func (s *Sim) getJob(req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	j := s.st.Jobs[req.params[0]]
	if j == nil {
		writeError(req.w, errNotFound("Job"))
		return
	}
	writeJSON(req.w, http.StatusOK, s.renderJob(req.base, j))
}

// ---- request bodies ----

// decodeBody reads a JSON object body, reporting malformed JSON (400 1001)
// and fields outside allowed (422).
func decodeBody(req *request, allowed ...string) (map[string]json.RawMessage, *apiError) {
	b, err := io.ReadAll(http.MaxBytesReader(req.w, req.r.Body, 1<<20))
	if err != nil {
		return nil, errMessageParse("request body too large or unreadable")
	}
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil || m == nil {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, errMessageParse(err.Error())
	}
	if dec.More() {
		return nil, errMessageParse("trailing data after the JSON object")
	}
	var unknown []string
	for k := range m {
		if !contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, errUnprocessable("Unknown field(s): '" + strings.Join(unknown, "', '") + "'")
	}
	return m, nil
}

func relGUID(raw json.RawMessage, name string) (string, bool) {
	var r map[string]struct {
		Data *struct {
			GUID string `json:"guid"`
		} `json:"data"`
	}
	if json.Unmarshal(raw, &r) != nil {
		return "", false
	}
	if v, ok := r[name]; ok && v.Data != nil {
		return v.Data.GUID, true
	}
	return "", false
}

func decodeObject(raw json.RawMessage) (map[string]any, bool) {
	if raw == nil {
		return nil, true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, false
	}
	if m == nil && string(raw) != "null" {
		return nil, false
	}
	return m, true
}

type metadataBody struct {
	Labels      map[string]*string `json:"labels"`
	Annotations map[string]*string `json:"annotations"`
}

func applyMetadata(m *meta, raw json.RawMessage) *apiError {
	if raw == nil {
		return nil
	}
	var md metadataBody
	if err := json.Unmarshal(raw, &md); err != nil {
		return errUnprocessable("Metadata must be an object")
	}
	merge := func(dst *map[string]string, src map[string]*string) {
		for k, v := range src {
			if *dst == nil {
				*dst = map[string]string{}
			}
			if v == nil {
				delete(*dst, k)
			} else {
				(*dst)[k] = *v
			}
		}
	}
	for k := range md.Labels {
		if k == "" || len(k) > 316 || strings.ContainsAny(k, " ,=!") {
			return errUnprocessable("Metadata label key error: '" + k + "' is not a valid label key")
		}
	}
	merge(&m.Labels, md.Labels)
	merge(&m.Annotations, md.Annotations)
	return nil
}

// ---- service instances ----

func (s *Sim) createInstance(req *request) {
	body, aerr := decodeBody(req, "type", "name", "relationships", "parameters", "tags", "metadata")
	if aerr != nil {
		writeError(req.w, aerr)
		return
	}
	var typ, name string
	if json.Unmarshal(body["type"], &typ) != nil || (typ != "managed" && typ != "user-provided") {
		writeError(req.w, errUnprocessable("Type must be one of 'managed', 'user-provided'"))
		return
	}
	if typ != "managed" {
		writeError(req.w, errUnprocessable("The simulator supports managed service instances only"))
		return
	}
	if json.Unmarshal(body["name"], &name) != nil || name == "" {
		writeError(req.w, errUnprocessable("Name must be a string, Name can't be blank"))
		return
	}
	spaceGUID, ok1 := relGUID(body["relationships"], "space")
	planGUID, ok2 := relGUID(body["relationships"], "service_plan")
	if !ok1 {
		writeError(req.w, errUnprocessable("Relationships Space can't be blank"))
		return
	}
	if !ok2 {
		writeError(req.w, errUnprocessable("Relationships Service plan can't be blank"))
		return
	}
	params, ok := decodeObject(body["parameters"])
	if !ok {
		writeError(req.w, errUnprocessable("Parameters must be an object"))
		return
	}
	var tags []string
	if body["tags"] != nil && json.Unmarshal(body["tags"], &tags) != nil {
		writeError(req.w, errUnprocessable("Tags must be a list of strings"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	sp := s.st.Spaces[spaceGUID]
	if sp == nil {
		writeError(req.w, errUnprocessable("Invalid space. Ensure that the space exists and you have access to it."))
		return
	}
	plan := s.st.Plans[planGUID]
	if plan == nil || !plan.visibleIn(spaceGUID) {
		writeError(req.w, errUnprocessable("Invalid service plan. Ensure that the service plan exists, is available, and you have access to it."))
		return
	}
	for _, i := range s.st.Instances {
		if i.SpaceGUID == spaceGUID && i.Name == name {
			if i.LastOp.Type == "create" && i.LastOp.State == "failed" {
				s.removeInstance(i) // CC replaces an instance whose create failed
				continue
			}
			writeError(req.w, errUnprocessable("The service instance name is taken: "+name+"."))
			return
		}
	}
	now := s.now()
	inst := &Instance{meta: s.newMeta(), Name: name, SpaceGUID: spaceGUID, PlanGUID: planGUID, Tags: tags, Params: params,
		LastOp: LastOp{Type: "create", State: "initial", Created: now, Updated: now}}
	if aerr := applyMetadata(&inst.meta, body["metadata"]); aerr != nil {
		writeError(req.w, aerr)
		return
	}
	s.st.Instances[inst.GUID] = inst
	job := s.newJob("service_instance.create", "service_instance", inst.GUID, OpCreate)
	inst.Busy = job.GUID
	s.brokerProvision(job, inst)
	s.settle(job)
	s.accepted(req, job)
}

func (s *Sim) updateInstance(req *request) {
	body, aerr := decodeBody(req, "name", "tags", "parameters", "relationships", "maintenance_info", "metadata")
	if aerr != nil {
		writeError(req.w, aerr)
		return
	}
	params, ok := decodeObject(body["parameters"])
	if !ok {
		writeError(req.w, errUnprocessable("Parameters must be an object"))
		return
	}
	var newName *string
	if body["name"] != nil {
		var n string
		if json.Unmarshal(body["name"], &n) != nil || n == "" {
			writeError(req.w, errUnprocessable("Name must be a string"))
			return
		}
		newName = &n
	}
	var tags []string
	hasTags := body["tags"] != nil
	if hasTags && string(body["tags"]) != "null" && json.Unmarshal(body["tags"], &tags) != nil {
		writeError(req.w, errUnprocessable("Tags must be a list of strings"))
		return
	}
	newPlan, hasPlan := relGUID(body["relationships"], "service_plan")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	i := s.instanceOr404(req)
	if i == nil {
		return
	}
	if i.LastOp.Type == "create" && i.LastOp.State == "failed" {
		writeError(req.w, &apiError{Code: 60004, Title: "CF-ServiceInstanceNotFound", Detail: "The service instance could not be found: " + i.GUID, status: 404})
		return
	}
	metadataOnly := body["parameters"] == nil && !hasPlan && newName == nil && !hasTags && body["maintenance_info"] == nil
	if i.Busy != "" && !metadataOnly {
		writeError(req.w, errInProgress(i.Name))
		return
	}
	if hasPlan {
		p := s.st.Plans[newPlan]
		if p == nil || !p.visibleIn(i.SpaceGUID) || p.OfferingGUID != s.st.Plans[i.PlanGUID].OfferingGUID {
			writeError(req.w, errUnprocessable("Invalid service plan. Ensure that the service plan exists, is available, and you have access to it."))
			return
		}
	}
	if newName != nil && *newName != i.Name {
		for _, o := range s.st.Instances {
			if o.SpaceGUID == i.SpaceGUID && o.Name == *newName {
				writeError(req.w, errUnprocessable("The service instance name is taken: "+*newName))
				return
			}
		}
	}
	if aerr := applyMetadata(&i.meta, body["metadata"]); aerr != nil {
		writeError(req.w, aerr)
		return
	}
	if newName != nil {
		i.Name = *newName
	}
	if hasTags {
		i.Tags = tags
	}
	i.Updated = s.now()
	s.dirty = true
	if body["parameters"] == nil && (!hasPlan || newPlan == i.PlanGUID) {
		writeJSON(req.w, http.StatusOK, s.renderInstance(req.base, i))
		return
	}
	job := s.newJob("service_instance.update", "service_instance", i.GUID, OpUpdate)
	job.NewParams, job.NewPlan = params, newPlan
	if body["parameters"] == nil {
		job.NewParams = i.Params
	}
	if !hasPlan {
		job.NewPlan = i.PlanGUID
	}
	i.Busy = job.GUID
	i.LastOp = LastOp{Type: "update", State: "in progress", Created: s.now(), Updated: s.now()}
	s.brokerUpdate(job, i)
	s.settle(job)
	s.accepted(req, job)
}

func (s *Sim) deleteInstance(req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	i := s.instanceOr404(req)
	if i == nil {
		return
	}
	if req.r.URL.Query().Get("purge") == "true" {
		s.removeInstance(i)
		s.dirty = true
		req.w.WriteHeader(http.StatusNoContent)
		return
	}
	if i.Busy != "" {
		writeError(req.w, errUnprocessable("There is an operation in progress for the service instance."))
		return
	}
	for _, k := range s.st.Keys {
		if k.InstanceGUID == i.GUID && k.Busy != "" {
			writeError(req.w, errUnprocessable("An operation for service binding "+k.GUID+" is in progress."))
			return
		}
	}
	job := s.newJob("service_instance.delete", "service_instance", i.GUID, OpDelete)
	i.Busy = job.GUID
	i.LastOp = LastOp{Type: "delete", State: "in progress", Created: s.now(), Updated: s.now()}
	s.settle(job)
	s.accepted(req, job)
}

// ---- keys ----

func (s *Sim) createKey(req *request) {
	body, aerr := decodeBody(req, "type", "name", "relationships", "parameters", "metadata")
	if aerr != nil {
		writeError(req.w, aerr)
		return
	}
	var typ, name string
	if json.Unmarshal(body["type"], &typ) != nil || (typ != "key" && typ != "app") {
		writeError(req.w, errUnprocessable("Type must be one of 'app', 'key'"))
		return
	}
	if typ == "app" {
		writeError(req.w, errUnprocessable("The app could not be found"))
		return
	}
	if json.Unmarshal(body["name"], &name) != nil || name == "" {
		writeError(req.w, errUnprocessable("Name can't be blank"))
		return
	}
	instGUID, ok := relGUID(body["relationships"], "service_instance")
	if !ok {
		writeError(req.w, errUnprocessable("Relationships Service instance can't be blank"))
		return
	}
	params, ok := decodeObject(body["parameters"])
	if !ok {
		writeError(req.w, errUnprocessable("Parameters must be an object"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	i := s.st.Instances[instGUID]
	if i == nil {
		writeError(req.w, errUnprocessable("The service instance could not be found: '"+instGUID+"'"))
		return
	}
	if i.LastOp.Type == "create" && i.LastOp.State == "failed" {
		writeError(req.w, errUnprocessable("Service instance not found"))
		return
	}
	if i.Busy != "" {
		writeError(req.w, errUnprocessable("There is an operation in progress for the service instance"))
		return
	}
	for _, k := range s.st.Keys {
		if k.InstanceGUID == i.GUID && k.Name == name {
			writeError(req.w, errUnprocessable("The binding name is invalid. Key binding names must be unique. The service instance already has a key binding with name '"+name+"'."))
			return
		}
	}
	now := s.now()
	k := &Key{meta: s.newMeta(), Name: name, InstanceGUID: i.GUID, Params: params,
		LastOp: LastOp{Type: "create", State: "initial", Created: now, Updated: now}}
	if aerr := applyMetadata(&k.meta, body["metadata"]); aerr != nil {
		writeError(req.w, aerr)
		return
	}
	s.st.Keys[k.GUID] = k
	job := s.newJob("service_keys.create", "service_credential_binding", k.GUID, OpBind)
	k.Busy = job.GUID
	s.brokerBind(job, i, k)
	s.settle(job)
	s.accepted(req, job)
}

func (s *Sim) deleteKey(req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	k := s.keyOr404(req)
	if k == nil {
		return
	}
	if k.Busy != "" {
		writeError(req.w, errUnprocessable("There is an operation in progress for the service binding."))
		return
	}
	if i := s.st.Instances[k.InstanceGUID]; i != nil && i.Busy != "" {
		writeError(req.w, errUnprocessable("There is an operation in progress for the service instance."))
		return
	}
	job := s.newJob("service_keys.delete", "service_credential_binding", k.GUID, OpUnbind)
	k.Busy = job.GUID
	k.LastOp = LastOp{Type: "delete", State: "in progress", Created: s.now(), Updated: s.now()}
	s.settle(job)
	s.accepted(req, job)
}

// updateKey is PATCH /v3/service_credential_bindings/:guid: metadata only.
func (s *Sim) updateKey(req *request) {
	body, aerr := decodeBody(req, "metadata")
	if aerr != nil {
		writeError(req.w, aerr)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	k := s.keyOr404(req)
	if k == nil {
		return
	}
	if aerr := applyMetadata(&k.meta, body["metadata"]); aerr != nil {
		writeError(req.w, aerr)
		return
	}
	k.Updated = s.now()
	s.dirty = true
	_ = s.saveLocked()
	writeJSON(req.w, http.StatusOK, s.renderKey(req.base, k))
}

func (s *Sim) accepted(req *request, j *Job) {
	s.dirty = true
	if err := s.saveLocked(); err != nil && s.opts.logf != nil {
		s.opts.logf("save state: %v", err)
	}
	req.w.Header().Set("Location", req.base+"/v3/jobs/"+j.GUID)
	for _, w := range j.Warnings {
		req.w.Header().Add("X-Cf-Warnings", urlEscape(w))
	}
	req.w.WriteHeader(http.StatusAccepted)
}

func (s *Sim) newJob(op, rtype, rguid, brokerOp string) *Job {
	now := s.now()
	d := s.opts.delays[brokerOp]
	j := &Job{meta: s.newMeta(), Operation: op, State: "PROCESSING", ResourceType: rtype, ResourceGUID: rguid,
		PollAt: now.Add(d / 10), DoneAt: now.Add(d), Errors: []apiError{}, Warnings: []string{}}
	j.Fail = s.takeFailure(brokerOp)
	s.st.Jobs[j.GUID] = j
	return j
}
