package provision_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/cfsim"
	"github.com/xsprov/xsprov/provision/credfile"
	"github.com/xsprov/xsprov/provision/remedy"
)

type env struct {
	sim *cfsim.Sim
	srv *httptest.Server
	dir string
}

func newEnv(t *testing.T, opts ...cfsim.Option) *env {
	t.Helper()
	sim := cfsim.MustNew(opts...)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &env{sim: sim, srv: srv, dir: t.TempDir()}
}

// fastBackoff keeps tests quick without changing the logic under test.
var fastBackoff = cfapi.Backoff{Min: 5 * time.Millisecond, Max: 20 * time.Millisecond, Fraction: 0.04}

func (e *env) connect(t *testing.T, auth cfapi.Auth) *provision.Provisioner {
	t.Helper()
	hc := cfapi.NewHTTPClient(cfapi.HTTPOptions{MaxRetries: 8})
	s, err := cfapi.Connect(context.Background(), e.srv.URL, auth, hc, cfapi.Options{Backoff: fastBackoff})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	p := provision.New(s)
	return p
}

var ciAuth = cfapi.Auth{ClientID: cfsim.CIClientID, ClientSecret: cfsim.CIClientSecret}

func (e *env) upReq(t *testing.T, name string, params map[string]any) provision.UpRequest {
	if params == nil {
		params = map[string]any{"xsappname": name + "-app", "tenant-mode": "dedicated"}
	}
	return provision.UpRequest{
		Ref:      provision.Ref{Org: "acme", Space: "dev", Instance: name},
		Offering: "xsuaa", Plan: "application", Params: params, XSAppNameGiven: true,
		Out: credfile.Output{Path: filepath.Join(e.dir, name+"-credentials.json"), Format: "json"},
	}
}

func readCreds(t *testing.T, path string) map[string]any {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("credentials file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode = %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("credentials file is not JSON: %v", err)
	}
	return m
}

func TestUpFreshAndRerun(t *testing.T) {
	e := newEnv(t)
	e.sim.ResetCounts()
	p := e.connect(t, ciAuth)
	req := e.upReq(t, "my-xsuaa", nil)
	res, err := p.Up(context.Background(), req)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	c := e.sim.Counts()
	t.Logf("fresh up: %d requests: %v", c.Total, c.ByCall)
	if c.Total > 10 {
		t.Errorf("fresh up made %d requests, want at most 10: %v", c.Total, c.ByCall)
	}
	if res.Instance.Action != provision.Created || res.Key.Action != provision.Created {
		t.Errorf("actions = %s/%s, want created/created", res.Instance.Action, res.Key.Action)
	}
	creds := readCreds(t, req.Out.Path)
	if got := creds["clientid"]; !strings.HasPrefix(got.(string), "sb-my-xsuaa-app!t") {
		t.Errorf("clientid = %v", got)
	}
	for _, k := range []string{"clientsecret", "url", "verificationkey", "xsappname", "identityzone"} {
		if creds[k] == nil || creds[k] == "" {
			t.Errorf("credentials lack %s", k)
		}
	}

	// A no-change re-run: at most 8 requests, zero writes.
	e.sim.ResetCounts()
	p2 := e.connect(t, ciAuth)
	res, err = p2.Up(context.Background(), req)
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	c = e.sim.Counts()
	t.Logf("re-run: %d requests, %d writes: %v", c.Total, c.Writes, c.ByCall)
	if c.Total > 8 || c.Writes != 0 {
		t.Errorf("re-run made %d requests, %d writes; want ≤8 and 0: %v", c.Total, c.Writes, c.ByCall)
	}
	if res.Instance.Action != provision.Unchanged || res.Key.Action != provision.Unchanged {
		t.Errorf("re-run actions = %s/%s", res.Instance.Action, res.Key.Action)
	}
	st := e.sim.Snapshot()
	if len(st.Instances) != 1 || len(st.Keys) != 1 {
		t.Errorf("simulator holds %d instances and %d keys, want 1 and 1", len(st.Instances), len(st.Keys))
	}
}

func TestUpUpdatesParametersAndRefusesXSAppNameChange(t *testing.T) {
	e := newEnv(t, cfsim.WithBrokerDelay(30*time.Millisecond))
	p := e.connect(t, ciAuth)
	req := e.upReq(t, "upd", nil)
	if _, err := p.Up(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	req.Params = map[string]any{"xsappname": "upd-app", "tenant-mode": "dedicated",
		"scopes": []any{map[string]any{"name": "$XSAPPNAME.Read"}}}
	res, err := p.Up(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Instance.Action != provision.Updated {
		t.Errorf("action = %s, want updated", res.Instance.Action)
	}
	for _, i := range e.sim.Snapshot().Instances {
		if _, ok := i.Params["scopes"]; !ok {
			t.Errorf("simulator parameters not updated: %v", i.Params)
		}
	}
	req.Params = map[string]any{"xsappname": "other-app", "tenant-mode": "dedicated"}
	_, err = p.Up(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "xsappname") || !isRecreateHint(err) {
		t.Errorf("xsappname change: err = %v, hint = %+v", err, hintOf(err))
	}
}

func TestUpBrokerFailureThenRecreate(t *testing.T) {
	e := newEnv(t)
	p := e.connect(t, ciAuth)
	e.sim.FailNext(cfsim.OpCreate, "quota exceeded")
	req := e.upReq(t, "bad", nil)
	_, err := p.Up(context.Background(), req)
	var jf *cfapi.JobFailedError
	if !errors.As(err, &jf) || jf.Errors[0].Code != 10009 || !strings.Contains(err.Error(), "quota exceeded") {
		t.Fatalf("err = %v, want a failed job with 10009 and the broker message", err)
	}
	if _, err := os.Stat(req.Out.Path); !os.IsNotExist(err) {
		t.Errorf("a credentials file was written after a failure")
	}
	res, err := p.Up(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Instance.Action != provision.Recreated {
		t.Errorf("action = %s, want recreated", res.Instance.Action)
	}
	if n := len(e.sim.Snapshot().Instances); n != 1 {
		t.Errorf("%d instances, want 1", n)
	}
}

func TestDownRemovesEverything(t *testing.T) {
	e := newEnv(t, cfsim.WithBrokerDelay(20*time.Millisecond))
	p := e.connect(t, ciAuth)
	req := e.upReq(t, "gone", nil)
	if _, err := p.Up(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	res, err := p.Down(context.Background(), provision.DownRequest{Ref: req.Ref, OutPath: req.Out.Path})
	if err != nil {
		t.Fatal(err)
	}
	if res.Instance.Action != provision.Deleted || res.FileAction != provision.Deleted {
		t.Errorf("down result = %+v", res)
	}
	st := e.sim.Snapshot()
	if len(st.Instances) != 0 || len(st.Keys) != 0 {
		t.Errorf("left %d instances and %d keys", len(st.Instances), len(st.Keys))
	}
	if _, err := os.Stat(req.Out.Path); !os.IsNotExist(err) {
		t.Errorf("credentials file still there")
	}
	// idempotent
	res, err = p.Down(context.Background(), provision.DownRequest{Ref: req.Ref, OutPath: req.Out.Path})
	if err != nil || res.Instance.Action != provision.Absent {
		t.Errorf("second down: %v, %+v", err, res)
	}
}

func TestBadCredentialsIsAuthError(t *testing.T) {
	e := newEnv(t)
	hc := cfapi.NewHTTPClient(cfapi.HTTPOptions{})
	for _, auth := range []cfapi.Auth{
		{ClientID: "ci-client", ClientSecret: "wrong"},
		{Username: "admin", Password: "wrong"},
	} {
		s, err := cfapi.Connect(context.Background(), e.srv.URL, auth, hc, cfapi.Options{Backoff: fastBackoff})
		if err == nil {
			p := provision.New(s)
			_, err = p.Up(context.Background(), e.upReq(t, "x", nil))
		}
		var ae *cfapi.AuthError
		if !errors.As(err, &ae) {
			t.Errorf("%s: err = %v (%T), want *AuthError", auth.Method(), err, err)
		} else if strings.Contains(err.Error(), "wrong") {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
}

// TestUpWhenParametersCannotBeReadUsesItsRecord: on an offering whose
// parameters cannot be read back (real BTP), xsprov compares with what it
// recorded on the instance when it created it, and applies an addition.
func TestUpWhenParametersCannotBeReadUsesItsRecord(t *testing.T) {
	e := newEnv(t, cfsim.WithoutRetrievableParameters())
	p := e.connect(t, ciAuth)
	req := e.upReq(t, "opaque", nil)
	if _, err := p.Up(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	e.sim.ResetCounts()
	res, err := p.Up(context.Background(), req)
	if err != nil || res.Instance.Action != provision.Unchanged || e.sim.Counts().Writes != 0 {
		t.Fatalf("re-run: %v, action %v, %d writes", err, res, e.sim.Counts().Writes)
	}
	req.Params = map[string]any{"xsappname": "opaque-app", "tenant-mode": "dedicated", "scopes": []any{map[string]any{"name": "$XSAPPNAME.X"}}}
	if res, err = p.Up(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if res.Instance.Action != provision.Updated {
		t.Errorf("action %s, want updated", res.Instance.Action)
	}
	for _, i := range e.sim.Snapshot().Instances {
		if i.Params["scopes"] == nil {
			t.Errorf("the scopes were not added: %v", i.Params)
		}
	}
	// The record follows the update: the next run changes nothing.
	e.sim.ResetCounts()
	if res, err = p.Up(context.Background(), req); err != nil || res.Instance.Action != provision.Unchanged || e.sim.Counts().Writes != 0 {
		t.Errorf("re-run after the update: %v, %d writes", err, e.sim.Counts().Writes)
	}
}

type recordingReporter struct{ lines []string }

func (r *recordingReporter) Step(m string)  { r.lines = append(r.lines, m+"...") }
func (r *recordingReporter) Done()          { r.lines = append(r.lines, "OK") }
func (r *recordingReporter) Info(m string)  { r.lines = append(r.lines, m) }
func (r *recordingReporter) Warn(m string)  { r.lines = append(r.lines, "Warning: "+m) }
func (r *recordingReporter) String() string { return strings.Join(r.lines, "\n") }

func hintOf(err error) remedy.Remedy { r, _ := remedy.Of(err); return r }

func isRecreateHint(err error) bool { return hintOf(err).Action == remedy.Recreate }
