// Package doctor checks, without writing anything, what a first `up` in a
// space needs from a landscape: the target, the roles, the offering and
// plan, whether parameters can be read back, and a key's token endpoint.
package doctor

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/cloudfoundry/go-cfclient/v3/client"
	"github.com/cloudfoundry/go-cfclient/v3/resource"

	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/offering"
	"github.com/xsprov/xsprov/provision/remedy"
)

// Status of a check.
type Status string

// Statuses: a failed check makes `doctor` exit 1; a note does not.
const (
	OK   Status = "ok"
	Fail Status = "fail"
	Note Status = "note"
	Skip Status = "skip"
)

// Check is one line of the report.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	// Remedy is what to do about a failure, as data; Hint is its wording,
	// which the face fills in.
	Remedy remedy.Remedy `json:"-"`
	Hint   string        `json:"hint,omitempty"`
}

// Request names what a first `up` would use.
type Request struct {
	Org, Space, Offering, Plan, Broker string
	// TokenHTTP reaches token endpoints (TLS settings, guard).
	TokenHTTP *http.Client
}

// Landscape runs the checks that need a session, each after the one it
// depends on; a failed prerequisite skips what follows it.
func Landscape(ctx context.Context, s *cfapi.Session, req Request) []Check {
	var out []Check
	add := func(c Check) { out = append(out, c) }
	t, err := s.ResolveTarget(ctx, req.Org, req.Space)
	if err != nil {
		add(Check{Name: "org and space", Status: Fail, Detail: err.Error(), Remedy: remedyOr(err, remedy.Remedy{Action: remedy.SetTarget})})
		add(Check{Name: "roles", Status: Skip, Detail: "needs the space"})
		add(Check{Name: "offering and plan", Status: Skip, Detail: "needs the space"})
		add(Check{Name: "parameters readable", Status: Skip, Detail: "needs the offering"})
		add(Check{Name: "token endpoint", Status: Skip, Detail: "needs the space"})
		return out
	}
	add(Check{Name: "org and space", Status: OK, Detail: "org " + t.OrgName + " / space " + t.SpaceName})
	add(roles(ctx, s, t))
	plan, err := s.ResolvePlan(ctx, t, req.Offering, req.Plan, req.Broker)
	if err != nil {
		r := remedyOr(err, remedy.Remedy{Action: remedy.CheckOffering})
		r.Note = "the subaccount needs an entitlement for " + req.Offering + " " + req.Plan + " (SAP BTP cockpit: Entitlements)"
		add(Check{Name: "offering and plan", Status: Fail, Detail: err.Error(), Remedy: r})
		add(Check{Name: "parameters readable", Status: Skip, Detail: "needs the offering"})
	} else {
		add(Check{Name: "offering and plan", Status: OK, Detail: fmt.Sprintf("%s %s is visible in the space", plan.OfferingName, plan.Name)})
		add(readable(ctx, s, plan))
	}
	add(tokenEndpoint(ctx, s, t, req.TokenHTTP))
	return out
}

// roles: creating instances needs SpaceDeveloper (or an admin's scope).
func roles(ctx context.Context, s *cfapi.Session, t cfapi.Target) Check {
	id := s.Identity()
	c := Check{Name: "roles"}
	if slices.Contains(id.Scopes, "cloud_controller.admin") {
		c.Status, c.Detail = OK, "the token has cloud_controller.admin: every space is open to it"
		return c
	}
	if !slices.Contains(id.Scopes, "cloud_controller.write") {
		c.Status, c.Detail = Fail, "the token has no cloud_controller.write scope: it can only read"
		c.Remedy = remedy.Remedy{Action: remedy.RequestRole, Note: "a user or client with cloud_controller.write is needed"}
		return c
	}
	opts := client.NewRoleListOptions()
	opts.SpaceGUIDs = client.Filter{Values: []string{t.SpaceGUID}}
	opts.Types = client.Filter{Values: []string{resource.SpaceRoleDeveloper.String()}}
	opts.PerPage = 5000
	rs, users, err := s.RolesWithUsers(ctx, opts)
	if err != nil {
		c.Status, c.Detail = Fail, "cannot read the space's roles: "+err.Error()
		return c
	}
	for _, r := range rs {
		g := r.Relationships.User.Data.GUID
		if g == id.UserGUID || g == id.ClientID {
			c.Status, c.Detail = OK, "SpaceDeveloper in space "+t.SpaceName
			return c
		}
		for _, u := range users {
			if u.GUID == g && id.UserName != "" && u.Username != nil && strings.EqualFold(*u.Username, id.UserName) {
				c.Status, c.Detail = OK, "SpaceDeveloper in space "+t.SpaceName
				return c
			}
		}
	}
	who := cmpOr(id.UserName, id.ClientID, "this user")
	c.Status, c.Detail = Fail, who+" is not a SpaceDeveloper of space "+t.SpaceName+": creating service instances will be refused (403)"
	c.Remedy = remedy.Remedy{Action: remedy.RequestRole, Note: "a space manager of " + t.SpaceName + " can give " + who + " the role SpaceDeveloper"}
	return c
}

// readable: drift checks compare with what the broker holds where it can be
// read back, else with xsprov's record on the instance.
func readable(ctx context.Context, s *cfapi.Session, plan cfapi.Plan) Check {
	c := Check{Name: "parameters readable"}
	off, err := s.CF.ServiceOfferings.Get(ctx, plan.OfferingGUID)
	if err != nil {
		c.Status, c.Detail = Fail, "cannot read the offering: "+err.Error()
		return c
	}
	if off.BrokerCatalog.Features.InstancesRetrievable {
		c.Status, c.Detail = OK, "the broker returns instance parameters: drift checks compare with them"
		return c
	}
	c.Status = Note
	c.Detail = "the broker does not return instance parameters (instances_retrievable false, as SAP BTP's xsuaa): drift checks compare with what xsprov recorded on each instance"
	return c
}

// tokenEndpoint reaches the token endpoint of an existing key (its
// public signing keys; no secret is sent).
func tokenEndpoint(ctx context.Context, s *cfapi.Session, t cfapi.Target, hc *http.Client) Check {
	c := Check{Name: "token endpoint"}
	insts, err := s.CF.ServiceInstances.ListAll(ctx, &client.ServiceInstanceListOptions{ListOptions: &client.ListOptions{PerPage: 50},
		SpaceGUIDs: client.Filter{Values: []string{t.SpaceGUID}}, Type: "managed"})
	if err != nil || len(insts) == 0 {
		c.Status, c.Detail = Skip, "no service instance in the space yet"
		return c
	}
	var guids []string
	for _, i := range insts {
		guids = append(guids, i.GUID)
	}
	keys, err := s.KeysOfInstances(ctx, guids)
	if err != nil {
		c.Status, c.Detail = Fail, err.Error()
		return c
	}
	for _, i := range insts {
		for _, k := range keys[i.GUID] {
			if cfapi.OpBusy(k.LastOperation) || k.LastOperation.State == "failed" {
				continue
			}
			det, err := s.CF.ServiceCredentialBindings.GetDetails(ctx, k.GUID)
			if err != nil {
				continue
			}
			u, _ := det.Credentials["url"].(string)
			if u == "" {
				continue
			}
			// the signing keys beside the token endpoint (XSUAA's
			// /token_keys, IAS's /oauth2/certs)
			keys := offering.OfCredentials(det.Credentials).KeysPath
			return reach(ctx, hc, strings.TrimRight(u, "/")+keys, "key "+cfapi.KeyName(k, "")+" of "+i.Name)
		}
	}
	c.Status, c.Detail = Skip, "no key with a url in the space yet"
	return c
}

func reach(ctx context.Context, hc *http.Client, u, whose string) Check {
	c := Check{Name: "token endpoint"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		c.Status, c.Detail = Fail, err.Error()
		return c
	}
	resp, err := hc.Do(req)
	if err != nil {
		c.Status, c.Detail = Fail, "cannot reach "+u+" ("+whose+"): "+err.Error()
		c.Remedy = remedy.Remedy{Action: remedy.CheckTokenURL}
		if cfapi.IsUntrustedCert(err) {
			c.Remedy = remedy.Remedy{Action: remedy.TrustCA}
		}
		return c
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.Status, c.Detail = Fail, fmt.Sprintf("%s (%s) answered %s", u, whose, resp.Status)
		return c
	}
	c.Status, c.Detail = OK, u+" answers ("+whose+")"
	return c
}

// remedyOr is the error's remedy, else def.
func remedyOr(err error, def remedy.Remedy) remedy.Remedy {
	if r, ok := remedy.Of(err); ok {
		return r
	}
	return def
}

func cmpOr(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
