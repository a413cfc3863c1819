package provision_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/apply"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/cfsim"
	"github.com/xsprov/xsprov/provision/spec"
)

// scaledClock runs k times faster than the wall clock, for the simulator and
// the client alike, so that a run of minutes on a real Cloud Controller's
// schedule takes seconds while every goroutine sees one consistent time.
type scaledClock struct {
	base, real0 time.Time
	k           float64
}

func newScaledClock(k float64) *scaledClock {
	return &scaledClock{base: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), real0: time.Now(), k: k}
}

func (c *scaledClock) Now() time.Time {
	return c.base.Add(time.Duration(float64(time.Since(c.real0)) * c.k))
}

func (c *scaledClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	time.AfterFunc(time.Duration(float64(d)/c.k), func() { ch <- c.Now() })
	return ch
}

// fleetRun applies n instances with one key each against sim and returns
// the result, the Cloud Controller requests it took, the answers of 429
// among them, and the time it took on the simulator's clock.
func fleetRun(t *testing.T, clk *scaledClock, sim *cfsim.Sim, n, parallel int) (*apply.Result, cfsim.Counts, int64, time.Duration) {
	t.Helper()
	runner, tooMany := countingRunner(t, clk, sim)
	var b strings.Builder
	b.WriteString("apiVersion: xsprov/v1\nmetadata: {name: fleet}\ninstances:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - {name: f%03d, space: dev, keys: [{name: f%03d-key}]}\n", i, i)
	}
	sp, err := spec.Parse(t.TempDir()+"/spec.yaml", []byte(b.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	sim.ResetCounts()
	start := clk.Now()
	res, err := runner.Apply(context.Background(), sp, apply.Options{Org: "acme", Parallel: parallel})
	took := clk.Now().Sub(start)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Changes {
		if c.Result == "failed" {
			t.Errorf("%s: %s", c.Address, c.Error)
		}
	}
	if got := len(sim.Snapshot().Instances); got != n {
		t.Errorf("%d instances, want %d", got, n)
	}
	return res, sim.Counts(), tooMany.Load(), took
}

// countingRunner is an apply runner on clk against sim, through a server
// that counts the answers of 429.
func countingRunner(t *testing.T, clk cfapi.Clock, sim *cfsim.Sim) (*apply.Runner, *atomic.Int64) {
	t.Helper()
	tooMany := new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, r)
		if rec.Code == http.StatusTooManyRequests {
			tooMany.Add(1)
		}
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	hc := cfapi.NewHTTPClient(cfapi.HTTPOptions{Clock: clk, MaxRetries: 50})
	s, err := cfapi.Connect(context.Background(), srv.URL, ciAuth, hc, cfapi.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return apply.New(s, nil, func(s *cfapi.Session, r provision.Reporter, labels map[string]string) apply.Engine {
		return provision.New(s, provision.WithReporter(r), provision.WithLabels(labels))
	}), tooMany
}

// TestFleetWatchingCountsRequests: an apply of 100 instances with a key each
// on an asynchronous broker at the CC's default 60 s cadence watches every
// operation in flight with list requests: at most 400 Cloud Controller
// requests in all (waiting on jobs took about 2 × 100 × 8). Its wall time
// (within 1.2 × the broker's bound) is measured by scripts/bench, not here:
// the scaled clock turns the machine's load into simulated lateness.
func TestFleetWatchingCountsRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 2 minutes of simulated time in about 5 s")
	}
	clk := newScaledClock(25)
	sim := cfsim.MustNew(cfsim.WithClock(clk.Now), cfsim.WithAsyncBroker(), cfsim.WithBrokerDelay(20*time.Second),
		cfsim.WithWorkerDelay(500*time.Millisecond))
	_, c, _, took := fleetRun(t, clk, sim, 100, 100)
	cc := c.Total - c.ByCall["POST /uaa/oauth/token"]
	t.Logf("%d Cloud Controller requests, %d writes, %v: %v", cc, c.Writes, took, c.ByCall)
	if cc > 400 {
		t.Errorf("%d Cloud Controller requests, want at most 400", cc)
	}
	if jobs := c.ByCall["GET /v3/jobs/:guid"]; jobs > 0 {
		t.Errorf("%d job requests: the fleet should watch with lists", jobs)
	}
	// A no-change re-run reads the org, its spaces, the instances and their
	// keys in a few lists, and nothing per instance.
	_, c, _, _ = fleetRun(t, clk, sim, 100, 100)
	if cc := c.Total - c.ByCall["POST /uaa/oauth/token"]; cc > 10 || c.Writes != 0 {
		t.Errorf("no-change re-run: %d Cloud Controller requests, %d writes; want at most 10 and 0: %v", cc, c.Writes, c.ByCall)
	}
}

// TestFleetUnderRateLimit: the same 100 against a rate limit of 300
// requests per minute end with everything done.
func TestFleetUnderRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs minutes of simulated time")
	}
	clk := newScaledClock(25)
	sim := cfsim.MustNew(cfsim.WithClock(clk.Now), cfsim.WithAsyncBroker(), cfsim.WithBrokerDelay(20*time.Second),
		cfsim.WithWorkerDelay(500*time.Millisecond), cfsim.WithRateLimit(300, time.Minute))
	res, c, tooMany, took := fleetRun(t, clk, sim, 100, 100)
	t.Logf("%d requests, %d answered 429, %v", c.Total, tooMany, took)
	if res.Failed != 0 {
		t.Errorf("%d failed", res.Failed)
	}
}
