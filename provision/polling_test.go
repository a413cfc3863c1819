package provision_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/cfsim"
)

// jobWatch records, at the simulator, every GET of a job: when it came (on
// the shared fake clock) and what it answered.
type jobWatch struct {
	mu   sync.Mutex
	gets map[string][]jobGet
}

type jobGet struct {
	at    time.Time
	state string
}

func (w *jobWatch) wrap(clk *autoClock, h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/v3/jobs/") {
			h.ServeHTTP(rw, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var j struct{ State string }
		_ = json.Unmarshal(rec.Body.Bytes(), &j)
		w.mu.Lock()
		g := strings.TrimPrefix(r.URL.Path, "/v3/jobs/")
		w.gets[g] = append(w.gets[g], jobGet{clk.Now(), j.State})
		w.mu.Unlock()
		for k, vs := range rec.Header() {
			rw.Header()[k] = vs
		}
		rw.WriteHeader(rec.Code)
		_, _ = rw.Write(rec.Body.Bytes())
	})
}

// opCost is what waiting for one job cost: checks, lateness (from the job's
// end to the check that saw it) and the same for the cf CLI's schedule (a
// check at once, then every 3 s).
type opCost struct {
	op                   string
	checks, cfChecks     int
	late, cfLate, broker time.Duration
}

func (w *jobWatch) costs(t *testing.T, sim *cfsim.Sim) []opCost {
	t.Helper()
	st := sim.Snapshot()
	var out []opCost
	for g, gets := range w.gets {
		j := st.Jobs[g]
		if j == nil || j.State != "COMPLETE" {
			t.Fatalf("job %s: %v", g, j)
		}
		end := j.Updated
		first := gets[0].at // the first check comes right after the 202
		seen := gets[len(gets)-1]
		if seen.state != "COMPLETE" {
			t.Fatalf("job %s: the last check saw %s", g, seen.state)
		}
		took := end.Sub(first)
		cf := int(took/(3*time.Second)) + 1
		if took%(3*time.Second) != 0 {
			cf++
		}
		cfSeen := first.Add(time.Duration(cf-1) * 3 * time.Second)
		out = append(out, opCost{op: j.Operation, checks: len(gets), cfChecks: cf, late: seen.at.Sub(end), cfLate: cfSeen.Sub(end), broker: took})
	}
	return out
}

// TestWaitingFitsTheState counts, with a fake clock, the job requests and the
// lateness of one `up` (a create and a key) on each broker profile, beside
// what the cf CLI's schedule costs on the same jobs: fast while the CC works
// (a synchronous broker answers there), polite while it polls an
// asynchronous broker.
func TestWaitingFitsTheState(t *testing.T) {
	btp, _ := cfsim.LookupProfile("btp")
	type target struct {
		maxLate time.Duration
		// most checks per operation as a share of the cf CLI's (1 = as many)
		share float64
	}
	cases := []struct {
		name string
		opts []cfsim.Option
		want target
	}{
		{"sync 300ms", []cfsim.Option{cfsim.WithBrokerDelay(300 * time.Millisecond)}, target{25 * time.Millisecond, 0}},
		{"btp", []cfsim.Option{cfsim.WithProfile(btp)}, target{time.Second, 1}},
		{"async 20s, CC every 60s", []cfsim.Option{cfsim.WithAsyncBroker(), cfsim.WithBrokerDelay(20 * time.Second), cfsim.WithWorkerDelay(500 * time.Millisecond)}, target{2 * time.Second, 0.5}},
		{"async 60s, CC every 60s", []cfsim.Option{cfsim.WithAsyncBroker(), cfsim.WithBrokerDelay(60 * time.Second), cfsim.WithWorkerDelay(500 * time.Millisecond)}, target{2 * time.Second, 0.5}},
	}
	for _, cadence := range []time.Duration{5, 7, 10, 15, 25, 45, 60} {
		for _, broker := range []time.Duration{3, 12, 40} {
			cases = append(cases, struct {
				name string
				opts []cfsim.Option
				want target
			}{fmt.Sprintf("async %ds, CC every %ds", broker, cadence), []cfsim.Option{cfsim.WithAsyncBroker(), cfsim.WithBrokerDelay(broker * time.Second),
				cfsim.WithCCPollInterval(cadence * time.Second), cfsim.WithWorkerDelay(500 * time.Millisecond)}, target{10 * time.Second, 1}})
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newAutoClock()
			sim := cfsim.MustNew(append([]cfsim.Option{cfsim.WithClock(clk.Now)}, tc.opts...)...)
			w := &jobWatch{gets: map[string][]jobGet{}}
			srv := httptest.NewServer(w.wrap(clk, sim))
			defer srv.Close()
			e := &env{sim: sim, srv: srv, dir: t.TempDir()}
			s, err := cfapi.Connect(context.Background(), srv.URL, ciAuth, cfapi.NewHTTPClient(cfapi.HTTPOptions{Clock: clk}), cfapi.Options{Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := provision.New(s).Up(context.Background(), e.upReq(t, "w", nil)); err != nil {
				t.Fatal(err)
			}
			costs := w.costs(t, sim)
			if len(costs) != 2 {
				t.Fatalf("%d jobs, want 2", len(costs))
			}
			checks, cfChecks := 0, 0
			for _, c := range costs {
				t.Logf("%s: broker end +%v, %d checks, %v late; cf CLI: %d checks, %v late", c.op, c.broker, c.checks, c.late, c.cfChecks, c.cfLate)
				if c.late > tc.want.maxLate {
					t.Errorf("%s: seen %v after it ended, want at most %v", c.op, c.late, tc.want.maxLate)
				}
				checks += c.checks
				cfChecks += c.cfChecks
			}
			if tc.want.share > 0 && float64(checks) > tc.want.share*float64(cfChecks) {
				t.Errorf("%d job requests for the two operations, the cf CLI %d: want at most %.1f× of it", checks, cfChecks, tc.want.share)
			}
		})
	}
}
