package xssec

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Checker collects the problems of a validation, each at its JSON path. The
// xs-security validator is built on it, and so are the validators of other
// offerings' parameters (provision/ias).
type Checker struct {
	Problems Problems
}

// Errf records an error at path.
func (c *Checker) Errf(path, format string, args ...any) {
	c.Problems = append(c.Problems, Problem{Severity: Error, Path: path, Message: fmt.Sprintf(format, args...)})
}

// Relf records an error between fields (Problem.Relational).
func (c *Checker) Relf(path, format string, args ...any) {
	c.Problems = append(c.Problems, Problem{Severity: Error, Path: path, Message: fmt.Sprintf(format, args...), Relational: true})
}

// Warnf records a warning at path.
func (c *Checker) Warnf(path, format string, args ...any) {
	c.Problems = append(c.Problems, Problem{Severity: Warning, Path: path, Message: fmt.Sprintf(format, args...)})
}

// Only refuses the fields of obj (at p) that are not allowed.
func (c *Checker) Only(obj map[string]any, p string, allowed ...string) {
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if !slices.Contains(allowed, k) {
			c.Errf(p+"."+k, "unrecognized field %q", k)
		}
	}
}

// Object returns d[field] as an object; false when it is absent, and an
// error at p when it is not an object.
func (c *Checker) Object(d map[string]any, field, p string) (map[string]any, bool) {
	raw, ok := d[field]
	if !ok {
		return nil, false
	}
	obj, isObj := raw.(map[string]any)
	if !isObj {
		c.Errf(p, "must be an object")
	}
	return obj, isObj
}

// Enum refuses obj[field] (at parent.field) when it is present and not one
// of allowed.
func (c *Checker) Enum(obj map[string]any, field, parent string, allowed ...string) {
	if raw, ok := obj[field]; ok {
		if s, _ := raw.(string); !slices.Contains(allowed, s) {
			c.Errf(parent+"."+field, "%s is not one of %s", Text(raw), strings.Join(allowed, ", "))
		}
	}
}

// Bool refuses obj[field] when it is present and not true or false.
func (c *Checker) Bool(obj map[string]any, field, parent string) {
	if raw, ok := obj[field]; ok {
		if _, isBool := raw.(bool); !isBool {
			c.Errf(parent+"."+field, "must be true or false")
		}
	}
}

// Sorted returns the problems ordered by JSON path.
func (c *Checker) Sorted() Problems {
	slices.SortStableFunc(c.Problems, func(a, b Problem) int { return strings.Compare(a.Path, b.Path) })
	return c.Problems
}

// Text is a value as JSON, for messages.
func Text(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
