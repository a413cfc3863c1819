package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xsprov/xsprov/provision/credfile"
	"github.com/xsprov/xsprov/provision/inventory"
)

// ExportOptions are the inputs of `xsprov export`.
type ExportOptions struct {
	Target targetFlags
	Names  []string
	scopeFlags
	Name string
	Out  string
}

func newExportCmd(f *Factory, runF func(context.Context, *ExportOptions) error) *cobra.Command {
	opts := &ExportOptions{}
	cmd := &cobra.Command{
		Use:   "export [INSTANCE...]",
		Short: "Write the instances of a space as an onboarding spec",
		Long: `Write the service instances of the target space (all of them, those named, or
those matching --label-selector) as an onboarding spec (apiVersion xsprov/v1):
offering and plan, tags, parameters and keys (names and parameters; never
credentials). Parameters are read back where the offering allows it; real SAP
BTP's xsuaa does not, so they come from what xsprov recorded on the instance
when it applied them; where neither exists they are left out with a comment,
and apply then leaves that descriptor as it is.

"xsprov plan" of the exported spec against the same landscape shows no change
(with --adopt for instances no spec owns yet). Reads only.`,
		Example: `  xsprov export > onboarding.yaml
  xsprov export orders-uaa billing-uaa --out team.yaml --name team
  xsprov export --all-spaces -l team=orders`,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			return f.completeInstances(cmd, opts.Target)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if err := checkInstanceName(a); err != nil {
					return err
				}
			}
			opts.Names = args
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return exportRun(cmd.Context(), f, opts)
		},
	}
	opts.Target.register(cmd)
	fl := cmd.Flags()
	opts.scopeFlags.register(cmd, "every space of the org (each instance names its space)")
	fl.StringVar(&opts.Name, "name", "", "the spec's metadata.name (default: the spec that owns all of them, else ORG-SPACE)")
	fl.StringVar(&opts.Out, "out", "", "write the spec to this file (mode 0600) instead of stdout")
	return cmd
}

func exportRun(ctx context.Context, f *Factory, o *ExportOptions) error {
	ctx, cancel, c, s, err := o.scopeFlags.connect(ctx, f, o.Target)
	defer cancel()
	if err != nil {
		return err
	}
	c.rep.Step(fmt.Sprintf("Exporting service instances in %s as %s", o.where(s), c.sess.User))
	res, err := inventory.Export(ctx, c.sess, o.scope(s, o.Names), o.Name)
	if err != nil {
		return err
	}
	c.rep.Done()
	if len(res.Unknown) > 0 {
		c.rep.Warn(fmt.Sprintf("parameters unknown for %d instance(s), left out of the spec (apply leaves their descriptors as they are): %s", len(res.Unknown), strings.Join(res.Unknown, ", ")))
	}
	for owner, names := range res.OwnedElsewhere {
		c.rep.Warn(fmt.Sprintf("%s owned by spec %q, not %q: a plan of this spec reports them as errors; export them with --name %s or -l xsprov.io/spec=%s", strings.Join(names, ", "), owner, res.Name, owner, owner))
	}
	if o.Out == "" {
		_, err := f.IO.Out.Write(res.YAML)
		return err
	}
	if err := credfile.WriteFileAtomic(o.Out, res.YAML); err != nil {
		return err
	}
	c.rep.Info(fmt.Sprintf("Wrote %d instance(s) to %s.", res.Instances, o.Out))
	return nil
}
