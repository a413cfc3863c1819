package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/cfsim"
)

// SimOptions are the inputs of `xsprov sim`.
type SimOptions struct {
	Addr          string
	CertAddr      string
	SeedFile      string
	StateFile     string
	Profile       string
	Async         string // "", "true", "false"
	CCPoll        time.Duration
	WorkerDelay   time.Duration
	BrokerDelay   time.Duration
	Delays        []string // op=duration
	TokenLifetime time.Duration
	PerPage       int
	RateLimit     string // N/window
	Flaky         float64
	Lost          float64
	SecondBroker  bool
	HidePlans     []string // plan=org/space
	FailNext      []string // op=message
	Deterministic bool
	Log           bool
	// Public lets the simulator listen beyond loopback (it serves
	// well-known passwords).
	Public bool
	// Retrievable lets parameters be read back (real BTP's xsuaa does not).
	Retrievable bool

	simOpts []cfsim.Option
	fails   [][2]string
	changed func(string) bool
}

func newSimCmd(f *Factory, runF func(context.Context, *SimOptions) error) *cobra.Command {
	opts := &SimOptions{}
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Serve the Cloud Foundry simulator (Cloud Controller v3, UAA, XSUAA broker)",
		Long: `Serve the simulator that xsprov's tests and the quick start use: the Cloud
Controller v3 API, the UAA token endpoint and the XSUAA broker, on loopback.
Point xsprov (--api URL) or the cf CLI (cf api URL) at it. Stop with Ctrl-C.

Seed: org acme (spaces dev, prod), org other (space dev), offering xsuaa with
plans application, broker, apiaccess, space; user admin / admin-secret; client
ci-client / ci-secret. --seed FILE (YAML or JSON) replaces it.`,
		Example: `  xsprov sim
  xsprov sim --profile async --cc-poll-interval 20s
  xsprov sim --profile instant --broker-delay 300ms --state /tmp/cf.json
  xsprov sim --rate-limit 100/1m --flaky 0.1 --fail-next create="quota exceeded"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.changed = cmd.Flags().Changed
			if err := opts.build(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return simRun(cmd.Context(), f, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Addr, "addr", "127.0.0.1:9022", "listen address")
	fl.StringVar(&opts.CertAddr, "cert-addr", "127.0.0.1:9023", "listen address of the mTLS endpoint for x509 keys (certurl); empty to disable")
	fl.StringVar(&opts.SeedFile, "seed", "", "seed file (YAML or JSON) replacing the default world")
	fl.StringVar(&opts.StateFile, "state", "", "keep the world in this JSON file (loaded at start, saved on every change)")
	fl.StringVar(&opts.Profile, "profile", "btp", "timing of the broker and the Cloud Controller: "+profileHelp())
	fl.StringVar(&opts.Async, "async", "", "true: the broker answers every operation asynchronously (the CC polls it); false: synchronously (default: the profile's)")
	fl.DurationVar(&opts.CCPoll, "cc-poll-interval", 60*time.Second, "how often the Cloud Controller polls an asynchronous broker (the CC's default; the btp profile uses 5s unless this is given)")
	fl.DurationVar(&opts.WorkerDelay, "worker-delay", 0, "the most the CC's worker adds to each broker poll (default: the profile's)")
	fl.DurationVar(&opts.BrokerDelay, "broker-delay", 0, "broker time of every operation (default: the profile's)")
	fl.StringArrayVar(&opts.Delays, "delay", nil, "broker time of one operation: OP=DURATION, OP one of "+strings.Join(cfsim.AllOps, ", ")+" (repeatable)")
	fl.DurationVar(&opts.TokenLifetime, "token-lifetime", 10*time.Minute, "access token lifetime")
	fl.IntVar(&opts.PerPage, "per-page", 50, "default page size of lists")
	fl.StringVar(&opts.RateLimit, "rate-limit", "", "N/WINDOW requests per user (e.g. 100/1m); more get 429")
	fl.Float64Var(&opts.Flaky, "flaky", 0, "fraction (0..1) of requests answered 502/503 by the gateway")
	fl.Float64Var(&opts.Lost, "lost-responses", 0, "fraction (0..1) of writes applied but never answered")
	fl.BoolVar(&opts.SecondBroker, "second-broker", false, "add a broker xsuaa-clone that also offers xsuaa")
	fl.StringArrayVar(&opts.HidePlans, "hide-plan", nil, "hide a plan from a space: PLAN=ORG/SPACE (repeatable)")
	fl.StringArrayVar(&opts.FailNext, "fail-next", nil, "fail the next broker operation: OP=MESSAGE (repeatable)")
	fl.BoolVar(&opts.Deterministic, "deterministic-ids", false, "sequential GUIDs and secrets")
	fl.BoolVar(&opts.Log, "log", false, "log every request on stderr")
	fl.BoolVar(&opts.Retrievable, "retrievable-parameters", false, "let instance and key parameters be read back (real SAP BTP's xsuaa does not: 400 120004 / 90007)")
	fl.BoolVar(&opts.Public, "public", false, "allow --addr and --cert-addr beyond loopback (the simulator serves well-known passwords)")
	return cmd
}

// build validates the flags into simulator options; problems are exit 2.
func (o *SimOptions) build() error {
	for flag, addr := range map[string]string{"--addr": o.Addr, "--cert-addr": o.CertAddr} {
		if addr == "" || o.Public {
			continue
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return flagErrorf("%s %s: %v", flag, addr, err)
		}
		if !cfapi.IsLoopback(host) {
			return flagErrorf("%s %s is not a loopback address; the simulator serves well-known passwords (allow it with --public)", flag, addr)
		}
	}
	if err := o.buildTiming(); err != nil {
		return err
	}
	o.simOpts = append(o.simOpts, cfsim.WithTokenLifetime(o.TokenLifetime))
	for _, d := range o.Delays {
		op, v, ok := strings.Cut(d, "=")
		dur, err := time.ParseDuration(v)
		if !ok || !slices.Contains(cfsim.AllOps, op) || err != nil || dur < 0 {
			return flagErrorf("--delay %q: want OP=DURATION with OP one of %s", d, strings.Join(cfsim.AllOps, ", "))
		}
		o.simOpts = append(o.simOpts, cfsim.WithOperationDelay(op, dur))
	}
	if o.TokenLifetime < time.Second {
		return flagErrorf("--token-lifetime must be at least 1s")
	}
	if o.PerPage < 1 || o.PerPage > 5000 {
		return flagErrorf("--per-page must be between 1 and 5000")
	}
	o.simOpts = append(o.simOpts, cfsim.WithDefaultPerPage(o.PerPage))
	if o.RateLimit != "" {
		n, w, ok := strings.Cut(o.RateLimit, "/")
		count, err1 := strconv.Atoi(n)
		win, err2 := time.ParseDuration(w)
		if !ok || err1 != nil || err2 != nil || count < 1 || win <= 0 {
			return flagErrorf("--rate-limit %q: want N/WINDOW, e.g. 100/1m", o.RateLimit)
		}
		o.simOpts = append(o.simOpts, cfsim.WithRateLimit(count, win))
	}
	for name, v := range map[string]float64{"--flaky": o.Flaky, "--lost-responses": o.Lost} {
		if v < 0 || v > 1 {
			return flagErrorf("%s must be between 0 and 1", name)
		}
	}
	if o.Flaky > 0 {
		o.simOpts = append(o.simOpts, cfsim.WithFlakyGateway(o.Flaky, time.Now().UnixNano()))
	}
	if o.Lost > 0 {
		o.simOpts = append(o.simOpts, cfsim.WithLostResponses(o.Lost))
	}
	if o.SecondBroker {
		o.simOpts = append(o.simOpts, cfsim.WithSecondBroker())
	}
	if o.Retrievable {
		o.simOpts = append(o.simOpts, cfsim.WithRetrievableParameters())
	}
	for _, h := range o.HidePlans {
		plan, space, ok := strings.Cut(h, "=")
		if !ok || plan == "" || !strings.Contains(space, "/") {
			return flagErrorf("--hide-plan %q: want PLAN=ORG/SPACE", h)
		}
		o.simOpts = append(o.simOpts, cfsim.WithHiddenPlan(plan, space))
	}
	for _, fn := range o.FailNext {
		op, msg, ok := strings.Cut(fn, "=")
		if !ok || !slices.Contains(cfsim.AllOps, op) || msg == "" {
			return flagErrorf("--fail-next %q: want OP=MESSAGE with OP one of %s", fn, strings.Join(cfsim.AllOps, ", "))
		}
		o.fails = append(o.fails, [2]string{op, msg})
	}
	if o.SeedFile != "" {
		b, err := os.ReadFile(o.SeedFile)
		if err != nil {
			return flagErrorf("--seed: %v", err)
		}
		var seed cfsim.Seed
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&seed); err != nil {
			return cfapi.Usagef("seed file %s: %v", o.SeedFile, err)
		}
		if len(seed.Orgs) == 0 || len(seed.Brokers) == 0 || (len(seed.Users) == 0 && len(seed.Clients) == 0) {
			return cfapi.Usagef("seed file %s: needs orgs, brokers and at least one user or client", o.SeedFile)
		}
		o.simOpts = append(o.simOpts, cfsim.WithSeed(seed))
	}
	if o.StateFile != "" {
		o.simOpts = append(o.simOpts, cfsim.WithStateFile(o.StateFile))
	}
	if o.Deterministic {
		o.simOpts = append(o.simOpts, cfsim.WithDeterministicIDs())
	}
	return nil
}

func profileHelp() string {
	var b strings.Builder
	for i, p := range cfsim.Profiles {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Name + " (" + p.Summary + ")")
	}
	return b.String()
}

// buildTiming turns --profile and the flags that refine it into options:
// the profile first, then each timing flag the user gave.
func (o *SimOptions) buildTiming() error {
	changed := o.changed
	if changed == nil {
		changed = func(string) bool { return false }
	}
	p, err := cfsim.LookupProfile(o.Profile)
	if err != nil {
		return flagErrorf("--profile: %v", err)
	}
	o.simOpts = append(o.simOpts, cfsim.WithProfile(p))
	switch o.Async {
	case "":
	case "true":
		o.simOpts = append(o.simOpts, cfsim.WithAsyncBroker())
	case "false":
		o.simOpts = append(o.simOpts, cfsim.WithSyncBroker())
	default:
		return flagErrorf("--async %q: want true or false", o.Async)
	}
	for name, d := range map[string]time.Duration{"--cc-poll-interval": o.CCPoll, "--worker-delay": o.WorkerDelay, "--broker-delay": o.BrokerDelay} {
		if d < 0 || (name == "--cc-poll-interval" && d == 0) {
			return flagErrorf("%s must be positive", name)
		}
	}
	if changed("cc-poll-interval") {
		o.simOpts = append(o.simOpts, cfsim.WithCCPollInterval(o.CCPoll))
	}
	if changed("worker-delay") {
		o.simOpts = append(o.simOpts, cfsim.WithWorkerDelay(o.WorkerDelay))
	}
	if changed("broker-delay") {
		o.simOpts = append(o.simOpts, cfsim.WithBrokerDelay(o.BrokerDelay))
	}
	return nil
}

func simRun(ctx context.Context, f *Factory, o *SimOptions) error {
	if o.Log {
		lg := log.New(f.IO.ErrOut, "cfsim: ", log.LstdFlags|log.Lmicroseconds)
		o.simOpts = append(o.simOpts, cfsim.WithLogf(lg.Printf))
	}
	sim, err := cfsim.New(o.simOpts...)
	if err != nil {
		return cfapi.Usagef("simulator: %v", err)
	}
	for _, fl := range o.fails {
		sim.FailNext(fl[0], fl[1])
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return flagErrorf("--addr %s: %v", o.Addr, err)
	}
	url := "http://" + ln.Addr().String()
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	var certBase string
	if o.CertAddr != "" {
		base, tlsSrv, _, err := serveMTLS(sim, o.CertAddr)
		if err != nil {
			ln.Close()
			return flagErrorf("--cert-addr %s: %v", o.CertAddr, err)
		}
		defer tlsSrv.Close()
		sim.SetCertURL(base)
		certBase = base
	}
	w := f.IO.Out
	fmt.Fprintf(w, "Cloud Foundry simulator listening on %s\n", url)
	fmt.Fprintf(w, "  API:     %s\n", url)
	user, password, clientID, clientSecret := sim.Login()
	org, space := sim.Target()
	if user != "" {
		fmt.Fprintf(w, "  user:    %s / %s   (cf api %s && cf auth %s %s)\n", user, password, url, user, password)
	}
	if clientID != "" {
		fmt.Fprintf(w, "  client:  %s / %s   (CF_CLIENT_ID=%s CF_CLIENT_SECRET=%s)\n", clientID, clientSecret, clientID, clientSecret)
	}
	fmt.Fprintf(w, "  target:  org %s, space %s\n", org, space)
	if p, err := cfsim.LookupProfile(o.Profile); err == nil {
		fmt.Fprintf(w, "  timing:  %s: %s (--profile)\n", p.Name, p.Summary)
	}
	if certBase != "" {
		fmt.Fprintf(w, "  mTLS:    %s (certurl of x509 keys; CA at %s/_sim/ca.pem)\n", certBase, url)
	}
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	if err := sim.Save(); err != nil {
		return err
	}
	fmt.Fprintln(f.IO.ErrOut, "Simulator stopped.")
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
