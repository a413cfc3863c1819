package xssec

import (
	"fmt"
	"strings"
	"testing"
)

// ValidateCase is a descriptor with the first error the validator must
// report ("" for a valid one). The cases are exported for the schema's
// agreement test (schema_test.go).
type ValidateCase struct {
	Name     string
	JSON     string
	WantPath string // "" = valid
	WantMsg  string
}

func many(n int, item string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(item, i)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// ValidateCases are the validator's good and bad table cases.
var long = strings.Repeat("a", MaxXSAppName+1)

var ValidateCases = []ValidateCase{
	{"minimal", `{"xsappname":"my-app"}`, "", ""},
	{"full", `{"xsappname":"my_app/x","tenant-mode":"shared","description":"d",
			"scopes":[{"name":"$XSAPPNAME.Read","description":"r","granted-apps":["$XSAPPNAME(application,other)"]}],
			"attributes":[{"name":"Country","description":"c","valueType":"string","valueRequired":false}],
			"role-templates":[{"name":"Viewer","scope-references":["$XSAPPNAME.Read","uaa.user"],"attribute-references":[{"name":"Country","default-values":["DE"]},"Country"]}],
			"role-collections":[{"name":"V","role-template-references":["$XSAPPNAME.Viewer"]}],
			"foreign-scope-references":["$ACCEPT_GRANTED_SCOPES","$XSAPPNAME(application,other-app).Read"],
			"authorities":["$ACCEPT_GRANTED_AUTHORITIES"],
			"oauth2-configuration":{"token-validity":3600,"refresh-token-validity":86400,"redirect-uris":["https://app.cfapps.eu10.hana.ondemand.com/**"],"credential-types":["x509","binding-secret"]},
			"xsenableasyncservice":"true"}`, "", ""},
	{"missing xsappname", `{}`, "$.xsappname", "is required"},
	{"xsappname chars", `{"xsappname":"my app"}`, "$.xsappname", "contains characters"},
	{"xsappname length", `{"xsappname":"` + long + `"}`, "$.xsappname", "at most 100"},
	{"xsappname type", `{"xsappname":5}`, "$.xsappname", "must be a string"},
	{"tenant mode", `{"xsappname":"a","tenant-mode":"multi"}`, "$.tenant-mode", "not one of"},
	{"unknown field", `{"xsappname":"a","colour":1}`, "$.colour", "unrecognized field"},
	{"scope uaa.user (accepted by the real broker)", `{"xsappname":"a","scopes":[{"name":"uaa.user"}],"role-templates":[{"name":"U","scope-references":["uaa.user"]}]}`, "", ""},
	{"foreign user_attributes (accepted by the real broker)", `{"xsappname":"a","foreign-scope-references":["user_attributes"]}`, "", ""},
	{"null credential types", `{"xsappname":"a","oauth2-configuration":{"credential-types":null}}`, "$.oauth2-configuration.credential-types", "not null"},
	{"null redirect uris", `{"xsappname":"a","oauth2-configuration":{"redirect-uris":null}}`, "$.oauth2-configuration.redirect-uris", "not null"},
	{"null scope references", `{"xsappname":"a","scopes":[{"name":"$XSAPPNAME.R"}],"role-templates":[{"name":"V","scope-references":null}]}`, "$.role-templates[0].scope-references", "not null"},
	{"foreign ref not a string", `{"xsappname":"a","foreign-scope-references":[1]}`, "$.foreign-scope-references[0]", "is not $ACCEPT_GRANTED_SCOPES"},
	{"scope chars", `{"xsappname":"a","scopes":[{"name":"$XSAPPNAME.Re ad"}]}`, "$.scopes[0].name", "after $XSAPPNAME."},
	{"scope leading dot", `{"xsappname":"a","scopes":[{"name":"$XSAPPNAME..Read"}]}`, "$.scopes[0].name", "must not start"},
	{"scope duplicate", `{"xsappname":"a","scopes":[{"name":"$XSAPPNAME.R"},{"name":"$XSAPPNAME.R"}]}`, "$.scopes[1].name", "duplicate"},
	{"scope unknown field", `{"xsappname":"a","scopes":[{"name":"$XSAPPNAME.R","colour":1}]}`, "$.scopes[0].colour", "unrecognized"},
	{"granted apps", `{"xsappname":"a","scopes":[{"name":"$XSAPPNAME.R","granted-apps":["other"]}]}`, "$.scopes[0].granted-apps[0]", "not of the form"},
	{"too many scopes", `{"xsappname":"a","scopes":` + many(MaxScopes+1, `{"name":"$XSAPPNAME.S%d"}`) + `}`, "$.scopes", "at most 500"},
	{"role template scope ref", `{"xsappname":"a","role-templates":[{"name":"V","scope-references":["$XSAPPNAME.Nope"]}]}`, "$.role-templates[0].scope-references[0]", "not defined in scopes"},
	{"role template attr ref", `{"xsappname":"a","role-templates":[{"name":"V","attribute-references":["Nope"]}]}`, "$.role-templates[0].attribute-references[0]", "not defined in attributes"},
	{"role template name", `{"xsappname":"a","role-templates":[{"name":"V w"}]}`, "$.role-templates[0].name", "letters"},
	{"role collection ref", `{"xsappname":"a","role-collections":[{"name":"C","role-template-references":["$XSAPPNAME.Nope"]}]}`, "$.role-collections[0].role-template-references[0]", "not defined in role-templates"},
	{"role collection refs required", `{"xsappname":"a","role-collections":[{"name":"C"}]}`, "$.role-collections[0].role-template-references", "is required"},
	{"role collection ref form", `{"xsappname":"a","role-collections":[{"name":"C","role-template-references":["Viewer"]}]}`, "$.role-collections[0].role-template-references[0]", "not of the form"},
	{"attribute value type", `{"xsappname":"a","attributes":[{"name":"A","valueType":"bool"}]}`, "$.attributes[0].valueType", "not one of"},
	{"attribute name", `{"xsappname":"a","attributes":[{"name":"A-B","valueType":"s"}]}`, "$.attributes[0].name", "letters"},
	{"attribute value required", `{"xsappname":"a","attributes":[{"name":"A","valueType":"s","valueRequired":"yes"}]}`, "$.attributes[0].valueRequired", "true or false"},
	{"too many attributes", `{"xsappname":"a","attributes":` + many(MaxAttributes+1, `{"name":"A%d","valueType":"s"}`) + `}`, "$.attributes", "at most 50"},
	{"foreign ref plan", `{"xsappname":"a","foreign-scope-references":["$XSAPPNAME(broker,x).Read"]}`, "$.foreign-scope-references[0]", "only application"},
	{"token validity low", `{"xsappname":"a","oauth2-configuration":{"token-validity":59}}`, "$.oauth2-configuration.token-validity", "outside"},
	{"token validity high", `{"xsappname":"a","oauth2-configuration":{"token-validity":86401}}`, "$.oauth2-configuration.token-validity", "outside"},
	{"token validity type", `{"xsappname":"a","oauth2-configuration":{"token-validity":"1h"}}`, "$.oauth2-configuration.token-validity", "number"},
	{"refresh validity", `{"xsappname":"a","oauth2-configuration":{"refresh-token-validity":31536001}}`, "$.oauth2-configuration.refresh-token-validity", "outside"},
	{"credential type", `{"xsappname":"a","oauth2-configuration":{"credential-types":["password"]}}`, "$.oauth2-configuration.credential-types[0]", "not one of"},
	{"credential types empty", `{"xsappname":"a","oauth2-configuration":{"credential-types":[]}}`, "$.oauth2-configuration.credential-types", "at least one"},
	{"oauth2 unknown", `{"xsappname":"a","oauth2-configuration":{"colour":1}}`, "$.oauth2-configuration.colour", "unrecognized"},
	{"redirect relative", `{"xsappname":"a","oauth2-configuration":{"redirect-uris":["/callback"]}}`, "$.oauth2-configuration.redirect-uris[0]", "absolute"},
	{"async flag", `{"xsappname":"a","xsenableasyncservice":true}`, "$.xsenableasyncservice", `"true" or "false"`},
	{"whole number written as a float", `{"xsappname":"a","oauth2-configuration":{"token-validity":3600.0,"refresh-token-validity":864e2}}`, "", ""},
	{"fractional seconds", `{"xsappname":"a","oauth2-configuration":{"token-validity":3600.5}}`, "$.oauth2-configuration.token-validity", "whole number"},
	{"role collection name in characters", `{"xsappname":"a","role-templates":[{"name":"V"}],"role-collections":[{"name":"` + strings.Repeat("é", 64) + `","role-template-references":["$XSAPPNAME.V"]}]}`, "", ""},
	{"role collection name too long", `{"xsappname":"a","role-collections":[{"name":"` + strings.Repeat("é", 65) + `","role-template-references":[]}]}`, "$.role-collections[0].name", "longer than 64"},
}

func TestValidateRules(t *testing.T) {
	for _, tc := range ValidateCases {
		t.Run(tc.Name, func(t *testing.T) {
			errs := ValidateJSON([]byte(tc.JSON)).Errors()
			if tc.WantPath == "" {
				if len(errs) != 0 {
					t.Fatalf("want valid, got %v", errs)
				}
				return
			}
			for _, e := range errs {
				if e.Path == tc.WantPath && strings.Contains(e.Message, tc.WantMsg) {
					return
				}
			}
			t.Errorf("want an error at %s containing %q, got %v", tc.WantPath, tc.WantMsg, errs)
		})
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	all := ValidateJSON([]byte(`{"xsappname":"a b","tenant-mode":"x","scopes":[{"name":"R"}],"colour":1}`))
	if ps := all.Errors(); len(ps) != 3 {
		t.Errorf("got %d errors, want 3: %v", len(ps), ps)
	}
	if ws := all.Warnings(); len(ws) != 1 {
		t.Errorf("got %d warnings, want 1 (the scope without $XSAPPNAME.): %v", len(ws), ws)
	}
}

func TestWarningsDoNotFail(t *testing.T) {
	ps := ValidateJSON([]byte(`{"xsappname":"a","oauth2-configuration":{"redirect-uris":["https://*.cfapps.eu10.hana.ondemand.com/**","https://*/**"]}}`))
	if len(ps.Errors()) != 0 || len(ps.Warnings()) != 2 || ps.Err() != nil {
		t.Errorf("errors %v, warnings %v", ps.Errors(), ps.Warnings())
	}
}

func TestMalformedJSONLineColumn(t *testing.T) {
	ps := ValidateJSON([]byte("{\n  \"xsappname\": \"a\",\n  \"tenant-mode\" \"x\"\n}"))
	if len(ps) != 1 || ps[0].Line != 3 || ps[0].Column != 17 {
		t.Errorf("got %v, want line 3, column 17 (the second string)", ps)
	}
	for _, bad := range []string{"", "[1]", `{"a":1} {}`, `{"a":`} {
		if ps := ValidateJSON([]byte(bad)); len(ps.Errors()) != 1 {
			t.Errorf("%q: %v", bad, ps)
		}
	}
}

func TestImmutableChanges(t *testing.T) {
	got := ImmutableChanges(map[string]any{"xsappname": "a"}, map[string]any{"xsappname": "b", "tenant-mode": "shared"})
	if strings.Join(got, ",") != "xsappname,tenant-mode" {
		t.Errorf("got %v", got)
	}
	if got := ImmutableChanges(map[string]any{"xsappname": "a"}, map[string]any{"xsappname": "a", "tenant-mode": "dedicated"}); len(got) != 0 {
		t.Errorf("default tenant mode counts as a change: %v", got)
	}
}

// FuzzSeeds are FuzzValidate's seed corpus (the schema's agreement test
// runs them too).
var FuzzSeeds = []string{
	`{"xsappname":"a"}`, `{"xsappname":"a","scopes":[{"name":"$XSAPPNAME.R"}],"role-templates":[{"name":"V","scope-references":["$XSAPPNAME.R"],"attribute-references":[{"name":"x"}]}]}`,
	`{"oauth2-configuration":{"token-validity":1e99,"credential-types":[null]}}`, `{"role-collections":[{"role-template-references":[1,{}]}]}`,
	`[`, `{"xsappname":"\u0000"}`, `{"attributes":[null,{"valueType":[]}]}`,
}

func FuzzValidate(f *testing.F) {
	for _, s := range FuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ps := ValidateJSON(b)
		for _, p := range ps {
			if p.Message == "" || (p.Path == "" && p.Line == 0) {
				t.Fatalf("problem without message or location: %+v", p)
			}
		}
	})
}
func FuzzParseKeyParams(f *testing.F) {
	for _, s := range []string{`{"credential-type":"x509"}`, `{`, `[]`, `null`, `{"x509":{"key-length":2048}}`, " {} "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseKeyParams("key parameters", s)
		if err == nil && s != "" && m == nil {
			t.Fatalf("%q: no error and no object", s)
		}
	})
}

// TestUncertainRulesWarn: forms the documentation asks for but the real
// broker was seen to accept are warnings, never refusals.
func TestUncertainRulesWarn(t *testing.T) {
	for _, c := range []struct{ json, path string }{
		{`{"xsappname":"a","scopes":[{"name":"Read"}]}`, "$.scopes[0].name"},
		{`{"xsappname":"a","foreign-scope-references":["other.Read"]}`, "$.foreign-scope-references[0]"},
		{`{"xsappname":"a","authorities":["$ACCEPT_GRANTED_SCOPES"]}`, "$.authorities[0]"},
	} {
		ps := ValidateJSON([]byte(c.json))
		if len(ps.Errors()) != 0 || len(ps.Warnings()) != 1 || ps.Warnings()[0].Path != c.path {
			t.Errorf("%s: %v", c.json, ps)
		}
	}
}
