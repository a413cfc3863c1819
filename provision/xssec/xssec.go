// Package xssec validates XSUAA xs-security descriptors (the parameters of an
// xsuaa service instance) with the rules the XSUAA service broker applies.
//
// The same rules serve two sides: xsprov's preflight check, so that an invalid
// descriptor never reaches Cloud Foundry, and the simulated broker in cfsim,
// which fails a provisioning job the way the real broker does.
package xssec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Severity tells whether a Problem blocks provisioning.
type Severity string

// Severities of a Problem.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Problem is one finding in a descriptor, located by its JSON path
// (and by line and column when the JSON itself is malformed).
type Problem struct {
	Severity Severity `json:"severity"`
	Path     string   `json:"path"`
	Line     int      `json:"line,omitempty"`
	Column   int      `json:"column,omitempty"`
	Message  string   `json:"message"`
	// Relational: the problem is between fields (a duplicate name, a
	// reference to something not defined), which no JSON Schema can say;
	// every other error is also one of xs-security.schema.json.
	Relational bool `json:"relational,omitempty"`
}

func (p Problem) String() string {
	loc := p.Path
	if p.Line > 0 {
		loc = fmt.Sprintf("line %d, column %d", p.Line, p.Column)
	}
	if loc == "" {
		loc = "$"
	}
	return fmt.Sprintf("%s: %s: %s", p.Severity, loc, p.Message)
}

// Describe words a problem as the broker does in its warnings, so the same
// finding from xsprov's preflight and from the broker reads the same.
func (p Problem) Describe() string { return "xs-security.json " + p.Path + ": " + p.Message }

// Problems is the result of a validation. As an error it lists the errors.
type Problems []Problem

// Errors returns only the problems of severity Error.
func (ps Problems) Errors() Problems {
	var out Problems
	for _, p := range ps {
		if p.Severity == Error {
			out = append(out, p)
		}
	}
	return out
}

// Warnings returns only the problems of severity Warning.
func (ps Problems) Warnings() Problems {
	var out Problems
	for _, p := range ps {
		if p.Severity == Warning {
			out = append(out, p)
		}
	}
	return out
}

// Err returns the errors as a single error value, or nil when there are none.
func (ps Problems) Err() error {
	errs := ps.Errors()
	if len(errs) == 0 {
		return nil
	}
	return &InvalidError{Problems: errs}
}

// InvalidError is returned for a descriptor with at least one error.
type InvalidError struct {
	Source   string
	Problems Problems
}

// Usage marks the error as bad input (exit code 2).
func (e *InvalidError) Usage() bool { return true }

func (e *InvalidError) Error() string {
	var b strings.Builder
	src := e.Source
	if src == "" {
		src = "the xs-security descriptor"
	}
	fmt.Fprintf(&b, "invalid xs-security descriptor in %s (%d problem", src, len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteString("s")
	}
	b.WriteString("):")
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Limits from the XSUAA documentation.
const (
	MaxXSAppName        = 100
	MaxScopeName        = 193
	MaxScopes           = 500
	MaxGrantedScopes    = 250
	MaxRoleTemplates    = 500
	MaxRoleCollections  = 250
	MaxAttributes       = 50
	MaxNameLen          = 64
	MaxDefaultRoleName  = 255
	MaxDescription      = 1000
	MinTokenValidity    = 60
	MaxTokenValidity    = 86400
	MaxRefreshValidity  = 31536000
	DefaultTenantMode   = "dedicated"
	DefaultCredentialTy = "binding-secret"
)

var (
	reXSAppName     = regexp.MustCompile(`^[A-Za-z0-9_\-/\\]+$`)
	reScopeRest     = regexp.MustCompile(`^[A-Za-z0-9_\-/\\:.]+$`)
	reAttrName      = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	reRoleTemplate  = regexp.MustCompile(`^[A-Za-z0-9._\-]+$`)
	reForeignScope  = regexp.MustCompile(`^\$XSAPPNAME\(([A-Za-z0-9_]+),([A-Za-z0-9_\-/\\]+)\)\.([A-Za-z0-9_\-/\\:.]+)$`)
	reForeignApp    = regexp.MustCompile(`^\$XSAPPNAME\(([A-Za-z0-9_]+),([A-Za-z0-9_\-/\\]+)(,[A-Za-z0-9_\-]+)?\)$`)
	reServiceName   = regexp.MustCompile(`^\$XSSERVICENAME\([^()]+\)$`)
	reRoleTmplRef   = regexp.MustCompile(`^\$XSAPPNAME(\([A-Za-z0-9_]+,[A-Za-z0-9_\-/\\]+\))?\.([A-Za-z0-9._\-]+)$`)
	tenantModes     = []string{"dedicated", "shared", "external"}
	credentialTypes = []string{"binding-secret", "x509", "instance-secret"}
	valueTypes      = []string{"string", "s", "int", "date"}
)

// Known top-level fields of a descriptor. Anything else is refused by the
// broker's strict JSON parser.
var topLevel = map[string]bool{
	"xsappname": true, "tenant-mode": true, "description": true, "scopes": true,
	"attributes": true, "role-templates": true, "role-collections": true,
	"foreign-scope-references": true, "authorities": true, "authorities-inheritance": true,
	"oauth2-configuration": true, "xsenableasyncservice": true, "instance-identity-zone": true,
}

var oauth2Fields = map[string]bool{
	"token-validity": true, "refresh-token-validity": true, "redirect-uris": true,
	"credential-types": true, "grant-types": true, "autoapprove": true,
	"system-attributes": true, "allowedproviders": true, "refresh-token-usage": true,
}

// Parse decodes raw descriptor JSON into a generic object. Malformed JSON is
// reported as a Problem with line and column.
func Parse(raw []byte) (map[string]any, Problems) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, Problems{syntaxProblem(raw, err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		off := dec.InputOffset()
		line, col := lineCol(raw, off)
		return nil, Problems{{Severity: Error, Line: line, Column: col, Message: "unexpected data after the JSON object"}}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, Problems{{Severity: Error, Path: "$", Message: "descriptor must be a JSON object"}}
	}
	return obj, nil
}

func syntaxProblem(raw []byte, err error) Problem {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	off := int64(len(raw))
	switch {
	case errors.As(err, &se):
		off = se.Offset - 1 // Offset counts the offending byte; point at it
		if off < 0 {
			off = 0
		}
	case errors.As(err, &te):
		off = te.Offset
	}
	line, col := lineCol(raw, off)
	msg := err.Error()
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		msg = "unexpected end of JSON input"
	}
	return Problem{Severity: Error, Line: line, Column: col, Message: "malformed JSON: " + msg}
}

func lineCol(raw []byte, off int64) (int, int) {
	if off > int64(len(raw)) {
		off = int64(len(raw))
	}
	line, col := 1, 1
	for _, c := range raw[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

// ValidateJSON parses and validates raw descriptor JSON.
func ValidateJSON(raw []byte) Problems {
	obj, ps := Parse(raw)
	if ps != nil {
		return ps
	}
	return Validate(obj)
}

// Validate checks a decoded descriptor and returns every problem found,
// ordered by JSON path.
func Validate(d map[string]any) Problems {
	v := &validator{}
	v.run(d)
	return v.Sorted()
}

type validator struct{ Checker }

func (v *validator) run(d map[string]any) {
	for _, k := range slices.Sorted(maps.Keys(d)) {
		if !topLevel[k] {
			v.Errf("$."+k, "unrecognized field %q", k)
		}
	}
	// xsappname
	if raw, ok := d["xsappname"]; ok {
		s, isStr := raw.(string)
		switch {
		case !isStr:
			v.Errf("$.xsappname", "must be a string")
		case s == "":
			v.Errf("$.xsappname", "must not be empty")
		case len(s) > MaxXSAppName:
			v.Errf("$.xsappname", "is %d characters long, at most %d are allowed", len(s), MaxXSAppName)
		case !reXSAppName.MatchString(s):
			v.Errf("$.xsappname", "%q contains characters other than letters, digits, '_', '-', '/' and '\\'", s)
		}
	} else {
		v.Errf("$.xsappname", "is required")
	}
	if raw, ok := d["tenant-mode"]; ok {
		s, _ := raw.(string)
		if !slices.Contains(tenantModes, s) {
			v.Errf("$.tenant-mode", "%s is not one of dedicated, shared, external", Text(raw))
		}
	}
	if raw, ok := d["description"]; ok {
		if _, isStr := raw.(string); !isStr {
			v.Errf("$.description", "must be a string")
		}
	}
	scopes := v.scopes(d)
	attrs := v.attributes(d)
	roleTemplates := v.roleTemplates(d, scopes, attrs)
	v.roleCollections(d, roleTemplates)
	v.refList(d, "foreign-scope-references", "$ACCEPT_GRANTED_SCOPES", MaxGrantedScopes)
	v.refList(d, "authorities", "$ACCEPT_GRANTED_AUTHORITIES", MaxGrantedScopes)
	if raw, ok := d["authorities-inheritance"]; ok {
		if _, isBool := raw.(bool); !isBool {
			v.Errf("$.authorities-inheritance", "must be true or false")
		}
	}
	if raw, ok := d["xsenableasyncservice"]; ok {
		if s, isStr := raw.(string); !isStr || (s != "true" && s != "false") {
			v.Errf("$.xsenableasyncservice", `must be "true" or "false"`)
		}
	}
	v.oauth2(d)
}

// Field returns a string field of a descriptor ("" when absent).
func Field(d map[string]any, name string) string {
	s, _ := d[name].(string)
	return s
}

// TenantMode returns the descriptor's tenant mode, defaulting to dedicated.
func TenantMode(d map[string]any) string {
	if s := Field(d, "tenant-mode"); s != "" {
		return s
	}
	return DefaultTenantMode
}

// CredentialTypes returns the enabled credential types, in order; the first is
// the default for new keys.
func CredentialTypes(d map[string]any) []string {
	cfg, _ := d["oauth2-configuration"].(map[string]any)
	arr, _ := cfg["credential-types"].([]any)
	var out []string
	for _, a := range arr {
		if s, ok := a.(string); ok {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return []string{DefaultCredentialTy}
	}
	return out
}

// ImmutableChanges lists the fields whose change the broker cannot apply to an
// existing instance (it needs to be recreated).
func ImmutableChanges(old, desired map[string]any) []string {
	var out []string
	if Field(old, "xsappname") != Field(desired, "xsappname") {
		out = append(out, "xsappname")
	}
	if TenantMode(old) != TenantMode(desired) {
		out = append(out, "tenant-mode")
	}
	return out
}
