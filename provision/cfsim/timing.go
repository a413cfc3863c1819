package cfsim

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/xsprov/xsprov/provision/xssec"
)

// The timing model. A Cloud Controller runs every broker operation as a job:
//
//   - A synchronous broker (SAP's documented default for XSUAA) answers the
//     CC's request when its work is done: the job stays PROCESSING for the
//     broker's time, then turns COMPLETE or FAILED; an instance's
//     last_operation goes initial → succeeded.
//   - An asynchronous broker (every operation on SAP BTP, where Service
//     Manager's proxy answers; or an XSUAA descriptor with
//     "xsenableasyncservice": "true") answers 202 at once. The CC polls the
//     broker's last_operation right after the 202, in the same job run, and
//     then every CC poll interval (broker_client_default_async_poll_interval_
//     seconds, 60 s by default), each poll re-enqueued after the previous one
//     with the CC worker's own scheduling delay added. The job is POLLING
//     (updated_at unchanged) and the resource "in progress" until the first
//     poll at or after the broker's end: a POLLING job cannot complete between
//     two CC polls.

// Profile is a named timing of the broker and the Cloud Controller.
type Profile struct {
	Name string
	// Async lists the operations the broker answers asynchronously.
	Async []string
	// Delays is the broker time of each operation.
	Delays map[string]time.Duration
	// CCPollInterval is the CC's broker poll interval.
	CCPollInterval time.Duration
	// WorkerDelay is the most the CC's worker adds to each broker poll.
	WorkerDelay time.Duration
	Summary     string
}

// Profiles are the timing profiles of `xsprov sim --profile`.
var Profiles = []Profile{
	{Name: "btp", Async: AllOps, CCPollInterval: 5 * time.Second, WorkerDelay: 500 * time.Millisecond,
		Delays:  map[string]time.Duration{OpCreate: 5 * time.Second, OpUpdate: 5 * time.Second},
		Summary: "as recorded on SAP BTP: every operation asynchronous, the CC polls every 5 s, creates and updates take 5 s (COMPLETE at about +6 s), deletes and keys end at the first poll"},
	{Name: "sync", CCPollInterval: 60 * time.Second,
		Delays:  map[string]time.Duration{OpCreate: 300 * time.Millisecond, OpUpdate: 300 * time.Millisecond, OpDelete: 300 * time.Millisecond, OpBind: 300 * time.Millisecond, OpUnbind: 300 * time.Millisecond},
		Summary: "a synchronous broker (SAP's documented XSUAA default) taking 300 ms per operation"},
	{Name: "async", Async: AllOps, CCPollInterval: 60 * time.Second, WorkerDelay: 500 * time.Millisecond,
		Delays:  map[string]time.Duration{OpCreate: 20 * time.Second, OpUpdate: 20 * time.Second, OpDelete: 20 * time.Second, OpBind: 20 * time.Second, OpUnbind: 20 * time.Second},
		Summary: "an asynchronous broker taking 20 s per operation, polled on the CC's default 60 s cadence"},
	{Name: "instant", CCPollInterval: 60 * time.Second,
		Summary: "a synchronous broker that answers at once (the simulator's default for tests)"},
}

// ProfileNames lists the profiles' names.
func ProfileNames() []string {
	var out []string
	for _, p := range Profiles {
		out = append(out, p.Name)
	}
	return out
}

// LookupProfile finds a profile by name.
func LookupProfile(name string) (Profile, error) {
	for _, p := range Profiles {
		if p.Name == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("unknown timing profile %q (want one of %s)", name, strings.Join(ProfileNames(), ", "))
}

// WithProfile sets the broker and CC timing of a profile; later options
// override parts of it.
func WithProfile(p Profile) Option {
	return func(o *options) {
		for _, op := range AllOps {
			o.delays[op] = p.Delays[op]
			o.async[op] = slices.Contains(p.Async, op)
		}
		o.ccPoll, o.workerDelay = p.CCPollInterval, p.WorkerDelay
	}
}

// WithAsyncBroker makes the broker answer the given operations (all when
// none is given) asynchronously.
func WithAsyncBroker(ops ...string) Option {
	return func(o *options) {
		if len(ops) == 0 {
			ops = AllOps
		}
		for _, op := range ops {
			o.async[op] = true
		}
	}
}

// WithSyncBroker makes the broker answer every operation synchronously.
func WithSyncBroker() Option {
	return func(o *options) {
		for _, op := range AllOps {
			o.async[op] = false
		}
	}
}

// WithCCPollInterval sets how often the CC polls an asynchronous broker
// (60 s by default, as in the CC's own configuration).
func WithCCPollInterval(d time.Duration) Option { return func(o *options) { o.ccPoll = d } }

// WithWorkerDelay sets the most the CC's worker adds to each broker poll
// (a deterministic share of it per job and poll).
func WithWorkerDelay(d time.Duration) Option { return func(o *options) { o.workerDelay = d } }

// SetAsync changes whether the broker answers an operation asynchronously.
func (s *Sim) SetAsync(op string, async bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.async[op] = async
}

// SetCCPollInterval changes the CC's broker poll interval at run time.
func (s *Sim) SetCCPollInterval(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.ccPoll = d
}

// SetProfile applies a profile at run time.
func (s *Sim) SetProfile(p Profile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	WithProfile(p)(&s.opts)
}

func (s *Sim) newJob(op, rtype, rguid, brokerOp string, async bool) *Job {
	now := s.now()
	d := s.opts.delays[brokerOp]
	j := &Job{meta: s.newMeta(), Operation: op, State: "PROCESSING", ResourceType: rtype, ResourceGUID: rguid,
		Async: async || s.opts.async[brokerOp] || s.identityAsync(rguid), PollAt: now, DoneAt: now.Add(d), Errors: []apiError{}, Warnings: []string{}}
	if !j.Async {
		j.PollAt = j.DoneAt
	}
	j.Fail = s.takeFailure(brokerOp)
	if i := s.st.Instances[rguid]; i != nil {
		j.Name = i.Name
	} else if k := s.st.Keys[rguid]; k != nil {
		j.Name = k.Name
	}
	s.st.Jobs[j.GUID] = j
	return j
}

// asyncDescriptor tells whether an XSUAA descriptor asks for an asynchronous
// broker ("xsenableasyncservice": "true").
func (s *Sim) asyncDescriptor(planGUID string, params map[string]any) bool {
	return s.isXSUAA(planGUID) && xssec.Field(params, "xsenableasyncservice") == "true"
}

// failEarly ends a job with the broker's synchronous rejection: the CC's
// first request to the broker gets it.
func (s *Sim) failEarly(j *Job, msg string) {
	j.Fail = msg
	j.FailEarly = true
	j.DoneAt, j.PollAt = j.Created, j.Created
}

// settle runs the part of a job that is due at once.
func (s *Sim) settle(j *Job) { s.step(j, s.now()) }

// advance moves every due job forward. Callers hold s.mu.
func (s *Sim) advance() {
	now := s.now()
	for _, j := range s.st.Jobs {
		if j.State == "PROCESSING" || j.State == "POLLING" {
			s.step(j, now)
		}
	}
}

func (s *Sim) step(j *Job, now time.Time) {
	if !j.Async || j.FailEarly {
		if !now.Before(j.DoneAt) {
			s.finish(j, j.DoneAt)
			s.dirty = true
		}
		return
	}
	// Every CC poll of the broker that is due by now.
	for !now.Before(j.PollAt) {
		if !j.PollAt.Before(j.DoneAt) {
			s.finish(j, j.PollAt)
			s.dirty = true
			return
		}
		if j.State == "PROCESSING" {
			j.State, j.Updated = "POLLING", j.PollAt
			s.setResourceState(j, "in progress", "", j.PollAt)
		}
		j.Polls++
		j.PollAt = j.PollAt.Add(s.pollInterval() + s.workerDelay(j.GUID, j.Polls))
		s.dirty = true
	}
}

func (s *Sim) pollInterval() time.Duration {
	if s.opts.ccPoll <= 0 {
		return 60 * time.Second
	}
	return s.opts.ccPoll
}

// workerDelay is the CC worker's scheduling delay for a job's n-th poll: a
// fixed share of WorkerDelay, so that runs repeat exactly.
func (s *Sim) workerDelay(guid string, n int) time.Duration {
	if s.opts.workerDelay <= 0 {
		return 0
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", guid, n)
	return time.Duration(h.Sum64() % uint64(s.opts.workerDelay))
}
