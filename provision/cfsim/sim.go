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
	"fmt"
	"io"
	"math/rand"
	"net/http"
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
	noIncluded    bool
	async         map[string]bool // per operation: the broker answers 202
	ccPoll        time.Duration
	workerDelay   time.Duration
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

// WithoutRetrievableParameters makes the offerings refuse to return
// instance and binding parameters (instances_retrievable and
// bindings_retrievable false: 400 120004 and 90007). It is the default: the
// xsuaa offering of real SAP BTP does so.
func WithoutRetrievableParameters() Option { return func(o *options) { o.noParams = true } }

// WithRetrievableParameters lets parameters be read back, as other
// offerings and brokers allow.
func WithRetrievableParameters() Option { return func(o *options) { o.noParams = false } }

// WithSecondBroker adds a broker "xsuaa-clone" that also offers "xsuaa".
func WithSecondBroker() Option { return func(o *options) { o.secondBroker = true } }

// WithHiddenPlan hides a plan of offering xsuaa from one space ("org/space").
func WithHiddenPlan(plan, orgSpace string) Option {
	return func(o *options) { o.hidden = append(o.hidden, [2]string{plan, orgSpace}) }
}

// WithSeed replaces the default seed.
func WithSeed(seed Seed) Option { return func(o *options) { o.seed = &seed } }

// WithoutIncluded answers include=… without the "included" object, as some
// Cloud Controllers did: clients must fetch what is missing.
func WithoutIncluded() Option { return func(o *options) { o.noIncluded = true } }

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
		async:         map[string]bool{},
		ccPoll:        60 * time.Second,
		tokenLifetime: 10 * time.Minute,
		perPage:       50,
		noParams:      true, // as on real SAP BTP
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

func (e *apiError) Error() string { return fmt.Sprintf("%s (%d): %s", e.Title, e.Code, e.Detail) }

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
		// The CC counts a request with a valid token (GET /v3/info, say)
		// against its user, any other against its IP.
		who := r.RemoteAddr
		if h, _, ok := strings.Cut(who, ":"); ok {
			who = "ip:" + h
		}
		if r.Header.Get("Authorization") != "" {
			if c, aerr := s.authenticate(r); aerr == nil {
				who = "user:" + c.Sub
			}
		}
		if aerr := s.rateLimited(w, who); aerr != nil {
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
