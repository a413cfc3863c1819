package cfsim

import (
	"net/http"
	"strings"
)

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
	o := or404(req, s.st.Orgs, errNotFound("Organization"))
	if o == nil {
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
	sp := or404(req, s.st.Spaces, errNotFound("Space"))
	if sp == nil {
		return
	}
	r := s.renderSpace(req.base, sp)
	if req.r.URL.Query().Get("include") == "organization" && !s.opts.noIncluded {
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
	o := or404(req, s.st.Offerings, errNotFound("Service offering"))
	if o == nil {
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
	p := or404(req, s.st.Plans, errNotFound("Service plan"))
	if p == nil {
		return
	}
	r := s.renderPlan(req.base, p)
	if strings.Contains(req.r.URL.Query().Get("include"), "service_offering") && !s.opts.noIncluded {
		r["included"] = map[string]any{"service_offerings": []any{s.renderOffering(req.base, s.st.Offerings[p.OfferingGUID])}}
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

// planVisibility is GET /v3/service_plans/:guid/visibility: "public", or
// "organization" with the orgs that see the plan (in at least one space).
func (s *Sim) planVisibility(req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := or404(req, s.st.Plans, errNotFound("Service plan"))
	if p == nil {
		return
	}
	if len(p.HiddenIn) == 0 {
		writeJSON(req.w, http.StatusOK, map[string]any{"type": "public"})
		return
	}
	orgs := []any{}
	for _, o := range sorted(s.st.Orgs, func(o *Org) int64 { return o.Seq }) {
		if s.planVisibleInOrgs(p, filter{o.GUID}) {
			orgs = append(orgs, map[string]any{"guid": o.GUID, "name": o.Name})
		}
	}
	writeJSON(req.w, http.StatusOK, map[string]any{"type": "organization", "organizations": orgs})
}
