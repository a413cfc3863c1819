package provision_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/apply"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/cfsim"
	"github.com/xsprov/xsprov/provision/remedy"
	"github.com/xsprov/xsprov/provision/spec"
	"github.com/xsprov/xsprov/provision/xssec"
	"github.com/xsprov/xsprov/provision/xsuaa"
)

// newEnvWrapped is newEnv with a handler in front of the simulator.
func newEnvWrapped(t *testing.T, wrap func(sim http.Handler) http.Handler) *env {
	t.Helper()
	sim := cfsim.MustNew()
	srv := httptest.NewServer(wrap(sim))
	t.Cleanup(srv.Close)
	return &env{sim: sim, srv: srv, dir: t.TempDir()}
}

// loseAnswer serves the request (it takes effect) and then drops the
// connection instead of answering, as a gateway that fails after the fact.
func loseAnswer(sim http.Handler, w http.ResponseWriter, r *http.Request) {
	sim.ServeHTTP(httptest.NewRecorder(), r)
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
		}
	}
}

func isPost(r *http.Request, path string) bool {
	return r.Method == http.MethodPost && r.URL.Path == path
}

// TestRotateAfterALostAnswerUsesItsOwnKey: the answer to creating the new
// key is lost; rotate finds the key its own request made and finishes,
// instead of blaming a concurrent run and leaving the key behind.
func TestRotateAfterALostAnswerUsesItsOwnKey(t *testing.T) {
	var lose atomic.Bool
	e := newEnvWrapped(t, func(sim http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isPost(r, "/v3/service_credential_bindings") && lose.CompareAndSwap(true, false) {
				loseAnswer(sim, w, r)
				return
			}
			sim.ServeHTTP(w, r)
		})
	})
	p := e.connect(t, ciAuth)
	req := e.upReq(t, "rot", nil)
	if _, err := p.Up(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	lose.Store(true)
	res, err := p.Rotate(context.Background(), provision.RotateRequest{Ref: req.Ref, Out: req.Out})
	if err != nil {
		t.Fatalf("rotate after a lost answer: %v", err)
	}
	if lose.Load() {
		t.Fatal("the create's answer was not lost: the test did not test anything")
	}
	st := e.sim.Snapshot()
	for _, k := range st.Keys {
		if k.Name != res.NewKey.Name {
			t.Errorf("key %q is left after the rotation to %q", k.Name, res.NewKey.Name)
		}
	}
	if len(st.Keys) != 1 {
		t.Errorf("%d keys after the rotation, want 1", len(st.Keys))
	}
}

// TestLostAnswersAreNotBlamedOnAnotherRun: every create's answer is lost
// before it reaches the Cloud Controller; the error says so, not that
// another run is at work.
func TestLostAnswersAreNotBlamedOnAnotherRun(t *testing.T) {
	e := newEnvWrapped(t, func(sim http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isPost(r, "/v3/service_instances") {
				w.WriteHeader(http.StatusBadGateway) // a gateway that never passes it on
				return
			}
			sim.ServeHTTP(w, r)
		})
	})
	_, err := e.connect(t, ciAuth).Up(context.Background(), e.upReq(t, "lost", nil))
	if err == nil || strings.Contains(err.Error(), "another run") || !strings.Contains(err.Error(), "lost") {
		t.Errorf("err = %v", err)
	}
}

// TestRotateSaysWhenABrokenNewKeyCouldNotBeDeleted: the new key's
// credentials are refused and deleting it fails; rotate must not claim the
// key was deleted, and names it for cleaning up.
func TestRotateSaysWhenABrokenNewKeyCouldNotBeDeleted(t *testing.T) {
	var broken atomic.Bool
	e := newEnvWrapped(t, func(sim http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if broken.Load() && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/oauth/token") && strings.HasPrefix(r.URL.Path, "/xsuaa/") {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"Bad credentials"}`))
				return
			}
			if broken.Load() && r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/v3/service_credential_bindings/") {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnprocessableEntity)
				_, _ = w.Write([]byte(`{"errors":[{"code":10008,"title":"CF-UnprocessableEntity","detail":"The request could not be processed."}]}`))
				return
			}
			sim.ServeHTTP(w, r)
		})
	})
	p := provision.New(e.connect(t, ciAuth).Session(), provision.WithVerify(true, xsuaa.Options{}))
	req := e.upReq(t, "brk", nil)
	if _, err := p.Up(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	broken.Store(true)
	_, err := p.Rotate(context.Background(), provision.RotateRequest{Ref: req.Ref, Out: req.Out})
	if err == nil || strings.Contains(err.Error(), "deleted again") || !strings.Contains(err.Error(), "deleting it failed") {
		t.Fatalf("err = %v", err)
	}
	r, _ := remedy.Of(err)
	if r.Action != remedy.DeleteKeys || len(r.Names) != 1 || !strings.HasPrefix(r.Names[0], "brk-key--r") {
		t.Errorf("remedy = %+v", r)
	}
}

// legacyInstance creates an instance as the cf CLI does (`cf create-service
// … -c xs-security.json`): a full descriptor and no record of xsprov's.
func legacyInstance(t *testing.T, p *provision.Provisioner, name string) {
	t.Helper()
	s := p.Session()
	ctx := context.Background()
	tg, err := s.ResolveTarget(ctx, "acme", "dev")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := s.ResolvePlan(ctx, tg, "xsuaa", "application", "")
	if err != nil {
		t.Fatal(err)
	}
	raw := json.RawMessage(`{"xsappname":"legacy-app","tenant-mode":"dedicated",
		"scopes":[{"name":"$XSAPPNAME.Read"},{"name":"$XSAPPNAME.Write"}],
		"role-templates":[{"name":"Viewer","scope-references":["$XSAPPNAME.Read"]}]}`)
	job, err := s.CF.ServiceInstances.CreateManaged(ctx, &resource.ServiceInstanceManagedCreate{Type: "managed", Name: name, Parameters: &raw,
		Relationships: resource.ServiceInstanceRelationships{
			Space:       &resource.ToOneRelationship{Data: &resource.Relationship{GUID: tg.SpaceGUID}},
			ServicePlan: &resource.ToOneRelationship{Data: &resource.Relationship{GUID: plan.GUID}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WaitJob(ctx, job, "create", nil); err != nil {
		t.Fatal(err)
	}
}

func legacyParams(t *testing.T, e *env) map[string]any {
	for _, i := range e.sim.Snapshot().Instances {
		return i.Params
	}
	t.Fatal("no instance")
	return nil
}

// TestLegacyInstanceKeepsItsDescriptor: `up legacy --xsappname legacy-app`
// on an instance made by the cf CLI with scopes and role templates changes
// nothing on it (it replaced them with defaults before); where the offering
// hides parameters (real BTP) the single field is refused, and a plain `up`
// just gives credentials.
func TestLegacyInstanceKeepsItsDescriptor(t *testing.T) {
	for _, readable := range []bool{true, false} {
		opts := []cfsim.Option{cfsim.WithRetrievableParameters()}
		if !readable {
			opts = append(opts, cfsim.WithoutRetrievableParameters())
		}
		e := newEnv(t, opts...)
		p := e.connect(t, ciAuth)
		legacyInstance(t, p, "legacy")
		e.sim.ResetCounts()
		req := e.upReq(t, "legacy", nil)
		req.Params, req.XSAppNameGiven = nil, false
		req.Overrides = xssec.Overrides{XSAppName: "legacy-app"}
		res, err := p.Up(context.Background(), req)
		writes := e.sim.Counts().ByCall["PATCH /v3/service_instances/:guid"]
		switch {
		case readable && (err != nil || res.Instance.Action != provision.Unchanged || writes != 0):
			t.Errorf("readable: %v, %d instance writes", err, writes)
		case !readable:
			var usage interface{ Usage() bool }
			if !errors.As(err, &usage) || !strings.Contains(err.Error(), "cannot be merged") || writes != 0 {
				t.Errorf("hidden parameters, a single field: err = %v, %d instance writes", err, writes)
			}
		}
		if d := legacyParams(t, e); d["scopes"] == nil || d["role-templates"] == nil {
			t.Errorf("readable=%v: the scopes or role templates are gone: %v", readable, d)
		}
		// No parameter flags: credentials for the instance, nothing else.
		req.Overrides = xssec.Overrides{}
		e.sim.ResetCounts()
		if res, err = p.Up(context.Background(), req); err != nil || res.Instance.Action != provision.Unchanged ||
			e.sim.Counts().ByCall["PATCH /v3/service_instances/:guid"] != 0 {
			t.Errorf("readable=%v, no flags: %v, counts %v", readable, err, e.sim.Counts().ByCall)
		}
	}
}

// TestRemovalNeedsConsent: a whole descriptor that drops the role templates
// is shown and needs a yes; declined, nothing is sent. Replacing a descriptor
// that cannot be read needs one too.
func TestRemovalNeedsConsent(t *testing.T) {
	for _, readable := range []bool{true, false} {
		opts := []cfsim.Option{cfsim.WithRetrievableParameters()}
		if !readable {
			opts = append(opts, cfsim.WithoutRetrievableParameters())
		}
		e := newEnv(t, opts...)
		legacyInstance(t, e.connect(t, ciAuth), "legacy")
		var asked []provision.Consent
		answer := false
		p := provision.New(e.connect(t, ciAuth).Session(), provision.WithConsent(func(c provision.Consent) bool {
			asked = append(asked, c)
			return answer
		}))
		req := e.upReq(t, "legacy", map[string]any{"xsappname": "legacy-app", "tenant-mode": "dedicated",
			"scopes": []any{map[string]any{"name": "$XSAPPNAME.Read"}, map[string]any{"name": "$XSAPPNAME.Write"}}})
		e.sim.ResetCounts()
		_, err := p.Up(context.Background(), req)
		if len(asked) != 1 || asked[0].Blind == readable || err == nil || e.sim.Counts().ByCall["PATCH /v3/service_instances/:guid"] != 0 {
			t.Fatalf("readable=%v: asked %+v, err %v, counts %v", readable, asked, err, e.sim.Counts().ByCall)
		}
		if d := legacyParams(t, e); d["role-templates"] == nil {
			t.Errorf("readable=%v: declined, yet the role templates are gone", readable)
		}
		answer = true
		if res, err := p.Up(context.Background(), req); err != nil || res.Instance.Action != provision.Updated {
			t.Errorf("readable=%v, consented: %v", readable, err)
		}
		if d := legacyParams(t, e); d["role-templates"] != nil {
			t.Errorf("readable=%v: consented, yet the role templates remain", readable)
		}
	}
}

// TestCCWithoutIncluded: a Cloud Controller that answers include=… without
// "included" (status panicked on it) still gets up, status, down and apply
// through: what is missing is fetched.
func TestCCWithoutIncluded(t *testing.T) {
	e := newEnv(t, cfsim.WithoutIncluded())
	p := e.connect(t, ciAuth)
	req := e.upReq(t, "noinc", nil)
	if _, err := p.Up(context.Background(), req); err != nil {
		t.Fatalf("up: %v", err)
	}
	st, err := p.Status(context.Background(), provision.StatusRequest{Ref: req.Ref})
	if err != nil || st.Instance == nil || st.Instance.Offering != "xsuaa" || st.Instance.Plan != "application" {
		t.Fatalf("status: %v %+v", err, st)
	}
	sp, err := spec.Parse(e.dir+"/s.yaml", []byte("apiVersion: xsprov/v1\nmetadata: {name: s}\nspaces:\n  - {name: dev, roles: [{user: admin, role: developer}]}\ninstances:\n  - {name: s1, space: dev}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	runner := apply.New(p.Session(), nil, func(s *cfapi.Session, r provision.Reporter, labels map[string]string) apply.Engine {
		return provision.New(s, provision.WithReporter(r), provision.WithLabels(labels))
	})
	res, err := runner.Apply(context.Background(), sp, apply.Options{Org: "acme", Parallel: 2})
	if err != nil || res.Failed != 0 {
		t.Fatalf("apply: %v %+v", err, res)
	}
}
