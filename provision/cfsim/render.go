package cfsim

const ts = "2006-01-02T15:04:05Z"

func href(u string) map[string]any { return map[string]any{"href": u} }

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
		// as recorded on real SAP BTP
		"features": map[string]any{"plan_updateable": false, "bindable": true, "instances_retrievable": !s.opts.noParams, "bindings_retrievable": !s.opts.noParams, "allow_context_updates": false},
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
		"features": map[string]any{"bindable": true, "plan_updateable": false},
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

// renderLastOp renders a last operation; its description is null where the
// Cloud Controller has none (a fresh instance's, a key's without an error).
func renderLastOp(l LastOp, nullDescription bool) map[string]any {
	var desc any = l.Description
	if nullDescription {
		desc = nil
	}
	return map[string]any{"type": l.Type, "state": l.State, "description": desc,
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
	r["last_operation"] = renderLastOp(i.LastOp, i.LastOp.State == "initial")
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
	r["last_operation"] = renderLastOp(k.LastOp, k.LastOp.Description == "")
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
