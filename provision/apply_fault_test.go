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
