package cfsim_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xsprov/xsprov/provision/cfsim"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// client is a tiny raw client for the simulator, logged in as ci-client.
type rawClient struct {
	t     testing.TB
	base  string
	token string
	h     http.Handler
}

func newRaw(t testing.TB, h http.Handler) *rawClient {
	c := &rawClient{t: t, base: "http://sim.test", h: h}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {cfsim.CIClientID}, "client_secret": {cfsim.CIClientSecret}}
	rec := c.do(http.MethodPost, "/uaa/oauth/token", "application/x-www-form-urlencoded", form.Encode(), false)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token: %d %s", rec.Code, rec.Body)
	}
	c.token = tok.AccessToken
	return c
}

func (c *rawClient) do(method, path, ctype, body string, auth bool) *httptest.ResponseRecorder {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, c.base+path, rd)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	return rec
}

func (c *rawClient) json(method, path, body string) (int, map[string]any, http.Header) {
	c.t.Helper()
	rec := c.do(method, path, "application/json", body, true)
	var m map[string]any
	if rec.Body.Len() > 0 {
		_ = json.Unmarshal(rec.Body.Bytes(), &m)
	}
	return rec.Code, m, rec.Header()
}

func (c *rawClient) guid(path, query string) string {
	_, m, _ := c.json(http.MethodGet, path+"?"+query, "")
	res, _ := m["resources"].([]any)
	if len(res) == 0 {
		c.t.Fatalf("no %s for %s", path, query)
	}
	return res[0].(map[string]any)["guid"].(string)
}

func errCode(m map[string]any) int {
	errs, _ := m["errors"].([]any)
	if len(errs) == 0 {
		return 0
	}
	return int(errs[0].(map[string]any)["code"].(float64))
}

func lastOp(m map[string]any) string {
	lo, _ := m["last_operation"].(map[string]any)
	return lo["type"].(string) + " " + lo["state"].(string)
}

func setup(t *testing.T, opts ...cfsim.Option) (*rawClient, *fakeClock, string, string) {
	clk := newFakeClock()
	sim := cfsim.MustNew(append([]cfsim.Option{cfsim.WithClock(clk.Now), cfsim.WithDeterministicIDs()}, opts...)...)
	c := newRaw(t, sim)
	org := c.guid("/v3/organizations", "names=acme")
	space := c.guid("/v3/spaces", "names=dev&organization_guids="+org)
	plan := c.guid("/v3/service_plans", "names=application&service_offering_names=xsuaa")
	return c, clk, space, plan
}

func createBody(name, space, plan, params string) string {
	return `{"type":"managed","name":"` + name + `","relationships":{"space":{"data":{"guid":"` + space + `"}},"service_plan":{"data":{"guid":"` + plan + `"}}},"parameters":` + params + `}`
}

// TestJobAndLastOperationMoveTogether checks the state machine of a
// synchronous broker with a fake clock: PROCESSING/initial, then
// COMPLETE/succeeded (timing_test.go has the asynchronous one).
func TestJobAndLastOperationMoveTogether(t *testing.T) {
	c, clk, space, plan := setup(t, cfsim.WithBrokerDelay(10*time.Second), cfsim.WithRetrievableParameters())
	code, _, h := c.json(http.MethodPost, "/v3/service_instances", createBody("i1", space, plan, `{"xsappname":"a1"}`))
	if code != 202 || !strings.HasPrefix(h.Get("Location"), "http://sim.test/v3/jobs/") {
		t.Fatalf("create: %d, Location %q", code, h.Get("Location"))
	}
	jobPath := strings.TrimPrefix(h.Get("Location"), "http://sim.test")
	inst := c.guid("/v3/service_instances", "names=i1")
	check := func(wantJob, wantOp string) {
		t.Helper()
		_, j, _ := c.json(http.MethodGet, jobPath, "")
		_, i, _ := c.json(http.MethodGet, "/v3/service_instances/"+inst, "")
		if j["state"] != wantJob || lastOp(i) != wantOp {
			t.Errorf("job %v / instance %s, want %s / %s", j["state"], lastOp(i), wantJob, wantOp)
		}
	}
	check("PROCESSING", "create initial")
	// An operation in progress blocks PATCH (409 60016), DELETE and keys (422).
	code, m, _ := c.json(http.MethodPatch, "/v3/service_instances/"+inst, `{"parameters":{"xsappname":"a1"}}`)
	if code != 409 || errCode(m) != 60016 {
		t.Errorf("PATCH during create: %d %v", code, m)
	}
	code, m, _ = c.json(http.MethodPatch, "/v3/service_instances/"+inst, `{"metadata":{"labels":{"team":"x"}}}`)
	if code != 200 {
		t.Errorf("metadata-only PATCH during create: %d %v", code, m)
	}
	code, m, _ = c.json(http.MethodDelete, "/v3/service_instances/"+inst, "")
	if code != 422 || errCode(m) != 10008 {
		t.Errorf("DELETE during create: %d %v", code, m)
	}
	code, m, _ = c.json(http.MethodPost, "/v3/service_credential_bindings", `{"type":"key","name":"k","relationships":{"service_instance":{"data":{"guid":"`+inst+`"}}}}`)
	if code != 422 || errCode(m) != 10008 {
		t.Errorf("key during create: %d %v", code, m)
	}
	code, m, _ = c.json(http.MethodGet, "/v3/service_instances/"+inst+"/parameters", "")
	if code != 409 || errCode(m) != 60016 {
		t.Errorf("parameters during create: %d %v", code, m)
	}
	clk.Advance(9 * time.Second)
	check("PROCESSING", "create initial")
	clk.Advance(1 * time.Second)
	check("COMPLETE", "create succeeded")
	_, j, _ := c.json(http.MethodGet, jobPath, "")
	links := j["links"].(map[string]any)
	if _, ok := links["service_instances"]; !ok {
		t.Errorf("job links lack service_instances: %v", links)
	}
	// purge removes at once
	code, _, _ = c.json(http.MethodDelete, "/v3/service_instances/"+inst+"?purge=true", "")
	if code != 204 {
		t.Errorf("purge: %d", code)
	}
	code, m, _ = c.json(http.MethodGet, "/v3/service_instances/"+inst, "")
	if code != 404 || errCode(m) != 10010 {
		t.Errorf("after purge: %d %v", code, m)
	}
}

func TestBrokerRules(t *testing.T) {
	c, _, space, plan := setup(t)
	create := func(name, params string) map[string]any {
		t.Helper()
		code, _, h := c.json(http.MethodPost, "/v3/service_instances", createBody(name, space, plan, params))
		if code != 202 {
			t.Fatalf("create %s: %d", name, code)
		}
		_, j, _ := c.json(http.MethodGet, strings.TrimPrefix(h.Get("Location"), "http://sim.test"), "")
		return j
	}
	detail := func(j map[string]any) string {
		errs, _ := j["errors"].([]any)
		if len(errs) == 0 {
			return ""
		}
		return errs[0].(map[string]any)["detail"].(string)
	}
	if j := create("ok", `{"xsappname":"app1","tenant-mode":"dedicated"}`); j["state"] != "COMPLETE" {
		t.Fatalf("valid create: %v", j)
	}
	cases := []struct{ name, params, want string }{
		{"dup", `{"xsappname":"app1"}`, "already exists in identity zone acme"},
		{"chars", `{"xsappname":"a b"}`, "$.xsappname"},
		{"mode", `{"xsappname":"a2","tenant-mode":"solo"}`, "$.tenant-mode"},
		{"unknown", `{"xsappname":"a3","colour":"red"}`, `Unrecognized field "colour"`},
		{"scope", `{"xsappname":"a4","scopes":[{"name":"$XSAPPNAME..Read"}]}`, "must not start with '.'"},
		{"null", `{"xsappname":"a7","oauth2-configuration":{"redirect-uris":null}}`, "not null"},
		{"ref", `{"xsappname":"a5","role-templates":[{"name":"V","scope-references":["$XSAPPNAME.Nope"]}]}`, "not defined in scopes"},
		{"foreign", `{"xsappname":"a6","foreign-scope-references":["$XSAPPNAME(broker,x).Read"]}`, "only application is allowed"},
	}
	for _, tc := range cases {
		j := create(tc.name, tc.params)
		if j["state"] != "FAILED" || !strings.Contains(detail(j), tc.want) || !strings.HasPrefix(detail(j), "provision could not be completed: Service broker error: Service broker xsuaa failed with: ") {
			t.Errorf("%s: job %v, detail %q, want it to mention %q", tc.name, j["state"], detail(j), tc.want)
		}
	}
	// The same xsappname in another org is fine (another identity zone).
	otherOrg := c.guid("/v3/organizations", "names=other")
	otherSpace := c.guid("/v3/spaces", "organization_guids="+otherOrg)
	code, _, h := c.json(http.MethodPost, "/v3/service_instances", createBody("ok", otherSpace, plan, `{"xsappname":"app1"}`))
	_, j, _ := c.json(http.MethodGet, strings.TrimPrefix(h.Get("Location"), "http://sim.test"), "")
	if code != 202 || j["state"] != "COMPLETE" {
		t.Errorf("same xsappname in another org: %d %v", code, j)
	}
	// xsappname is immutable on update.
	inst := c.guid("/v3/service_instances", "names=ok&space_guids="+space)
	_, _, h = c.json(http.MethodPatch, "/v3/service_instances/"+inst, `{"parameters":{"xsappname":"renamed"}}`)
	_, j, _ = c.json(http.MethodGet, strings.TrimPrefix(h.Get("Location"), "http://sim.test"), "")
	if j["state"] != "FAILED" || !strings.Contains(detail(j), "Cannot change AppId with update. Old AppId: app1!t") {
		t.Errorf("xsappname update: %v %q", j["state"], detail(j))
	}
	// x509 keys need x509 among the credential types.
	_, _, h = c.json(http.MethodPost, "/v3/service_credential_bindings", `{"type":"key","name":"x","relationships":{"service_instance":{"data":{"guid":"`+inst+`"}}},"parameters":{"credential-type":"x509"}}`)
	_, j, _ = c.json(http.MethodGet, strings.TrimPrefix(h.Get("Location"), "http://sim.test"), "")
	if j["state"] != "FAILED" || !strings.Contains(detail(j), "not enabled") {
		t.Errorf("x509 key on a secret-only instance: %v %q", j["state"], detail(j))
	}
}

func TestX509Key(t *testing.T) {
	c, _, space, plan := setup(t)
	c.json(http.MethodPost, "/v3/service_instances", createBody("x", space, plan, `{"xsappname":"xapp","oauth2-configuration":{"credential-types":["x509","binding-secret"]}}`))
	inst := c.guid("/v3/service_instances", "names=x")
	_, _, h := c.json(http.MethodPost, "/v3/service_credential_bindings", `{"type":"key","name":"k","relationships":{"service_instance":{"data":{"guid":"`+inst+`"}}}}`)
	_, j, _ := c.json(http.MethodGet, strings.TrimPrefix(h.Get("Location"), "http://sim.test"), "")
	if j["state"] != "COMPLETE" {
		t.Fatalf("x509 key job: %v", j)
	}
	key := c.guid("/v3/service_credential_bindings", "names=k")
	_, d, _ := c.json(http.MethodGet, "/v3/service_credential_bindings/"+key+"/details", "")
	cr := d["credentials"].(map[string]any)
	if cr["credential-type"] != "x509" || cr["clientsecret"] != nil || !strings.Contains(cr["certificate"].(string), "BEGIN CERTIFICATE") ||
		!strings.Contains(cr["key"].(string), "PRIVATE KEY") || cr["certurl"] == nil {
		t.Errorf("x509 credentials: %v", cr)
	}
}

func TestRateLimit(t *testing.T) {
	c, _, _, _ := setup(t, cfsim.WithRateLimit(3, time.Minute))
	var last *httptest.ResponseRecorder
	for i := 0; i < 5; i++ {
		last = c.do(http.MethodGet, "/v3/organizations", "", "", true)
	}
	if last.Code != 429 || last.Header().Get("Retry-After") == "" || last.Header().Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("over the limit: %d, headers %v", last.Code, last.Header())
	}
	var env map[string]any
	_ = json.Unmarshal(last.Body.Bytes(), &env)
	if errCode(env) != 10013 {
		t.Errorf("429 body: %s", last.Body)
	}
	if rec := c.do(http.MethodGet, "/", "", "", false); rec.Code != 200 {
		t.Errorf("GET / is exempt, got %d", rec.Code)
	}
}

// TestRateLimitHeaders: X-RateLimit-Remaining is the CC's estimate (the
// fraction left rounded down to 10%, times the limit); /v3/info counts, /
// and /v3 do not.
func TestRateLimitHeaders(t *testing.T) {
	c, _, _, _ := setup(t, cfsim.WithRateLimit(300, time.Hour))
	// setup spent 3 CC requests (the token request is not the CC's).
	want := []string{"270", "270", "270"}
	for i, path := range []string{"/v3/info", "/", "/v3", "/v3/organizations"} {
		rec := c.do(http.MethodGet, path, "", "", true)
		got := rec.Header().Get("X-RateLimit-Remaining")
		if path == "/" || path == "/v3" {
			if got != "" {
				t.Errorf("%s is exempt but carries X-RateLimit-Remaining %q", path, got)
			}
			continue
		}
		if got != want[min(i, 2)] || rec.Header().Get("X-RateLimit-Limit") != "300" || rec.Header().Get("X-RateLimit-Reset") == "" {
			t.Errorf("%s: headers %v", path, rec.Header())
		}
	}
	for range 26 {
		c.do(http.MethodGet, "/v3/organizations", "", "", true)
	}
	// 31 counted: 269 left, shown as 240.
	if got := c.do(http.MethodGet, "/v3/info", "", "", true).Header().Get("X-RateLimit-Remaining"); got != "240" {
		t.Errorf("after 32 requests: X-RateLimit-Remaining %q, want 240", got)
	}
	counts := c.do(http.MethodGet, "/_sim/counts", "", "", false)
	if !strings.Contains(counts.Body.String(), `"GET /v3/info"`) {
		t.Errorf("/v3/info is not counted: %s", counts.Body)
	}
}

func TestPaginationLinks(t *testing.T) {
	c, _, _, _ := setup(t)
	_, m, _ := c.json(http.MethodGet, "/v3/service_plans?service_offering_names=xsuaa&per_page=3", "")
	p := m["pagination"].(map[string]any)
	if p["total_results"].(float64) != 4 || p["total_pages"].(float64) != 2 || p["previous"] != nil {
		t.Fatalf("pagination: %v", p)
	}
	next := p["next"].(map[string]any)["href"].(string)
	u, _ := url.Parse(next)
	if u.Query().Get("page") != "2" || u.Query().Get("per_page") != "3" || u.Query().Get("service_offering_names") != "xsuaa" {
		t.Errorf("next.href %s lacks page, per_page or the filter", next)
	}
	_, m, _ = c.json(http.MethodGet, u.Path+"?"+u.RawQuery, "")
	if n := len(m["resources"].([]any)); n != 1 {
		t.Errorf("page 2 holds %d, want 1", n)
	}
	_, m, _ = c.json(http.MethodGet, "/v3/spaces?names=nothing", "")
	if p := m["pagination"].(map[string]any); p["total_pages"].(float64) != 1 || p["next"] != nil {
		t.Errorf("empty list pagination: %v", p)
	}
	if res, ok := m["resources"].([]any); !ok || len(res) != 0 {
		t.Errorf("empty list resources = %#v, want []", m["resources"])
	}
}

func TestStateFilePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s1 := cfsim.MustNew(cfsim.WithStateFile(path))
	c := newRaw(t, s1)
	space := c.guid("/v3/spaces", "names=dev")
	plan := c.guid("/v3/service_plans", "names=application")
	c.json(http.MethodPost, "/v3/service_instances", createBody("kept", space, plan, `{"xsappname":"kept"}`))
	s2 := cfsim.MustNew(cfsim.WithStateFile(path))
	c2 := newRaw(t, s2)
	if g := c2.guid("/v3/service_instances", "names=kept"); g == "" {
		t.Error("instance not persisted")
	}
	// a token from the first process is valid in the second (same key)
	c2.token = c.token
	if code, _, _ := c2.json(http.MethodGet, "/v3/organizations", ""); code != 200 {
		t.Errorf("token across processes: %d", code)
	}
}

func TestDeterministicIDs(t *testing.T) {
	a, _, _, _ := setup(t)
	b, _, _, _ := setup(t)
	if ga, gb := a.guid("/v3/spaces", "names=prod"), b.guid("/v3/spaces", "names=prod"); ga != gb || !strings.HasPrefix(ga, "00000000-0000-4000-8000-") {
		t.Errorf("deterministic ids differ: %s %s", ga, gb)
	}
}

func TestConcurrentRequests(t *testing.T) {
	sim := cfsim.MustNew(cfsim.WithBrokerDelay(time.Millisecond))
	c := newRaw(t, sim)
	space := c.guid("/v3/spaces", "names=dev")
	plan := c.guid("/v3/service_plans", "names=application")
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			n := "c" + strconv.Itoa(i%5) // clashing names on purpose
			c.json(http.MethodPost, "/v3/service_instances", createBody(n, space, plan, `{"xsappname":"`+n+`"}`))
			c.json(http.MethodGet, "/v3/service_instances?names="+n, "")
		}(i)
	}
	wg.Wait()
	if n := len(sim.Snapshot().Instances); n != 5 {
		t.Errorf("%d instances, want 5 (names clash)", n)
	}
}

func TestLabelSelectorsAndRoles(t *testing.T) {
	c, _, space, plan := setup(t)
	for _, n := range []string{"l1", "l2", "l3"} {
		c.json(http.MethodPost, "/v3/service_instances", createBody(n, space, plan, `{"xsappname":"`+n+`"}`))
	}
	g1, g2 := c.guid("/v3/service_instances", "names=l1"), c.guid("/v3/service_instances", "names=l2")
	c.json(http.MethodPatch, "/v3/service_instances/"+g1, `{"metadata":{"labels":{"team":"a","tier":"x"}}}`)
	c.json(http.MethodPatch, "/v3/service_instances/"+g2, `{"metadata":{"labels":{"team":"b"}}}`)
	count := func(sel string) int {
		code, m, _ := c.json(http.MethodGet, "/v3/service_instances?label_selector="+url.QueryEscape(sel), "")
		res, ok := m["resources"].([]any)
		if !ok {
			t.Fatalf("label_selector %q: HTTP %d %v", sel, code, m)
		}
		return len(res)
	}
	for sel, want := range map[string]int{"team": 2, "!team": 1, "team=a": 1, "team==b": 1, "team!=a": 2, "team in (a,b)": 2,
		"team notin (a)": 2, "team,tier": 1, "team=a,tier=x": 1, "team=c": 0} {
		if got := count(sel); got != want {
			t.Errorf("label_selector %q: %d, want %d", sel, got, want)
		}
	}
	// users and roles
	_, m, _ := c.json(http.MethodGet, "/v3/users?usernames=admin&origins=uaa", "")
	users := m["resources"].([]any)
	if len(users) != 1 {
		t.Fatalf("users: %v", m)
	}
	if code, m, _ := c.json(http.MethodGet, "/v3/users?origins=uaa", ""); code != 400 || errCode(m) != 10005 {
		t.Errorf("origins without usernames: %d %v", code, m)
	}
	org := c.guid("/v3/organizations", "names=acme")
	body := `{"type":"space_developer","relationships":{"user":{"data":{"username":"admin","origin":"uaa"}},"space":{"data":{"guid":"` + space + `"}}}}`
	if code, m, _ := c.json(http.MethodPost, "/v3/roles", body); code != 422 || !strings.Contains(fmt.Sprint(m), "do not have a role in that space's organization") {
		t.Errorf("space role without org role: %d %v", code, m)
	}
	code, m, _ := c.json(http.MethodPost, "/v3/roles", `{"type":"organization_user","relationships":{"user":{"data":{"username":"admin"}},"organization":{"data":{"guid":"`+org+`"}}}}`)
	if code != 201 {
		t.Fatalf("org role: %d %v", code, m)
	}
	code, m, _ = c.json(http.MethodPost, "/v3/roles", body)
	if code != 201 {
		t.Fatalf("space role: %d %v", code, m)
	}
	roleGUID := m["guid"].(string)
	if code, m, _ := c.json(http.MethodPost, "/v3/roles", body); code != 422 || !strings.Contains(fmt.Sprint(m), "already has") {
		t.Errorf("duplicate role: %d %v", code, m)
	}
	if code, m, _ := c.json(http.MethodPost, "/v3/roles", strings.Replace(body, "admin", "nobody", 1)); code != 422 || !strings.Contains(fmt.Sprint(m), "No user exists") {
		t.Errorf("unknown user: %d %v", code, m)
	}
	_, m, _ = c.json(http.MethodGet, "/v3/roles?space_guids="+space+"&include=user", "")
	if len(m["resources"].([]any)) != 1 || len(m["included"].(map[string]any)["users"].([]any)) != 1 {
		t.Errorf("roles with users: %v", m)
	}
	if code, _, _ := c.json(http.MethodGet, "/v3/roles/"+roleGUID, ""); code != 200 {
		t.Errorf("get role: %d", code)
	}
	if code, _, _ := c.json(http.MethodDelete, "/v3/roles/"+roleGUID, ""); code != 204 {
		t.Errorf("delete role: %d", code)
	}
	if code, m, _ := c.json(http.MethodGet, "/v3/roles/"+roleGUID, ""); code != 404 || errCode(m) != 10010 {
		t.Errorf("deleted role: %d %v", code, m)
	}
	if code, m, _ := c.json(http.MethodGet, "/v3/info", ""); code != 200 || m["name"] != "cfsim" {
		t.Errorf("info: %d %v", code, m)
	}
	if code, m, _ := c.json(http.MethodGet, "/v3/organizations/"+org, ""); code != 200 || m["name"] != "acme" {
		t.Errorf("org: %d %v", code, m)
	}
	if code, m, _ := c.json(http.MethodGet, "/v3/service_offerings?names=xsuaa", ""); code != 200 || len(m["resources"].([]any)) != 1 {
		t.Errorf("offerings: %d %v", code, m)
	}
	if code, m, _ := c.json(http.MethodGet, "/v3/service_plans?organization_guids="+org+"&service_instance_guids="+g1, ""); code != 200 || len(m["resources"].([]any)) != 1 {
		t.Errorf("plans by org and instance: %d %v", code, m)
	}
}

// TestListQueriesAsTheCC: page, per_page and order_by are checked with the
// Cloud Controller's messages; previous is there on every page past the first.
func TestListQueriesAsTheCC(t *testing.T) {
	c := newRaw(t, cfsim.MustNew())
	for q, want := range map[string]string{
		"page=0":          "Page must be a positive integer",
		"page=x":          "Page must be a positive integer",
		"per_page=0":      "Per page must be a positive integer",
		"per_page=5001":   "Per page must be between 1 and 5000",
		"order_by=colour": "Order by can only be: 'created_at', 'updated_at', 'name'",
	} {
		code, m, _ := c.json(http.MethodGet, "/v3/organizations?"+q, "")
		errs, _ := m["errors"].([]any)
		if code != 400 || errCode(m) != 10005 || len(errs) != 1 || !strings.Contains(errs[0].(map[string]any)["detail"].(string), want) {
			t.Errorf("%s: %d %v", q, code, m)
		}
	}
	if code, _, _ := c.json(http.MethodGet, "/v3/organizations?order_by=-name", ""); code != 200 {
		t.Errorf("order_by=-name: %d", code)
	}
	_, m, _ := c.json(http.MethodGet, "/v3/organizations?page=3&per_page=1", "")
	if p := m["pagination"].(map[string]any); p["previous"] == nil {
		t.Errorf("page past the last: no previous: %v", p)
	}
}

// TestKeyParametersAsBTP: where the offering hides binding parameters (real
// BTP) reading them is 400 90007; a key whose creation failed has none (404).
func TestKeyParametersAsBTP(t *testing.T) {
	for _, hidden := range []bool{true, false} {
		opts := []cfsim.Option{cfsim.WithRetrievableParameters()}
		if hidden {
			opts = append(opts, cfsim.WithoutRetrievableParameters())
		}
		sim := cfsim.MustNew(opts...)
		c := newRaw(t, sim)
		org := c.guid("/v3/organizations", "names=acme")
		space := c.guid("/v3/spaces", "names=dev&organization_guids="+org)
		plan := c.guid("/v3/service_plans", "names=application&service_offering_names=xsuaa")
		c.json(http.MethodPost, "/v3/service_instances", createBody("p", space, plan, `{"xsappname":"papp"}`))
		inst := c.guid("/v3/service_instances", "names=p")
		c.json(http.MethodPost, "/v3/service_credential_bindings", `{"type":"key","name":"ok","parameters":{"unknown-field":1},"relationships":{"service_instance":{"data":{"guid":"`+inst+`"}}}}`)
		sim.FailNext(cfsim.OpBind, "no")
		c.json(http.MethodPost, "/v3/service_credential_bindings", `{"type":"key","name":"bad","relationships":{"service_instance":{"data":{"guid":"`+inst+`"}}}}`)
		code, m, _ := c.json(http.MethodGet, "/v3/service_credential_bindings/"+c.guid("/v3/service_credential_bindings", "names=ok")+"/parameters", "")
		if hidden && (code != 400 || errCode(m) != 90007) || !hidden && code != 200 {
			t.Errorf("hidden=%v: parameters of a good key: %d %v", hidden, code, m)
		}
		code, m, _ = c.json(http.MethodGet, "/v3/service_credential_bindings/"+c.guid("/v3/service_credential_bindings", "names=bad")+"/parameters", "")
		if code != 404 || errCode(m) != 10010 {
			t.Errorf("hidden=%v: parameters of a failed key: %d %v", hidden, code, m)
		}
	}
}

// TestBTPRecordedShapes: what recordings of a real BTP landscape show: no
// bits_service or v2 link at the root, a fresh instance's and a key's
// last_operation.description null, a failed create described as "Service
// broker error: Service broker xsuaa failed with: …", and XSUAA tokens valid
// 43,200 s whatever the CF UAA's own token lifetime.
func TestBTPRecordedShapes(t *testing.T) {
	c, clk, space, plan := setup(t, cfsim.WithBrokerDelay(10*time.Second), cfsim.WithTokenLifetime(5*time.Minute))
	_, root, _ := c.json(http.MethodGet, "/", "")
	links := root["links"].(map[string]any)
	for _, k := range []string{"bits_service", "cloud_controller_v2"} {
		if _, ok := links[k]; ok {
			t.Errorf("the root links %s", k)
		}
	}
	c.json(http.MethodPost, "/v3/service_instances", createBody("fresh", space, plan, `{"xsappname":"fresh"}`))
	_, m, _ := c.json(http.MethodGet, "/v3/service_instances/"+c.guid("/v3/service_instances", "names=fresh"), "")
	if lo := m["last_operation"].(map[string]any); lo["description"] != nil {
		t.Errorf("a fresh instance's description: %v", lo)
	}
	clk.Advance(11 * time.Second)
	inst := c.guid("/v3/service_instances", "names=fresh")
	c.json(http.MethodPost, "/v3/service_credential_bindings", `{"type":"key","name":"k","relationships":{"service_instance":{"data":{"guid":"`+inst+`"}}}}`)
	clk.Advance(11 * time.Second)
	key := c.guid("/v3/service_credential_bindings", "names=k")
	_, k, _ := c.json(http.MethodGet, "/v3/service_credential_bindings/"+key, "")
	if lo := k["last_operation"].(map[string]any); lo["description"] != nil || lo["state"] != "succeeded" {
		t.Errorf("a key's last operation: %v", lo)
	}
	c.json(http.MethodPost, "/v3/service_instances", createBody("bad", space, plan, `{"xsappname":"a b"}`))
	clk.Advance(11 * time.Second)
	_, b, _ := c.json(http.MethodGet, "/v3/service_instances/"+c.guid("/v3/service_instances", "names=bad"), "")
	if d, _ := b["last_operation"].(map[string]any)["description"].(string); !strings.HasPrefix(d, "Service broker error: Service broker xsuaa failed with: ") {
		t.Errorf("a failed create's description: %q", d)
	}
	_, det, _ := c.json(http.MethodGet, "/v3/service_credential_bindings/"+key+"/details", "")
	cr := det["credentials"].(map[string]any)
	zone := strings.TrimPrefix(cr["url"].(string), "http://sim.test")
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {cr["clientid"].(string)}, "client_secret": {cr["clientsecret"].(string)}}
	rec := c.do(http.MethodPost, zone+"/oauth/token", "application/x-www-form-urlencoded", form.Encode(), false)
	var tok struct {
		ExpiresIn int `json:"expires_in"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil || tok.ExpiresIn < 43000 {
		t.Errorf("XSUAA token: %d %s", rec.Code, rec.Body)
	}
}

// TestUAAGrantErrors: a missing grant type is 400 invalid_request, an
// unknown one 400 unsupported_grant_type (not 401).
func TestUAAGrantErrors(t *testing.T) {
	c := newRaw(t, cfsim.MustNew())
	for form, want := range map[string]string{
		"client_id=cf&client_secret=":                               "invalid_request",
		"grant_type=magic&client_id=cf&client_secret=":              "unsupported_grant_type",
		"grant_type=client_credentials&client_id=cf&client_secret=": "",
	} {
		rec := c.do(http.MethodPost, "/uaa/oauth/token", "application/x-www-form-urlencoded", form, false)
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if want != "" && (rec.Code != 400 || e.Error != want) {
			t.Errorf("%s: %d %s", form, rec.Code, rec.Body)
		}
		if want == "" && rec.Code != 401 {
			t.Errorf("%s (a grant the cf client may not use): %d %s", form, rec.Code, rec.Body)
		}
	}
}

// TestPlanVisibility: GET /v3/service_plans/:guid/visibility.
func TestPlanVisibility(t *testing.T) {
	c := newRaw(t, cfsim.MustNew(cfsim.WithHiddenPlan("application", "acme/prod")))
	plan := c.guid("/v3/service_plans", "names=application&service_offering_names=xsuaa")
	code, m, _ := c.json(http.MethodGet, "/v3/service_plans/"+plan+"/visibility", "")
	orgs, _ := m["organizations"].([]any)
	if code != 200 || m["type"] != "organization" || len(orgs) == 0 || orgs[0].(map[string]any)["name"] != "acme" {
		t.Errorf("visibility: %d %v", code, m)
	}
	if code, m, _ := c.json(http.MethodGet, "/v3/service_plans/nope/visibility", ""); code != 404 || errCode(m) != 10010 {
		t.Errorf("unknown plan: %d %v", code, m)
	}
}

// TestDeleteDuringAsyncCreate: deleting an instance whose asynchronous create
// is in progress is accepted (202), as the Cloud Controller allows.
func TestDeleteDuringAsyncCreate(t *testing.T) {
	c, clk, space, plan := setup(t, cfsim.WithBrokerDelay(20*time.Second), cfsim.WithAsyncBroker(), cfsim.WithCCPollInterval(5*time.Second))
	c.json(http.MethodPost, "/v3/service_instances", createBody("gone", space, plan, `{"xsappname":"gone"}`))
	clk.Advance(5 * time.Second) // the broker has accepted: POLLING, in progress
	inst := c.guid("/v3/service_instances", "names=gone")
	code, m, h := c.json(http.MethodDelete, "/v3/service_instances/"+inst, "")
	if code != 202 || h.Get("Location") == "" {
		t.Fatalf("delete during an async create: %d %v", code, m)
	}
	clk.Advance(25 * time.Second)
	if code, _, _ := c.json(http.MethodGet, "/v3/service_instances/"+inst, ""); code != 404 {
		t.Errorf("the instance is still there: %d", code)
	}
}
