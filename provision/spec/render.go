package spec

import (
	"fmt"
	"hash/fnv"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"gopkg.in/yaml.v3"

	"github.com/xsprov/xsprov/provision/infile"
	"github.com/xsprov/xsprov/provision/offering"
	"github.com/xsprov/xsprov/provision/xssec"
	"github.com/xsprov/xsprov/templates"
)

// render builds an instance's descriptor from its template, parameters or
// parameters file, and validates it with the broker's rules.
func (s *Spec) render(c *checker, in *Instance, n *yaml.Node) {
	given := 0
	for _, v := range []bool{in.Template != "", in.Parameters != nil, in.ParametersFile != ""} {
		if v {
			given++
		}
	}
	if given > 1 {
		c.add(n, "instance %q: give one of template, parameters or parametersFile", in.Name)
		return
	}
	var d map[string]any
	at := n
	switch {
	case in.Template != "":
		at = find(n, "template")
		name := in.Template
		if strings.ContainsAny(name, `/\`) && !filepath.IsAbs(name) {
			name = filepath.Join(filepath.Dir(s.File), name)
		}
		tm, err := templates.Load(name)
		if err != nil {
			c.add(at, "instance %q: %v", in.Name, err)
			return
		}
		// The spec's variables serve every template (a name one does not use
		// is fine); an instance's vars are for its template (an unknown name
		// is an error).
		vals := templates.Values{Given: map[string]string{}, Env: s.Variables}
		if _, ok := in.Vars["xsappname"]; !ok && !hasFold(s.Variables, "xsappname") {
			vals.Given["xsappname"] = in.Name // never the template's sample value
		}
		for k, v := range in.Vars {
			// An instance's vars may use the spec's variables.
			if strings.Contains(v, "{{") {
				tv, err := template.New(k).Option("missingkey=error").Parse(v)
				var b strings.Builder
				if err == nil {
					err = tv.Execute(&b, s.Variables)
				}
				if err != nil {
					c.add(orNode(find(n, "vars", k), n), "instance %q: vars.%s: %v", in.Name, k, err)
					return
				}
				v = b.String()
			}
			vals.Given[k] = v
		}
		if names, err := tm.Names(); err == nil && !slices.Contains(names, "xsappname") {
			delete(vals.Given, "xsappname")
		}
		raw, err := tm.RenderValues(vals)
		if err != nil {
			c.add(at, "instance %q: %v", in.Name, err)
			return
		}
		obj, ps := xssec.Parse(raw)
		if ps != nil {
			c.add(at, "instance %q: template renders malformed JSON", in.Name)
			return
		}
		d = obj
	case in.ParametersFile != "":
		at = find(n, "parametersFile")
		p := in.ParametersFile
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(s.File), p)
		}
		raw, err := infile.Read(p, infile.Document)
		if err != nil {
			c.add(at, "instance %q: %v", in.Name, err)
			return
		}
		obj, ps := xssec.Parse(raw)
		if ps != nil {
			c.add(at, "instance %q: %s: %s", in.Name, p, ps[0].String())
			return
		}
		d = obj
	case in.Parameters != nil:
		at = find(n, "parameters")
		d = xssec.Normalize(in.Parameters).(map[string]any)
	default:
		d = offering.For(in.Offering).Minimal(in.Name)
	}
	prof := offering.For(in.Offering)
	if prof.Named && d["tenant-mode"] == nil {
		d["tenant-mode"] = xssec.DefaultTenantMode
	}
	if prof.Validate != nil {
		for _, p := range prof.Validate(d).Errors() {
			// inline parameters: at the offending field itself
			c.add(orNode(nodeAt(at, p.Path, in.Parameters != nil), at), "instance %q: descriptor %s: %s", in.Name, p.Path, p.Message)
		}
	}
	in.Descriptor = xssec.Normalize(d).(map[string]any)
	in.DescriptorGiven = in.Template != "" || in.ParametersFile != "" || in.Parameters != nil
}

// InShard tells whether an instance belongs to shard i of n (1-based); the
// split is by a hash of space and name, so it is stable across runs.
func InShard(space, name string, i, n int) bool {
	if n <= 1 {
		return true
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(strings.ToLower(space) + "/" + name))
	return int(h.Sum32()%uint32(n)) == i-1
}

// nodeAt is the node of a descriptor's JSON path ($.scopes[0].name) under
// an inline parameters mapping; nil when it is not there (or not inline).
func nodeAt(params *yaml.Node, jsonPath string, inline bool) *yaml.Node {
	if !inline || params == nil {
		return nil
	}
	var steps []any
	for _, part := range strings.Split(strings.TrimPrefix(jsonPath, "$"), ".") {
		name, idx, _ := strings.Cut(part, "[")
		if name != "" {
			steps = append(steps, name)
		}
		for idx != "" {
			var n int
			if _, err := fmt.Sscanf(idx, "%d]", &n); err != nil {
				return nil
			}
			steps = append(steps, n)
			_, idx, _ = strings.Cut(idx, "[")
		}
	}
	return find(params, steps...)
}

func hasFold(m map[string]string, name string) bool {
	for k := range m {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}
