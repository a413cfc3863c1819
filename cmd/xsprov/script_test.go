package main

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/xsprov/xsprov/provision/cfsim"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"xsprov": func() { os.Exit(Main(os.Args[1:], System(), os.Getenv)) },
	})
}

// simulators holds the simulator of each running script, by work dir.
var simulators sync.Map

type scriptSim struct {
	sim *cfsim.Sim
	srv *httptest.Server
}

func startScriptSim(ts *testscript.TestScript, mtls bool, opts ...cfsim.Option) {
	if old, ok := simulators.Load(ts.Getenv("WORK")); ok {
		old.(*scriptSim).srv.Close()
	}
	sim := cfsim.MustNew(opts...)
	srv := httptest.NewServer(sim)
	simulators.Store(ts.Getenv("WORK"), &scriptSim{sim: sim, srv: srv})
	ts.Setenv("CF_API", srv.URL)
	ts.Defer(srv.Close)
	if mtls {
		// the mTLS listener for x509 keys; its CA goes to $WORK/ca.pem
		cfg, err := sim.TLSConfig("127.0.0.1")
		ts.Check(err)
		tlsSrv := httptest.NewUnstartedServer(sim)
		tlsSrv.TLS = cfg
		tlsSrv.StartTLS()
		ts.Defer(tlsSrv.Close)
		sim.SetCertURL(tlsSrv.URL)
		ca, err := sim.CACertPEM()
		ts.Check(err)
		ts.Check(os.WriteFile(ts.MkAbs("ca.pem"), []byte(ca), 0o600))
	}
}

func scriptSimOf(ts *testscript.TestScript) *cfsim.Sim {
	v, ok := simulators.Load(ts.Getenv("WORK"))
	if !ok {
		ts.Fatalf("no simulator running")
	}
	return v.(*scriptSim).sim
}

// TestScripts runs the end-to-end scripts in testdata/script against a
// simulator started in the test process; xsprov runs as a real subprocess.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("CF_CLIENT_ID", cfsim.CIClientID)
			env.Setenv("CF_CLIENT_SECRET", cfsim.CIClientSecret)
			env.Setenv("CF_ORG", "acme")
			env.Setenv("CF_SPACE", "dev")
			env.Setenv("XSPROV_SIM_STATE", filepath.Join(env.WorkDir, ".sim", "state.json"))
			// rc runs a command and appends its exit status to stderr, so a
			// script can assert the exact exit code.
			bin := filepath.Join(env.WorkDir, ".bin")
			if err := os.MkdirAll(bin, 0o755); err != nil {
				return err
			}
			env.Setenv("PATH", bin+string(os.PathListSeparator)+env.Getenv("PATH"))
			return os.WriteFile(filepath.Join(bin, "rc"), []byte("#!/bin/sh\n\"$@\"\necho \"[exit $?]\" >&2\n"), 0o755)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// cfsim [flags]: (re)start the simulator with options.
			"cfsim": func(ts *testscript.TestScript, neg bool, args []string) {
				var opts []cfsim.Option
				mtls := false
				for i := 0; i < len(args); i++ {
					switch a := args[i]; a {
					case "--mtls":
						mtls = true
					case "--token-lifetime":
						i++
						d, err := time.ParseDuration(args[i])
						ts.Check(err)
						opts = append(opts, cfsim.WithTokenLifetime(d))
					case "--broker-delay":
						i++
						d, err := time.ParseDuration(args[i])
						ts.Check(err)
						opts = append(opts, cfsim.WithBrokerDelay(d))
					case "--profile":
						i++
						p, err := cfsim.LookupProfile(args[i])
						ts.Check(err)
						opts = append(opts, cfsim.WithProfile(p))
					case "--async":
						opts = append(opts, cfsim.WithAsyncBroker())
					case "--cc-poll-interval":
						i++
						d, err := time.ParseDuration(args[i])
						ts.Check(err)
						opts = append(opts, cfsim.WithCCPollInterval(d))
					case "--second-broker":
						opts = append(opts, cfsim.WithSecondBroker())
					case "--hide-plan":
						i++
						plan, space, _ := strings.Cut(args[i], "=")
						opts = append(opts, cfsim.WithHiddenPlan(plan, space))
					case "--per-page":
						i++
						n, err := strconv.Atoi(args[i])
						ts.Check(err)
						opts = append(opts, cfsim.WithDefaultPerPage(n))
					case "--rate-limit":
						i++
						n, err := strconv.Atoi(args[i])
						ts.Check(err)
						opts = append(opts, cfsim.WithRateLimit(n, time.Second))
					default:
						ts.Fatalf("cfsim: unknown option %s", a)
					}
				}
				startScriptSim(ts, mtls, opts...)
			},
			// fail-next OP MESSAGE: the next broker operation fails.
			"cfcreate": cfCreate,
			"cfkeys":   cfKeys,
			"fail-next": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 2 {
					ts.Fatalf("usage: fail-next OP MESSAGE")
				}
				scriptSimOf(ts).FailNext(args[0], args[1])
			},
			// simcount instances|keys N: the simulator holds N of them.
			"simcount": func(ts *testscript.TestScript, neg bool, args []string) {
				st := scriptSimOf(ts).Snapshot()
				n := map[string]int{"instances": len(st.Instances), "keys": len(st.Keys), "spaces": len(st.Spaces), "roles": len(st.Roles)}[args[0]]
				want, _ := strconv.Atoi(args[1])
				if (n == want) == neg {
					ts.Fatalf("simulator holds %d %s, want %d", n, args[0], want)
				}
			},
			// requests reset | requests max N [writes M]: count what reached the simulator.
			"requests": func(ts *testscript.TestScript, neg bool, args []string) {
				sim := scriptSimOf(ts)
				if args[0] == "reset" {
					sim.ResetCounts()
					return
				}
				c := sim.Counts()
				max, _ := strconv.Atoi(args[1])
				if int(c.Total) > max {
					ts.Fatalf("%d requests reached the simulator, want at most %d: %v", c.Total, max, c.ByCall)
				}
				if len(args) == 4 {
					w, _ := strconv.Atoi(args[3])
					if int(c.Writes) != w {
						ts.Fatalf("%d writes, want %d: %v", c.Writes, w, c.ByCall)
					}
				}
			},
			// calls 'METHOD PATTERN' N: the simulator served that call N times.
			"calls": func(ts *testscript.TestScript, neg bool, args []string) {
				want, _ := strconv.Atoi(args[1])
				if got := int(scriptSimOf(ts).Counts().ByCall[args[0]]); (got == want) == neg {
					ts.Fatalf("%s served %d times, want %d", args[0], got, want)
				}
			},
			// age FILE DURATION: set the file's modification time that far back.
			"age": func(ts *testscript.TestScript, neg bool, args []string) {
				d, err := time.ParseDuration(args[1])
				ts.Check(err)
				at := time.Now().Add(-d)
				ts.Check(os.Chtimes(ts.MkAbs(args[0]), at, at))
			},
			// mode FILE PERM: the file has that permission (e.g. 0600).
			"mode": func(ts *testscript.TestScript, neg bool, args []string) {
				fi, err := os.Stat(ts.MkAbs(args[0]))
				ts.Check(err)
				if got := fmt.Sprintf("%04o", fi.Mode().Perm()); got != args[1] {
					ts.Fatalf("%s has mode %s, want %s", args[0], got, args[1])
				}
			},
			// jsonfield FILE KEY VALUE: a top-level JSON string or a
			// dotted path equals VALUE (or, with !, differs).
			"jsonfield": func(ts *testscript.TestScript, neg bool, args []string) {
				var v any
				ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &v))
				for _, k := range strings.Split(args[1], ".") {
					m, _ := v.(map[string]any)
					v = m[k]
				}
				got := fmt.Sprint(v)
				if (got == args[2]) == neg {
					ts.Fatalf("%s: %s = %q, want %s%q", args[0], args[1], got, map[bool]string{true: "not ", false: ""}[neg], args[2])
				}
			},
		},
	})
}
