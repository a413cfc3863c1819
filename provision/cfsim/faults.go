package cfsim

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header { return d.h }

func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

func (d *discardWriter) WriteHeader(int) {}

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
	// The CC's estimate: the fraction left, rounded down to the nearest
	// 10%, times the limit.
	remaining := max(s.opts.rateLimit-n, 0) * 10 / s.opts.rateLimit * s.opts.rateLimit / 10
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
		if !slices.Contains(AllOps, op) {
			writeError(req.w, errBadQuery("op must be one of all, "+strings.Join(AllOps, ", ")))
			return
		}
		s.SetDelay(op, d)
	}
	req.w.WriteHeader(http.StatusNoContent)
}

// JobStat is what a benchmark learns about one job: when it started and
// ended, when a GET first saw it ended, and how many GETs it took.
type JobStat struct {
	GUID      string     `json:"guid"`
	Name      string     `json:"name"` // the instance's or key's
	Operation string     `json:"operation"`
	State     string     `json:"state"`
	Created   time.Time  `json:"created_at"`
	Ended     *time.Time `json:"ended_at,omitempty"`
	Seen      *time.Time `json:"seen_at,omitempty"`
	Checks    int        `json:"checks"`
}

// JobStats lists every job the simulator holds.
func (s *Sim) JobStats() []JobStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	var out []JobStat
	for _, j := range s.st.Jobs {
		st := JobStat{GUID: j.GUID, Name: j.Name, Operation: j.Operation, State: j.State, Created: j.Created, Seen: j.SeenAt, Checks: j.Checks}
		if j.State == "COMPLETE" || j.State == "FAILED" {
			end := j.Updated
			st.Ended = &end
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b JobStat) int { return a.Created.Compare(b.Created) })
	return out
}

// ctlJobs: GET /_sim/jobs lists JobStats; DELETE forgets the ended jobs.
func (s *Sim) ctlJobs(req *request) {
	switch req.r.Method {
	case http.MethodGet:
		writeJSON(req.w, http.StatusOK, s.JobStats())
	case http.MethodDelete:
		s.mu.Lock()
		for g, j := range s.st.Jobs {
			if j.State == "COMPLETE" || j.State == "FAILED" {
				delete(s.st.Jobs, g)
			}
		}
		s.dirty = true
		s.mu.Unlock()
		req.w.WriteHeader(http.StatusNoContent)
	default:
		writeError(req.w, errMethod())
	}
}

// ctlTiming: PUT /_sim/timing?profile=btp&async=true&cc_poll_interval=60s
// (each optional; the profile first, then the rest on top of it).
func (s *Sim) ctlTiming(req *request) {
	q := req.r.URL.Query()
	var opts []Option
	if name := q.Get("profile"); name != "" {
		p, err := LookupProfile(name)
		if err != nil {
			writeError(req.w, errBadQuery(err.Error()))
			return
		}
		opts = append(opts, WithProfile(p))
	}
	if v := q.Get("async"); v != "" {
		switch v {
		case "true":
			opts = append(opts, WithAsyncBroker())
		case "false":
			opts = append(opts, WithSyncBroker())
		default:
			writeError(req.w, errBadQuery("async must be true or false"))
			return
		}
	}
	if v := q.Get("cc_poll_interval"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			writeError(req.w, errBadQuery("cc_poll_interval must be a positive Go duration such as 60s"))
			return
		}
		opts = append(opts, WithCCPollInterval(d))
	}
	if v := q.Get("worker_delay"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			writeError(req.w, errBadQuery("worker_delay must be a Go duration such as 500ms"))
			return
		}
		opts = append(opts, WithWorkerDelay(d))
	}
	s.mu.Lock()
	for _, o := range opts {
		o(&s.opts)
	}
	s.mu.Unlock()
	req.w.WriteHeader(http.StatusNoContent)
}

// ctlFailNext: POST /_sim/fail-next?op=create&message=quota+exceeded.
func (s *Sim) ctlFailNext(req *request) {
	q := req.r.URL.Query()
	if !slices.Contains(AllOps, q.Get("op")) || q.Get("message") == "" {
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
