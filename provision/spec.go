package provision

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/xsprov/xsprov/provision/xssec"
	"github.com/xsprov/xsprov/templates"
)

// SpecAPIVersion is the version of the onboarding spec format.
const SpecAPIVersion = "xsprov/v1"

// SpecLabel is the metadata label that marks resources owned by a spec.
const SpecLabel = "xsprov.io/spec"

// Spec is an onboarding spec: spaces, instances, keys and files to converge.
type Spec struct {
	APIVersion string            `yaml:"apiVersion"`
	Metadata   SpecMetadata      `yaml:"metadata"`
	Target     SpecTarget        `yaml:"target"`
	Variables  map[string]string `yaml:"variables"`
	Defaults   SpecDefaults      `yaml:"defaults"`
	Spaces     []SpecSpace       `yaml:"spaces"`
	Instances  []*SpecInstance   `yaml:"instances"`
	Keys       []*SpecKey        `yaml:"keys"`

	// File is where the spec was read from; paths in it are relative to it.
	File string `yaml:"-"`
}

// SpecMetadata names the spec; the name goes into ownership labels.
type SpecMetadata struct {
	Name string `yaml:"name"`
}

// SpecTarget is where the spec applies (flags and environment may override).
type SpecTarget struct {
	API string `yaml:"api"`
	Org string `yaml:"org"`
}

// SpecDefaults apply to every instance and key that does not say otherwise.
type SpecDefaults struct {
	Space    string `yaml:"space"`
	Offering string `yaml:"offering"`
	Plan     string `yaml:"plan"`
	Broker   string `yaml:"broker"`
	Format   string `yaml:"format"`
	Verify   *bool  `yaml:"verify"`
}

// SpecSpace is a space to ensure, with roles.
type SpecSpace struct {
	Name  string     `yaml:"name"`
	Roles []SpecRole `yaml:"roles"`
}

// SpecRole gives a user a space role.
type SpecRole struct {
	User   string `yaml:"user"`
	Origin string `yaml:"origin"`
	Role   string `yaml:"role"` // developer, manager, auditor, supporter
}

// SpecInstance is an XSUAA instance with its keys.
type SpecInstance struct {
	Name           string            `yaml:"name"`
	Space          string            `yaml:"space"`
	Offering       string            `yaml:"offering"`
	Plan           string            `yaml:"plan"`
	Broker         string            `yaml:"broker"`
	Template       string            `yaml:"template"`
	Vars           map[string]string `yaml:"vars"`
	Parameters     map[string]any    `yaml:"parameters"`
	ParametersFile string            `yaml:"parametersFile"`
	Tags           []string          `yaml:"tags"`
	Keys           []*SpecKey        `yaml:"keys"`

	// Descriptor is the rendered, validated parameters.
	Descriptor map[string]any `yaml:"-"`
	line       int
}

// SpecKey is a service key and its credentials file.
type SpecKey struct {
	Instance   string         `yaml:"instance"` // top-level keys only
	Name       string         `yaml:"name"`
	Parameters map[string]any `yaml:"parameters"`
	Out        string         `yaml:"out"`
	Format     string         `yaml:"format"`
	EnvPrefix  string         `yaml:"envPrefix"`
	Rotate     *SpecRotate    `yaml:"rotate"`
}

// SpecRotate is a key's rotation policy.
type SpecRotate struct {
	MaxAge string `yaml:"maxAge"` // Go duration, e.g. 720h
	maxAge time.Duration
}

// MaxAgeDuration returns the parsed maxAge.
func (r *SpecRotate) MaxAgeDuration() time.Duration {
	if r == nil {
		return 0
	}
	return r.maxAge
}

// SpecError lists every problem of a spec with file, line and column.
type SpecError struct {
	File     string
	Problems []SpecProblem
}

// SpecProblem is one problem in a spec.
type SpecProblem struct {
	Line, Column int
	Msg          string
}

func (e *SpecError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s):", e.File, len(e.Problems))
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  %s:%d:%d: %s", e.File, p.Line, p.Column, p.Msg)
	}
	return b.String()
}

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
	spaceRoles   = map[string]string{"developer": "space_developer", "manager": "space_manager", "auditor": "space_auditor", "supporter": "space_supporter"}
)

type specChecker struct{ probs []SpecProblem }

func (c *specChecker) add(n *yaml.Node, format string, args ...any) {
	line, col := 0, 0
	if n != nil {
		line, col = n.Line, n.Column
	}
	c.probs = append(c.probs, SpecProblem{Line: line, Column: col, Msg: fmt.Sprintf(format, args...)})
}

func (c *specChecker) walk(n *yaml.Node, s *shape, path string) {
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

// LoadSpec reads, checks and renders a spec. vars override its variables.
// Every problem is reported at once (*SpecError, exit 2); nothing is sent.
func LoadSpec(path string, vars map[string]string) (*Spec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, Usagef("read spec: %v", err)
	}
	return ParseSpec(path, raw, vars)
}

// ParseSpec is LoadSpec on bytes; path locates relative files and names the
// spec in messages.
func ParseSpec(path string, raw []byte, vars map[string]string) (*Spec, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil {
		line := 0
		var te *yaml.TypeError
		msg := err.Error()
		if _, scan := fmt.Sscanf(msg, "yaml: line %d:", &line); scan == nil {
			msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
			msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
		} else if ok := asTypeError(err, &te); ok {
			msg = strings.Join(te.Errors, "; ")
		}
		return nil, &SpecError{File: path, Problems: []SpecProblem{{Line: line, Column: 1, Msg: "malformed YAML: " + msg}}}
	}
	c := &specChecker{}
	root := find(&doc)
	if root == nil {
		return nil, &SpecError{File: path, Problems: []SpecProblem{{Line: 1, Column: 1, Msg: "the spec is empty"}}}
	}
	c.walk(root, specShape, "")
	if len(c.probs) > 0 {
		return nil, &SpecError{File: path, Problems: c.probs}
	}
	var s Spec
	if err := root.Decode(&s); err != nil {
		return nil, &SpecError{File: path, Problems: []SpecProblem{{Line: root.Line, Column: root.Column, Msg: err.Error()}}}
	}
	s.File = path
	for k, v := range vars {
		if s.Variables == nil {
			s.Variables = map[string]string{}
		}
		s.Variables[k] = v
	}
	s.check(c, root)
	if len(c.probs) > 0 {
		sort.SliceStable(c.probs, func(i, j int) bool { return c.probs[i].Line < c.probs[j].Line })
		return nil, &SpecError{File: path, Problems: c.probs}
	}
	return &s, nil
}

func asTypeError(err error, te **yaml.TypeError) bool {
	t, ok := err.(*yaml.TypeError)
	if ok {
		*te = t
	}
	return ok
}

// check validates meaning: versions, names, references, templates,
// variables and the descriptors themselves.
func (s *Spec) check(c *specChecker, root *yaml.Node) {
	if s.APIVersion != SpecAPIVersion {
		c.add(orNode(find(root, "apiVersion"), root), "apiVersion must be %q, got %q", SpecAPIVersion, s.APIVersion)
	}
	if s.Metadata.Name == "" {
		s.Metadata.Name = strings.TrimSuffix(filepath.Base(s.File), filepath.Ext(s.File))
	}
	if !reLabelValue.MatchString(s.Metadata.Name) {
		c.add(orNode(find(root, "metadata", "name"), root), "metadata.name %q must be at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric (it becomes a label value)", s.Metadata.Name)
	}
	if s.Defaults.Format != "" && !containsStr(Formats, s.Defaults.Format) {
		c.add(find(root, "defaults", "format"), "defaults.format %q is not one of %s", s.Defaults.Format, strings.Join(Formats, ", "))
	}
	spaces := map[string]bool{}
	for i, sp := range s.Spaces {
		n := find(root, "spaces", i)
		if sp.Name == "" {
			c.add(n, "spaces[%d].name is required", i)
		}
		if spaces[strings.ToLower(sp.Name)] {
			c.add(find(n, "name"), "space %q is listed twice", sp.Name)
		}
		spaces[strings.ToLower(sp.Name)] = true
		for j, r := range sp.Roles {
			rn := find(n, "roles", j)
			if r.User == "" {
				c.add(rn, "spaces[%d].roles[%d].user is required", i, j)
			}
			if _, ok := spaceRoles[r.Role]; !ok {
				c.add(orNode(find(rn, "role"), rn), "role %q is not one of developer, manager, auditor, supporter", r.Role)
			}
		}
	}
	byName := map[string]*SpecInstance{}
	outs := map[string]string{}
	for i, in := range s.Instances {
		n := find(root, "instances", i)
		in.line = n.Line
		if in.Name == "" {
			c.add(n, "instances[%d].name is required", i)
			continue
		}
		if in.Space == "" {
			in.Space = s.Defaults.Space
		}
		if in.Space == "" {
			c.add(n, "instance %q has no space (set space, or defaults.space)", in.Name)
		}
		in.Offering = firstNonEmpty(in.Offering, s.Defaults.Offering, "xsuaa")
		in.Plan = firstNonEmpty(in.Plan, s.Defaults.Plan, "application")
		in.Broker = firstNonEmpty(in.Broker, s.Defaults.Broker)
		id := strings.ToLower(in.Space) + "/" + in.Name
		if byName[id] != nil {
			c.add(find(n, "name"), "instance %q is listed twice in space %q", in.Name, in.Space)
		}
		byName[id] = in
		s.render(c, in, n)
		for j, k := range in.Keys {
			if k.Instance != "" && k.Instance != in.Name {
				c.add(find(n, "keys", j, "instance"), "a key under instance %q names instance %q", in.Name, k.Instance)
			}
			k.Instance = in.Name
			s.checkKey(c, in, k, find(n, "keys", j), outs)
		}
	}
	for j, k := range s.Keys {
		n := find(root, "keys", j)
		var owner *SpecInstance
		for _, in := range s.Instances {
			if in.Name == k.Instance {
				owner = in
			}
		}
		if owner == nil {
			c.add(orNode(find(n, "instance"), n), "key %q refers to instance %q, which is not in the spec", k.Name, k.Instance)
			continue
		}
		owner.Keys = append(owner.Keys, k)
		s.checkKey(c, owner, k, n, outs)
	}
}

func orNode(n, fallback *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return fallback
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Spec) checkKey(c *specChecker, in *SpecInstance, k *SpecKey, n *yaml.Node, outs map[string]string) {
	if k.Name == "" {
		k.Name = in.Name + "-key"
	}
	for _, o := range in.Keys {
		if o == k {
			break // report a duplicate at its second occurrence only
		}
		if o.Name == k.Name {
			c.add(orNode(find(n, "name"), n), "key %q of instance %q is listed twice", k.Name, in.Name)
			break
		}
	}
	if k.Format != "" && !containsStr(Formats, k.Format) {
		c.add(orNode(find(n, "format"), n), "format %q is not one of %s", k.Format, strings.Join(Formats, ", "))
	}
	k.Format = firstNonEmpty(k.Format, s.Defaults.Format, FormatJSON)
	if k.Out != "" {
		if !filepath.IsAbs(k.Out) {
			k.Out = filepath.Join(filepath.Dir(s.File), k.Out)
		}
		if prev, dup := outs[k.Out]; dup {
			c.add(orNode(find(n, "out"), n), "out %s is also the file of key %s", k.Out, prev)
		}
		outs[k.Out] = in.Name + "/" + k.Name
	}
	if k.Rotate != nil {
		d, err := time.ParseDuration(k.Rotate.MaxAge)
		if err != nil || d <= 0 {
			c.add(orNode(find(n, "rotate", "maxAge"), n), "rotate.maxAge %q is not a positive duration such as 720h", k.Rotate.MaxAge)
		}
		k.Rotate.maxAge = d
	}
}

// render builds an instance's descriptor from its template, parameters or
// parameters file, and validates it with the broker's rules.
func (s *Spec) render(c *specChecker, in *SpecInstance, n *yaml.Node) {
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
		vars := map[string]string{}
		for k, v := range s.Variables {
			vars[k] = v
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
			vars[k] = v
		}
		raw, err := tm.Render(vars)
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
		raw, err := os.ReadFile(p)
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
		d = normalize(in.Parameters).(map[string]any)
	default:
		d = map[string]any{"xsappname": in.Name}
	}
	if d["tenant-mode"] == nil {
		d["tenant-mode"] = xssec.DefaultTenantMode
	}
	if in.Offering == "xsuaa" {
		for _, p := range xssec.Validate(d).Errors() {
			c.add(at, "instance %q: descriptor %s: %s", in.Name, p.Path, p.Message)
		}
	}
	in.Descriptor = normalize(d).(map[string]any)
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
