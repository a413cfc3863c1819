package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/credfile"
)

// DownOptions are the inputs of `xsprov down`.
type DownOptions struct {
	Target       targetFlags
	Instance     string
	Key          string
	KeepInstance bool
	Out, Format  string
	Yes, JSON    bool
	NoWait       bool
	dry          dryRunFlags
}

func newDownCmd(f *Factory, runF func(context.Context, *DownOptions) error) *cobra.Command {
	opts := &DownOptions{}
	cmd := &cobra.Command{
		Use:   "down INSTANCE",
		Short: "Delete the key(s) and the instance, then the credentials file",
		Long: `Delete the service key(s) and the service instance INSTANCE, wait until Cloud
Foundry confirms, and only then remove the credentials file. Things that are
already gone count as success. --keep-instance deletes only the key.

Asks for confirmation on a terminal; needs --yes otherwise.`,
		Example: `  xsprov down my-xsuaa
  xsprov down my-xsuaa --yes --json
  xsprov down my-xsuaa --keep-instance --yes`,
		Args: exactArgs(1, "INSTANCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Instance = args[0]
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return downRun(cmd.Context(), f, opts)
		},
	}
	opts.register(cmd)
	return cmd
}

func (o *DownOptions) register(cmd *cobra.Command) {
	o.Target.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&o.Key, "key", "", "service key name (default INSTANCE-key)")
	fl.BoolVar(&o.KeepInstance, "keep-instance", false, "delete only the key, keep the instance")
	fl.StringVar(&o.Out, "out", "", "credentials file to remove (default INSTANCE-credentials.json, or after --format)")
	fl.StringVar(&o.Format, "format", credfile.FormatJSON, "format of the credentials file, for its default name")
	o.dry.register(cmd)
	fl.BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&o.JSON, "json", false, "print a machine-readable result on stdout")
	fl.BoolVar(&o.NoWait, "no-wait", false, "return once the deletion is accepted (the credentials file is kept)")
}

func (o *DownOptions) validate() error {
	if err := checkInstanceName(o.Instance); err != nil {
		return err
	}
	if err := o.dry.validate(); err != nil {
		return err
	}
	return checkOutput(o.Instance, &o.Out, &o.Format)
}

// confirm asks on a terminal; elsewhere --yes is required. Refusal is a
// usage error, decided before any request.
func confirm(f *Factory, yes bool, question string) error {
	if yes {
		return nil
	}
	if !f.IO.CanPrompt() {
		return cfapi.Usagef("refusing to delete or replace without confirmation: pass --yes (stdin is not a terminal); nothing was changed")
	}
	if !f.IO.Confirm(question) {
		fmt.Fprintln(f.IO.ErrOut, "Nothing was changed.")
		return &silentError{code: exitFailure}
	}
	return nil
}

func downRun(ctx context.Context, f *Factory, o *DownOptions) error {
	s, err := f.resolve(o.Target)
	if err != nil {
		return err
	}
	what := "the service instance " + o.Instance + " and its keys"
	if o.KeepInstance {
		what = "the service key(s) of " + o.Instance
	}
	if err := confirm(f, o.Yes || o.dry.DryRun, fmt.Sprintf("Really delete %s in org %s / space %s?", what, s.org, s.space)); err != nil {
		return err
	}
	ctx, cancel, c, err := f.connectWithin(ctx, s)
	defer cancel()
	if err != nil {
		return err
	}
	out := o.Out
	if o.NoWait {
		out = ""
	}
	res, err := c.engine(false, nil, provision.WithDryRun(o.dry.DryRun)).Down(ctx, provision.DownRequest{
		Ref: provision.Ref{Org: s.org, Space: s.space, Instance: o.Instance},
		Key: o.Key, KeepInstance: o.KeepInstance, OutPath: out, NoWait: o.NoWait,
	})
	if err != nil {
		return err
	}
	if o.JSON {
		if err := writeJSONDoc(f.IO.Out, res); err != nil {
			return err
		}
	} else {
		printDown(f.IO.Out, res)
	}
	return o.dry.done(f, res.Changed())
}

func printDown(w io.Writer, r *provision.Result) {
	row := func(k, v string) { fmt.Fprintf(w, "%-18s %s\n", k+":", v) }
	row("service instance", r.Instance.Name+" ("+string(r.Instance.Action)+")")
	if r.Key != nil {
		row("service key", r.Key.Name+" ("+string(r.Key.Action)+")")
	}
	if r.File != "" {
		row("credentials file", r.File+" ("+string(r.FileAction)+")")
	}
}

// RecreateOptions are the inputs of `xsprov recreate`: up's, plus --yes.
type RecreateOptions struct {
	UpOptions
}

func newRecreateCmd(f *Factory, runF func(context.Context, *RecreateOptions) error) *cobra.Command {
	opts := &RecreateOptions{}
	cmd := &cobra.Command{
		Use:   "recreate INSTANCE",
		Short: "Delete and create the instance again with the same options (sandbox reset)",
		Long: `Run 'xsprov down' and then 'xsprov up' with the same options. Use it to change
what the broker cannot update in place (xsappname, tenant-mode) or to reset a
sandbox. The key and its credentials change; the file is rewritten.`,
		Example: `  xsprov recreate my-xsuaa --tenant-mode shared --yes
  xsprov recreate sandbox-uaa --template web-app --var xsappname=sandbox --yes`,
		Args: exactArgs(1, "INSTANCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Instance = args[0]
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return recreateRun(cmd.Context(), f, opts)
		},
	}
	opts.UpOptions.register(cmd)
	return cmd
}

func recreateRun(ctx context.Context, f *Factory, o *RecreateOptions) error {
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
	if err := confirm(f, o.Yes, fmt.Sprintf("Really delete and recreate the service instance %s in org %s / space %s?", o.Instance, s.org, s.space)); err != nil {
		return err
	}
	ctx, cancel, c, err := f.connectWithin(ctx, s)
	defer cancel()
	if err != nil {
		return err
	}
	// recreate proves the new credentials as up does (--verify).
	eng := c.engine(o.Verify && !o.NoVerify && !o.NoWait, f.mask)
	if _, err := eng.Down(ctx, provision.DownRequest{Ref: req.Ref, Key: o.Key, OutPath: o.Out}); err != nil {
		return err
	}
	res, err := eng.Up(ctx, req)
	if err != nil {
		return err
	}
	f.warnExposed(res.File, &res.Warnings)
	if err := o.ci.githubOutput(f, map[string]string{"credentials-file": res.File, "client-id": res.ClientID, "url": res.URL}); err != nil {
		return err
	}
	if res.Instance.Action == provision.Created {
		res.Instance.Action = provision.Recreated
	}
	if o.JSON {
		return writeJSONDoc(f.IO.Out, res)
	}
	printResult(f.IO.Out, res)
	return nil
}
