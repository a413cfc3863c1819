package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/credfile"
)

// CredsOptions are the inputs of `xsprov creds`.
type CredsOptions struct {
	Target                 targetFlags
	Instance               string
	Key                    string
	Out, Format, EnvPrefix string
	JSON                   bool
	ShowSecrets            bool
}

func newCredsCmd(f *Factory, runF func(context.Context, *CredsOptions) error) *cobra.Command {
	opts := &CredsOptions{}
	cmd := &cobra.Command{
		Use:   "creds INSTANCE",
		Short: "Read an existing key's credentials and (re)write the credentials file",
		Example: `  xsprov creds my-xsuaa
  xsprov creds my-xsuaa --format env --out .env
  xsprov creds my-xsuaa --json | jq -r .client_id`,
		Args: exactArgs(1, "INSTANCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Instance = args[0]
			if err := checkInstanceName(opts.Instance); err != nil {
				return err
			}
			if err := checkOutput(opts.Instance, &opts.Out, &opts.Format); err != nil {
				return err
			}
			if opts.ShowSecrets && opts.JSON {
				return flagErrorf("--show-secrets and --json exclude each other (--json never holds secrets)")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return credsRun(cmd.Context(), f, opts)
		},
	}
	opts.Target.register(cmd)
	cmd.Flags().StringVar(&opts.Key, "key", "", "service key name (default INSTANCE-key)")
	registerOutputFlags(cmd, &opts.Out, &opts.Format, &opts.EnvPrefix)
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print a machine-readable result on stdout (never secret values)")
	cmd.Flags().BoolVar(&opts.ShowSecrets, "show-secrets", false, "print the credentials themselves on stdout, in --format, instead of the summary")
	return cmd
}

func credsRun(ctx context.Context, f *Factory, o *CredsOptions) error {
	s, err := f.resolve(o.Target)
	if err != nil {
		return err
	}
	ctx, cancel, c, err := f.connectWithin(ctx, s)
	defer cancel()
	if err != nil {
		return err
	}
	res, err := c.engine(false, f.mask).Creds(ctx, provision.CredsRequest{
		Ref: provision.Ref{Org: s.org, Space: s.space, Instance: o.Instance}, Key: o.Key,
		Out: credfile.Output{Path: o.Out, Format: o.Format, EnvPrefix: o.EnvPrefix},
	})
	if err != nil {
		return err
	}
	f.warnExposed(res.File, &res.Warnings)
	switch {
	case o.JSON:
		return writeJSONDoc(f.IO.Out, res)
	case o.ShowSecrets:
		// asked for: the credentials on stdout, in the chosen format
		b, err := credfile.Render(res.Credentials(), credfile.Output{Format: o.Format, EnvPrefix: o.EnvPrefix, Instance: o.Instance})
		if err != nil {
			return err
		}
		_, err = f.IO.Out.Write(b)
		return err
	}
	printResult(f.IO.Out, res)
	return nil
}
