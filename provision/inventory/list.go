// Package inventory reads what a space holds: the service instances with
// their offering, plan, keys and owner (list), and the same as an onboarding
// spec (export). It only reads.
package inventory

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/cloudfoundry/go-cfclient/v3/client"
	"github.com/cloudfoundry/go-cfclient/v3/resource"

	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/spec"
)

// Instance is one service instance as `list` shows it.
type Instance struct {
	Name          string            `json:"name"`
	GUID          string            `json:"guid"`
	Space         string            `json:"space"`
	Offering      string            `json:"offering"`
	Plan          string            `json:"plan"`
	LastOperation string            `json:"last_operation"`
	Keys          int               `json:"keys"`
	Owner         string            `json:"owner,omitempty"` // the spec that owns it (label xsprov.io/spec)
	Tags          []string          `json:"tags"`
	Labels        map[string]string `json:"labels,omitempty"`

	inst    *resource.ServiceInstance
	keyList []*resource.ServiceCredentialBinding
}

// Key is one service key as `list keys` shows it.
type Key struct {
	Name          string    `json:"name"`
	GUID          string    `json:"guid"`
	LastOperation string    `json:"last_operation"`
	CreatedAt     time.Time `json:"created_at"`
	Owner         string    `json:"owner,omitempty"`
}

// Scope is where to look: a space of an org, or every space of it.
type Scope struct {
	Org, Space string
	AllSpaces  bool
	// Names, when given, keeps only these instances; Selector is a CF
	// label selector ("team=orders,env in (dev,test)").
	Names    []string
	Selector string
}

// List reads the instances of a space (or of every space of the org) with
// their offering, plan and number of keys, in four requests: the target,
// the instances, their plans (with offerings) and their keys.
func List(ctx context.Context, s *cfapi.Session, sc Scope) ([]*Instance, error) {
	opts := client.NewServiceInstanceListOptions()
	opts.PerPage = 5000
	if len(sc.Names) > 0 {
		opts.Names = client.Filter{Values: sc.Names}
	}
	if sc.Selector != "" {
		opts.LabelSel = client.LabelSelector{}
		opts.LabelSel.Existence(sc.Selector) // passed through as written
	}
	spaceNames := map[string]string{}
	if sc.AllSpaces {
		orgs, err := s.CF.Organizations.ListAll(ctx, &client.OrganizationListOptions{ListOptions: &client.ListOptions{PerPage: 5000}, Names: client.Filter{Values: []string{sc.Org}}})
		if err != nil {
			return nil, cfapi.Classify("look up org "+sc.Org, err)
		}
		if len(orgs) == 0 {
			return nil, s.TargetNotFound(ctx, sc.Org, "")
		}
		spaces, err := s.CF.Spaces.ListAll(ctx, &client.SpaceListOptions{ListOptions: &client.ListOptions{PerPage: 5000}, OrganizationGUIDs: client.Filter{Values: []string{orgs[0].GUID}}})
		if err != nil {
			return nil, cfapi.Classify("list spaces", err)
		}
		for _, sp := range spaces {
			spaceNames[sp.GUID] = sp.Name
		}
		opts.OrganizationGUIDs = client.Filter{Values: []string{orgs[0].GUID}}
	} else {
		t, err := s.ResolveTarget(ctx, sc.Org, sc.Space)
		if err != nil {
			return nil, err
		}
		spaceNames[t.SpaceGUID] = t.SpaceName
		opts.SpaceGUIDs = client.Filter{Values: []string{t.SpaceGUID}}
	}
	insts, err := s.CF.ServiceInstances.ListAll(ctx, opts)
	if err != nil {
		return nil, cfapi.Classify("list service instances", err)
	}
	out := make([]*Instance, 0, len(insts))
	var planGUIDs, guids []string
	for _, si := range insts {
		in := &Instance{Name: si.Name, GUID: si.GUID, LastOperation: cfapi.DescribeOp(si.LastOperation), Tags: si.Tags, inst: si}
		if in.Tags == nil {
			in.Tags = []string{}
		}
		if r := si.Relationships.Space; r != nil && r.Data != nil {
			in.Space = spaceNames[r.Data.GUID]
		}
		if si.Metadata != nil {
			in.Labels = map[string]string{}
			for k, v := range si.Metadata.Labels {
				if v != nil {
					in.Labels[k] = *v
				}
			}
			in.Owner = in.Labels[spec.OwnerLabel]
		}
		if si.Type == "user-provided" {
			in.Offering, in.Plan = "user-provided", ""
		} else if r := si.Relationships.ServicePlan; r != nil && r.Data != nil && !slices.Contains(planGUIDs, r.Data.GUID) {
			planGUIDs = append(planGUIDs, r.Data.GUID)
		}
		guids = append(guids, si.GUID)
		out = append(out, in)
	}
	if len(planGUIDs) > 0 {
		// go-cfclient has no guids filter for plans: the plans of these
		// instances (batches of 100 keep the URL short)
		var plans []*resource.ServicePlan
		var offs []*resource.ServiceOffering
		for lo := 0; lo < len(guids); lo += 100 {
			po := client.NewServicePlanListOptions()
			po.ServiceInstanceGUIDs = client.Filter{Values: guids[lo:min(lo+100, len(guids))]}
			po.Include = resource.ServicePlanIncludeServiceOffering
			po.PerPage = 5000
			p, o, err := s.PlansWithOfferings(ctx, po)
			if err != nil {
				return nil, cfapi.Classify("read service plans", err)
			}
			plans, offs = append(plans, p...), append(offs, o...)
		}
		offName := map[string]string{}
		for _, o := range offs {
			offName[o.GUID] = o.Name
		}
		type po2 struct{ plan, off string }
		byGUID := map[string]po2{}
		for _, p := range plans {
			byGUID[p.GUID] = po2{p.Name, offName[p.Relationships.ServiceOffering.Data.GUID]}
		}
		for _, in := range out {
			if r := in.inst.Relationships.ServicePlan; r != nil && r.Data != nil {
				in.Plan, in.Offering = byGUID[r.Data.GUID].plan, byGUID[r.Data.GUID].off
			}
		}
	}
	if len(guids) > 0 {
		keys, err := s.KeysOfInstances(ctx, guids)
		if err != nil {
			return nil, err
		}
		for _, in := range out {
			in.keyList = keys[in.GUID]
			in.Keys = len(in.keyList)
		}
	}
	slices.SortFunc(out, func(a, b *Instance) int {
		return cmpStrings(a.Space+"\x00"+a.Name, b.Space+"\x00"+b.Name)
	})
	return out, nil
}

// Keys lists the keys of one instance.
func Keys(ctx context.Context, s *cfapi.Session, org, space, instance string) ([]*Key, error) {
	t, err := s.ResolveTarget(ctx, org, space)
	if err != nil {
		return nil, err
	}
	inst, err := s.FindInstance(ctx, t, instance)
	if err != nil {
		return nil, err
	}
	if inst == nil {
		return nil, &NotFoundError{What: "service instance " + instance + " in org " + t.OrgName + " / space " + t.SpaceName}
	}
	keys, err := s.KeysOf(ctx, inst.GUID)
	if err != nil {
		return nil, err
	}
	out := make([]*Key, 0, len(keys))
	for _, k := range keys {
		key := &Key{Name: cfapi.KeyName(k, ""), GUID: k.GUID, LastOperation: cfapi.DescribeOp(k.LastOperation), CreatedAt: k.CreatedAt}
		if k.Metadata != nil && k.Metadata.Labels[spec.OwnerLabel] != nil {
			key.Owner = *k.Metadata.Labels[spec.OwnerLabel]
		}
		out = append(out, key)
	}
	slices.SortFunc(out, func(a, b *Key) int { return cmpStrings(a.Name, b.Name) })
	return out, nil
}

// NotFoundError is a missing instance.
type NotFoundError struct{ What string }

func (e *NotFoundError) Error() string { return e.What + " not found" }

// NotFound marks it for exit codes.
func (e *NotFoundError) NotFound() bool { return true }

func cmpStrings(a, b string) int { return strings.Compare(a, b) }
