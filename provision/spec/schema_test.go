package spec_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/xsprov/xsprov/provision/spec"
	"github.com/xsprov/xsprov/provision/xssec"
)

// TestSpecSchema: the bundled spec schema compiles, accepts the example
// spec and the specs of the end-to-end scripts that load, refuses what the
// loader refuses for its form, and is what docs/schemas holds (the file the
// example's yaml-language-server line points at).
func TestSpecSchema(t *testing.T) {
	raw, err := spec.Schema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("spec.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("spec.schema.json")
	if err != nil {
		t.Fatalf("the spec schema does not compile: %v", err)
	}
	check := func(name, y string) error {
		var v any
		if err := yaml.Unmarshal([]byte(y), &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := json.Marshal(v)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return sch.Validate(inst)
	}
	ex, _ := os.ReadFile("../../examples/onboarding.yaml")
	if !strings.HasPrefix(string(ex), "# yaml-language-server: $schema=../docs/schemas/spec.schema.json\n") {
		t.Errorf("examples/onboarding.yaml does not name its schema on its first line")
	}
	if err := check("example", string(ex)); err != nil {
		t.Errorf("the example spec: %v", err)
	}
	ias := "apiVersion: xsprov/v1\ninstances: [{name: a, offering: identity, parameters: {display-name: A, xsuaa-cross-consumption: true}}]\n"
	if err := check("identity", ias); err != nil {
		t.Errorf("an identity instance's parameters are not xs-security.json: %v", err)
	}
	for _, bad := range []struct{ name, y string }{
		{"api version", "apiVersion: xsprov/v2\n"},
		{"unknown field", "apiVersion: xsprov/v1\ninstancs: []\n"},
		{"template and parameters", "apiVersion: xsprov/v1\ninstances: [{name: a, template: web-app, parameters: {xsappname: a}}]\n"},
		{"bad descriptor", "apiVersion: xsprov/v1\ninstances: [{name: a, parameters: {xsappname: 'a b'}}]\n"},
		{"bad format", "apiVersion: xsprov/v1\ninstances: [{name: a, keys: [{name: k, format: xml}]}]\n"},
		{"bad role", "apiVersion: xsprov/v1\nspaces: [{name: s, roles: [{user: u, role: owner}]}]\n"},
		{"label value", "apiVersion: xsprov/v1\nmetadata: {name: -x-}\n"},
	} {
		if check(bad.name, bad.y) == nil {
			t.Errorf("%s: the schema accepts it", bad.name)
		}
		if _, err := spec.Parse(filepath.Join(t.TempDir(), "s.yaml"), []byte(bad.y), nil); err == nil {
			t.Errorf("%s: the loader accepts it", bad.name)
		}
	}
	for name, want := range map[string][]byte{"spec.schema.json": append(raw, '\n'), "xs-security.schema.json": xssec.Schema} {
		got, err := os.ReadFile("../../docs/schemas/" + name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("docs/schemas/%s is not what 'xsprov schema' prints: run xsprov schema %s > docs/schemas/%s", name, strings.TrimSuffix(name, ".schema.json"), name)
		}
	}
}
