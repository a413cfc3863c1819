package provision_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/apply"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/cfsim"
	"github.com/xsprov/xsprov/provision/spec"
)

// TestApplyParallelAcrossTokenExpiry applies instances in parallel while the
// broker takes far longer than a token lives: concurrent items hit 401 and
// re-authenticate at the same time.
func TestApplyParallelAcrossTokenExpiry(t *testing.T) {
	e := newFaultEnv(t, cfsim.WithBrokerDelay(20*time.Minute), cfsim.WithTokenLifetime(5*time.Minute))
	e.clk.pace = 2000 // 3 s of polling interval take 1.5 ms
	p := e.provisioner(t)
	runner := apply.New(p.Session(), nil, func(s *cfapi.Session, r provision.Reporter, labels map[string]string) apply.Engine {
		return provision.New(s, provision.WithReporter(r), provision.WithLabels(labels))
	})
	var b strings.Builder
	b.WriteString("apiVersion: xsprov/v1\nmetadata: {name: expiry}\ninstances:\n")
	for i := 0; i < 8; i++ {
		fmt.Fprintf(&b, "  - {name: t%d, space: dev, parameters: {xsappname: t%d}, keys: [{name: t%d-key}]}\n", i, i, i)
	}
	sp, err := spec.Parse(e.dir+"/spec.yaml", []byte(b.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := runner.Apply(context.Background(), sp, apply.Options{Org: "acme", Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 0 {
		for _, c := range res.Changes {
			if c.Result == "failed" {
				t.Errorf("%s: %s", c.Address, c.Error)
			}
		}
	}
	st := e.sim.Snapshot()
	if len(st.Instances) != 8 || len(st.Keys) != 8 {
		t.Errorf("%d instances, %d keys; want 8 and 8", len(st.Instances), len(st.Keys))
	}
	if n := e.sim.Counts().ByCall["POST /uaa/oauth/token"]; n < 2 {
		t.Errorf("%d token requests: no token expired during the run", n)
	}
}

// TestApplySharesOneRequestBudget: parallel workers against the rate
// limiter share one budget. They slow down before the limit and a 429 pauses
// all of them once, so the run ends with everything done and few 429s. Each
// worker waiting out its own 429s saw many more.
func TestApplySharesOneRequestBudget(t *testing.T) {
	clk := newAutoClock()
	clk.pace = 2000
	sim := cfsim.MustNew(cfsim.WithClock(clk.Now), cfsim.WithBrokerDelay(2*time.Second), cfsim.WithRateLimit(40, time.Minute))
	runner, tooMany := countingRunner(t, clk, sim)
	var b strings.Builder
	b.WriteString("apiVersion: xsprov/v1\nmetadata: {name: budget}\ninstances:\n")
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&b, "  - {name: b%d, space: dev, keys: [{name: b%d-key}]}\n", i, i)
	}
	sp, err := spec.Parse(t.TempDir()+"/spec.yaml", []byte(b.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := runner.Apply(context.Background(), sp, apply.Options{Org: "acme", Parallel: 4})
	if err != nil || res.Failed != 0 {
		t.Fatalf("apply under the rate limit: %v, %d failed", err, res.Failed)
	}
	if n := len(sim.Snapshot().Instances); n != 12 {
		t.Errorf("%d instances, want 12", n)
	}
	t.Logf("429 answers: %d", tooMany.Load())
	if n := tooMany.Load(); n > 4 {
		t.Errorf("%d answers were 429: the workers ran into the limit instead of sharing one budget", n)
	}
}
