package provision_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/cfsim"
	"github.com/xsprov/xsprov/provision/remedy"
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
