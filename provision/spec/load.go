package spec

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/xsprov/xsprov/provision/credfile"
	"github.com/xsprov/xsprov/provision/infile"
	"github.com/xsprov/xsprov/provision/remedy"
)

type checker struct {
	probs        []Problem
	visits       int // nodes walked, aliases expanded: bounded
	tooBig       bool
	allowOutside bool
	outside      bool // a path outside the spec's folder was refused
}

// Option tunes loading.
type Option func(*checker)

// AllowOutsidePaths lets keys write files outside the spec's folder.
func AllowOutsidePaths() Option { return func(c *checker) { c.allowOutside = true } }

func (c *checker) add(n *yaml.Node, format string, args ...any) {
	line, col := 0, 0
	if n != nil {
		line, col = n.Line, n.Column
	}
	c.probs = append(c.probs, Problem{Line: line, Column: col, Msg: fmt.Sprintf(format, args...)})
}

// Load reads, checks and renders a spec. vars override its variables.
// Every problem is reported at once (*Error, exit 2); nothing is sent.
func Load(path string, vars map[string]string, opts ...Option) (*Spec, error) {
	raw, err := infile.Read(path, infile.Document)
	if err != nil {
		return nil, usagef("read spec: %v", err)
	}
	return Parse(path, raw, vars, opts...)
}

// Parse is Load on bytes; path locates relative files and names the
// spec in messages.
func Parse(path string, raw []byte, vars map[string]string, opts ...Option) (*Spec, error) {
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
		return nil, &Error{File: path, Problems: []Problem{{Line: line, Column: 1, Msg: "malformed YAML: " + msg}}}
	}
	c := &checker{}
	for _, o := range opts {
		o(c)
	}
	root := find(&doc)
	if root == nil {
		return nil, &Error{File: path, Problems: []Problem{{Line: 1, Column: 1, Msg: "the spec is empty"}}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		c.add(find(&extra), "a second YAML document; a spec is one document")
	} else if !errors.Is(err, io.EOF) {
		c.add(nil, "after the first document: malformed YAML: %v", err)
	}
	if nodes, bytes := expanded(root, maxNodes, maxBytes); nodes > maxNodes || bytes > maxBytes {
		c.add(root, "the spec expands to more than %d YAML nodes or %d MiB (nested aliases?)", maxNodes, maxBytes>>20)
		return nil, c.err(path)
	}
	c.walk(root, specShape, "")
	if c.tooBig {
		return nil, c.err(path)
	}
	// Unknown fields and wrong types do not stop the check: every problem
	// is reported in one run, when the rest can still be read.
	var s Spec
	if err := root.Decode(&s); err != nil {
		// yaml.v3 decodes what it can around a type error; the walk has
		// reported those at their lines, so the rest is checked too
		var te *yaml.TypeError
		if !errors.As(err, &te) || len(c.probs) == 0 {
			if len(c.probs) == 0 {
				c.add(root, "%v", err)
			}
			return nil, c.sorted(path)
		}
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
		return nil, c.sorted(path)
	}
	return &s, nil
}

// sorted is the error with the problems in the order of the file.
func (c *checker) sorted(path string) *Error {
	sort.SliceStable(c.probs, func(i, j int) bool {
		if c.probs[i].Line != c.probs[j].Line {
			return c.probs[i].Line < c.probs[j].Line
		}
		return c.probs[i].Column < c.probs[j].Column
	})
	return c.err(path)
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
func (s *Spec) check(c *checker, root *yaml.Node) {
	if s.APIVersion != APIVersion {
		c.add(orNode(find(root, "apiVersion"), root), "apiVersion must be %q, got %q", APIVersion, s.APIVersion)
	}
	if s.Metadata.Name == "" {
		s.Metadata.Name = strings.TrimSuffix(filepath.Base(s.File), filepath.Ext(s.File))
	}
	if !reLabelValue.MatchString(s.Metadata.Name) {
		c.add(orNode(find(root, "metadata", "name"), root), "metadata.name %q must be at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric (it becomes a label value)", s.Metadata.Name)
	}
	if s.Defaults.Format != "" && !slices.Contains(credfile.Formats, s.Defaults.Format) {
		c.add(find(root, "defaults", "format"), "defaults.format %q is not one of %s", s.Defaults.Format, strings.Join(credfile.Formats, ", "))
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
			if _, ok := SpaceRoles[r.Role]; !ok {
				c.add(orNode(find(rn, "role"), rn), "role %q is not one of developer, manager, auditor, supporter", r.Role)
			}
		}
	}
	byName := map[string]*Instance{}
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
		in.Offering = cmp.Or(in.Offering, s.Defaults.Offering, "xsuaa")
		in.Plan = cmp.Or(in.Plan, s.Defaults.Plan, "application")
		in.Broker = cmp.Or(in.Broker, s.Defaults.Broker)
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
		var owner *Instance
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
	s.link(c, root)
}

func (s *Spec) checkKey(c *checker, in *Instance, k *Key, n *yaml.Node, outs map[string]string) {
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
	if k.Format != "" && !slices.Contains(credfile.Formats, k.Format) {
		c.add(orNode(find(n, "format"), n), "format %q is not one of %s", k.Format, strings.Join(credfile.Formats, ", "))
	}
	k.Format = cmp.Or(k.Format, s.Defaults.Format, credfile.FormatJSON)
	if k.Out != "" {
		at := orNode(find(n, "out"), n)
		if !filepath.IsAbs(k.Out) {
			k.Out = filepath.Join(filepath.Dir(s.File), k.Out)
		}
		k.Out = filepath.Clean(k.Out)
		if !c.allowOutside && !inside(filepath.Dir(s.File), k.Out) {
			c.add(at, "out %s is outside the spec's folder", k.Out)
			c.outside = true
		}
		if err := credfile.CheckOutput(k.Out, k.Format); err != nil {
			c.add(at, "out %s: %v", k.Out, err)
		}
		// the file and, for pem, its .crt and .key: no two keys share one
		for _, p := range credfile.OutputPaths(k.Out, k.Format) {
			if prev, dup := outs[p]; dup {
				c.add(at, "out %s: %s is also a file of key %s", k.Out, p, prev)
			}
			outs[p] = in.Name + "/" + k.Name
		}
	}
	if k.Rotate != nil {
		d, err := time.ParseDuration(k.Rotate.MaxAge)
		if err != nil || d <= 0 {
			c.add(orNode(find(n, "rotate", "maxAge"), n), "rotate.maxAge %q is not a positive duration such as 720h", k.Rotate.MaxAge)
		}
		k.Rotate.maxAge = d
	}
}

func (c *checker) err(path string) *Error {
	e := &Error{File: path, Problems: c.probs}
	if c.outside {
		e.Remedy = remedy.Remedy{Action: remedy.AllowOutsidePaths}
	}
	return e
}

// inside tells whether path lies in dir (both made absolute).
func inside(dir, path string) bool {
	ad, err1 := filepath.Abs(dir)
	ap, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(ad, ap)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
