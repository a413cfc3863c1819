package main

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/xsprov/xsprov/provision/cfsim"
)

// TestUntrustedCertificateNamesTheWayOut: an API whose certificate is not
// trusted is named as such, with --cacert and --skip-ssl-validation.
func TestUntrustedCertificateNamesTheWayOut(t *testing.T) {
	srv := httptest.NewTLSServer(cfsim.MustNew())
	defer srv.Close()
	code, _, stderr := runIn(t, srv.URL, t.TempDir(), nil, "status", "x")
	if code != exitAuth && code != exitFailure {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{"is not trusted", "--cacert", "--skip-ssl-validation", "/_sim/ca.pem"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	// and doctor says it on its API line
	code, stdout, _ := runIn(t, srv.URL, t.TempDir(), nil, "doctor")
	if code != exitFailure || !strings.Contains(stdout, "FAIL  API") || !strings.Contains(stdout, "--cacert") {
		t.Errorf("doctor: exit %d\n%s", code, stdout)
	}
}

// TestReporterColoursAndWaiting: OK green and FAILED red on a terminal, not
// with NO_COLOR or CF_COLOR=false; a live line on a terminal while a step
// runs, a line every heartbeat off one.
func TestReporterColoursAndWaiting(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name      string
		tty       bool
		getenv    func(string) string
		wantColor bool
	}{
		{"terminal", true, env(), true},
		{"NO_COLOR", true, env("NO_COLOR", "1"), false},
		{"CF_COLOR=false", true, env("CF_COLOR", "false"), false},
		{"not a terminal", false, env(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			r := newReporter(&IOStreams{ErrOut: &b, stderrTTY: tc.tty}, tc.getenv)
			r.Step("Creating service instance x")
			r.Done()
			r.Step("Creating service key y")
			r.Fail()
			got := b.String()
			if has := strings.Contains(got, "\x1b[32;1mOK\x1b[0m") && strings.Contains(got, "\x1b[31;1mFAILED\x1b[0m"); has != tc.wantColor {
				t.Errorf("colours %v, want %v: %q", has, tc.wantColor, got)
			}
		})
	}
	// waitFor polls b for want (a loaded machine schedules the ticker late;
	// no fixed sleep decides)
	waitFor := func(b *syncBuffer, want string) bool {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if strings.Contains(b.String(), want) {
				return true
			}
		}
		return false
	}
	var b syncBuffer
	r := newReporter(&IOStreams{ErrOut: &b}, env())
	r.heartbeat = 20 * time.Millisecond
	r.Step("Creating service instance slow")
	if !waitFor(&b, "Still waiting: Creating service instance slow") {
		t.Errorf("no heartbeat off a terminal:\n%s", b.String())
	}
	r.Done()
	var tb syncBuffer
	r = newReporter(&IOStreams{ErrOut: &tb, stderrTTY: true}, env("NO_COLOR", "1"))
	r.Step("Creating service instance slow")
	if !waitFor(&tb, "\r\x1b[KWaiting for the operation to complete... ") {
		t.Errorf("no live line on a terminal: %q", tb.String())
	}
	r.Done()
	if !strings.HasSuffix(tb.String(), "\r\x1b[KOK") && !strings.Contains(tb.String(), "\r\x1b[KOK (") {
		t.Errorf("the live line is not cleared before OK: %q", tb.String())
	}
}
