package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/credfile"
	"github.com/xsprov/xsprov/provision/offering"
)

// RotateOptions are the inputs of `xsprov rotate`.
type RotateOptions struct {
	Target                 targetFlags
	Instance               string
	Key                    string
	KeyParams              string
	CredentialType         string
	Grace                  time.Duration
	IfExpiringWithin       string
	Out, Format, EnvPrefix string
	JSON                   bool
	ci                     ciFlags
	dry                    dryRunFlags
}

func newRotateCmd(f *Factory, runF func(context.Context, *RotateOptions) error) *cobra.Command {
	opts := &RotateOptions{}
	cmd := &cobra.Command{
		Use:   "rotate INSTANCE",
		Short: "Replace the instance's key with a new one without downtime",
		Long: `Create a new key (named KEY--rYYYYMMDDTHHMMSSZ, so names sort by age), verify it
by getting a token with it, replace the credentials file atomically, and then
delete the old key, or keep it for --grace and delete it on a later rotate.

A failure at any step leaves a working credentials file and names what is left
to clean up. up, creds, status and down treat the newest rotated key as the
instance's key.`,
		Example: `  xsprov rotate my-xsuaa
  xsprov rotate my-xsuaa --grace 24h   # old key keeps working for a day
  xsprov rotate my-ias --if-expiring-within 7d   # a scheduled pipeline renews X.509 keys in time`,
		Args: exactArgs(1, "INSTANCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Instance = args[0]
			if err := checkInstanceName(opts.Instance); err != nil {
				return err
			}
			if err := opts.dry.validate(); err != nil {
				return err
			}
			if opts.Grace < 0 {
				return flagErrorf("--grace must not be negative")
			}
			// the instance's offering is not known before a request: either's
			if opts.CredentialType != "" && !slices.Contains(slices.Concat(offering.XSUAA.KeyTypes, offering.Identity.KeyTypes), opts.CredentialType) {
				return flagErrorf("--credential-type %q is not one of binding-secret, x509 (xsuaa) or SECRET, X509_GENERATED, X509_PROVIDED, NONE (identity)", opts.CredentialType)
			}
			if opts.IfExpiringWithin != "" {
				if _, err := parseDays(opts.IfExpiringWithin); err != nil {
					return flagErrorf("--if-expiring-within %q: %v", opts.IfExpiringWithin, err)
				}
			}
			if err := checkOutput(opts.Instance, &opts.Out, &opts.Format); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return rotateRun(cmd.Context(), f, opts)
		},
	}
	opts.Target.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&opts.Key, "key", "", "base name of the key (default INSTANCE-key)")
	fl.StringVar(&opts.KeyParams, "key-params", "", "parameters of the new key (default: the current key's)")
	fl.StringVar(&opts.CredentialType, "credential-type", "", "credential type of the new key: binding-secret or x509")
	fl.DurationVar(&opts.Grace, "grace", 0, "keep the old key this long (deleted by a later rotate); 0 deletes it now")
	fl.StringVar(&opts.IfExpiringWithin, "if-expiring-within", "", "rotate only when the key's certificate expires within this long (e.g. 7d, 36h); a key without a certificate is left alone")
	registerOutputFlags(cmd, &opts.Out, &opts.Format, &opts.EnvPrefix)
	fl.BoolVar(&opts.JSON, "json", false, "print a machine-readable result on stdout (never secret values)")
	opts.ci.register(cmd)
	opts.dry.register(cmd)
	return cmd
}

func rotateRun(ctx context.Context, f *Factory, o *RotateOptions) error {
	if err := o.ci.validate(f); err != nil {
		return err
	}
	s, err := f.resolve(o.Target)
	if err != nil {
		return err
	}
	keyParams, err := keyParamsOf(o.KeyParams, o.CredentialType)
	if err != nil {
		return err
	}
	within, _ := parseDays(o.IfExpiringWithin)
	ctx, cancel, c, err := f.connectWithin(ctx, s)
	defer cancel()
	if err != nil {
		return err
	}
	res, err := c.engine(true, f.mask, provision.WithDryRun(o.dry.DryRun)).Rotate(ctx, provision.RotateRequest{
		Ref: provision.Ref{Org: s.org, Space: s.space, Instance: o.Instance}, Key: o.Key, KeyParams: keyParams, Grace: o.Grace, IfExpiringWithin: within,
		Out: credfile.Output{Path: o.Out, Format: o.Format, EnvPrefix: o.EnvPrefix, Instance: o.Instance},
	})
	if res != nil && !o.dry.DryRun {
		f.warnExposed(res.File, nil)
		if gerr := o.ci.githubOutput(f, map[string]string{"credentials-file": res.File, "client-id": res.ClientID, "key": res.NewKey.Name}); gerr != nil && err == nil {
			err = gerr
		}
	}
	if res != nil {
		if o.JSON {
			if jerr := writeJSONDoc(f.IO.Out, res); jerr != nil && err == nil {
				err = jerr
			}
		} else {
			row := func(k, v string) { fmt.Fprintf(f.IO.Out, "%-18s %s\n", k+":", v) }
			if res.NewKey.Action == provision.Unchanged {
				row("key", res.NewKey.Name+" (not rotated)")
				if res.NewKey.ExpiresAt != nil {
					row("certificate until", res.NewKey.ExpiresAt.Format(time.RFC3339))
				}
				return err
			}
			row("new key", res.NewKey.Name)
			if res.Replaced != "" {
				row("replaced key", res.Replaced)
			}
			for _, d := range res.Deleted {
				row("deleted key", d)
			}
			for _, k := range res.Kept {
				row("kept key", k.Name+" (until "+k.RetireAfter.Format(time.RFC3339)+")")
			}
			if res.File != "" {
				row("credentials file", res.File)
			}
		}
	}
	if err == nil && res != nil {
		err = o.dry.done(f, res.NewKey.Action != provision.Unchanged)
	}
	return err
}

// parseDays reads a duration that may also be given in days ("7d").
func parseDays(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("want a positive number of days (7d) or a duration (36h)")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	dur, err := time.ParseDuration(s)
	if err != nil || dur <= 0 {
		return 0, fmt.Errorf("want a positive number of days (7d) or a duration (36h)")
	}
	return dur, nil
}
