package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/infile"
	"github.com/xsprov/xsprov/provision/offering"
	"github.com/xsprov/xsprov/provision/xssec"
	"github.com/xsprov/xsprov/templates"
)

// templateFlags are --template, --var and --vars.
type templateFlags struct {
	Template string
	Vars     []string
	VarsFile string
}

func (t *templateFlags) register(cmd *cobra.Command, withTemplate bool) {
	if withTemplate {
		cmd.Flags().StringVar(&t.Template, "template", "", "render the parameters from a template: a built-in name ("+strings.Join(templates.Names(), ", ")+") or a file")
	}
	cmd.Flags().StringArrayVar(&t.Vars, "var", nil, "template variable NAME=VALUE (repeatable)")
	cmd.Flags().StringVar(&t.VarsFile, "vars", "", "YAML file of template variables")
}

// render loads and renders the template; every problem is a usage error.
// render renders a template; defaults fill the template's variables that
// were not given (before the template's own defaults).
func (t *templateFlags) render(name string, defaults map[string]string) ([]byte, error) {
	tm, err := templates.Load(name)
	if err != nil {
		return nil, usage(err)
	}
	vals, err := templates.ReadValues(t.Vars, t.VarsFile, os.Environ())
	if err != nil {
		return nil, usage(err)
	}
	for _, v := range tm.Vars {
		if d, ok := defaults[v.Name]; ok && d != "" && !vals.Has(v.Name) {
			vals.Given[v.Name] = d
		}
	}
	out, err := tm.RenderValues(vals)
	if err != nil {
		return nil, usage(err)
	}
	return out, nil
}

// into renders --template, when given, as the parameters of in (flags still
// override its fields).
func (t *templateFlags) into(in *xssec.Input) error {
	if t.Template == "" {
		return nil
	}
	// A template's sample xsappname ("my-client") is never used: two
	// instances of one template would collide on it.
	raw, err := t.render(t.Template, map[string]string{"xsappname": cmp.Or(in.XSAppName, in.Instance)})
	if err != nil {
		return err
	}
	d, ps := xssec.Parse(raw)
	if ps != nil {
		return &cfapi.UsageError{Msg: "template " + t.Template + " does not render to a JSON object:\n" + problemLines(ps)}
	}
	in.Inline, in.Source = d, "template "+t.Template
	return nil
}

// usage turns a template error into a usage error (exit 2).
func usage(err error) error {
	var te *templates.Error
	if errors.As(err, &te) {
		return &cfapi.UsageError{Msg: te.Msg}
	}
	return err
}

func newTemplatesCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "templates",
		Short: "List, show and render the built-in xs-security templates",
		Example: `  xsprov templates list
  xsprov templates show backend-service
  xsprov templates render web-app --var xsappname=orders-ui`,
		Args: unknownSubcommand,
		RunE: groupHelp,
	}
	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the built-in templates",
		Example: `  xsprov templates list
  xsprov templates list --json | jq -r '.templates[].name'`,
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if listJSON {
				return writeJSONDoc(f.IO.Out, map[string]any{"format_version": "1", "templates": templates.List()})
			}
			for _, t := range templates.List() {
				fmt.Fprintf(f.IO.Out, "%-16s %-9s %s\n", t.Name, t.Offering, t.Description)
			}
			return nil
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print the templates with their variables as JSON")
	cmd.AddCommand(list)
	cmd.AddCommand(&cobra.Command{
		Use:     "show NAME",
		Short:   "Show a template's description, variables and source",
		Example: "  xsprov templates show backend-service",
		Args:    exactArgs(1, "NAME"),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return templates.Names(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(_ *cobra.Command, args []string) error {
			t, err := templates.Load(args[0])
			if err != nil {
				return usage(err)
			}
			printTemplate(f.IO.Out, t)
			return nil
		},
	})
	var tf templateFlags
	render := &cobra.Command{
		Use:   "render NAME|FILE",
		Short: "Render a template with variables and print the descriptor JSON",
		Example: `  xsprov templates render backend-service --var xsappname=orders-client --var provider_app=orders
  xsprov templates render ./my-xs-security.json.tmpl --vars landscape.yaml`,
		Args: exactArgs(1, "NAME|FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			out, err := tf.render(args[0], nil)
			if err != nil {
				return err
			}
			ps := xssec.ValidateJSON(out)
			if tm, err := templates.Load(args[0]); err == nil && tm.Offering != "xsuaa" {
				// a template of another offering: its own rules
				if d, perr := xssec.Parse(out); perr == nil {
					ps = offering.For(tm.Offering).Validate(d)
				}
			}
			printProblems(f.IO.ErrOut, ps.Warnings())
			if err := ps.Err(); err != nil {
				return &cfapi.UsageError{Msg: "template " + args[0] + " renders an invalid descriptor:\n" + problemLines(ps.Errors())}
			}
			_, err = f.IO.Out.Write(out)
			return err
		},
	}
	tf.register(render, false)
	cmd.AddCommand(render)
	return cmd
}

func printTemplate(w io.Writer, t templates.Template) {
	fmt.Fprintf(w, "%s: %s\n\nvariables:\n", t.Name, t.Description)
	for _, v := range t.Vars {
		def := "(required)"
		if v.Default != "" {
			def = "default " + fmt.Sprintf("%q", v.Default)
		}
		fmt.Fprintf(w, "  %-16s %s  %s\n", v.Name, def, v.Description)
	}
	fmt.Fprintf(w, "\n%s", t.Source)
}

func problemLines(ps xssec.Problems) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("  " + p.String() + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

func printProblems(w io.Writer, ps xssec.Problems) {
	for _, p := range ps {
		fmt.Fprintln(w, p.String())
	}
}

// ValidateOptions are the inputs of `xsprov validate`.
type ValidateOptions struct {
	File string
	templateFlags
	JSON     bool
	Offering string
	Key      bool // FILE holds key parameters
}

func newValidateCmd(f *Factory, runF func(context.Context, *ValidateOptions) error) *cobra.Command {
	opts := &ValidateOptions{}
	cmd := &cobra.Command{
		Use: "validate FILE | --template NAME [--var NAME=VALUE]...",
		Example: `  xsprov validate xs-security.json
  xsprov validate --template backend-service --var xsappname=orders --var provider_app=billing
  xsprov validate --offering identity ias-parameters.json
  xsprov validate --offering identity --key key-parameters.json`,
		Short: "Check an xs-security descriptor with the XSUAA broker's rules, offline",
		Long: `Check an xs-security descriptor (a file, or a rendered template) with the rules
the XSUAA broker applies, without contacting Cloud Foundry: xsappname, tenant-mode,
scope names and the $XSAPPNAME. prefix, references between scopes, attributes,
role templates and role collections, foreign scope references, attribute value
types, token validity ranges, credential types, limits on counts, unknown fields.

With --offering identity, the parameters of an SAP Cloud Identity Services
(IAS) instance are checked with that service's rules (redirect and logout URIs
and their wildcards, grant types, token policy ranges, provided APIs,
consumed services, subject name identifier); --key checks a key's parameters
(credential types SECRET, X509_GENERATED, X509_PROVIDED, NONE). A template
belongs to an offering (xsprov templates list) and is checked with its rules.

Every problem is reported at once with its JSON path (line and column for
malformed JSON). Exit 2 on any error, 0 when clean; warnings (such as a wildcard
redirect URI) do not fail it.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) > 1:
				return flagErrorf("expected one FILE, got %d arguments", len(args))
			case len(args) == 1 && opts.Template != "":
				return flagErrorf("give either FILE or --template, not both")
			case len(args) == 0 && opts.Template == "":
				return flagErrorf("expected FILE or --template NAME")
			case len(args) == 1:
				opts.File = args[0]
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return validateRun(f, opts)
		},
	}
	opts.templateFlags.register(cmd, true)
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the problems as JSON")
	cmd.Flags().StringVar(&opts.Offering, "offering", "", "the offering whose rules apply: xsuaa (default) or identity (a template's own by default)")
	cmd.Flags().BoolVar(&opts.Key, "key", false, "FILE holds a key's parameters (identity: credential-type and its fields)")
	return cmd
}

func validateRun(f *Factory, o *ValidateOptions) error {
	var raw []byte
	src := o.File
	offeringName := o.Offering
	if o.Template != "" {
		out, err := o.render(o.Template, nil)
		if err != nil {
			return err
		}
		raw, src = out, "template "+o.Template
		if tm, err := templates.Load(o.Template); err == nil && offeringName == "" {
			offeringName = tm.Offering
		}
	} else {
		b, err := infile.Read(o.File, infile.Document)
		if err != nil {
			return cfapi.Usagef("read %s: %v", o.File, err)
		}
		raw = b
	}
	prof := offering.For(offeringName)
	if offeringName != "" && prof.Validate == nil {
		return flagErrorf("--offering %q: xsprov knows the rules of xsuaa and identity", offeringName)
	}
	check := prof.Validate
	if o.Key {
		if prof.ValidateKey == nil {
			return flagErrorf("--key checks the key parameters of the identity offering (give --offering identity)")
		}
		check = prof.ValidateKey
	}
	var ps xssec.Problems
	if d, perr := xssec.Parse(raw); perr != nil {
		ps = perr
	} else {
		ps = check(d)
	}
	errs, warns := ps.Errors(), ps.Warnings()
	if o.JSON {
		doc := map[string]any{"format_version": provision.FormatVersion, "source": src, "valid": len(errs) == 0,
			"errors": orNone(errs), "warnings": orNone(warns)}
		if err := writeJSONDoc(f.IO.Out, doc); err != nil {
			return err
		}
	} else {
		printProblems(f.IO.Out, ps)
		switch {
		case len(errs) > 0:
			fmt.Fprintf(f.IO.Out, "%s: %d error(s), %d warning(s)\n", src, len(errs), len(warns))
		default:
			fmt.Fprintf(f.IO.Out, "%s is valid (%d warning(s))\n", src, len(warns))
		}
	}
	if len(errs) > 0 {
		return &silentError{code: exitUsage}
	}
	return nil
}

func orNone(ps xssec.Problems) xssec.Problems {
	if ps == nil {
		return xssec.Problems{}
	}
	return ps
}

// gives tells whether a template variable was given (--var, --vars or
// XSPROV_VAR_*).
func (t *templateFlags) gives(name string) bool {
	if t.Template == "" {
		return false
	}
	vals, err := templates.ReadValues(t.Vars, t.VarsFile, os.Environ())
	return err == nil && vals.Has(name)
}
