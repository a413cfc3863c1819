package spec

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// shape describes what a YAML node may hold.
type shape struct {
	kind   string            // map, seq, str, bool, strmap, any
	fields map[string]*shape // for map
	items  *shape            // for seq
}

var (
	strShape  = &shape{kind: "str"}
	keyShape  = &shape{kind: "map", fields: map[string]*shape{"instance": strShape, "name": strShape, "parameters": {kind: "anymap"}, "out": strShape, "format": strShape, "envPrefix": strShape, "rotate": {kind: "map", fields: map[string]*shape{"maxAge": strShape}}}}
	specShape = &shape{kind: "map", fields: map[string]*shape{
		"apiVersion": strShape,
		"kind":       strShape,
		"metadata":   {kind: "map", fields: map[string]*shape{"name": strShape}},
		"target":     {kind: "map", fields: map[string]*shape{"api": strShape, "org": strShape}},
		"variables":  {kind: "strmap"},
		"defaults":   {kind: "map", fields: map[string]*shape{"space": strShape, "offering": strShape, "plan": strShape, "broker": strShape, "format": strShape, "verify": {kind: "bool"}}},
		"spaces": {kind: "seq", items: &shape{kind: "map", fields: map[string]*shape{"name": strShape,
			"roles": {kind: "seq", items: &shape{kind: "map", fields: map[string]*shape{"user": strShape, "origin": strShape, "role": strShape}}}}}},
		"instances": {kind: "seq", items: &shape{kind: "map", fields: map[string]*shape{
			"name": strShape, "space": strShape, "offering": strShape, "plan": strShape, "broker": strShape,
			"template": strShape, "vars": {kind: "strmap"}, "parameters": {kind: "anymap"}, "parametersFile": strShape,
			"tags": {kind: "seq", items: strShape}, "keys": {kind: "seq", items: keyShape}}}},
		"keys": {kind: "seq", items: keyShape},
	}}
	reLabelValue = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$`)
	// SpaceRoles maps a role's name in a spec to its CF role type.
	SpaceRoles = map[string]string{"developer": "space_developer", "manager": "space_manager", "auditor": "space_auditor", "supporter": "space_supporter"}
)

// maxNodes and maxBytes bound what a spec may expand to: nested YAML
// aliases (a "billion laughs" document) grow exponentially.
const (
	maxNodes = 200_000
	maxBytes = 16 << 20
)

// expanded counts the nodes and scalar bytes of n with its aliases
// expanded, stopping once either passes its limit.
func expanded(n *yaml.Node, nodeLimit, byteLimit int) (nodes, bytes int) {
	var visit func(n *yaml.Node)
	visit = func(n *yaml.Node) {
		if n == nil || nodes > nodeLimit || bytes > byteLimit {
			return
		}
		nodes++
		bytes += len(n.Value)
		if n.Kind == yaml.AliasNode {
			visit(n.Alias)
			return
		}
		for _, c := range n.Content {
			visit(c)
		}
	}
	visit(n)
	return nodes, bytes
}

func (c *checker) walk(n *yaml.Node, s *shape, path string) {
	if c.visits++; c.visits > maxNodes {
		if !c.tooBig {
			c.tooBig = true
			c.add(n, "the spec expands to more than %d YAML nodes (nested aliases?)", maxNodes)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Tag == "!!null" {
		return
	}
	switch s.kind {
	case "any":
	case "str":
		if n.Kind != yaml.ScalarNode {
			c.add(n, "%s must be a string", path)
		}
	case "bool":
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			c.add(n, "%s must be true or false", path)
		}
	case "strmap":
		if n.Kind != yaml.MappingNode {
			c.add(n, "%s must be a mapping of names to values", path)
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if v := n.Content[i+1]; v.Kind != yaml.ScalarNode {
				c.add(v, "%s.%s must be a scalar value", path, n.Content[i].Value)
			}
		}
	case "anymap":
		if n.Kind != yaml.MappingNode {
			c.add(n, "%s must be a mapping", path)
		}
	case "seq":
		if n.Kind != yaml.SequenceNode {
			c.add(n, "%s must be a list", path)
			return
		}
		for i, it := range n.Content {
			c.walk(it, s.items, fmt.Sprintf("%s[%d]", path, i))
		}
	case "map":
		if n.Kind != yaml.MappingNode {
			c.add(n, "%s must be a mapping", path)
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if seen[k.Value] {
				c.add(k, "%s is given twice", p)
			}
			seen[k.Value] = true
			sub, ok := s.fields[k.Value]
			if !ok {
				c.add(k, "unknown field %q in %s (known: %s)", k.Value, orRoot(path), strings.Join(fieldNames(s), ", "))
				continue
			}
			c.walk(v, sub, p)
		}
	}
}

func orRoot(p string) string {
	if p == "" {
		return "the spec"
	}
	return p
}

func fieldNames(s *shape) []string {
	var out []string
	for k := range s.fields {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// find returns the node at a path of mapping keys and sequence indexes.
func find(n *yaml.Node, path ...any) *yaml.Node {
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, p := range path {
		if n == nil {
			return nil
		}
		switch x := p.(type) {
		case string:
			var next *yaml.Node
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == x {
						next = n.Content[i+1]
					}
				}
			}
			n = next
		case int:
			if n.Kind != yaml.SequenceNode || x >= len(n.Content) {
				return nil
			}
			n = n.Content[x]
		}
	}
	return n
}

func orNode(n, fallback *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return fallback
}
