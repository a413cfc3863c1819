package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/credfile"
	"github.com/xsprov/xsprov/provision/xssec"
)

// StatusOptions are the inputs of `xsprov status`.
type StatusOptions struct {
	Target                targetFlags
	Instance              string
	Key                   string
	ParamsFile            string
	Templates             templateFlags
	XSAppName, TenantMode string
	ForeignScopes         []string
	Out, Format           string
	JSON                  bool
	DetailedExitCode      bool
}

func newStatusCmd(f *Factory, runF func(context.Context, *StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{}
	cmd := &cobra.Command{
		Use:   "status INSTANCE",
		Short: "Show the instance's and key's state, and whether the parameters drifted",
		Long: `Show the state of the service instance INSTANCE and its keys: last operation,
offering and plan, the current key, the credentials file's age. With --params or
parameter flags, also compare the instance's parameters with them and show the
differences (values that look secret are hidden).

Exits 1 when the instance does not exist.`,
		Example: `  xsprov status my-xsuaa
  xsprov status my-xsuaa --params xs-security.json --detailed-exitcode
  xsprov status my-xsuaa --json | jq .drift`,
		Args: exactArgs(1, "INSTANCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Instance = args[0]
			if err := checkInstanceName(opts.Instance); err != nil {
				return err
			}
			if err := checkOutput(opts.Instance, &opts.Out, &opts.Format); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return statusRun(cmd.Context(), f, opts)
		},
	}
	opts.Target.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&opts.Key, "key", "", "service key name (default INSTANCE-key)")
	fl.StringVar(&opts.ParamsFile, "params", "", "xs-security.json to compare the instance's parameters with")
	opts.Templates.register(cmd, true)
	fl.StringVar(&opts.XSAppName, "xsappname", "", "desired xsappname, for the drift check")
	fl.StringVar(&opts.TenantMode, "tenant-mode", "", "desired tenant mode, for the drift check")
	fl.StringArrayVar(&opts.ForeignScopes, "foreign-scope", nil, "desired foreign scope reference, for the drift check (repeatable)")
	fl.StringVar(&opts.Out, "out", "", "credentials file (default INSTANCE-credentials.json, or after --format)")
	fl.StringVar(&opts.Format, "format", credfile.FormatJSON, "format of the credentials file, for its default name")
	fl.BoolVar(&opts.JSON, "json", false, "print a machine-readable result on stdout")
	fl.BoolVar(&opts.DetailedExitCode, "detailed-exitcode", false, "with a drift check: exit 0 without drift, 2 when the parameters drifted, 1 on error")
	return cmd
}

func statusRun(ctx context.Context, f *Factory, o *StatusOptions) error {
	s, err := f.resolve(o.Target)
	if err != nil {
		return err
	}
	if o.ParamsFile != "" && o.Templates.Template != "" {
		return flagErrorf("give either --params or --template, not both")
	}
	if o.DetailedExitCode && o.ParamsFile == "" && o.Templates.Template == "" && o.XSAppName == "" && o.TenantMode == "" && len(o.ForeignScopes) == 0 {
		return flagErrorf("--detailed-exitcode needs a drift check: --params, --template or a parameter flag")
	}
	var desired map[string]any
	if o.ParamsFile != "" || o.Templates.Template != "" || o.XSAppName != "" || o.TenantMode != "" || len(o.ForeignScopes) > 0 {
		in := xssec.Input{File: o.ParamsFile, Instance: o.Instance,
			Overrides: xssec.Overrides{XSAppName: o.XSAppName, TenantMode: o.TenantMode, ForeignScopes: o.ForeignScopes}}
		if err := o.Templates.into(&in); err != nil {
			return err
		}
		desired, _, err = xssec.Build(in)
		if err != nil {
			return err
		}
	}
	ctx, cancel, c, err := f.connectWithin(ctx, s)
	defer cancel()
	if err != nil {
		return err
	}
	c.rep.Info(fmt.Sprintf("Showing status of service instance %s in org %s / space %s as %s...\n", o.Instance, s.org, s.space, c.sess.User))
	st, err := c.engine(false, nil).Status(ctx, provision.StatusRequest{
		Ref: provision.Ref{Org: s.org, Space: s.space, Instance: o.Instance}, Key: o.Key, Desired: desired, OutPath: o.Out,
	})
	if err != nil {
		return err
	}
	if o.JSON {
		if err := writeJSONDoc(f.IO.Out, st); err != nil {
			return err
		}
	} else {
		printStatus(f.IO.Out, st, o.Instance)
	}
	if !st.Exists {
		if !o.JSON {
			fmt.Fprintf(f.IO.ErrOut, "Service instance %s not found.\n", o.Instance)
		}
		return &silentError{code: exitFailure}
	}
	if o.DetailedExitCode && st.Drift != nil && st.Drift.Drifted {
		return changesPending{}
	}
	return nil
}

func printStatus(w io.Writer, st *provision.Status, name string) {
	row := func(k, v string) { fmt.Fprintf(w, "%-18s %s\n", k+":", v) }
	if !st.Exists {
		row("service instance", name+" (does not exist)")
	} else {
		i := st.Instance
		row("name", i.Name)
		row("guid", i.GUID)
		row("offering", i.Offering)
		row("plan", i.Plan)
		lo := i.LastOperation.Type + " " + i.LastOperation.State
		if i.LastOperation.Description != "" {
			lo += ": " + i.LastOperation.Description
		}
		row("last operation", lo+" ("+i.LastOperation.UpdatedAt.Format(time.RFC3339)+")")
		if len(st.Keys) == 0 {
			row("keys", "none")
		} else {
			fmt.Fprintln(w, "keys:")
			for _, k := range st.Keys {
				cur := ""
				if k.Current {
					cur = " (current)"
				}
				fmt.Fprintf(w, "  %s%s: %s %s, created %s\n", k.Name, cur, k.LastOperation.Type, k.LastOperation.State, k.CreatedAt.Format(time.RFC3339))
			}
		}
		if st.Drift != nil {
			if !st.Drift.Drifted {
				row("parameters", "in sync")
			} else {
				row("parameters", fmt.Sprintf("drifted (%d change(s))", len(st.Drift.Changes)))
				for _, d := range st.Drift.Changes {
					fmt.Fprintln(w, "  "+d.String())
				}
				if len(st.Drift.NeedsRecreate) > 0 {
					fmt.Fprintf(w, "  (%v cannot change in place: use 'xsprov recreate')\n", st.Drift.NeedsRecreate)
				}
			}
		}
	}
	if fs := st.File; fs != nil {
		if fs.Exists {
			row("credentials file", fmt.Sprintf("%s (%s, written %s ago)", fs.Path, fs.Mode, (time.Duration(fs.AgeSeconds)*time.Second).String()))
		} else {
			row("credentials file", fs.Path+" (absent)")
		}
	}
}
