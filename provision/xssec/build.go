package xssec

import (
	"fmt"

	"github.com/xsprov/xsprov/provision/infile"
)

// Input are the ways a user gives the descriptor.
type Input struct {
	File     string // a whole xs-security.json
	Inline   map[string]any
	Instance string // default xsappname
	Source   string // what Inline came from, for messages
	Overrides
}

// Build merges the descriptor from the file (if any) with the flags
// (which win), validates it, and returns it with the warnings. Every problem
// is a *UsageError naming where it is.
func Build(in Input) (map[string]any, Problems, error) {
	d := map[string]any{}
	src := "the parameters given by flags"
	if in.Inline != nil {
		d = in.Inline
		if in.Source != "" {
			src = in.Source
		}
	}
	if in.File != "" {
		obj, err := ReadFile(in.File)
		if err != nil {
			return nil, nil, err
		}
		d, src = obj, in.File
	}
	d = in.Overrides.Apply(d)
	if Field(d, "xsappname") == "" && d["xsappname"] == nil && in.Instance != "" {
		d["xsappname"] = in.Instance
	}
	if _, ok := d["tenant-mode"]; !ok {
		d["tenant-mode"] = DefaultTenantMode
	}
	ps := Validate(d)
	if errs := ps.Errors(); len(errs) > 0 {
		return nil, ps, &InvalidError{Source: src, Problems: errs}
	}
	return Normalize(d).(map[string]any), ps.Warnings(), nil
}

// ReadFile reads a descriptor (any offering's parameters) from a JSON file,
// size-limited; problems are usage errors that name the file.
func ReadFile(path string) (map[string]any, error) {
	raw, err := infile.Read(path, infile.Document)
	if err != nil {
		return nil, usagef("read parameters file: %v", err)
	}
	obj, ps := Parse(raw)
	if ps != nil {
		return nil, &InvalidError{Source: path, Problems: ps}
	}
	return obj, nil
}

type usageError string

func (e usageError) Error() string { return string(e) }

// Usage marks the error as bad input (exit code 2).
func (e usageError) Usage() bool { return true }

func usagef(format string, args ...any) error { return usageError(fmt.Sprintf(format, args...)) }

// Overrides are the descriptor fields given one by one (on the command
// line); they apply over a whole descriptor, or over what an instance holds.
type Overrides struct {
	XSAppName     string
	TenantMode    string
	ForeignScopes []string
}

// Empty tells whether no field is overridden.
func (o Overrides) Empty() bool {
	return o.XSAppName == "" && o.TenantMode == "" && len(o.ForeignScopes) == 0
}

// Apply returns a copy of d with the overridden fields set.
func (o Overrides) Apply(d map[string]any) map[string]any {
	out, _ := Normalize(d).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	if o.XSAppName != "" {
		out["xsappname"] = o.XSAppName
	}
	if o.TenantMode != "" {
		out["tenant-mode"] = o.TenantMode
	}
	if len(o.ForeignScopes) > 0 {
		refs := make([]any, len(o.ForeignScopes))
		for i, r := range o.ForeignScopes {
			refs[i] = r
		}
		out["foreign-scope-references"] = refs
	}
	return out
}
