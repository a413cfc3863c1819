package cfapi

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Budget is the HTTP decorator that shares one request budget among every
// worker of a run (the forked sessions of apply share the transport). The
// Cloud Controller rate-limits per user, and a pipeline's user is shared:
//   - a 429's Retry-After pauses every worker once, not each one separately;
//   - X-RateLimit-Remaining and X-RateLimit-Reset slow the run down before
//     the limit: the requests left are spread over the time left;
//   - MaxRPS, when set, caps the rate by hand.
//
// Every wait ends with the request's context, so it counts against
// --timeout.
type Budget struct {
	Base  http.RoundTripper
	Clock Clock
	// MaxRPS caps requests per second (0: no cap).
	MaxRPS float64

	once    sync.Once
	limiter *rate.Limiter

	mu       sync.Mutex
	pauseTo  time.Time     // no request before (a 429's Retry-After)
	nextSlot time.Time     // the next free slot while pacing
	gap      time.Duration // between requests while the budget runs low (0: none)
	// what the limiter said last, less the requests sent since: at 0 the
	// run waits for the reset instead of running into 429s
	known     bool
	remaining int
	resetAt   time.Time
}

var _ http.RoundTripper = (*Budget)(nil)

// RoundTrip implements http.RoundTripper.
func (b *Budget) RoundTrip(req *http.Request) (*http.Response, error) {
	clk := clockOr(b.Clock)
	b.once.Do(func() {
		if b.MaxRPS > 0 {
			b.limiter = rate.NewLimiter(rate.Limit(b.MaxRPS), 1)
		}
	})
	if b.limiter != nil {
		if err := b.limiter.Wait(req.Context()); err != nil {
			return nil, err
		}
	}
	if wait := b.reserve(clk.Now()); wait > 0 {
		if err := sleep(req.Context(), clk, wait); err != nil {
			return nil, err
		}
	}
	resp, err := b.Base.RoundTrip(req)
	if err == nil {
		b.learn(resp, clk.Now())
	}
	return resp, err
}

// reserve is how long a request must wait: until a pause ends, and while
// pacing for a slot of its own (each request takes one, so workers waiting
// at the same time go one after the other).
func (b *Budget) reserve(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	at := now
	if b.pauseTo.After(at) {
		at = b.pauseTo
	}
	if b.known && b.remaining <= 0 && b.resetAt.After(at) {
		at = b.resetAt
		b.known = false // a fresh window: the next answer says how much
	}
	if b.known {
		b.remaining--
	}
	if b.gap > 0 {
		if b.nextSlot.After(at) {
			at = b.nextSlot
		}
		b.nextSlot = at.Add(b.gap)
	}
	return at.Sub(now)
}

// paceBelow is the share of the limit under which requests are spread
// over the time left until the reset, at most maxGap apart: a nearly spent
// budget slows a run down instead of stopping it with 429s (which wait
// until the reset, up to an hour), without stalling a small run.
const (
	paceBelow = 0.1
	maxGap    = 2 * time.Second
)

// learn reads the limiter's headers of a response.
func (b *Budget) learn(resp *http.Response, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if resp.StatusCode == http.StatusTooManyRequests {
		if until := now.Add(retryAfter(resp, now)); until.After(b.pauseTo) {
			b.pauseTo = until
		}
		return
	}
	limit, err1 := strconv.Atoi(resp.Header.Get("X-RateLimit-Limit"))
	remaining, err2 := strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining"))
	reset, err3 := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || limit <= 0 {
		return
	}
	left := time.Unix(reset, 0).Sub(now)
	resetAt := time.Unix(reset, 0)
	if b.known && resetAt.Equal(b.resetAt) && b.remaining < remaining {
		// answers to earlier requests arrive late: within one window the
		// lower count (ours, less what is in flight) holds
		remaining = b.remaining
	}
	b.known, b.remaining, b.resetAt = true, remaining, resetAt
	if float64(remaining) >= paceBelow*float64(limit) || left <= 0 {
		b.gap = 0
		return
	}
	// spread what is left over the time left
	b.gap = min(left/time.Duration(max(remaining, 1)), maxGap)
}
