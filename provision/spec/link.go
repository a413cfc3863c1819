package spec

import (
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// link finds the order between instances of one space: an identity (IAS)
// instance with "xsuaa-cross-consumption": true is the pair of the space's
// XSUAA instances in the spec and comes after them; an instance whose
// consumed-services name instances of the spec comes after those. A cycle
// is an error.
func (s *Spec) link(c *checker, root *yaml.Node) {
	bySpace := map[string][]*Instance{}
	for _, in := range s.Instances {
		sp := strings.ToLower(in.Space)
		bySpace[sp] = append(bySpace[sp], in)
	}
	for i, in := range s.Instances {
		if in.Descriptor == nil {
			continue
		}
		peers := bySpace[strings.ToLower(in.Space)]
		if on, _ := in.Descriptor["xsuaa-cross-consumption"].(bool); on && in.Offering == "identity" {
			for _, p := range peers {
				if p.Offering == "xsuaa" {
					in.Pairs = append(in.Pairs, p.Name)
					in.After = appendNew(in.After, p.Name)
				}
			}
		}
		cs, _ := in.Descriptor["consumed-services"].([]any)
		for j, e := range cs {
			m, _ := e.(map[string]any)
			name, _ := m["service-instance-name"].(string)
			switch {
			case name == "":
			case name == in.Name:
				c.add(orNode(find(root, "instances", i, "parameters", "consumed-services", j), find(root, "instances", i)), "instance %q consumes itself", in.Name)
			case slices.ContainsFunc(peers, func(p *Instance) bool { return p.Name == name }):
				in.After = appendNew(in.After, name)
			default:
				in.Consumes = appendNew(in.Consumes, name)
			}
		}
	}
	// a cycle would leave instances that can never start
	done := map[string]bool{}
	for progress := true; progress; {
		progress = false
		for _, in := range s.Instances {
			id := strings.ToLower(in.Space) + "/" + in.Name
			if done[id] {
				continue
			}
			ready := true
			for _, a := range in.After {
				ready = ready && done[strings.ToLower(in.Space)+"/"+a]
			}
			if ready {
				done[id], progress = true, true
			}
		}
	}
	for i, in := range s.Instances {
		if !done[strings.ToLower(in.Space)+"/"+in.Name] {
			c.add(find(root, "instances", i), "instance %q is in a cycle of consumed-services (it waits for %s)", in.Name, strings.Join(in.After, ", "))
		}
	}
}

func appendNew(list []string, v string) []string {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}
