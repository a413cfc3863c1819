package xssec_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/xsprov/xsprov/provision/xssec"
	"github.com/xsprov/xsprov/templates"
)

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(xssec.Schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("xs-security.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("xs-security.schema.json")
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return sch
}

// TestSchemaAgreesWithValidator runs every built-in template, the
// validator's good and bad table cases and the fuzz seed corpus through the
// JSON Schema (with a real JSON Schema library) and through Validate: a
// descriptor is valid by the schema exactly when Validate finds no error
// about a field's form. Validate's relational errors (duplicate names,
// references to what is not defined) are the ones no schema can express.
func TestSchemaAgreesWithValidator(t *testing.T) {
	sch := compileSchema(t)
	var docs []struct{ name, json string }
	add := func(name, js string) { docs = append(docs, struct{ name, json string }{name, js}) }
	for _, c := range xssec.ValidateCases {
		add("case "+c.Name, c.JSON)
	}
	for i, s := range xssec.FuzzSeeds {
		add("fuzz seed "+string(rune('0'+i)), s)
	}
	corpus, _ := filepath.Glob("testdata/fuzz/FuzzValidate/*")
	for _, f := range corpus {
		if b, err := os.ReadFile(f); err == nil {
			add("fuzz corpus "+filepath.Base(f), corpusValue(b))
		}
	}
	for _, tm := range templates.List() {
		if tm.Offering != "xsuaa" {
			continue // the identity offering's templates have rules of their own
		}
		vals := templates.Values{Given: map[string]string{}}
		for _, v := range tm.Vars {
			if v.Default == "" {
				vals.Given[v.Name] = "sample-" + v.Name
			}
		}
		out, err := tm.RenderValues(vals)
		if err != nil {
			t.Fatalf("template %s: %v", tm.Name, err)
		}
		add("template "+tm.Name, string(out))
	}
	if len(docs) < 50 {
		t.Fatalf("only %d documents", len(docs))
	}
	for _, d := range docs {
		ps := xssec.ValidateJSON([]byte(d.json))
		var form []xssec.Problem
		for _, p := range ps.Errors() {
			if !p.Relational {
				form = append(form, p)
			}
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(d.json)))
		if err != nil || !json.Valid([]byte(d.json)) {
			// not JSON: no schema can accept it, and Validate must not either
			if len(form) == 0 {
				t.Errorf("%s: malformed JSON but Validate found nothing", d.name)
			}
			continue
		}
		schemaErr := sch.Validate(inst)
		switch {
		case schemaErr == nil && len(form) > 0:
			t.Errorf("%s: the schema accepts it, Validate refuses it: %v", d.name, form)
		case schemaErr != nil && len(form) == 0:
			t.Errorf("%s: Validate accepts it, the schema refuses it: %v", d.name, schemaErr)
		}
	}
}

// corpusValue reads a file of Go's fuzz corpus (go test fuzz v1, one
// []byte("…") line).
func corpusValue(b []byte) string {
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) < 2 {
		return string(b)
	}
	line := string(bytes.TrimSpace(lines[1]))
	if len(line) > 8 && line[:7] == "[]byte(" {
		var s string
		if err := json.Unmarshal([]byte(line[7:len(line)-1]), &s); err == nil {
			return s
		}
	}
	return string(b)
}
