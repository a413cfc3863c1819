package provision

import (
	"context"
	"fmt"
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
	d := time.Duration(float64(waited) * b.Fraction)
	if d < b.Min {
		d = b.Min
	}
	if d > b.Max {
		d = b.Max
	}
	return d
}

// poll calls check at once and then on the backoff schedule until it reports
// done, fails, or ctx ends.
func poll(ctx context.Context, clk Clock, b Backoff, check func() (bool, error)) error {
	start := clk.Now()
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-clk.After(b.interval(clk.Now().Sub(start))):
		}
	}
}

// waitJob polls a CF job until COMPLETE (returning it) or FAILED (returning a
// *JobFailedError with the job's typed errors).
func (p *Provisioner) waitJob(ctx context.Context, jobGUID, what string) (*resource.Job, error) {
	var job *resource.Job
	err := poll(ctx, p.clock(), p.backoff(), func() (bool, error) {
		j, err := p.S.CF.Jobs.Get(ctx, jobGUID)
		if err != nil {
			return false, classify("get job "+jobGUID, err)
		}
		job = j
		p.warnings(j.Warnings)
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

func (p *Provisioner) warnings(ws []resource.JobWarning) {
	for _, w := range ws {
		key := w.Detail
		if p.seenWarn[key] {
			continue
		}
		if p.seenWarn == nil {
			p.seenWarn = map[string]bool{}
		}
		p.seenWarn[key] = true
		p.rep().Warn(w.Detail)
	}
}

// waitInstance polls an instance until its last operation is no longer in
// progress. It returns nil when the instance is gone.
func (p *Provisioner) waitInstance(ctx context.Context, guid string) (*resource.ServiceInstance, error) {
	var inst *resource.ServiceInstance
	err := poll(ctx, p.clock(), p.backoff(), func() (bool, error) {
		si, err := p.S.CF.ServiceInstances.Get(ctx, guid)
		if isCode(err, codeResourceNotFound) {
			inst = nil
			return true, nil
		}
		if err != nil {
			return false, classify("get service instance", err)
		}
		inst = si
		return !opBusy(si.LastOperation), nil
	})
	return inst, err
}

// waitKey polls a key until its last operation is no longer in progress; nil
// when the key is gone.
func (p *Provisioner) waitKey(ctx context.Context, guid string) (*resource.ServiceCredentialBinding, error) {
	var key *resource.ServiceCredentialBinding
	err := poll(ctx, p.clock(), p.backoff(), func() (bool, error) {
		k, err := p.S.CF.ServiceCredentialBindings.Get(ctx, guid)
		if isCode(err, codeResourceNotFound) {
			key = nil
			return true, nil
		}
		if err != nil {
			return false, classify("get service key", err)
		}
		key = k
		return !opBusy(k.LastOperation), nil
	})
	return key, err
}

func opBusy(op resource.LastOperation) bool {
	return op.State == "initial" || op.State == "in progress"
}

func describeOp(op resource.LastOperation) string {
	if op.Type == "" {
		return "no operation"
	}
	s := fmt.Sprintf("%s %s", op.Type, op.State)
	if op.Description != "" {
		s += ": " + op.Description
	}
	return s
}

// jobResourceGUID returns the GUID of the resource a job links to.
func jobResourceGUID(j *resource.Job, link string) string {
	if j == nil {
		return ""
	}
	l, ok := j.Links[link]
	if !ok {
		return ""
	}
	return lastSegment(l.Href)
}

func lastSegment(u string) string {
	for i := len(u) - 1; i >= 0; i-- {
		if u[i] == '/' {
			return u[i+1:]
		}
	}
	return u
}
