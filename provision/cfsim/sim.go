// Package cfsim simulates the parts of Cloud Foundry that xsprov talks to: the
// Cloud Controller v3 API, the UAA token endpoint and the XSUAA service broker
// (including the token endpoint of each identity zone).
//
// It is an http.Handler, safe for concurrent use. Jobs advance with the
// simulator's clock rather than with goroutines: every request first moves
// each due job forward. That keeps the simulator deterministic under a fake
// clock, and lets several processes share one world through a state file.
//
// All URLs it hands out are derived from the Host of the request, so the same
// handler works behind httptest, on a fixed address, or through a proxy.
package cfsim

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// APIVersion is the Cloud Controller version the simulator claims.
const APIVersion = "3.180.0"

// Option configures a Sim.
type Option func(*options)

type options struct {
	clock         func() time.Time
	deterministic bool
	delays        map[string]time.Duration // per operation: create, update, delete, bind, unbind
	tokenLifetime time.Duration
	perPage       int
	rateLimit     int
	rateWindow    time.Duration
	flaky         float64
	flakySeed     int64
	secondBroker  bool
	hidden        [][2]string // plan name, "org/space"
	seed          *Seed
	stateFile     string
	logf          func(format string, args ...any)
	dropResponse  float64
	noParams      bool
}

// Operations that take broker time.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
	OpBind   = "bind"
	OpUnbind = "unbind"
)

// AllOps lists every broker operation.
var AllOps = []string{OpCreate, OpUpdate, OpDelete, OpBind, OpUnbind}

// WithClock sets the clock; jobs advance with it.
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// WithDeterministicIDs makes GUIDs and secrets sequential, for golden tests.
func WithDeterministicIDs() Option { return func(o *options) { o.deterministic = true } }

// WithBrokerDelay sets how long the broker takes for every operation.
func WithBrokerDelay(d time.Duration) Option {
	return func(o *options) {
		for _, op := range AllOps {
			o.delays[op] = d
		}
	}
}

// WithOperationDelay sets the broker time of one operation (OpCreate, …).
func WithOperationDelay(op string, d time.Duration) Option {
	return func(o *options) { o.delays[op] = d }
}

// WithTokenLifetime sets the lifetime of access tokens (UAA and XSUAA).
func WithTokenLifetime(d time.Duration) Option { return func(o *options) { o.tokenLifetime = d } }

// WithDefaultPerPage sets the page size used when a list request names none.
func WithDefaultPerPage(n int) Option { return func(o *options) { o.perPage = n } }

// WithRateLimit allows n requests per window and user (or IP when
// unauthenticated); more get 429 with Retry-After.
func WithRateLimit(n int, window time.Duration) Option {
	return func(o *options) { o.rateLimit, o.rateWindow = n, window }
}

// WithFlakyGateway answers a fraction of Cloud Controller requests with 502 or
// 503 before they reach the controller (so nothing changes).
func WithFlakyGateway(fraction float64, seed int64) Option {
	return func(o *options) { o.flaky, o.flakySeed = fraction, seed }
}

// WithLostResponses processes a fraction of write requests and then drops the
// connection without an answer, as a gateway timeout after the fact does.
func WithLostResponses(fraction float64) Option {
	return func(o *options) { o.dropResponse = fraction }
}

// WithoutRetrievableParameters makes the offerings refuse to return instance
// parameters (instances_retrievable false: 400 120004), as some brokers do.
func WithoutRetrievableParameters() Option { return func(o *options) { o.noParams = true } }

// WithSecondBroker adds a broker "xsuaa-clone" that also offers "xsuaa".
func WithSecondBroker() Option { return func(o *options) { o.secondBroker = true } }

// WithHiddenPlan hides a plan of offering xsuaa from one space ("org/space").
func WithHiddenPlan(plan, orgSpace string) Option {
	return func(o *options) { o.hidden = append(o.hidden, [2]string{plan, orgSpace}) }
}

// WithSeed replaces the default seed.
func WithSeed(seed Seed) Option { return func(o *options) { o.seed = &seed } }

// WithStateFile loads the world from path when it exists and saves it there
// after every change.
func WithStateFile(path string) Option { return func(o *options) { o.stateFile = path } }

// WithLogf logs one line per request.
func WithLogf(logf func(format string, args ...any)) Option {
	return func(o *options) { o.logf = logf }
}

// Sim is the simulator. Create it with New.
type Sim struct {
	opts options

	mu       sync.Mutex
	st       *State
	dirty    bool
	failNext map[string][]string
	rate     map[string]*window
	rng      *rand.Rand
	signer   *signer // built lazily from st.SigningKey
	certURL  string  // base URL of the mTLS listener, for certurl
	pregen   *rsa.PrivateKey

	verified sync.Map // token string → *claims (signature checked)

	requests atomic.Int64
	writes   atomic.Int64
	counts   sync.Map // "METHOD /path/pattern" → *atomic.Int64
}

type window struct {
	start time.Time
	n     int
}

// New builds a simulator.
func New(opts ...Option) (*Sim, error) {
	o := options{
		clock:         time.Now,
		delays:        map[string]time.Duration{},
		tokenLifetime: 10 * time.Minute,
		perPage:       50,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.perPage < 1 || o.perPage > 5000 {
		return nil, fmt.Errorf("default per_page %d is outside 1..5000", o.perPage)
	}
	s := &Sim{opts: o, failNext: map[string][]string{}, rate: map[string]*window{}, rng: rand.New(rand.NewSource(o.flakySeed))}
	if o.stateFile != "" {
		st, err := loadState(o.stateFile)
		if err != nil {
			return nil, err
		}
		s.st = st
	}
	if s.st == nil {
		s.st = newState()
		seed := DefaultSeed()
		if o.seed != nil {
			seed = *o.seed
		}
		s.applySeed(seed)
		s.dirty = true
	}
	if o.secondBroker && s.brokerByName("xsuaa-clone") == nil {
		s.addBroker(SeedBroker{Name: "xsuaa-clone", Offerings: []SeedOffering{{Name: "xsuaa", Plans: []string{"application"}}}})
		s.dirty = true
	}
	for _, h := range o.hidden {
		if err := s.hidePlan(h[0], h[1]); err != nil {
			return nil, err
		}
	}
	if err := s.saveLocked(); err != nil {
		return nil, err
	}
	if s.st.SigningKey == "" {
		go s.pregenerate()
	}
	return s, nil
}

// MustNew is New for tests and examples; it panics on error.
func MustNew(opts ...Option) *Sim {
	s, err := New(opts...)
	if err != nil {
		panic(err)
	}
	return s
}

func (s *Sim) now() time.Time { return s.opts.clock().UTC() }

func (s *Sim) brokerByName(name string) *Broker {
	for _, b := range s.st.Brokers {
		if b.Name == name {
			return b
		}
	}
	return nil
}

func (s *Sim) hidePlan(plan, orgSpace string) error {
	orgName, spaceName, ok := strings.Cut(orgSpace, "/")
	if !ok {
		return fmt.Errorf("hidden plan space %q is not of the form ORG/SPACE", orgSpace)
	}
	var spaceGUID string
	for _, sp := range s.st.Spaces {
		if o := s.st.Orgs[sp.OrgGUID]; o != nil && strings.EqualFold(o.Name, orgName) && strings.EqualFold(sp.Name, spaceName) {
			spaceGUID = sp.GUID
		}
	}
	if spaceGUID == "" {
		return fmt.Errorf("hidden plan space %q does not exist", orgSpace)
	}
	found := false
	for _, p := range s.st.Plans {
		if strings.EqualFold(p.Name, plan) {
			found = true
			if p.visibleIn(spaceGUID) {
				p.HiddenIn = append(p.HiddenIn, spaceGUID)
			}
		}
	}
	if !found {
		return fmt.Errorf("hidden plan %q does not exist", plan)
	}
	return nil
}

// FailNext makes the next broker operation op (OpCreate, OpUpdate, OpDelete,
// OpBind, OpUnbind) fail with the given broker message.
func (s *Sim) FailNext(op, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext[op] = append(s.failNext[op], message)
}

func (s *Sim) takeFailure(op string) string {
	q := s.failNext[op]
	if len(q) == 0 {
		return ""
	}
	s.failNext[op] = q[1:]
	return q[0]
}

// SetDelay changes the broker time of an operation at run time.
func (s *Sim) SetDelay(op string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.delays[op] = d
}

// Counts is the request count seen by the simulator.
type Counts struct {
	Total  int64            `json:"total"`
	Writes int64            `json:"writes"`
	ByCall map[string]int64 `json:"by_call"`
}

// Counts returns the requests served so far. Total and Writes count the Cloud
// Controller and UAA; XSUAA zone endpoints (a key's token URL) appear only in
// ByCall, prefixed "XSUAA ".
func (s *Sim) Counts() Counts {
	c := Counts{Total: s.requests.Load(), Writes: s.writes.Load(), ByCall: map[string]int64{}}
	s.counts.Range(func(k, v any) bool {
		c.ByCall[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return c
}

// ResetCounts zeroes the request counters.
func (s *Sim) ResetCounts() {
	s.requests.Store(0)
	s.writes.Store(0)
	s.counts.Range(func(k, _ any) bool { s.counts.Delete(k); return true })
}

func (s *Sim) count(call string, write bool) {
	s.requests.Add(1)
	if write {
		s.writes.Add(1)
	}
	s.countCall(call)
}

func (s *Sim) countCall(call string) {
	v, _ := s.counts.LoadOrStore(call, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// Snapshot returns a deep copy of the state, after advancing due jobs.
func (s *Sim) Snapshot() *State {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	b, _ := json.Marshal(s.st)
	var st State
	_ = json.Unmarshal(b, &st)
	return &st
}

// Save writes the state file (a no-op without WithStateFile).
func (s *Sim) Save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirty = true
	return s.saveLocked()
}

func (s *Sim) saveLocked() error {
	if s.opts.stateFile == "" || !s.dirty {
		return nil
	}
	b, err := json.Marshal(s.st)
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.opts.stateFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save simulator state: %w", err)
	}
	f, err := os.CreateTemp(dir, ".cfsim-state-*")
	if err != nil {
		return fmt.Errorf("save simulator state: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("save simulator state: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), s.opts.stateFile); err != nil {
		return fmt.Errorf("save simulator state: %w", err)
	}
	s.dirty = false
	return nil
}

func loadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read simulator state: %w", err)
	}
	st := newState()
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("simulator state %s is corrupt: %w", path, err)
	}
	return st, nil
}

// apiError is one entry of the CC error envelope.
type apiError struct {
	Code   int    `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	status int
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (%d): %s", e.Title, e.Code, e.Detail) }

func errNotAuthenticated() *apiError {
	return &apiError{Code: 10002, Title: "CF-NotAuthenticated", Detail: "Authentication error", status: 401}
}
func errInvalidToken() *apiError {
	return &apiError{Code: 1000, Title: "CF-InvalidAuthToken", Detail: "Invalid Auth Token", status: 401}
}
func errNotAuthorized() *apiError {
	return &apiError{Code: 10003, Title: "CF-NotAuthorized", Detail: "You are not authorized to perform the requested action", status: 403}
}
func errBadQuery(detail string) *apiError {
	return &apiError{Code: 10005, Title: "CF-BadQueryParameter", Detail: "The query parameter is invalid: " + detail, status: 400}
}
func errUnprocessable(detail string) *apiError {
	return &apiError{Code: 10008, Title: "CF-UnprocessableEntity", Detail: detail, status: 422}
}
func errNotFound(resource string) *apiError {
	return &apiError{Code: 10010, Title: "CF-ResourceNotFound", Detail: resource + " not found", status: 404}
}
func errInstanceNotFound() *apiError { return errNotFound("Service instance") }
func errKeyNotFound() *apiError      { return errNotFound("Service credential binding") }
func errUnknownRequest() *apiError {
	return &apiError{Code: 10000, Title: "CF-NotFound", Detail: "Unknown request", status: 404}
}
func errMessageParse(detail string) *apiError {
	return &apiError{Code: 1001, Title: "CF-MessageParseError", Detail: "Request invalid due to parse error: " + detail, status: 400}
}
func errInProgress(name string) *apiError {
	return &apiError{Code: 60016, Title: "CF-AsyncServiceInstanceOperationInProgress", Detail: "An operation for service instance " + name + " is in progress.", status: 409}
}
func errMethod() *apiError {
	return &apiError{Code: 10000, Title: "CF-NotFound", Detail: "Unknown request", status: 404}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, map[string]any{"errors": []*apiError{e}})
}

// request carries what a handler needs about one request.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	base   string // scheme://host of this request
	params []string
	user   *claims
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

// ServeHTTP implements http.Handler.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		// A handler bug must not take the process down or leave the lock held;
		// the state is not touched after the panic point, so answer 500.
		if v := recover(); v != nil {
			writeJSON(w, 500, map[string]any{"errors": []map[string]any{{"code": 10001, "title": "UnknownError", "detail": "An unknown error occurred."}}})
			if s.opts.logf != nil {
				s.opts.logf("panic serving %s %s: %v", r.Method, r.URL.Path, v)
			}
		}
	}()
	rt, params := match(r.Method, r.URL.Path)
	call := r.Method + " " + r.URL.Path
	if rt != nil {
		call = r.Method + " " + rt.pattern
	}
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	if rt != nil && rt.tokenEndpoint {
		write = false // a token request changes nothing in the landscape
	}
	if rt != nil && rt.control {
		rt.handle(s, &request{w: w, r: r, base: baseURL(r)})
		return
	}
	if rt != nil && rt.xsuaa {
		s.countCall("XSUAA " + call)
	} else {
		s.count(call, write)
	}
	if s.opts.logf != nil {
		s.opts.logf("%s %s", r.Method, r.URL.RequestURI())
	}
	if rt == nil {
		writeError(w, errUnknownRequest())
		return
	}
	req := &request{w: w, r: r, base: baseURL(r), params: params}
	if rt.cc && s.opts.flaky > 0 && s.flake() {
		code := 502
		if s.requests.Load()%2 == 0 {
			code = 503
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "<html><body><h1>"+strconv.Itoa(code)+" "+http.StatusText(code)+"</h1></body></html>\n")
		return
	}
	if rt.auth {
		c, aerr := s.authenticate(r)
		if aerr == nil && !rt.exemptRate {
			aerr = s.rateLimited(w, "user:"+c.Sub)
		}
		if aerr != nil {
			if aerr.status > 0 {
				writeError(w, aerr)
			}
			return
		}
		if write && !c.hasScope("cloud_controller.write") && !c.hasScope("cloud_controller.admin") {
			writeError(w, errNotAuthorized())
			return
		}
		req.user = c
	} else if rt.cc && !rt.exemptRate {
		host := r.RemoteAddr
		if h, _, ok := strings.Cut(host, ":"); ok {
			host = h
		}
		if aerr := s.rateLimited(w, "ip:"+host); aerr != nil {
			return
		}
	}
	if rt.cc {
		if err := s.checkQuery(r, rt); err != nil {
			writeError(w, err)
			return
		}
	}
	if write && s.opts.dropResponse > 0 && rt.cc && s.flakeDrop() {
		// Do the work, then lose the answer.
		rec := &discardWriter{h: http.Header{}}
		req.w = rec
		rt.handle(s, req)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	rt.handle(s, req)
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

func (s *Sim) flake() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Float64() < s.opts.flaky
}

func (s *Sim) flakeDrop() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Float64() < s.opts.dropResponse
}

func (s *Sim) rateLimited(w http.ResponseWriter, who string) *apiError {
	if s.opts.rateLimit <= 0 {
		return nil
	}
	s.mu.Lock()
	now := s.now()
	win := s.rate[who]
	if win == nil || now.Sub(win.start) >= s.opts.rateWindow {
		win = &window{start: now}
		s.rate[who] = win
	}
	win.n++
	n := win.n
	reset := win.start.Add(s.opts.rateWindow)
	s.mu.Unlock()
	remaining := s.opts.rateLimit - n
	if remaining < 0 {
		remaining = 0
	}
	w.Header().Set("X-RateLimit-Limit", strconv.Itoa(s.opts.rateLimit))
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	if n <= s.opts.rateLimit {
		return nil
	}
	secs := int(reset.Sub(now).Seconds() + 0.999)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	// The real CC sends the JSON error with a text/plain content type.
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	code, title := 10013, "CF-RateLimitExceeded"
	if strings.HasPrefix(who, "ip:") {
		code, title = 10014, "CF-IPBasedRateLimitExceeded"
	}
	w.WriteHeader(http.StatusTooManyRequests)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{"code": code, "title": title, "detail": "Rate Limit Exceeded"}}})
	return &apiError{status: -1}
}

// The control API (/_sim/...) lets benchmarks and pipeline scripts read the
// request counts and change the broker's behaviour of a running simulator.

func (s *Sim) ctlCounts(req *request) {
	switch req.r.Method {
	case http.MethodGet:
		writeJSON(req.w, http.StatusOK, s.Counts())
	case http.MethodDelete:
		s.ResetCounts()
		req.w.WriteHeader(http.StatusNoContent)
	default:
		writeError(req.w, errMethod())
	}
}

// ctlDelay: PUT /_sim/delay?op=create&duration=300ms (op "all" for every one).
func (s *Sim) ctlDelay(req *request) {
	q := req.r.URL.Query()
	d, err := time.ParseDuration(q.Get("duration"))
	if err != nil || d < 0 {
		writeError(req.w, errBadQuery("duration must be a Go duration such as 300ms"))
		return
	}
	ops := []string{q.Get("op")}
	if ops[0] == "all" || ops[0] == "" {
		ops = AllOps
	}
	for _, op := range ops {
		if !contains(AllOps, op) {
			writeError(req.w, errBadQuery("op must be one of all, "+strings.Join(AllOps, ", ")))
			return
		}
		s.SetDelay(op, d)
	}
	req.w.WriteHeader(http.StatusNoContent)
}

// ctlFailNext: POST /_sim/fail-next?op=create&message=quota+exceeded.
func (s *Sim) ctlFailNext(req *request) {
	q := req.r.URL.Query()
	if !contains(AllOps, q.Get("op")) || q.Get("message") == "" {
		writeError(req.w, errBadQuery("want op (one of "+strings.Join(AllOps, ", ")+") and message"))
		return
	}
	s.FailNext(q.Get("op"), q.Get("message"))
	req.w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) ctlCA(req *request) {
	s.mu.Lock()
	_, _, err := s.ensureCA()
	pemCA := s.st.CACert
	s.mu.Unlock()
	if err != nil {
		writeError(req.w, &apiError{Code: 10001, Title: "UnknownError", Detail: err.Error(), status: 500})
		return
	}
	req.w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = io.WriteString(req.w, pemCA)
}
