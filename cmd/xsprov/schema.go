package main

import (
	"github.com/spf13/cobra"

	"github.com/xsprov/xsprov/provision/spec"
	"github.com/xsprov/xsprov/provision/xssec"
)

func newSchemaCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "schema spec|xs-security",
		Short: "Print the JSON Schema of the onboarding spec or of xs-security.json, for editors",
		Long: `Print a JSON Schema (draft 2020-12) for editor help: "spec" for onboarding
specs (with the xs-security schema of instances' parameters bundled in),
"xs-security" for xs-security.json. SAP publishes none for xs-security.json.

In a YAML spec, the YAML language server (VS Code, IntelliJ, Neovim) reads
  # yaml-language-server: $schema=spec.schema.json
and in xs-security.json  "$schema": "./xs-security.schema.json"  is not
allowed by the broker, so map the file to the schema in the editor instead.
xsprov checks more than a schema can: references between entries and
duplicate names ("xsprov validate", "xsprov plan").`,
		Example: `  xsprov schema spec > spec.schema.json
  xsprov schema xs-security > xs-security.schema.json`,
		Args:      exactArgs(1, "spec or xs-security"),
		ValidArgs: []string{"spec", "xs-security"},
		RunE: func(_ *cobra.Command, args []string) error {
			var b []byte
			switch args[0] {
			case "spec":
				var err error
				if b, err = spec.Schema(); err != nil {
					return err
				}
				b = append(b, '\n')
			case "xs-security":
				b = xssec.Schema
			default:
				return flagErrorf("unknown schema %q: want spec or xs-security", args[0])
			}
			_, err := f.IO.Out.Write(b)
			return err
		},
	}
}
