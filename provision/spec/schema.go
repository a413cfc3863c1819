package spec

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"github.com/xsprov/xsprov/provision/xssec"
)

//go:embed spec.schema.json
var specSchema []byte

// Schema is the JSON Schema (2020-12) of a spec, with the xs-security
// schema of instances' parameters bundled under $defs, so that the one file
// works in an editor on its own.
func Schema() ([]byte, error) {
	var s, xs map[string]any
	if err := json.Unmarshal(specSchema, &s); err != nil {
		return nil, fmt.Errorf("spec schema: %w", err)
	}
	if err := json.Unmarshal(xssec.Schema, &xs); err != nil {
		return nil, fmt.Errorf("xs-security schema: %w", err)
	}
	delete(xs, "$schema")
	defs, _ := s["$defs"].(map[string]any)
	defs["xs-security"] = xs
	// an instance's parameters are xs-security.json unless it names another
	// offering
	els := s["properties"].(map[string]any)["instances"].(map[string]any)["items"].(map[string]any)["else"].(map[string]any)
	els["properties"].(map[string]any)["parameters"].(map[string]any)["$ref"] = "#/$defs/xs-security"
	return json.MarshalIndent(s, "", "  ")
}
