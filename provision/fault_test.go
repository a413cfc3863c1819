package provision_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/cfsim"
)

// autoClock is a fake clock shared by the simulator and the client: every
// wait advances it at once, so slow brokers, rate-limit windows and token
// expiry take no real time.
type autoClock struct {
	mu     sync.Mutex
	t      time.Time
	waited time.Duration
	// pace, when set, makes each wait also take d/pace of real time, so
	// that goroutines waiting side by side cannot push the shared clock
	// ahead by hours while one of them is between two requests (which aged
	// fresh tokens past their lifetime and made the parallel expiry test
	// flaky).
	pace int64
}

func newAutoClock() *autoClock { return &autoClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *autoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *autoClock) After(d time.Duration) <-chan time.Time {
	if c.pace > 0 {
		time.Sleep(d / time.Duration(c.pace))
	}
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.waited += d
	now := c.t
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- now
	return ch
}

// faultEnv is a simulator on the auto clock and a client on the same clock.
type faultEnv struct {
	*env
	clk *autoClock
}

func newFaultEnv(t *testing.T, opts ...cfsim.Option) *faultEnv {
	clk := newAutoClock()
	e := newEnv(t, append([]cfsim.Option{cfsim.WithClock(clk.Now)}, opts...)...)
	return &faultEnv{env: e, clk: clk}
}

func (e *faultEnv) provisioner(t *testing.T) *provision.Provisioner {
	t.Helper()
	hc := cfapi.NewHTTPClient(cfapi.HTTPOptions{Clock: e.clk, MaxRetries: 50})
	s, err := cfapi.Connect(context.Background(), e.srv.URL, ciAuth, hc, cfapi.Options{Clock: e.clk})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	p := provision.New(s)
	return p
}

// converged checks what a user relies on after any fault: exactly one
// instance and one key in the simulator, and a complete credentials file.
func (e *faultEnv) converged(t *testing.T, req provision.UpRequest) {
	t.Helper()
	st := e.sim.Snapshot()
	if len(st.Instances) != 1 || len(st.Keys) != 1 {
		t.Errorf("simulator holds %d instances and %d keys, want exactly 1 and 1", len(st.Instances), len(st.Keys))
	}
	creds := readCreds(t, req.Out.Path)
	if creds["clientsecret"] == nil || creds["clientid"] == nil {
		t.Errorf("credentials file incomplete: %v", creds)
	}
}

func TestFaultRateLimitStorm(t *testing.T) {
	e := newFaultEnv(t, cfsim.WithRateLimit(3, 10*time.Second))
	p := e.provisioner(t)
	req := e.upReq(t, "storm", nil)
	if _, err := p.Up(context.Background(), req); err != nil {
		t.Fatalf("up under a 429 storm: %v", err)
	}
	e.converged(t, req)
	if e.clk.waited < 10*time.Second {
		t.Errorf("waited %s in total; Retry-After was not honoured", e.clk.waited)
	}
}

func TestFaultFlakyGateway(t *testing.T) {
	for seed := int64(1); seed <= 5; seed++ {
		t.Run(strconv.FormatInt(seed, 10), func(t *testing.T) {
			e := newFaultEnv(t, cfsim.WithFlakyGateway(0.3, seed))
			p := e.provisioner(t)
			req := e.upReq(t, "flaky", nil)
			for attempt := 0; ; attempt++ {
				_, err := p.Up(context.Background(), req)
				if err == nil {
					break
				}
				// A 502 on a create cannot be retried blindly; the run fails and
				// the next one converges. That is the contract.
				if attempt == 3 {
					t.Fatalf("up did not converge after 4 runs: %v", err)
				}
			}
			e.converged(t, req)
		})
	}
}

func TestFaultLostResponses(t *testing.T) {
	// Every write is applied by the simulator, and half the answers are lost.
	for i := 0; i < 5; i++ {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			e := newFaultEnv(t, cfsim.WithLostResponses(0.5), cfsim.WithFlakyGateway(0, int64(i)))
			p := e.provisioner(t)
			req := e.upReq(t, "lost", nil)
			if _, err := p.Up(context.Background(), req); err != nil {
				t.Fatalf("up with lost responses: %v", err)
			}
			e.converged(t, req)
		})
	}
}

func TestFaultTokenExpiresMidRun(t *testing.T) {
	// The broker takes 30 minutes; tokens live 5. The client must refresh on
	// the 401 and carry on.
	e := newFaultEnv(t, cfsim.WithBrokerDelay(30*time.Minute), cfsim.WithTokenLifetime(5*time.Minute))
	p := e.provisioner(t)
	req := e.upReq(t, "expiry", nil)
	if _, err := p.Up(context.Background(), req); err != nil {
		t.Fatalf("up across token expiry: %v", err)
	}
	e.converged(t, req)
	if n := e.sim.Counts().ByCall["POST /uaa/oauth/token"]; n < 2 {
		t.Errorf("%d token requests; the expired token was not replaced", n)
	}
}

func TestFaultOperationInProgressIsWaitedFor(t *testing.T) {
	e := newFaultEnv(t, cfsim.WithBrokerDelay(10*time.Minute))
	p := e.provisioner(t)
	req := e.upReq(t, "busy", nil)
	req.NoWait = true
	res, err := p.Up(context.Background(), req)
	if err != nil || res.Key != nil {
		t.Fatalf("--no-wait up: %v, %+v", err, res)
	}
	req.NoWait = false
	res, err = p.Up(context.Background(), req)
	if err != nil {
		t.Fatalf("up on an instance being created: %v", err)
	}
	if res.Instance.Action != provision.Unchanged || res.Key.Action != provision.Created {
		t.Errorf("actions %s/%s", res.Instance.Action, res.Key.Action)
	}
	e.converged(t, req)
}

func TestFaultConcurrentUps(t *testing.T) {
	e := newEnv(t, cfsim.WithBrokerDelay(40*time.Millisecond))
	req := e.upReq(t, "race", nil)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := e.connect(t, ciAuth)
			_, errs[i] = p.Up(context.Background(), req)
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
	st := e.sim.Snapshot()
	if len(st.Instances) != 1 || len(st.Keys) != 1 {
		t.Errorf("%d instances, %d keys after concurrent runs; want 1 and 1", len(st.Instances), len(st.Keys))
	}
	readCreds(t, req.Out.Path)
}

func TestFaultPerPageOne(t *testing.T) {
	e := newFaultEnv(t, cfsim.WithDefaultPerPage(1), cfsim.WithSecondBroker())
	p := e.provisioner(t)
	req := e.upReq(t, "paged", nil)
	_, err := p.Up(context.Background(), req)
	var ue *cfapi.UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("two brokers: err = %v, want a usage error naming --broker", err)
	}
	req.Broker = "xsuaa"
	if _, err := p.Up(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	e.converged(t, req)
}

// TestTransportRetries checks the decorator against a scripted server.
func TestTransportRetries(t *testing.T) {
	var calls atomic.Int32
	var script []int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1)) - 1
		code := 200
		if n < len(script) {
			code = script[n]
		}
		if code == 429 {
			w.Header().Set("Retry-After", "7")
		}
		w.WriteHeader(code)
	}))
	defer srv.Close()
	do := func(method string, codes ...int) (int, time.Duration, error) {
		calls.Store(0)
		script = codes
		clk := newAutoClock()
		hc := cfapi.NewHTTPClient(cfapi.HTTPOptions{Clock: clk})
		req, _ := http.NewRequest(method, srv.URL+"/v3/x", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, clk.waited, err
		}
		resp.Body.Close()
		return resp.StatusCode, clk.waited, nil
	}
	if code, waited, err := do(http.MethodGet, 429, 200); code != 200 || err != nil || waited != 7*time.Second {
		t.Errorf("429 then 200: %d %v, waited %s (want 7s from Retry-After)", code, err, waited)
	}
	if code, _, err := do(http.MethodGet, 503, 502, 504, 200); code != 200 || err != nil || calls.Load() != 4 {
		t.Errorf("GET through 5xx: %d %v after %d calls", code, err, calls.Load())
	}
	if code, _, err := do(http.MethodPost, 429, 200); code != 200 || err != nil {
		t.Errorf("POST after 429 (not processed, safe to repeat): %d %v", code, err)
	}
	_, _, err := do(http.MethodPost, 502, 200)
	if !errors.Is(err, cfapi.ErrResponseLost) || calls.Load() != 1 {
		t.Errorf("POST after 502: err %v after %d calls; want ErrResponseLost and no repeat", err, calls.Load())
	}
}

// TestTraceHidesSecrets checks --trace output for every secret of a run.
func TestTraceHidesSecrets(t *testing.T) {
	e := newEnv(t)
	var trace safeBuffer
	hc := cfapi.NewHTTPClient(cfapi.HTTPOptions{Trace: &trace})
	s, err := cfapi.Connect(context.Background(), e.srv.URL, cfapi.Auth{Username: cfsim.AdminUser, Password: cfsim.AdminPassword}, hc, cfapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := provision.New(s)
	req := e.upReq(t, "traced", nil)
	if _, err := p.Up(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	creds := readCreds(t, req.Out.Path)
	out := trace.String()
	for _, secret := range []string{cfsim.AdminPassword, creds["clientsecret"].(string), "eyJ"} {
		if containsStr(out, secret) {
			t.Errorf("trace shows a secret (%.6s…)", secret)
		}
	}
	if !containsStr(out, cfapi.PrivateData) || !containsStr(out, "POST /v3/service_instances") && !containsStr(out, "POST "+e.srv.URL+"/v3/service_instances") {
		t.Errorf("trace lacks requests or the hidden marker:\n%.2000s", out)
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

func containsStr(s, sub string) bool {
	return len(sub) > 0 && len(s) >= len(sub) && (func() bool {
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				return true
			}
		}
		return false
	})()
}
