package main

import (
	"context"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cloudfoundry/go-cfclient/v3/client"
	"github.com/spf13/cobra"

	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/credfile"
	"github.com/xsprov/xsprov/provision/offering"
	"github.com/xsprov/xsprov/templates"
)

// Shell completion with live names. Every completion that needs Cloud
// Foundry logs in the way the command would (never prompting), sends one
// list request (two where the space must be looked up first), gives up
// after completionTimeout and stays silent on any error.

const completionTimeout = 3 * time.Second

// instanceCommands take an INSTANCE argument.
var instanceCommands = []string{"up", "down", "recreate", "status", "creds", "rotate", "token"}

// registerCompletions adds completion functions to every command of root,
// by the names of their arguments and flags.
func registerCompletions(f *Factory, root *cobra.Command) {
	static := map[string][]string{
		"format":          credfile.Formats,
		"tenant-mode":     {"dedicated", "shared", "external"},
		"credential-type": slices.Concat(offering.XSUAA.KeyTypes, offering.Identity.KeyTypes),
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if slices.Contains(instanceCommands, c.Name()) && c.Parent() == root && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return f.completeInstances(cmd, targetOf(cmd))
			}
		}
		for name, values := range static {
			if c.Flags().Lookup(name) != nil {
				_ = c.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
			}
		}
		if c.Flags().Lookup("template") != nil {
			_ = c.RegisterFlagCompletionFunc("template", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
				// a built-in name, or a file
				return templates.Names(), cobra.ShellCompDirectiveDefault
			})
		}
		if c.Flags().Lookup("api") == nil {
			return
		}
		_ = c.RegisterFlagCompletionFunc("org", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
			return f.completeList(cmd, targetOf(cmd), false, func(ctx context.Context, s *cfapi.Session, _ *settings) ([]string, error) {
				orgs, err := s.CF.Organizations.ListAll(ctx, &client.OrganizationListOptions{ListOptions: &client.ListOptions{PerPage: 5000}})
				var out []string
				for _, o := range orgs {
					out = append(out, o.Name)
				}
				return out, err
			})
		})
		_ = c.RegisterFlagCompletionFunc("space", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
			return f.completeList(cmd, targetOf(cmd), false, func(ctx context.Context, s *cfapi.Session, st *settings) ([]string, error) {
				opts := client.NewSpaceListOptions()
				opts.PerPage = 5000
				spaces, orgs, err := s.SpacesWithOrgs(ctx, opts)
				var out []string
				for _, sp := range spaces {
					for _, o := range orgs {
						if o.GUID == sp.Relationships.Organization.Data.GUID && (st.org == "" || strings.EqualFold(o.Name, st.org)) {
							out = append(out, sp.Name)
						}
					}
				}
				return out, err
			})
		})
		if c.Flags().Lookup("plan") != nil {
			_ = c.RegisterFlagCompletionFunc("plan", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
				offering := "xsuaa"
				if fl := cmd.Flags().Lookup("offering"); fl != nil && fl.Value.String() != "" {
					offering = fl.Value.String()
				}
				return f.completeList(cmd, targetOf(cmd), false, func(ctx context.Context, s *cfapi.Session, _ *settings) ([]string, error) {
					opts := client.NewServicePlanListOptions()
					opts.ServiceOfferingNames = client.Filter{Values: []string{offering}}
					opts.PerPage = 5000
					plans, err := s.CF.ServicePlans.ListAll(ctx, opts)
					var out []string
					for _, p := range plans {
						if !slices.Contains(out, p.Name) {
							out = append(out, p.Name)
						}
					}
					return out, err
				})
			})
		}
		if c.Flags().Lookup("offering") != nil {
			_ = c.RegisterFlagCompletionFunc("offering", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
				return f.completeList(cmd, targetOf(cmd), false, func(ctx context.Context, s *cfapi.Session, _ *settings) ([]string, error) {
					offs, err := s.CF.ServiceOfferings.ListAll(ctx, &client.ServiceOfferingListOptions{ListOptions: &client.ListOptions{PerPage: 5000}})
					var out []string
					for _, o := range offs {
						if !slices.Contains(out, o.Name) {
							out = append(out, o.Name)
						}
					}
					return out, err
				})
			})
		}
	}
	walk(root)
}

// targetOf reads the target flags given so far on the command line.
func targetOf(cmd *cobra.Command) targetFlags {
	get := func(name string) string {
		if fl := cmd.Flags().Lookup(name); fl != nil {
			return fl.Value.String()
		}
		return ""
	}
	return targetFlags{API: get("api"), Org: get("org"), Space: get("space"), SkipSSL: get("skip-ssl-validation") == "true",
		ClientID: get("client-id"), ClientSecretFile: get("client-secret-file"), Origin: get("origin"), CACert: get("cacert"),
		AllowInsecure: get("allow-insecure-http") == "true", Timeout: completionTimeout}
}

// completeInstances completes the names of the instances in the target
// space.
func (f *Factory) completeInstances(cmd *cobra.Command, t targetFlags) ([]string, cobra.ShellCompDirective) {
	return f.completeList(cmd, t, true, func(ctx context.Context, s *cfapi.Session, st *settings) ([]string, error) {
		tg, err := s.ResolveTarget(ctx, st.org, st.space)
		if err != nil {
			return nil, err
		}
		opts := client.NewServiceInstanceListOptions()
		opts.SpaceGUIDs = client.Filter{Values: []string{tg.SpaceGUID}}
		opts.PerPage = 5000
		insts, err := s.CF.ServiceInstances.ListAll(ctx, opts)
		var out []string
		for _, i := range insts {
			out = append(out, i.Name)
		}
		return out, err
	})
}

// completeList logs in quietly and returns what list finds, or nothing.
func (f *Factory) completeList(cmd *cobra.Command, t targetFlags, needSpace bool, list func(context.Context, *cfapi.Session, *settings) ([]string, error)) ([]string, cobra.ShellCompDirective) {
	const none = cobra.ShellCompDirectiveNoFileComp
	// a factory of its own: no progress, no prompts, no trace
	q := &Factory{IO: &IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}, Getenv: f.Getenv,
		Clock: f.Clock, BaseTransport: f.BaseTransport}
	defer q.close()
	t.Trace = false
	if t.Timeout <= 0 {
		t.Timeout = completionTimeout
	}
	st, err := q.resolveFor(t, needSpace)
	if err != nil {
		return nil, none
	}
	st.trace = nil
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel, c, err := q.connectWithin(ctx, st)
	if err != nil {
		return nil, none
	}
	defer cancel()
	names, err := list(ctx, c.sess, st)
	if err != nil {
		return nil, none
	}
	slices.Sort(names)
	return slices.Compact(names), none
}
