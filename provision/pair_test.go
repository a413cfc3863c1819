package provision_test

import (
	"context"
	"testing"
	"time"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/apply"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/cfsim"
	"github.com/xsprov/xsprov/provision/spec"
)

// TestPairIsAppliedInOrder: an IAS instance joined to an XSUAA instance
// (xsuaa-cross-consumption) and consuming another IAS instance is created
// only after both ended, even with workers to spare and a slow broker.
func TestPairIsAppliedInOrder(t *testing.T) {
	e := newFaultEnv(t, cfsim.WithOperationDelay(cfsim.OpCreate, 30*time.Second), cfsim.WithCCPollInterval(10*time.Second))
	p := e.provisioner(t)
	runner := apply.New(p.Session(), nil, func(s *cfapi.Session, r provision.Reporter, labels map[string]string) apply.Engine {
		return provision.New(s, provision.WithReporter(r), provision.WithLabels(labels))
	})
	sp, err := spec.Parse(e.dir+"/spec.yaml", []byte(`apiVersion: xsprov/v1
metadata: {name: pair}
defaults: {space: dev}
instances:
  - name: app-ias
    offering: identity
    parameters: {xsuaa-cross-consumption: true, consumed-services: [{service-instance-name: api-ias}]}
  - {name: app, parameters: {xsappname: app}}
  - {name: api-ias, offering: identity, template: ias-api}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := runner.Apply(context.Background(), sp, apply.Options{Org: "acme", Parallel: 8})
	if err != nil || res.Failed != 0 {
		t.Fatalf("apply: %v, %d failed: %+v", err, res.Failed, res.Changes)
	}
	if len(res.Pairs) != 1 || res.Pairs[0].IAS != "instance dev/app-ias" || res.Pairs[0].XSUAA != "instance dev/app" {
		t.Errorf("pairs %+v", res.Pairs)
	}
	created := map[string]cfsim.JobStat{}
	for _, j := range e.sim.JobStats() {
		if j.Operation == "service_instance.create" {
			created[j.Name] = j
		}
	}
	app, api, ias := created["app"], created["api-ias"], created["app-ias"]
	if app.Ended == nil || api.Ended == nil || ias.Ended == nil {
		t.Fatalf("create jobs: %+v", created)
	}
	for name, dep := range map[string]cfsim.JobStat{"app": app, "api-ias": api} {
		if ias.Created.Before(*dep.Ended) {
			t.Errorf("app-ias was created at %s, before %s ended at %s", ias.Created, name, dep.Ended)
		}
	}
	if api.Created.After(*app.Ended) {
		t.Errorf("api-ias waited for app, which it does not depend on")
	}
}
