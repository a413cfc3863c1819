package xssec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// hidden replaces secret values in diffs, as the cf CLI's traces do.
const hidden = "[PRIVATE DATA HIDDEN]"

// DiffEntry is one difference between two descriptors.
type DiffEntry struct {
	Path string `json:"path"`
	Op   string `json:"op"` // add, remove, change
	// Old and New are the values as text (JSON, shortened); OldValue and
	// NewValue the same as JSON values, which is what --json shows. Values
	// that look secret are hidden in both.
	Old      string          `json:"-"`
	New      string          `json:"-"`
	OldValue json.RawMessage `json:"old,omitempty"`
	NewValue json.RawMessage `json:"new,omitempty"`
}

func (d DiffEntry) String() string {
	old, new := textOf(d.Old, d.OldValue), textOf(d.New, d.NewValue)
	switch d.Op {
	case "add":
		return "+ " + d.Path + ": " + new
	case "remove":
		return "- " + d.Path + ": " + old
	}
	return "~ " + d.Path + ": " + old + " -> " + new
}

// textOf is the text of a value: as made, or from its JSON (an entry read
// back from JSON, such as a saved plan's).
func textOf(text string, raw json.RawMessage) string {
	if text != "" || raw == nil {
		return text
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return shorten(string(raw))
	}
	return shorten(b.String())
}

func shorten(s string) string {
	if len(s) > 120 {
		return s[:117] + "..."
	}
	return s
}

// Diff lists the differences from old to new by JSON path, with values that
// look secret redacted. Numbers compare by value (3600 == 3600.0).
func Diff(old, new map[string]any) []DiffEntry {
	var out []DiffEntry
	diffValue("$", Normalize(old), Normalize(new), &out)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Normalize round-trips through JSON so that numbers and nested types
// compare alike whatever decoded them.
func Normalize(v any) any {
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
				*out = append(*out, DiffEntry{Path: p, Op: "add", New: show(p, bv), NewValue: value(p, bv)})
			case !bin:
				*out = append(*out, DiffEntry{Path: p, Op: "remove", Old: show(p, av), OldValue: value(p, av)})
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
		*out = append(*out, DiffEntry{Path: path, Op: "change", Old: show(path, a), New: show(path, b), OldValue: value(path, a), NewValue: value(path, b)})
	}
}

var secretWords = []string{"secret", "password", "certificate", "private", "credential"}

func show(path string, v any) string {
	if secretPath(path) {
		return hidden
	}
	b, _ := json.Marshal(v)
	return shorten(string(b))
}

// value is v as a JSON value, hidden when the path looks secret.
func value(path string, v any) json.RawMessage {
	if secretPath(path) {
		b, _ := json.Marshal(hidden)
		return b
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

func secretPath(path string) bool {
	leaf := strings.ToLower(path[strings.LastIndex(path, ".")+1:])
	for _, w := range secretWords {
		if strings.Contains(leaf, w) && leaf != "credential-types" {
			return true
		}
	}
	return false
}

// Removes tells whether a diff takes anything away: a field, an element of
// a list (replacing one removes it), or an object or list that is replaced.
// A new value of a scalar field (token-validity 3600 -> 7200) removes
// nothing.
func Removes(diff []DiffEntry) bool {
	for _, d := range diff {
		switch {
		case d.Op == "remove":
			return true
		case d.Op == "change" && (strings.HasSuffix(d.Path, "]") || strings.HasPrefix(d.Old, "{") || strings.HasPrefix(d.Old, "[")):
			return true
		}
	}
	return false
}

// DescribeFields words fields of a descriptor: xsappname "a", tenant-mode "b".
func DescribeFields(d map[string]any, fields []string) string {
	s := ""
	for i, f := range fields {
		if i > 0 {
			s += ", "
		}
		v := Field(d, f)
		if f == "tenant-mode" {
			v = TenantMode(d)
		}
		s += f + " " + fmt.Sprintf("%q", v)
	}
	return s
}

// JoinAnd joins words as "a, b and c".
func JoinAnd(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	s := ""
	for i, x := range xs {
		switch {
		case i == len(xs)-1:
			s += " and " + x
		case i > 0:
			s += ", " + x
		default:
			s += x
		}
	}
	return s
}
