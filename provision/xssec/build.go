package xssec

import (
	"fmt"
	"os"
)

// Input are the ways a user gives the descriptor.
type Input struct {
	File          string // a whole xs-security.json
	Inline        map[string]any
	XSAppName     string   // overrides xsappname
	TenantMode    string   // overrides tenant-mode
	ForeignScopes []string // override foreign-scope-references
	Instance      string   // default xsappname
	Source        string   // what Inline came from, for messages
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
		src = in.File
		raw, err := os.ReadFile(in.File)
		if err != nil {
			return nil, nil, usagef("read parameters file: %v", err)
		}
		obj, ps := Parse(raw)
		if ps != nil {
			return nil, nil, &InvalidError{Source: in.File, Problems: ps}
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

type usageError string

func (e usageError) Error() string { return string(e) }

// Usage marks the error as bad input (exit code 2).
func (e usageError) Usage() bool { return true }

func usagef(format string, args ...any) error { return usageError(fmt.Sprintf(format, args...)) }
