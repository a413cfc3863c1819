package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSimCommand serves `xsprov sim` in-process with knobs, drives it over
// HTTP, and stops it as Ctrl-C would.
func TestSimCommand(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.yaml")
	_ = os.WriteFile(seed, []byte(`orgs: [{name: globex, spaces: [sandbox]}]
users: [{name: jane, password: jane-pw}]
clients: [{id: pipeline, secret: pipe-secret, grants: [client_credentials]}]
brokers: [{name: xsuaa, offerings: [{name: xsuaa, plans: [application]}]}]
`), 0o600)
	out, errOut := &syncBuffer{}, &syncBuffer{}
	ios := &IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"sim", "--addr", "127.0.0.1:0", "--cert-addr", "127.0.0.1:0", "--seed", seed,
			"--state", filepath.Join(dir, "state.json"), "--delay", "create=10ms", "--rate-limit", "1000/1m", "--log"}, &Factory{IO: ios, Getenv: func(string) string { return "" }})
	}()
	re := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	var base string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
			break
		}
	}
	if base == "" {
		t.Fatalf("the simulator did not start:\n%s\n%s", out.String(), errOut.String())
	}
	for _, want := range []string{"user:    jane / jane-pw", "client:  pipeline / pipe-secret", "target:  org globex, space sandbox", "mTLS:    https://127.0.0.1:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("start-up output lacks %q:\n%s", want, out.String())
		}
	}
	get := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(http.MethodGet, "/"); code != 200 || !strings.Contains(body, `"cloud_controller_v3"`) {
		t.Errorf("GET /: %d %s", code, body)
	}
	code, body := get(http.MethodGet, "/_sim/counts")
	var c struct{ Total int }
	if code != 200 || json.Unmarshal([]byte(body), &c) != nil || c.Total != 1 {
		t.Errorf("counts after one request: %d %s", code, body)
	}
	if code, _ := get(http.MethodDelete, "/_sim/counts"); code != 204 {
		t.Errorf("reset counts: %d", code)
	}
	if code, _ := get(http.MethodPut, "/_sim/delay?op=all&duration=5ms"); code != 204 {
		t.Errorf("delay: %d", code)
	}
	if code, _ := get(http.MethodPut, "/_sim/delay?op=nope&duration=5ms"); code != 400 {
		t.Errorf("bad delay op: %d", code)
	}
	if code, _ := get(http.MethodPost, "/_sim/fail-next?op=bind&message=nope"); code != 204 {
		t.Errorf("fail-next: %d", code)
	}
	if code, body := get(http.MethodGet, "/_sim/ca.pem"); code != 200 || !strings.Contains(body, "BEGIN CERTIFICATE") {
		t.Errorf("ca.pem: %d", code)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(errOut.String(), "Simulator stopped.") {
			t.Errorf("stop: exit %d, stderr:\n%s", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the simulator did not stop")
	}
	if !strings.Contains(errOut.String(), "cfsim: ") {
		t.Error("--log wrote no request lines")
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err != nil {
		t.Errorf("state not saved: %v", err)
	}
}

func TestSimFlags(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("orgs: [{name: a}]\nbogus: 1\n"), 0o600)
	empty := filepath.Join(dir, "empty.yaml")
	_ = os.WriteFile(empty, []byte("orgs: []\n"), 0o600)
	for _, args := range [][]string{
		{"--delay", "create"}, {"--delay", "sleep=1s"}, {"--delay", "create=soon"}, {"--broker-delay", "-1s"},
		{"--rate-limit", "100"}, {"--rate-limit", "0/1m"}, {"--flaky", "2"}, {"--lost-responses", "-1"},
		{"--hide-plan", "application"}, {"--fail-next", "create"}, {"--fail-next", "explode=x"},
		{"--per-page", "0"}, {"--token-lifetime", "1ms"}, {"--seed", bad}, {"--seed", empty}, {"--seed", "/nope"},
		{"--addr", "not-an-address"}, {"--addr", "127.0.0.1:0", "--cert-addr", "999.1.1.1:1", "--public"},
		// beyond loopback only when asked: it serves well-known passwords
		{"--addr", "0.0.0.0:9022"}, {"--addr", "127.0.0.1:0", "--cert-addr", ":9023"},
	} {
		ios, _, _, errOut := TestStreams()
		code := run(context.Background(), append([]string{"sim"}, args...), &Factory{IO: ios, Getenv: func(string) string { return "" }})
		if code != exitUsage || errOut.Len() == 0 {
			t.Errorf("sim %v: exit %d, want 2 with a message; stderr %q", args, code, errOut.String())
		}
	}
}
