package xssec

import _ "embed"

// Schema is the JSON Schema (2020-12) of xs-security.json: every rule of
// Validate that is about one field's form. Validate also checks what lies
// between fields (Problem.Relational); a test keeps the two in agreement.
//
//go:embed xs-security.schema.json
var Schema []byte
