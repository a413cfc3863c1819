package provision

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Transport is the HTTP decorator xsprov hands to go-cfclient: it retries
// rate-limited and gateway failures, and traces requests with secrets hidden.
type Transport struct {
	Base  http.RoundTripper
	Clock Clock
	// Done ends every wait (the root context's Done channel).
	Done <-chan struct{}
	// Deadline bounds every wait (zero: none).
	Deadline time.Time
	// MaxRetries bounds retries of one request (default 8).
	MaxRetries int
	// Trace, when set, receives each request and response, redacted.
	Trace io.Writer
	// OnWarning receives the warnings of X-Cf-Warnings response headers.
	OnWarning func(string)

	mu  sync.Mutex
	rng *rand.Rand
}

var _ http.RoundTripper = (*Transport)(nil)

// NewHTTPClient returns the client xsprov uses for Cloud Foundry, UAA and
// XSUAA: keep-alive, TLS verification unless skipTLS, and the Transport.
func NewHTTPClient(t *Transport, skipTLS bool) *http.Client {
	if t.Base == nil {
		base := http.DefaultTransport.(*http.Transport).Clone()
		base.TLSClientConfig = &tls.Config{InsecureSkipVerify: skipTLS} //nolint:gosec // only when the user asked
		base.MaxIdleConnsPerHost = 16
		t.Base = base
	}
	return &http.Client{Transport: t, Timeout: 60 * time.Second}
}

// idempotent requests may be retried after a gateway error; a POST to a token
// endpoint changes nothing and may be too.
func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/oauth/token")
}

// ErrResponseLost marks a non-idempotent request whose outcome is unknown:
// the connection failed or a gateway answered 502/503/504. The caller must
// look the resource up before trying again.
var ErrResponseLost = errors.New("the response was lost; the request may or may not have been applied")

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	max := t.MaxRetries
	if max == 0 {
		max = 8
	}
	var backoff time.Duration
	for attempt := 0; ; attempt++ {
		if attempt > 0 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req.Body = body
		}
		start := time.Now()
		resp, err := t.Base.RoundTrip(req)
		t.trace(req, resp, err, time.Since(start))
		retryable := idempotent(req)
		var wait time.Duration
		switch {
		case err != nil:
			if req.Context().Err() != nil {
				return nil, err
			}
			if !retryable {
				return nil, fmt.Errorf("%s %s: %w (%v)", req.Method, req.URL.Path, ErrResponseLost, err)
			}
			backoff = t.nextBackoff(backoff)
			wait = backoff
		case resp.StatusCode == http.StatusTooManyRequests:
			// The request was not processed, so any method may be repeated.
			wait = retryAfter(resp, t.clock().Now())
		case resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout:
			if !retryable {
				drain(resp)
				return nil, fmt.Errorf("%s %s: HTTP %d: %w", req.Method, req.URL.Path, resp.StatusCode, ErrResponseLost)
			}
			backoff = t.nextBackoff(backoff)
			wait = backoff
			if ra := retryAfter(resp, t.clock().Now()); ra > wait && resp.Header.Get("Retry-After") != "" {
				wait = ra
			}
		default:
			t.warnings(resp)
			return resp, nil
		}
		if attempt >= max || !t.canWait(wait) {
			return resp, err
		}
		if resp != nil {
			drain(resp)
		}
		if err := t.sleep(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}

// warnings passes on X-Cf-Warnings (URL-encoded, possibly several, each
// possibly comma-separated).
func (t *Transport) warnings(resp *http.Response) {
	if t.OnWarning == nil {
		return
	}
	for _, h := range resp.Header.Values("X-Cf-Warnings") {
		for _, part := range strings.Split(h, ",") {
			if w, err := url.QueryUnescape(strings.TrimSpace(part)); err == nil && w != "" {
				t.OnWarning(w)
			}
		}
	}
}

func (t *Transport) clock() Clock {
	if t.Clock == nil {
		return RealClock
	}
	return t.Clock
}

func (t *Transport) canWait(d time.Duration) bool {
	return t.Deadline.IsZero() || t.clock().Now().Add(d).Before(t.Deadline)
}

func (t *Transport) sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.Done:
		return context.Canceled
	case <-t.clock().After(d):
		return nil
	}
}

// nextBackoff is jittered exponential backoff from 200 ms to 10 s.
func (t *Transport) nextBackoff(prev time.Duration) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rng == nil {
		t.rng = rand.New(rand.NewSource(time.Now().UnixNano()))
	}
	d := prev * 2
	if d == 0 {
		d = 200 * time.Millisecond
	}
	if d > 10*time.Second {
		d = 10 * time.Second
	}
	// full jitter on the upper half keeps concurrent runs apart
	return d/2 + time.Duration(t.rng.Int63n(int64(d/2)+1))
}

// retryAfter reads Retry-After (seconds or HTTP date), then X-RateLimit-Reset
// (unix seconds); at least 100 ms, one second when neither is given.
func retryAfter(resp *http.Response, now time.Time) time.Duration {
	if v := resp.Header.Get("Retry-After"); v != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			return clampWait(time.Duration(n) * time.Second)
		}
		if at, err := http.ParseTime(v); err == nil {
			return clampWait(at.Sub(now))
		}
	}
	if v := resp.Header.Get("X-RateLimit-Reset"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return clampWait(time.Unix(n, 0).Sub(now))
		}
	}
	return time.Second
}

func clampWait(d time.Duration) time.Duration {
	if d < 100*time.Millisecond {
		return 100 * time.Millisecond
	}
	return d
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// PrivateData replaces every secret in traces, as the cf CLI does.
const PrivateData = "[PRIVATE DATA HIDDEN]"

var (
	reJSONSecret = regexp.MustCompile(`("(?:[A-Za-z_-]*(?:secret|password|token|key|certificate|credentials)[A-Za-z_-]*)"\s*:\s*)("(?:[^"\\]|\\.)*"|\{[^{}]*\})`)
	reFormSecret = regexp.MustCompile(`((?:^|&)(?:password|client_secret|refresh_token|assertion|client_assertion)=)[^&]*`)
)

// Redact hides secrets in a request or response body for traces.
func Redact(body []byte) []byte {
	b := reJSONSecret.ReplaceAll(body, []byte(`${1}"`+PrivateData+`"`))
	return reFormSecret.ReplaceAll(b, []byte("${1}"+PrivateData))
}

func (t *Transport) trace(req *http.Request, resp *http.Response, err error, took time.Duration) {
	if t.Trace == nil {
		return
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "REQUEST: [%s]\n%s %s\n", time.Now().UTC().Format(time.RFC3339), req.Method, req.URL.Redacted())
	for k, vs := range req.Header {
		v := strings.Join(vs, ", ")
		if strings.EqualFold(k, "Authorization") {
			v = PrivateData
		}
		fmt.Fprintf(&b, "%s: %s\n", k, v)
	}
	if req.GetBody != nil {
		if rc, e := req.GetBody(); e == nil {
			body, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
			rc.Close()
			if len(body) > 0 {
				b.Write(Redact(body))
				b.WriteByte('\n')
			}
		}
	}
	if err != nil {
		fmt.Fprintf(&b, "RESPONSE: error after %s: %v\n\n", took.Round(time.Millisecond), err)
	} else {
		fmt.Fprintf(&b, "RESPONSE: [%s] %s (%s)\n", time.Now().UTC().Format(time.RFC3339), resp.Status, took.Round(time.Millisecond))
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if len(body) > 0 {
			b.Write(Redact(body))
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = t.Trace.Write(b.Bytes())
}

// isConnError reports a failure to reach the API at all.
func isConnError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &oe) || (errors.As(err, &ne) && ne.Timeout())
}
