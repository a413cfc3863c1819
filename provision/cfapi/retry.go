package cfapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Retry is the HTTP decorator that retries rate-limited and gateway
// failures. A request whose outcome is unknown and that is not idempotent (a
// POST that creates) is never repeated: it fails with ErrResponseLost so the
// caller can look the resource up first. Waits end with the request's
// context, and a wait that would pass its deadline is not started.
type Retry struct {
	Base  http.RoundTripper
	Clock Clock
	// MaxRetries bounds retries of one request (default 8).
	MaxRetries int

	mu  sync.Mutex
	rng *rand.Rand
}

var _ http.RoundTripper = (*Retry)(nil)

// ErrResponseLost marks a non-idempotent request whose outcome is unknown:
// the connection failed or a gateway answered 502/503/504. The caller must
// look the resource up before trying again.
var ErrResponseLost = errors.New("the response was lost; the request may or may not have been applied")

// idempotent requests may be retried after a gateway error; a POST to a token
// endpoint changes nothing and may be too.
func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/token")
}

// RoundTrip implements http.RoundTripper.
func (t *Retry) RoundTrip(req *http.Request) (*http.Response, error) {
	maxRetries := t.MaxRetries
	if maxRetries == 0 {
		maxRetries = 8
	}
	clk := clockOr(t.Clock)
	var backoff time.Duration
	for attempt := 0; ; attempt++ {
		if attempt > 0 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req.Body = body
		}
		resp, err := t.Base.RoundTrip(req)
		retryable := idempotent(req)
		var wait time.Duration
		switch {
		case err != nil:
			if req.Context().Err() != nil || IsUntrustedCert(err) {
				// an untrusted certificate stays untrusted: no retry
				return nil, err
			}
			if !retryable {
				return nil, fmt.Errorf("%s %s: %w (%v)", req.Method, req.URL.Path, ErrResponseLost, err)
			}
			backoff = t.nextBackoff(backoff)
			wait = backoff
		case resp.StatusCode == http.StatusTooManyRequests:
			// The request was not processed, so any method may be repeated.
			wait = retryAfter(resp, clk.Now())
		case resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout:
			if !retryable {
				drain(resp)
				return nil, fmt.Errorf("%s %s: HTTP %d: %w", req.Method, req.URL.Path, resp.StatusCode, ErrResponseLost)
			}
			backoff = t.nextBackoff(backoff)
			wait = backoff
			if ra := retryAfter(resp, clk.Now()); ra > wait && resp.Header.Get("Retry-After") != "" {
				wait = ra
			}
		default:
			return resp, nil
		}
		if attempt >= maxRetries || !canWait(req.Context(), clk, wait) {
			return resp, err
		}
		if resp != nil {
			drain(resp)
		}
		if err := sleep(req.Context(), clk, wait); err != nil {
			return nil, err
		}
	}
}

// canWait tells whether a wait of d ends before the context's deadline.
func canWait(ctx context.Context, clk Clock, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || clk.Now().Add(d).Before(dl)
}

// nextBackoff is jittered exponential backoff from 200 ms to 10 s.
func (t *Retry) nextBackoff(prev time.Duration) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rng == nil {
		t.rng = rand.New(rand.NewSource(time.Now().UnixNano()))
	}
	d := min(max(prev*2, 200*time.Millisecond), 10*time.Second)
	// full jitter on the upper half keeps concurrent runs apart
	return d/2 + time.Duration(t.rng.Int63n(int64(d/2)+1))
}

// retryAfter reads Retry-After (seconds or HTTP date), then X-RateLimit-Reset
// (unix seconds); at least 100 ms, one second when neither is given.
func retryAfter(resp *http.Response, now time.Time) time.Duration {
	const least = 100 * time.Millisecond
	if v := resp.Header.Get("Retry-After"); v != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			return max(time.Duration(n)*time.Second, least)
		}
		if at, err := http.ParseTime(v); err == nil {
			return max(at.Sub(now), least)
		}
	}
	if v := resp.Header.Get("X-RateLimit-Reset"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return max(time.Unix(n, 0).Sub(now), least)
		}
	}
	return time.Second
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
