package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/xsprov/xsprov/provision/inventory"
)

// scopeFlags are --all-spaces and --label-selector of list and export.
type scopeFlags struct {
	AllSpaces bool
	Selector  string
}

func (sc *scopeFlags) register(cmd *cobra.Command, allSpaces string) {
	cmd.Flags().BoolVar(&sc.AllSpaces, "all-spaces", false, allSpaces)
	cmd.Flags().StringVarP(&sc.Selector, "label-selector", "l", "", "only instances whose labels match (CF label selector, e.g. team=orders)")
}

// connect resolves the target (an org, and a space unless --all-spaces) and
// logs in; the caller defers cancel.
func (sc *scopeFlags) connect(ctx context.Context, f *Factory, t targetFlags) (context.Context, func(), *conn, *settings, error) {
	s, err := f.resolveFor(t, !sc.AllSpaces)
	if err != nil {
		return nil, func() {}, nil, nil, err
	}
	ctx, cancel, c, err := f.connectWithin(ctx, s)
	return ctx, cancel, c, s, err
}

// where words the scope as cf does: "org O / space S", or all spaces.
func (sc *scopeFlags) where(s *settings) string {
	if sc.AllSpaces {
		return "org " + s.org + " (all spaces)"
	}
	return "org " + s.org + " / space " + s.space
}

func (sc *scopeFlags) scope(s *settings, names []string) inventory.Scope {
	return inventory.Scope{Org: s.org, Space: s.space, AllSpaces: sc.AllSpaces, Selector: sc.Selector, Names: names}
}

// ListOptions are the inputs of `xsprov list`.
type ListOptions struct {
	Target targetFlags
	scopeFlags
	JSON bool
	// KeysOf, when set, lists the keys of this instance (`list keys I`).
	KeysOf string
}

func newListCmd(f *Factory, runF func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{}
	cmd := &cobra.Command{
		Use:   "list [keys INSTANCE]",
		Short: "List the service instances of the space (what cf services shows), or an instance's keys",
		Long: `List the service instances in the target space (or, with --all-spaces, in every
space of the org): offering and plan, last operation, number of keys, and the
spec that owns each one (label xsprov.io/spec). "list keys INSTANCE" lists an
instance's keys. Reads only: four requests at most, however many instances.`,
		Example: `  xsprov list
  xsprov list --all-spaces --json | jq -r '.instances[] | select(.owner == "") | .name'
  xsprov list keys my-xsuaa`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				return nil
			case args[0] == "keys" && len(args) == 2:
				return checkInstanceName(args[1])
			case args[0] == "keys":
				return flagErrorf("list keys needs exactly one INSTANCE")
			}
			return flagErrorf("unknown argument %q: use \"xsprov list\" or \"xsprov list keys INSTANCE\"", args[0])
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return []string{"keys"}, cobra.ShellCompDirectiveNoFileComp
			}
			if len(args) == 1 && args[0] == "keys" {
				return f.completeInstances(cmd, opts.Target)
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				opts.KeysOf = args[1]
			}
			if opts.KeysOf != "" && (opts.AllSpaces || opts.Selector != "") {
				return flagErrorf("--all-spaces and --label-selector list instances, not keys")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return listRun(cmd.Context(), f, opts)
		},
	}
	opts.Target.register(cmd)
	opts.scopeFlags.register(cmd, "every space of the org")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print a machine-readable result on stdout")
	return cmd
}

func listRun(ctx context.Context, f *Factory, o *ListOptions) error {
	ctx, cancel, c, s, err := o.scopeFlags.connect(ctx, f, o.Target)
	defer cancel()
	if err != nil {
		return err
	}
	where := o.where(s)
	if o.KeysOf != "" {
		c.rep.Info(fmt.Sprintf("Getting keys for service instance %s in %s as %s...", o.KeysOf, where, c.sess.User))
		keys, err := inventory.Keys(ctx, c.sess, s.org, s.space, o.KeysOf)
		if err != nil {
			return err
		}
		if o.JSON {
			return writeJSONDoc(f.IO.Out, map[string]any{"format_version": "1", "instance": o.KeysOf, "keys": keys})
		}
		if len(keys) == 0 {
			c.rep.Info("No service keys for service instance " + o.KeysOf + ".")
			return nil
		}
		tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 3, ' ', 0)
		fmt.Fprintln(tw, "name\tlast operation\tcreated\towner")
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Name, k.LastOperation, k.CreatedAt.UTC().Format("2006-01-02T15:04:05Z"), k.Owner)
		}
		return tw.Flush()
	}
	c.rep.Info(fmt.Sprintf("Getting service instances in %s as %s...", where, c.sess.User))
	insts, err := inventory.List(ctx, c.sess, o.scope(s, nil))
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSONDoc(f.IO.Out, map[string]any{"format_version": "1", "org": s.org, "space": map[bool]string{true: "", false: s.space}[o.AllSpaces], "instances": insts})
	}
	if len(insts) == 0 {
		c.rep.Info("No service instances found.")
		return nil
	}
	tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 3, ' ', 0)
	head := []string{"name", "offering", "plan", "last operation", "keys", "owner"}
	if o.AllSpaces {
		head = append([]string{"space"}, head...)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, in := range insts {
		row := []string{in.Name, in.Offering, in.Plan, in.LastOperation, strconv.Itoa(in.Keys), in.Owner}
		if o.AllSpaces {
			row = append([]string{in.Space}, row...)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}
