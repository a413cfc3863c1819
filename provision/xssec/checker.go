package xssec

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
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

// Array returns obj[field] as an array; false when it is absent, and an
// error at p when it is not an array.
func (c *Checker) Array(obj map[string]any, field, p string) ([]any, bool) {
	raw, ok := obj[field]
	if !ok {
		return nil, false
	}
	arr, isArr := raw.([]any)
	if !isArr {
		c.Errf(p, "must be an array")
	}
	return arr, isArr
}

// WholeNumber returns obj[field] as a whole number, however written (3600,
// 3600.0, 36e2: as JSON Schema's integer and the brokers' JSON parsers take
// it), with its text; false when it is absent, and an error at p when it is
// not a whole number.
func (c *Checker) WholeNumber(obj map[string]any, field, p string) (float64, string, bool) {
	raw, ok := obj[field]
	if !ok {
		return 0, "", false
	}
	var n json.Number
	switch x := raw.(type) {
	case json.Number:
		n = x
	case float64:
		n = json.Number(fmt.Sprint(x))
	default:
		c.Errf(p, "must be a whole number")
		return 0, "", false
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) {
		c.Errf(p, "%s is not a whole number", n)
		return 0, "", false
	}
	return f, n.String(), true
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
