package cfsim

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xsprov/xsprov/provision/ias"
	"github.com/xsprov/xsprov/provision/xssec"
)

// The XSUAA broker answers OSBAPI errors with a description that CC wraps;
// on BTP the text reads "Service broker xsuaa failed with: <xsuaa text>".
func brokerText(msg string) string { return "Service broker xsuaa failed with: " + msg }

var reInvalidAppChars = regexp.MustCompile(`[^A-Za-z0-9_\-/\\]`)

func (s *Sim) isXSUAA(planGUID string) bool {
	o := s.offeringOfPlan(planGUID)
	return o != nil && o.Name == "xsuaa"
}

func (s *Sim) orgOfInstance(i *Instance) *Org {
	if i == nil {
		return nil
	}
	return s.orgOfSpace(i.SpaceGUID)
}

// zoneName is the identity zone's subdomain: the org name, lower case.
func zoneName(o *Org) string { return strings.ToLower(reInvalidAppChars.ReplaceAllString(o.Name, "-")) }

// tenantIndex is the "!t<n>" suffix of app ids in an org's identity zone.
func tenantIndex(o *Org) int { return 1000 + int(o.Seq) }

// brokerProvision runs the broker's synchronous checks of a provision.
func (s *Sim) brokerProvision(j *Job, i *Instance) {
	if s.isIdentity(i.PlanGUID) {
		s.identityCheck(j, ias.Validate(i.Params))
		return
	}
	if !s.isXSUAA(i.PlanGUID) {
		return
	}
	if i.Params == nil {
		i.Params = map[string]any{}
	}
	if xssec.Field(i.Params, "xsappname") == "" {
		i.Params["xsappname"] = reInvalidAppChars.ReplaceAllString(i.Name, "_")
	}
	if msg := s.descriptorError(i.Params); msg != "" {
		s.failEarly(j, "Error creating application "+xssec.Field(i.Params, "xsappname")+" ("+msg+")")
		return
	}
	org := s.orgOfInstance(i)
	app := xssec.Field(i.Params, "xsappname")
	for _, o := range s.st.Instances {
		if o.GUID == i.GUID || !s.isXSUAA(o.PlanGUID) || xssec.Field(o.Params, "xsappname") != app {
			continue
		}
		if s.orgOfInstance(o) != org || (o.LastOp.Type == "create" && o.LastOp.State == "failed") {
			continue
		}
		s.failEarly(j, fmt.Sprintf("Error creating application %s!t%d (Application with xsappname %s already exists in identity zone %s)", app, tenantIndex(org), app, zoneName(org)))
		return
	}
	i.AppID = fmt.Sprintf("%s!t%d", app, tenantIndex(org))
	j.Warnings = append(j.Warnings, descriptorWarnings(i.Params)...)
}

func (s *Sim) brokerUpdate(j *Job, i *Instance) {
	if s.isIdentity(j.NewPlan) {
		s.identityCheck(j, ias.Validate(j.NewParams))
		return
	}
	if !s.isXSUAA(j.NewPlan) {
		return
	}
	p := j.NewParams
	if p == nil {
		p = map[string]any{}
		j.NewParams = p
	}
	if xssec.Field(p, "xsappname") == "" {
		p["xsappname"] = xssec.Field(i.Params, "xsappname")
	}
	org := s.orgOfInstance(i)
	oldApp, newApp := xssec.Field(i.Params, "xsappname"), xssec.Field(p, "xsappname")
	if oldApp != newApp {
		s.failEarly(j, fmt.Sprintf("Error updating application %s (Cannot change AppId with update. Old AppId: %s New AppId: %s!t%d)", i.AppID, i.AppID, newApp, tenantIndex(org)))
		return
	}
	if xssec.TenantMode(i.Params) != xssec.TenantMode(p) {
		s.failEarly(j, fmt.Sprintf("Error updating application %s (Cannot change tenant-mode with update. Old: %s New: %s)", i.AppID, xssec.TenantMode(i.Params), xssec.TenantMode(p)))
		return
	}
	if msg := s.descriptorError(p); msg != "" {
		s.failEarly(j, "Error updating application "+i.AppID+" ("+msg+")")
		return
	}
	j.Warnings = append(j.Warnings, descriptorWarnings(p)...)
}

func (s *Sim) brokerBind(j *Job, i *Instance, k *Key) {
	if s.isIdentity(i.PlanGUID) {
		s.identityBind(j, i, k)
		return
	}
	if !s.isXSUAA(i.PlanGUID) {
		return
	}
	enabled := xssec.CredentialTypes(i.Params)
	ct, _ := k.Params["credential-type"].(string)
	if ct == "" {
		ct = enabled[0]
	}
	// Key parameters the broker does not know are ignored (recorded on
	// real BTP), not rejected.
	switch {
	case ct != "binding-secret" && ct != "x509" && ct != "instance-secret":
		s.failEarly(j, "Error creating binding (credential-type "+ct+" is not one of binding-secret, x509, instance-secret)")
		return
	case !slices.Contains(enabled, ct):
		s.failEarly(j, "Error creating binding (credential-type "+ct+" is not enabled in oauth2-configuration.credential-types of "+i.AppID+")")
		return
	}
	if ct == "x509" {
		x, _ := k.Params["x509"].(map[string]any)
		if kl := jsonNumber(x["key-length"]); kl != "" && kl != "2048" && kl != "4096" && kl != "8192" {
			s.failEarly(j, "Error creating binding (x509.key-length must be 2048, 4096 or 8192)")
			return
		}
		if v := jsonNumber(x["validity"]); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 30 {
				s.failEarly(j, "Error creating binding (x509.validity must be between 1 and 30 DAYS)")
				return
			}
		}
		if c, ok := x["certificate"]; ok && c != nil {
			s.failEarly(j, "Error creating binding (the simulator does not accept caller-provided certificates)")
			return
		}
	}
}

// descriptorError returns the broker's message for the first descriptor
// error, or "".
func (s *Sim) descriptorError(p map[string]any) string {
	errs := xssec.Validate(p).Errors()
	if len(errs) == 0 {
		return ""
	}
	e := errs[0]
	if strings.HasPrefix(e.Message, "unrecognized field") {
		// The broker's strict JSON parser words it this way.
		return "Error parsing xs-security.json data: Unrecognized field \"" + strings.TrimPrefix(e.Path[strings.LastIndex(e.Path, ".")+1:], "") + "\""
	}
	return "Invalid xs-security.json: " + e.Path + " " + e.Message
}

func descriptorWarnings(p map[string]any) []string {
	var out []string
	for _, w := range xssec.Validate(p).Warnings() {
		out = append(out, w.Describe())
	}
	return out
}

func (s *Sim) setResourceState(j *Job, state, desc string, now time.Time) {
	switch j.ResourceType {
	case "service_instance":
		if i := s.st.Instances[j.ResourceGUID]; i != nil {
			i.LastOp.State, i.LastOp.Description, i.LastOp.Updated = state, desc, now
			i.Updated = now
		}
	case "service_credential_binding":
		if k := s.st.Keys[j.ResourceGUID]; k != nil {
			k.LastOp.State, k.LastOp.Description, k.LastOp.Updated = state, desc, now
			k.Updated = now
		}
	}
}

var failPrefix = map[string][2]string{
	// operation: {synchronous broker rejection, failed last_operation}
	"service_instance.create": {"provision could not be completed: Service broker error: ", "create managed could not be completed: "},
	"service_instance.update": {"update could not be completed: Service broker error: ", "update could not be completed: "},
	"service_instance.delete": {"deprovision could not be completed: Service broker error: ", "delete could not be completed: "},
	"service_keys.create":     {"bind could not be completed: Service broker error: ", "bind could not be completed: "},
	"service_keys.delete":     {"unbind could not be completed: Service broker error: ", "unbind could not be completed: "},
}

func (s *Sim) finish(j *Job, now time.Time) {
	j.Updated = now
	if j.Fail != "" {
		msg := j.Fail
		if j.FailEarly {
			msg = brokerText(msg)
		}
		pre := failPrefix[j.Operation][1]
		if j.FailEarly {
			pre = failPrefix[j.Operation][0]
		}
		j.State = "FAILED"
		j.Errors = []apiError{{Code: 10009, Title: "CF-UnableToPerform", Detail: pre + msg}}
		desc := msg
		if j.FailEarly {
			// recorded on BTP: "Service broker error: Service broker xsuaa failed with: …"
			desc = "Service broker error: " + msg
		}
		s.setResourceState(j, "failed", desc, now)
		s.release(j)
		return
	}
	j.State = "COMPLETE"
	switch j.Operation {
	case "service_instance.create":
		s.setResourceState(j, "succeeded", "", now)
	case "service_instance.update":
		if i := s.st.Instances[j.ResourceGUID]; i != nil {
			i.Params, i.PlanGUID = j.NewParams, j.NewPlan
		}
		s.setResourceState(j, "succeeded", "", now)
	case "service_instance.delete":
		if i := s.st.Instances[j.ResourceGUID]; i != nil {
			s.removeInstance(i)
		}
		return
	case "service_keys.create":
		k := s.st.Keys[j.ResourceGUID]
		if k == nil {
			return
		}
		if err := s.issueCredentials(k); err != nil {
			j.State = "FAILED"
			j.Errors = []apiError{{Code: 10009, Title: "CF-UnableToPerform", Detail: "bind could not be completed: " + err.Error()}}
			s.setResourceState(j, "failed", err.Error(), now)
			break
		}
		s.setResourceState(j, "succeeded", "", now)
	case "service_keys.delete":
		delete(s.st.Keys, j.ResourceGUID)
		return
	}
	s.release(j)
}

func (s *Sim) release(j *Job) {
	switch j.ResourceType {
	case "service_instance":
		if i := s.st.Instances[j.ResourceGUID]; i != nil && i.Busy == j.GUID {
			i.Busy = ""
		}
	case "service_credential_binding":
		if k := s.st.Keys[j.ResourceGUID]; k != nil && k.Busy == j.GUID {
			k.Busy = ""
		}
	}
}

func (s *Sim) removeInstance(i *Instance) {
	for g, k := range s.st.Keys {
		if k.InstanceGUID == i.GUID {
			delete(s.st.Keys, g)
		}
	}
	delete(s.st.Instances, i.GUID)
}
