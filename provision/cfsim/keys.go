package cfsim

import (
	"encoding/json"
	"net/http"
)

// keyOr404 is instanceOr404 for keys.
func (s *Sim) keyOr404(req *request) *Key { return or404(req, s.st.Keys, errKeyNotFound()) }

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
	k := s.keyOr404(req)
	if k == nil {
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
	k := s.keyOr404(req)
	if k == nil {
		return
	}
	switch {
	case k.LastOp.Type == "create" && k.LastOp.State == "failed":
		writeError(req.w, errKeyNotFound()) // the broker never made it
		return
	case s.opts.noParams:
		// real BTP: the xsuaa offering has bindings_retrievable false
		writeError(req.w, &apiError{Code: 90007, Title: "CF-ServiceFetchBindingParametersNotSupported",
			Detail: "This service does not support fetching service binding parameters.", status: 400})
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
	job := s.newJob("service_keys.create", "service_credential_binding", k.GUID, OpBind, s.asyncDescriptor(i.PlanGUID, i.Params))
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
	async := false
	if i := s.st.Instances[k.InstanceGUID]; i != nil {
		async = s.asyncDescriptor(i.PlanGUID, i.Params)
	}
	job := s.newJob("service_keys.delete", "service_credential_binding", k.GUID, OpUnbind, async)
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
