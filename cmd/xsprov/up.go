package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/credfile"
	"github.com/xsprov/xsprov/provision/infile"
	"github.com/xsprov/xsprov/provision/offering"
	"github.com/xsprov/xsprov/provision/xssec"
)

// UpOptions are the inputs of `xsprov up`.
type UpOptions struct {
	Target   targetFlags
	Instance string

	Offering, Plan, Broker string
	ParamsFile             string
	Templates              templateFlags
	XSAppName, TenantMode  string
	ForeignScopes          []string
	Tags                   []string

	Key            string
	KeyParams      string
	CredentialType string

	X509KeyLength int
	X509Validity  int

	Out, Format, EnvPrefix string
	JSON, NoWait           bool
	// Yes consents to an update that removes or replaces something.
	Yes              bool
	dry              dryRunFlags
	NoVerify, Verify bool
	ci               ciFlags
}

// outputFlags are --out, --format and --env-prefix, shared by the commands
// that write a credentials file.
func registerOutputFlags(cmd *cobra.Command, out, format, prefix *string) {
	cmd.Flags().StringVar(out, "out", "", "credentials file (default INSTANCE-credentials.json, .env or .yaml after --format)")
	cmd.Flags().StringVar(format, "format", credfile.FormatJSON, "credentials file format: "+strings.Join(credfile.Formats, ", "))
	cmd.Flags().StringVar(prefix, "env-prefix", "", "variable prefix for --format env (default XSUAA_, IAS_ for the identity offering)")
}

func checkOutput(instance string, out, format *string) error {
	if !slices.Contains(credfile.Formats, *format) {
		return flagErrorf("--format %q is not one of %s", *format, strings.Join(credfile.Formats, ", "))
	}
	if *out == "" {
		*out = credfile.DefaultOutPath(instance, *format)
	}
	if err := credfile.CheckOutput(*out, *format); err != nil {
		return flagErrorf("--out %s: %v", *out, err)
	}
	// The folder is made if missing, but not through a file.
	for d := filepath.Dir(*out); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil {
			if !fi.IsDir() {
				return flagErrorf("--out %s: %s is not a folder", *out, d)
			}
			break
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return nil
}

func checkInstanceName(name string) error {
	if strings.TrimSpace(name) == "" {
		return flagErrorf("the instance name must not be empty")
	}
	if len(name) > 255 {
		return flagErrorf("the instance name is %d characters long; Cloud Foundry allows 255", len(name))
	}
	return nil
}

func newUpCmd(f *Factory, runF func(context.Context, *UpOptions) error) *cobra.Command {
	opts := &UpOptions{}
	cmd := &cobra.Command{
		Use:   "up INSTANCE",
		Short: "Create or converge an XSUAA instance and its key, and write the credentials file",
		Long: `Create the XSUAA service instance INSTANCE (offering xsuaa, plan application by
default) with its xs-security parameters, or converge an existing one to them;
create or reuse its service key; and write the key's credentials to a file.

Re-running is safe: an existing instance is reused (and updated when its
parameters differ), an existing key is reused, nothing is created twice.`,
		Example: `  xsprov up my-xsuaa --api sim --xsappname myAppName
  xsprov up my-xsuaa --params xs-security.json --format env
  CF_CLIENT_ID=… CF_CLIENT_SECRET=… xsprov up my-xsuaa --api https://api.cf.eu10.hana.ondemand.com -o acme -s dev --json`,
		Args: exactArgs(1, "INSTANCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Instance = args[0]
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return upRun(cmd.Context(), f, opts)
		},
	}
	opts.register(cmd)
	return cmd
}

func (o *UpOptions) register(cmd *cobra.Command) {
	o.Target.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&o.Offering, "offering", "xsuaa", "service offering")
	fl.StringVar(&o.Plan, "plan", "application", "service plan")
	fl.StringVar(&o.Broker, "broker", "", "service broker, when several offer the offering")
	fl.StringVar(&o.ParamsFile, "params", "", "xs-security.json with the instance parameters (flags override its fields)")
	o.Templates.register(cmd, true)
	fl.BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation (an update that removes or replaces parts of the descriptor; recreate)")
	fl.StringVar(&o.XSAppName, "xsappname", "", "xsappname (default: the existing instance's, else the params file's, else INSTANCE)")
	fl.StringVar(&o.TenantMode, "tenant-mode", "", "tenant mode: dedicated, shared or external (default dedicated)")
	fl.StringArrayVar(&o.ForeignScopes, "foreign-scope", nil, "foreign scope reference, e.g. '$XSAPPNAME(application,other-app).Read' (repeatable)")
	fl.StringArrayVar(&o.Tags, "tag", nil, "instance tag (repeatable)")
	fl.StringVar(&o.Key, "key", "", "service key name (default INSTANCE-key)")
	fl.StringVar(&o.KeyParams, "key-params", "", "key parameters: a JSON object or a file holding one")
	fl.StringVar(&o.CredentialType, "credential-type", "", "key credential type: binding-secret or x509 (default: the instance's first credential-types entry)")
	registerOutputFlags(cmd, &o.Out, &o.Format, &o.EnvPrefix)
	fl.BoolVar(&o.JSON, "json", false, "print a machine-readable result on stdout (never secret values)")
	fl.BoolVar(&o.NoWait, "no-wait", false, "return once Cloud Foundry accepted the operations, without waiting for them")
	fl.IntVar(&o.X509KeyLength, "x509-key-length", 0, "key length of an x509 key: 2048, 4096 or 8192 (broker default 2048)")
	fl.IntVar(&o.X509Validity, "x509-validity", 0, "validity of an x509 key's certificate in days, 1..30 (broker default 7)")
	fl.BoolVar(&o.NoVerify, "no-verify", false, "do not prove the new credentials by getting a token with them")
	fl.BoolVar(&o.Verify, "verify", true, "prove the credentials by getting a token with them (--no-verify or --verify=false to skip)")
	o.ci.register(cmd)
	if cmd.Name() == "up" {
		o.dry.register(cmd)
	}
}

func (o *UpOptions) validate() error {
	if err := checkInstanceName(o.Instance); err != nil {
		return err
	}
	if err := o.dry.validate(); err != nil {
		return err
	}
	if o.ParamsFile != "" && o.Templates.Template != "" {
		return flagErrorf("give either --params or --template, not both")
	}
	if (len(o.Templates.Vars) > 0 || o.Templates.VarsFile != "") && o.Templates.Template == "" {
		return flagErrorf("--var and --vars need --template")
	}
	if o.TenantMode != "" && !slices.Contains([]string{"dedicated", "shared", "external"}, o.TenantMode) {
		return flagErrorf("--tenant-mode %q is not one of dedicated, shared, external", o.TenantMode)
	}
	if prof := offering.For(o.Offering); !prof.Named {
		// the identity offering has no xsappname or tenant mode, and its
		// keys' credential types are its own
		for flag, given := range map[string]bool{"--xsappname": o.XSAppName != "", "--tenant-mode": o.TenantMode != "", "--foreign-scope": len(o.ForeignScopes) > 0,
			"--x509-key-length": o.X509KeyLength != 0, "--x509-validity": o.X509Validity != 0} {
			if given {
				return flagErrorf("%s applies to the xsuaa offering; for %s give the parameters with --params or --template, and key parameters with --key-params", flag, o.Offering)
			}
		}
		if o.CredentialType != "" && !slices.Contains(prof.KeyTypes, o.CredentialType) {
			return flagErrorf("--credential-type %q is not one of %s for the %s offering", o.CredentialType, strings.Join(prof.KeyTypes, ", "), o.Offering)
		}
		return checkOutput(o.Instance, &o.Out, &o.Format)
	}
	if o.CredentialType != "" && !slices.Contains(offering.XSUAA.KeyTypes, o.CredentialType) {
		return flagErrorf("--credential-type %q is not one of binding-secret, x509", o.CredentialType)
	}
	for _, v := range []struct{ flag, val string }{{"--offering", o.Offering}, {"--plan", o.Plan}} {
		if strings.TrimSpace(v.val) == "" {
			return flagErrorf("%s must not be empty", v.flag)
		}
	}
	if o.X509KeyLength != 0 && !slices.Contains([]string{"2048", "4096", "8192"}, fmt.Sprint(o.X509KeyLength)) {
		return flagErrorf("--x509-key-length %d is not one of 2048, 4096, 8192", o.X509KeyLength)
	}
	if o.X509Validity != 0 && (o.X509Validity < 1 || o.X509Validity > 30) {
		return flagErrorf("--x509-validity %d is outside 1..30 days", o.X509Validity)
	}
	if o.X509KeyLength != 0 || o.X509Validity != 0 {
		if o.CredentialType == "binding-secret" {
			return flagErrorf("--x509-key-length and --x509-validity contradict --credential-type binding-secret")
		}
		o.CredentialType = "x509"
	}
	return checkOutput(o.Instance, &o.Out, &o.Format)
}

// request builds the core request; every input problem is a usage error.
func (o *UpOptions) request(rep provision.Reporter, s *settings) (provision.UpRequest, error) {
	if prof := offering.For(o.Offering); !prof.Named {
		return o.offeringRequest(prof, rep, s)
	}
	in := xssec.Input{File: o.ParamsFile, Instance: o.Instance,
		Overrides: xssec.Overrides{XSAppName: o.XSAppName, TenantMode: o.TenantMode, ForeignScopes: o.ForeignScopes}}
	if err := o.Templates.into(&in); err != nil {
		return provision.UpRequest{}, err
	}
	params, warnings, err := xssec.Build(in)
	if err != nil {
		return provision.UpRequest{}, err
	}
	if o.ParamsFile == "" && o.Templates.Template == "" {
		// No whole descriptor: a new instance gets this minimal one (checked
		// above), an existing one keeps its own with the fields given.
		params = nil
	}
	for _, w := range warnings {
		rep.Warn(w.Describe())
	}
	keyParams, err := keyParamsOf(o.KeyParams, o.CredentialType)
	if err != nil {
		return provision.UpRequest{}, err
	}
	if ct, _ := keyParams["credential-type"].(string); o.Format == credfile.FormatPEM && ct != "" && ct != "x509" {
		return provision.UpRequest{}, flagErrorf("--format pem needs an x509 key, and the key is asked for as %s", ct)
	}
	if o.X509KeyLength != 0 || o.X509Validity != 0 {
		x := map[string]any{"validity-type": "DAYS"}
		if o.X509KeyLength != 0 {
			x["key-length"] = o.X509KeyLength
		}
		if o.X509Validity != 0 {
			x["validity"] = o.X509Validity
		}
		keyParams["x509"] = x
	}
	return provision.UpRequest{
		Ref:      provision.Ref{Org: s.org, Space: s.space, Instance: o.Instance},
		Offering: o.Offering, Plan: o.Plan, Broker: o.Broker,
		Params: params, Tags: o.Tags, Key: o.Key, KeyParams: keyParams,
		Overrides:      in.Overrides,
		XSAppNameGiven: o.XSAppName != "" || o.Templates.gives("xsappname") || fileGives(o.ParamsFile, "xsappname"),
		Out:            credfile.Output{Path: o.Out, Format: o.Format, EnvPrefix: o.EnvPrefix},
		NoWait:         o.NoWait,
	}, nil
}

// offeringRequest builds the request for an offering whose descriptor has
// no name field (identity): the parameters from --params or --template,
// checked with the offering's rules, and the key's parameters likewise.
func (o *UpOptions) offeringRequest(prof offering.Profile, rep provision.Reporter, s *settings) (provision.UpRequest, error) {
	var inline map[string]any
	source := ""
	if o.Templates.Template != "" {
		raw, err := o.Templates.render(o.Templates.Template, nil)
		if err != nil {
			return provision.UpRequest{}, err
		}
		d, ps := xssec.Parse(raw)
		if ps != nil {
			return provision.UpRequest{}, &cfapi.UsageError{Msg: "template " + o.Templates.Template + " does not render to a JSON object:\n" + problemLines(ps)}
		}
		inline, source = d, "template "+o.Templates.Template
	}
	params, warnings, err := prof.Build(o.ParamsFile, inline, source)
	if err != nil {
		return provision.UpRequest{}, err
	}
	if o.ParamsFile == "" && o.Templates.Template == "" {
		params = nil // an existing instance keeps its own; a new one gets the minimal one
	}
	for _, w := range warnings {
		rep.Warn(w.Describe())
	}
	keyParams, err := keyParamsOf(o.KeyParams, o.CredentialType)
	if err != nil {
		return provision.UpRequest{}, err
	}
	if prof.ValidateKey != nil {
		kp := keyParams
		if kp == nil {
			kp = map[string]any{}
		}
		if errs := prof.ValidateKey(xssec.Normalize(kp).(map[string]any)).Errors(); len(errs) > 0 {
			return provision.UpRequest{}, &xssec.InvalidError{Source: "the key parameters", Problems: errs}
		}
	}
	return provision.UpRequest{
		Ref:      provision.Ref{Org: s.org, Space: s.space, Instance: o.Instance},
		Offering: o.Offering, Plan: o.Plan, Broker: o.Broker,
		Params: params, Tags: o.Tags, Key: o.Key, KeyParams: keyParams,
		Out:    credfile.Output{Path: o.Out, Format: o.Format, EnvPrefix: o.EnvPrefix, Offering: o.Offering},
		NoWait: o.NoWait,
	}, nil
}

// keyParamsOf reads --key-params, with --credential-type set in it.
func keyParamsOf(raw, credentialType string) (map[string]any, error) {
	keyParams, err := xssec.ParseKeyParams("--key-params", raw)
	if err != nil {
		return nil, err
	}
	if credentialType != "" {
		if keyParams == nil {
			keyParams = map[string]any{}
		}
		keyParams["credential-type"] = credentialType
	}
	return keyParams, nil
}

func upRun(ctx context.Context, f *Factory, o *UpOptions) error {
	if err := o.ci.validate(f); err != nil {
		return err
	}
	s, err := f.resolve(o.Target)
	if err != nil {
		return err
	}
	req, err := o.request(f.reporter(), s)
	if err != nil {
		return err
	}
	ctx, cancel, c, err := f.connectWithin(ctx, s)
	defer cancel()
	if err != nil {
		return err
	}
	res, err := c.engine(o.Verify && !o.NoVerify && !o.NoWait, f.mask, provision.WithConsent(f.consent(o.Yes)), provision.WithDryRun(o.dry.DryRun)).Up(ctx, req)
	if res == nil {
		return err
	}
	if !o.dry.DryRun {
		f.warnExposed(res.File, &res.Warnings)
		if gerr := o.ci.githubOutput(f, map[string]string{"credentials-file": res.File, "client-id": res.ClientID, "url": res.URL}); gerr != nil && err == nil {
			err = gerr
		}
	}
	if o.JSON {
		if jerr := writeJSONDoc(f.IO.Out, res); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		printResult(f.IO.Out, res)
	}
	if err == nil {
		err = o.dry.done(f, res.Changed())
	}
	return err
}

func printResult(w io.Writer, r *provision.Result) {
	row := func(k, v string) { fmt.Fprintf(w, "%-18s %s\n", k+":", v) }
	inst := r.Instance.Name + " (" + string(r.Instance.Action) + ")"
	row("service instance", inst)
	if r.Key != nil {
		row("service key", r.Key.Name+" ("+string(r.Key.Action)+")")
	}
	if r.File != "" {
		row("credentials file", r.File+" ("+string(r.FileAction)+")")
	}
	if r.ClientID != "" {
		row("client id", r.ClientID)
	}
	for _, x := range r.ExtraFiles {
		row("file", x)
	}
	if r.URL != "" {
		row("token url", r.URL+offering.For(r.Instance.Offering).TokenPath)
	}
	if t := r.Token; t != nil {
		v := "token for " + t.ClientID
		if len(t.Scopes) > 0 {
			v += " with scopes " + strings.Join(t.Scopes, " ")
		}
		if t.Verified {
			v += ", signature verified"
		}
		row("verified", v)
	}
}

func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return flagErrorf("expected %s, got %d argument(s)", names, len(args))
		}
		return nil
	}
}

// fileGives tells whether the descriptor file sets field.
func fileGives(path, field string) bool {
	if path == "" {
		return false
	}
	raw, err := infile.Read(path, infile.Document)
	if err != nil {
		return false
	}
	d, _ := xssec.Parse(raw)
	_, ok := d[field]
	return ok
}

// consent shows a change that removes or replaces parts of an instance's
// descriptor and asks for a yes (or takes --yes off a terminal).
func (f *Factory) consent(yes bool) func(provision.Consent) bool {
	return func(c provision.Consent) bool {
		rep := f.reporter()
		if c.Blind {
			rep.Warn("service instance " + c.Instance + ": its current descriptor is unknown; the update replaces it with:")
		} else {
			rep.Warn("service instance " + c.Instance + ": the update removes or replaces:")
		}
		for _, d := range c.Changes {
			rep.Info("  " + d.String())
		}
		if yes {
			return true
		}
		if !f.IO.CanPrompt() {
			return false
		}
		return f.IO.Confirm("Apply this change to service instance " + c.Instance + "?")
	}
}
