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

// Backoff is the polling schedule: the first check happens at once, then
// the interval is Fraction of the time waited so far, at least Min and at most
// Max. A job that ends after t is therefore seen within max(Min, Fraction·t),
// which keeps xsprov's overhead above the broker's own time small for quick
// and slow brokers alike, while a long wait settles at one check every Max.
type Backoff struct {
	Min      time.Duration
	Max      time.Duration
	Fraction float64
}

// DefaultBackoff checks at once, then every 25 ms growing with 4% of the time
// waited, up to every 3 s.
var DefaultBackoff = Backoff{Min: 25 * time.Millisecond, Max: 3 * time.Second, Fraction: 0.04}

func (b Backoff) interval(waited time.Duration) time.Duration {
	return min(max(time.Duration(float64(waited)*b.Fraction), b.Min), b.Max)
}

// Poll calls check at once and then on the backoff schedule until it reports
// done, fails, or ctx ends (its deadline is the only timeout).
func Poll(ctx context.Context, clk Clock, b Backoff, check func() (bool, error)) error {
	start := clk.Now()
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		if err := sleep(ctx, clk, b.interval(clk.Now().Sub(start))); err != nil {
			return err
		}
	}
}

// WaitJob polls a CF job until COMPLETE (returning it) or FAILED (returning
// it and a *JobFailedError with the job's typed errors). warn, when set,
// receives the job's warnings.
func (s *Session) WaitJob(ctx context.Context, jobGUID, what string, warn func(string)) (*resource.Job, error) {
	var job *resource.Job
	err := Poll(ctx, s.clock, s.backoff, func() (bool, error) {
		j, err := s.CF.Jobs.Get(ctx, jobGUID)
		if err != nil {
			return false, Classify("get job "+jobGUID, err)
		}
		job = j
		if warn != nil {
			for _, w := range j.Warnings {
				warn(w.Detail)
			}
		}
		switch j.State {
		case resource.JobStateComplete:
			return true, nil
		case resource.JobStateFailed:
			return true, &JobFailedError{What: what, Errors: j.Errors}
		}
		return false, nil
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
	err := Poll(ctx, s.clock, s.backoff, func() (bool, error) {
		r, err := get()
		if IsCode(err, CodeResourceNotFound) {
			cur = nil
			return true, nil
		}
		if err != nil {
			return false, Classify(what, err)
		}
		cur = r
		return !OpBusy(op(r)), nil
	})
	return cur, err
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
