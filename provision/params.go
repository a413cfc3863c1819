package provision

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/xsprov/xsprov/provision/xssec"
)

// DiffEntry is one difference between two descriptors.
type DiffEntry struct {
	Path string `json:"path"`
	Op   string `json:"op"` // add, remove, change
	Old  string `json:"old,omitempty"`
	New  string `json:"new,omitempty"`
}

func (d DiffEntry) String() string {
	switch d.Op {
	case "add":
		return "+ " + d.Path + ": " + d.New
	case "remove":
		return "- " + d.Path + ": " + d.Old
	}
	return "~ " + d.Path + ": " + d.Old + " -> " + d.New
}

// Diff lists the differences from old to new by JSON path, with values that
// look secret redacted. Numbers compare by value (3600 == 3600.0).
func Diff(old, new map[string]any) []DiffEntry {
	var out []DiffEntry
	diffValue("$", normalize(old), normalize(new), &out)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// normalize round-trips through JSON so that numbers and nested types
// compare alike whatever decoded them.
func normalize(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func diffValue(path string, a, b any, out *[]DiffEntry) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		for k := range keys {
			p := path + "." + k
			av, ain := am[k]
			bv, bin := bm[k]
			switch {
			case !ain:
				*out = append(*out, DiffEntry{Path: p, Op: "add", New: show(p, bv)})
			case !bin:
				*out = append(*out, DiffEntry{Path: p, Op: "remove", Old: show(p, av)})
			default:
				diffValue(p, av, bv, out)
			}
		}
		return
	}
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok && len(as) == len(bs) {
		for i := range as {
			diffValue(fmt.Sprintf("%s[%d]", path, i), as[i], bs[i], out)
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		*out = append(*out, DiffEntry{Path: path, Op: "change", Old: show(path, a), New: show(path, b)})
	}
}

var secretWords = []string{"secret", "password", "certificate", "private", "credential"}

func show(path string, v any) string {
	leaf := strings.ToLower(path[strings.LastIndex(path, ".")+1:])
	for _, w := range secretWords {
		if strings.Contains(leaf, w) && leaf != "credential-types" {
			return PrivateData
		}
	}
	b, _ := json.Marshal(v)
	s := string(b)
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// ParamsInput are the ways a user gives the descriptor.
type ParamsInput struct {
	File          string // --params FILE (a whole xs-security.json)
	Inline        map[string]any
	XSAppName     string   // --xsappname
	TenantMode    string   // --tenant-mode
	ForeignScopes []string // --foreign-scope (repeatable)
	Instance      string   // default xsappname
	Source        string   // what Inline came from, for messages
}

// BuildParams merges the descriptor from the file (if any) with the flags
// (which win), validates it, and returns it with the warnings. Every problem
// is a *UsageError naming where it is.
func BuildParams(in ParamsInput) (map[string]any, xssec.Problems, error) {
	d := map[string]any{}
	src := "the parameters given by flags"
	if in.Inline != nil {
		d = in.Inline
		if in.Source != "" {
			src = in.Source
		}
	}
	if in.File != "" {
		src = in.File
		raw, err := os.ReadFile(in.File)
		if err != nil {
			return nil, nil, Usagef("read parameters file: %v", err)
		}
		obj, ps := xssec.Parse(raw)
		if ps != nil {
			return nil, nil, &UsageError{Msg: (&xssec.InvalidError{Source: in.File, Problems: ps}).Error()}
		}
		d = obj
	}
	if in.XSAppName != "" {
		d["xsappname"] = in.XSAppName
	}
	if in.TenantMode != "" {
		d["tenant-mode"] = in.TenantMode
	}
	if len(in.ForeignScopes) > 0 {
		var refs []any
		for _, r := range in.ForeignScopes {
			refs = append(refs, r)
		}
		d["foreign-scope-references"] = refs
	}
	if xssec.Field(d, "xsappname") == "" && d["xsappname"] == nil && in.Instance != "" {
		d["xsappname"] = in.Instance
	}
	if _, ok := d["tenant-mode"]; !ok {
		d["tenant-mode"] = xssec.DefaultTenantMode
	}
	ps := xssec.Validate(d)
	if errs := ps.Errors(); len(errs) > 0 {
		return nil, ps, &UsageError{Msg: (&xssec.InvalidError{Source: src, Problems: errs}).Error()}
	}
	return normalize(d).(map[string]any), ps.Warnings(), nil
}

// ParseKeyParams reads --key-params: a file path or inline JSON.
func ParseKeyParams(v string) (map[string]any, error) {
	if v == "" {
		return nil, nil
	}
	raw := []byte(v)
	where := "--key-params"
	if t := strings.TrimSpace(v); !strings.HasPrefix(t, "{") {
		b, err := os.ReadFile(v)
		if err != nil {
			return nil, Usagef("--key-params: %q is neither inline JSON nor a readable file: %v", v, err)
		}
		raw, where = b, v
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		if err == nil {
			err = fmt.Errorf("not a JSON object")
		}
		return nil, Usagef("%s: key parameters must be a JSON object: %v", where, err)
	}
	return m, nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
