package cfsim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

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

// or404 returns the resource the path names, or answers 404 with notFound
// and returns nil. Callers hold s.mu.
func or404[T any](req *request, m map[string]*T, notFound *apiError) *T {
	r := m[req.params[0]]
	if r == nil {
		writeError(req.w, notFound)
	}
	return r
}

// instanceOr404 is or404 for instances.
func (s *Sim) instanceOr404(req *request) *Instance {
	return or404(req, s.st.Instances, errInstanceNotFound())
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

func (s *Sim) getJob(req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	j := s.st.Jobs[req.params[0]]
	if j == nil {
		writeError(req.w, errNotFound("Job"))
		return
	}
	j.Checks++
	if j.SeenAt == nil && j.State != "PROCESSING" && j.State != "POLLING" {
		now := s.now()
		j.SeenAt = &now
	}
	s.dirty = true
	writeJSON(req.w, http.StatusOK, s.renderJob(req.base, j))
}

// ---- request bodies ----

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
	job := s.newJob("service_instance.create", "service_instance", inst.GUID, OpCreate, s.asyncDescriptor(inst.PlanGUID, inst.Params))
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
	job := s.newJob("service_instance.update", "service_instance", i.GUID, OpUpdate, s.asyncDescriptor(i.PlanGUID, i.Params) || s.asyncDescriptor(i.PlanGUID, params))
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
	if i.Busy != "" && i.LastOp.Type == "create" && i.LastOp.State == "in progress" {
		// The Cloud Controller accepts deleting an instance whose
		// asynchronous create is in progress (the broker is told to
		// deprovision); the create's job ends. Its wording is the
		// simulator's own.
		if cj := s.st.Jobs[i.Busy]; cj != nil {
			cj.State, cj.Updated = "FAILED", s.now()
			cj.Errors = []apiError{{Code: 10009, Title: "CF-UnableToPerform", Detail: "provision could not be completed: the service instance is being deleted"}}
			s.release(cj)
		}
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
	job := s.newJob("service_instance.delete", "service_instance", i.GUID, OpDelete, s.asyncDescriptor(i.PlanGUID, i.Params))
	i.Busy = job.GUID
	i.LastOp = LastOp{Type: "delete", State: "in progress", Created: s.now(), Updated: s.now()}
	s.settle(job)
	s.accepted(req, job)
}

// ---- keys ----

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
