package cfapi

import (
	"context"
	"fmt"
	"path"
	"time"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
)

// Clock is the time source, injected so tests and benchmarks control waiting.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RealClock is the wall clock.
var RealClock Clock = realClock{}

func clockOr(c Clock) Clock {
	if c == nil {
		return RealClock
	}
	return c
}

func sleep(ctx context.Context, clk Clock, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-clk.After(d):
		return nil
	}
}

// Backoff is the schedule while the Cloud Controller itself works on an
// operation (a job PROCESSING, a resource's last operation "initial"): a
// synchronous broker answers in this phase, so it must be seen quickly. The
// first check happens at once, then every Min while less than Dense has
// passed, then Fraction of the time waited so far, at most Max. A quick
// broker's end is thus seen within Min (today's small overhead), a slower one
// within Fraction of its time, and a long wait settles at one check every
// Max.
type Backoff struct {
	Min      time.Duration
	Max      time.Duration
	Fraction float64
	Dense    time.Duration
}

// DefaultBackoff: every 25 ms for the first 500 ms, then 6% of the time
// waited, at most every 3 s (the cf CLI's interval).
var DefaultBackoff = Backoff{Min: 25 * time.Millisecond, Max: 3 * time.Second, Fraction: 0.06, Dense: 500 * time.Millisecond}

func (b Backoff) interval(waited time.Duration) time.Duration {
	if waited < b.Dense {
		return b.Min
	}
	return min(max(time.Duration(float64(waited)*b.Fraction), b.Min), b.Max)
}

// Polling is the schedule once the Cloud Controller polls an asynchronous
// broker (a job POLLING, a last operation "in progress"). The CC asks the
// broker right after its 202 (that is when the job turns POLLING) and then
// only every broker poll interval (60 s by default; SAP BTP every few
// seconds), each poll delayed a little by the CC's worker; a POLLING job
// cannot complete between two of those polls, so checking in between only
// costs requests. xsprov checks just after the instants a poll is likely:
// at each offset of First from the moment the job turned POLLING, then every
// Step, each time Slack later (the worker's delay). With First 5 s and 10 s
// and Step 10 s this is just after every CC poll of a 5 s, 10 s, 20 s, 30 s
// or 60 s cadence, and within 10 s of a poll of any other cadence, at one
// request per 10 s (the cf CLI sends one every 3 s).
type Polling struct {
	First []time.Duration
	Step  time.Duration
	Slack time.Duration
}

// DefaultPolling checks 5 s and 10 s after a job turned POLLING, then every
// 10 s, 600 ms after each of those instants.
var DefaultPolling = Polling{First: []time.Duration{5 * time.Second, 10 * time.Second}, Step: 10 * time.Second, Slack: 600 * time.Millisecond}

// next is the time of the first check after now for a job that turned
// POLLING at anchor.
func (p Polling) next(anchor, now time.Time) time.Time {
	for _, o := range p.First {
		if t := anchor.Add(o + p.Slack); t.After(now) {
			return t
		}
	}
	last := time.Duration(0)
	if len(p.First) > 0 {
		last = p.First[len(p.First)-1]
	}
	k := now.Sub(anchor.Add(last+p.Slack))/p.Step + 1
	return anchor.Add(last + time.Duration(k)*p.Step + p.Slack)
}

// pollingSince estimates, on the client's clock, when the Cloud Controller
// turned an operation POLLING: the server says updatedAt (CC timestamps have
// whole seconds, so the truth is in [updatedAt, updatedAt+1s)), and it
// happened after this client's previous check was sent (lo) and before this
// answer came (hi). The estimate errs late, so checks come after a CC poll
// rather than just before it; a clock skew that puts the server's word
// outside [lo, hi] falls back on hi.
func pollingSince(updatedAt, lo, hi time.Time) time.Time {
	a := updatedAt.Add(time.Second)
	if updatedAt.IsZero() || a.Before(lo) || a.After(hi) {
		return hi
	}
	return a
}

// pollPhase is what a check saw: done, or still busy and whether the CC is
// polling an asynchronous broker (and since when, by the server's clock).
type pollPhase struct {
	done    bool
	polling bool
	since   time.Time
}

// wait checks at once, then on the backoff schedule while the CC works and on
// the polling schedule once it polls the broker, until check reports done,
// fails, or ctx ends.
func (s *Session) wait(ctx context.Context, check func() (pollPhase, error)) error {
	clk := s.clock
	start := clk.Now()
	lo := start
	var anchor time.Time
	for {
		sent := clk.Now()
		ph, err := check()
		if err != nil || ph.done {
			return err
		}
		now := clk.Now()
		var d time.Duration
		if ph.polling {
			if anchor.IsZero() {
				anchor = pollingSince(ph.since, lo, now)
			}
			d = s.polling.next(anchor, now).Sub(now)
		} else {
			anchor = time.Time{}
			d = s.backoff.interval(now.Sub(start))
		}
		lo = sent
		if err := sleep(ctx, clk, d); err != nil {
			return err
		}
	}
}

// WaitJob polls a CF job until COMPLETE (returning it) or FAILED (returning
// it and a *JobFailedError with the job's typed errors). warn, when set,
// receives the job's warnings.
func (s *Session) WaitJob(ctx context.Context, jobGUID, what string, warn func(string)) (*resource.Job, error) {
	var job *resource.Job
	err := s.wait(ctx, func() (pollPhase, error) {
		j, err := s.CF.Jobs.Get(ctx, jobGUID)
		if err != nil {
			return pollPhase{}, Classify("get job "+jobGUID, err)
		}
		job = j
		if warn != nil {
			for _, w := range j.Warnings {
				warn(w.Detail)
			}
		}
		switch j.State {
		case resource.JobStateComplete:
			return pollPhase{done: true}, nil
		case resource.JobStateFailed:
			return pollPhase{done: true}, &JobFailedError{What: what, Errors: j.Errors}
		}
		return pollPhase{polling: j.State == resource.JobStatePolling, since: j.UpdatedAt}, nil
	})
	return job, err
}

// WaitInstance polls an instance until its last operation is no longer in
// progress. It returns nil when the instance is gone.
func (s *Session) WaitInstance(ctx context.Context, guid string) (*resource.ServiceInstance, error) {
	return waitSettled(ctx, s, "get service instance", func() (*resource.ServiceInstance, error) {
		return s.CF.ServiceInstances.Get(ctx, guid)
	}, func(i *resource.ServiceInstance) resource.LastOperation { return i.LastOperation })
}

// WaitKey polls a key until its last operation is no longer in progress; nil
// when the key is gone.
func (s *Session) WaitKey(ctx context.Context, guid string) (*resource.ServiceCredentialBinding, error) {
	return waitSettled(ctx, s, "get service key", func() (*resource.ServiceCredentialBinding, error) {
		return s.CF.ServiceCredentialBindings.Get(ctx, guid)
	}, func(k *resource.ServiceCredentialBinding) resource.LastOperation { return k.LastOperation })
}

// waitSettled polls get until the resource's last operation is no longer
// busy; nil when the resource is gone (404).
func waitSettled[T any](ctx context.Context, s *Session, what string, get func() (*T, error), op func(*T) resource.LastOperation) (*T, error) {
	var cur *T
	err := s.wait(ctx, func() (pollPhase, error) {
		r, err := get()
		if IsCode(err, CodeResourceNotFound) {
			cur = nil
			return pollPhase{done: true}, nil
		}
		if err != nil {
			return pollPhase{}, Classify(what, err)
		}
		cur = r
		return opPhase(op(r)), nil
	})
	return cur, err
}

// opPhase reads a last operation: "in progress" is the CC polling an
// asynchronous broker (or running a delete), "initial" the CC at work.
func opPhase(op resource.LastOperation) pollPhase {
	if !OpBusy(op) {
		return pollPhase{done: true}
	}
	return pollPhase{polling: op.State == "in progress", since: op.UpdatedAt}
}

// OpBusy tells whether an operation is still running.
func OpBusy(op resource.LastOperation) bool {
	return op.State == "initial" || op.State == "in progress"
}

// DescribeOp words a last operation ("create succeeded").
func DescribeOp(op resource.LastOperation) string {
	if op.Type == "" {
		return "no operation"
	}
	s := fmt.Sprintf("%s %s", op.Type, op.State)
	if op.Description != "" {
		s += ": " + op.Description
	}
	return s
}

// JobResourceGUID returns the GUID of the resource a job links to.
func JobResourceGUID(j *resource.Job, link string) string {
	if j == nil {
		return ""
	}
	l, ok := j.Links[link]
	if !ok || l.Href == "" {
		return ""
	}
	return path.Base(l.Href)
}
