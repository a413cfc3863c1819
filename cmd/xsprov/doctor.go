package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cloudfoundry/go-cfclient/v3/client"
	"github.com/spf13/cobra"

	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/doctor"
	"github.com/xsprov/xsprov/provision/remedy"
)

// DoctorOptions are the inputs of `xsprov doctor`.
type DoctorOptions struct {
	Target         targetFlags
	Offering, Plan string
	Broker         string
	JSON           bool
}

func newDoctorCmd(f *Factory, runF func(context.Context, *DoctorOptions) error) *cobra.Command {
	opts := &DoctorOptions{}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check what a first up needs: API, TLS, login, target, roles, entitlement, token endpoint",
		Long: `Check, one line each, what a first "xsprov up" in the target space needs: the
API is reachable and its TLS certificate trusted, a login method was found and
works, the org and space exist, the user may create service instances there
(SpaceDeveloper), the offering and plan are visible (entitlement), whether the
broker returns parameters for drift checks, and that the token endpoint (XSUAA or IAS)
of an existing key answers. Writes nothing.

Exits 0 when every check passes (notes do not fail), 1 otherwise.`,
		Example: `  xsprov doctor
  xsprov doctor --api https://api.cf.eu10.hana.ondemand.com -o my-org -s dev
  xsprov doctor --json | jq '.checks[] | select(.status == "fail")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return doctorRun(cmd.Context(), f, opts)
		},
	}
	opts.Target.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&opts.Offering, "offering", "xsuaa", "service offering a first up would use")
	fl.StringVar(&opts.Plan, "plan", "application", "service plan a first up would use")
	fl.StringVar(&opts.Broker, "broker", "", "service broker, where two offer the offering")
	fl.BoolVar(&opts.JSON, "json", false, "print a machine-readable result on stdout")
	return cmd
}

func doctorRun(ctx context.Context, f *Factory, o *DoctorOptions) error {
	var checks []doctor.Check
	report := func() error {
		failed := false
		for _, c := range checks {
			failed = failed || c.Status == doctor.Fail
		}
		if o.JSON {
			if err := writeJSONDoc(f.IO.Out, map[string]any{"format_version": "1", "ok": !failed, "checks": checks}); err != nil {
				return err
			}
		} else {
			printChecks(f, checks)
		}
		if failed {
			return &silentError{code: exitFailure} // the report said it
		}
		return nil
	}
	if o.Target.Timeout <= 0 {
		return flagErrorf("--timeout must be positive, got %s", o.Target.Timeout)
	}
	s, err := f.resolve(o.Target)
	if err != nil {
		var fe *flagError
		if errors.As(err, &fe) {
			return err // a bad flag is bad input (exit 2)
		}
		checks = append(checks, doctor.Check{Name: "configuration", Status: doctor.Fail, Detail: err.Error(), Hint: hintOf(err)})
		return report()
	}
	ctx, cancel := withTimeout(ctx, s.timeout)
	defer cancel()
	// quiet: doctor's report is its output
	f.rep = newReporter(&IOStreams{ErrOut: discardWriter{}}, f.getenv)
	api := s.api
	if s.sim {
		api = "the embedded simulator"
	}
	c, err := f.connect(ctx, s)
	if err != nil {
		checks = append(checks, apiCheck(api, err))
		if isAPIError(err) {
			checks = append(checks, doctor.Check{Name: "login", Status: doctor.Skip, Detail: "needs the API"})
		} else {
			checks = append(checks, doctor.Check{Name: "login", Status: doctor.Fail, Detail: s.auth.Method() + ": " + err.Error(), Hint: hintOf(err)})
		}
		return report()
	}
	checks = append(checks, doctor.Check{Name: "API", Status: doctor.OK, Detail: c.sess.API + " answers; TLS " + tlsWords(c.sess.API, s.skipSSL)})
	// go-cfclient logs in on the first request: make one
	if _, _, err := c.sess.CF.Organizations.List(ctx, &client.OrganizationListOptions{ListOptions: &client.ListOptions{PerPage: 1}}); err != nil {
		err = cfapi.Classify("log in", err)
		checks = append(checks, doctor.Check{Name: "login", Status: doctor.Fail, Detail: s.auth.Method() + ": " + err.Error(), Hint: cmp.Or(hintOf(err), "check the credentials")})
		return report()
	}
	checks = append(checks, doctor.Check{Name: "login", Status: doctor.OK, Detail: "logged in as " + c.sess.User + " with " + s.auth.Method()})
	tokenOpts := c.httpOpts
	if f.simCA != nil {
		tokenOpts.RootCAs = f.simCA
	}
	hc := cfapi.NewHTTPClient(tokenOpts)
	hc.Timeout = 10 * time.Second
	for _, ch := range doctor.Landscape(ctx, c.sess, doctor.Request{Org: s.org, Space: s.space, Offering: o.Offering, Plan: o.Plan, Broker: o.Broker, TokenHTTP: hc}) {
		if ch.Remedy.Action != remedy.None || ch.Remedy.Note != "" {
			ch.Hint = hintText(ch.Remedy)
		}
		checks = append(checks, ch)
	}
	return report()
}

// apiCheck words a failed connection: unreachable, untrusted, or a login
// that was refused.
func apiCheck(api string, err error) doctor.Check {
	if isAPIError(err) {
		return doctor.Check{Name: "API", Status: doctor.Fail, Detail: err.Error(), Hint: hintOf(err)}
	}
	return doctor.Check{Name: "API", Status: doctor.OK, Detail: api + " answers"}
}

func isAPIError(err error) bool {
	var h interface{ Hint() remedy.Remedy }
	if errors.As(err, &h) {
		a := h.Hint().Action
		return a == remedy.CheckAPI || a == remedy.TrustCA
	}
	return false
}

func tlsWords(api string, skip bool) string {
	switch {
	case strings.HasPrefix(api, "http://"):
		return "not used (plain http, loopback only)"
	case skip:
		return "not verified (--skip-ssl-validation)"
	}
	return "trusted"
}

func printChecks(f *Factory, checks []doctor.Check) {
	color := f.IO.stdoutTTY && colorOn(true, f.getenv)
	tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
	for _, c := range checks {
		st := strings.ToUpper(string(c.Status))
		switch c.Status {
		case doctor.OK:
			st = paint(color, "32;1", st)
		case doctor.Fail:
			st = paint(color, "31;1", st)
		case doctor.Note:
			st = paint(color, "33", st)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", st, c.Name, c.Detail)
		if c.Hint != "" {
			fmt.Fprintf(tw, "\t\thint: %s\n", c.Hint)
		}
	}
	_ = tw.Flush()
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// hintOf words an error's remedy ("" when it has none).
func hintOf(err error) string {
	if r, ok := remedy.Of(err); ok {
		return hintText(r)
	}
	return ""
}
