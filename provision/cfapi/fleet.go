package cfapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cloudfoundry/go-cfclient/v3/client"
	"github.com/cloudfoundry/go-cfclient/v3/resource"
)

// Kind is the kind of resource an operation works on.
type Kind int

const (
	// InstanceOp is an operation on a service instance.
	InstanceOp Kind = iota
	// KeyOp is an operation on a service key.
	KeyOp
)

// Op is an operation in flight, named so that its resource can be found
// in a list: an instance by space and name, a key by instance and name.
type Op struct {
	Job   string // the CC job that runs it
	What  string // "create service instance \"x\"", for errors
	Kind  Kind
	Scope string // the space GUID (instances) or the instance GUID (keys)
	Name  string
	// Gone: the operation is a delete, done when the resource is gone.
	Gone bool
	Warn func(string)
}

// Outcome is what an operation ended with.
type Outcome struct {
	GUID    string    // the resource's ("" after a delete)
	Started time.Time // when the Cloud Controller started the operation
}

// Await waits for an operation: through the session's fleet when it has
// one (apply, destroy: one list request for all operations in flight), else
// by its job.
func (s *Session) Await(ctx context.Context, op Op) (Outcome, error) {
	if s.fleet != nil && op.Scope != "" && op.Name != "" {
		return s.fleet.await(ctx, s, op)
	}
	job, err := s.WaitJob(ctx, op.Job, op.What, op.Warn)
	if err != nil {
		return Outcome{}, err
	}
	link := "service_instances"
	if op.Kind == KeyOp {
		link = "service_credential_binding"
	}
	return Outcome{GUID: JobResourceGUID(job, link), Started: job.CreatedAt}, nil
}

// WithFleet returns a session (a shallow copy) whose waits go through f.
func (s *Session) WithFleet(f *Fleet) *Session {
	c := *s
	c.fleet = f
	return &c
}

// Fleet watches every operation in flight of a run with list requests: GET
// /v3/service_instances?names=…&space_guids=… and GET
// /v3/service_credential_bindings?service_instance_guids=… carry each
// resource's last_operation, so one request serves up to 50 operations
// where waiting on jobs takes one per operation and check. Each operation
// keeps its own schedule (fast while the CC works, just after the CC's
// likely broker polls once it polls an asynchronous broker); a check serves
// every operation due within a second of it.
type Fleet struct {
	ctx  context.Context
	base *Session
	fork sync.Once
	s    *Session // the fleet's own fork of base, for instances
	sk   *Session // and one for keys: the two lists run at once
	err  error

	mu      sync.Mutex
	watches []*watch
	running bool
	wake    chan struct{}
}

type watch struct {
	op      Op
	start   time.Time
	lo      time.Time // when the check before the last one was sent
	anchor  time.Time // when the CC turned it POLLING (client clock)
	next    time.Time
	polling bool
	res     chan watchResult
}

type watchResult struct {
	out    Outcome
	failed string // the last operation's description when it failed
	err    error
}

// fleetBatch is how many names or GUIDs go into one list request.
const fleetBatch = 50

// NewFleet makes a fleet for as long as ctx lasts. It lists with a fork of
// s of its own, made when the first operation is waited for.
func NewFleet(ctx context.Context, s *Session) *Fleet {
	return &Fleet{ctx: ctx, base: s, wake: make(chan struct{}, 1)}
}

func (f *Fleet) await(ctx context.Context, s *Session, op Op) (Outcome, error) {
	f.fork.Do(func() {
		if f.s, f.err = f.base.Fork(f.ctx); f.err == nil {
			f.sk, f.err = f.base.Fork(f.ctx)
		}
	})
	if f.err != nil {
		// no session of its own: wait on the job as without a fleet
		return s.WithFleet(nil).Await(ctx, op)
	}
	now := f.s.clock.Now()
	w := &watch{op: op, start: now, lo: now, next: now.Add(f.s.backoff.Min), res: make(chan watchResult, 1)}
	f.mu.Lock()
	f.watches = append(f.watches, w)
	if !f.running {
		f.running = true
		go f.loop()
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
	var r watchResult
	select {
	case r = <-w.res:
	case <-ctx.Done():
		f.drop(w)
		return Outcome{}, ctx.Err()
	}
	if r.err != nil {
		return Outcome{}, r.err
	}
	if r.failed == "" {
		return r.out, nil
	}
	// The job has the typed errors: one request, only on failure.
	j, err := s.CF.Jobs.Get(ctx, op.Job)
	if err == nil && j.State == resource.JobStateFailed {
		return Outcome{}, &JobFailedError{What: op.What, Errors: j.Errors}
	}
	return Outcome{}, fmt.Errorf("%s failed: %s", op.What, r.failed)
}

func (f *Fleet) drop(w *watch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watches = slices.DeleteFunc(f.watches, func(x *watch) bool { return x == w })
}

// loop checks when the earliest operation is due (and with it every one due
// within a second, or within Min while it is in its fast phase), until no
// operation is left.
func (f *Fleet) loop() {
	clk := f.s.clock
	for {
		f.mu.Lock()
		if len(f.watches) == 0 || f.ctx.Err() != nil {
			for _, w := range f.watches {
				w.res <- watchResult{err: f.ctx.Err()}
			}
			f.watches = nil
			f.running = false
			f.mu.Unlock()
			return
		}
		at := f.dueLocked()
		f.mu.Unlock()
		if d := at.Sub(clk.Now()); d > 0 {
			select {
			case <-clk.After(d):
			case <-f.wake:
				continue
			case <-f.ctx.Done():
				continue
			}
		}
		f.check(at)
	}
}

// dueLocked is when to check next: the latest due time within the window
// that starts at the earliest one.
func (f *Fleet) dueLocked() time.Time {
	first := f.watches[0]
	for _, w := range f.watches[1:] {
		if w.next.Before(first.next) {
			first = w
		}
	}
	window := f.s.backoff.Min
	if first.polling {
		window = time.Second
	}
	at := first.next
	for _, w := range f.watches {
		if w.next.After(at) && !w.next.After(first.next.Add(window)) {
			at = w.next
		}
	}
	return at
}

// check lists the resources of the operations due by at and settles the
// ones that ended.
func (f *Fleet) check(at time.Time) {
	f.mu.Lock()
	var ws []*watch
	for _, w := range f.watches {
		if !w.next.After(at) {
			ws = append(ws, w)
		}
	}
	f.mu.Unlock()
	sent := f.s.clock.Now()
	found, errs := f.list(ws)
	now := f.s.clock.Now()
	done := map[*watch]bool{}
	for _, w := range ws {
		if err := errs[w]; err != nil {
			w.res <- watchResult{err: err}
			done[w] = true
			continue
		}
		if f.settle(w, found[w], sent, now) {
			done[w] = true
		}
	}
	f.mu.Lock()
	f.watches = slices.DeleteFunc(f.watches, func(x *watch) bool { return done[x] })
	f.mu.Unlock()
}

// settle reads one operation's last_operation; true when it ended.
func (f *Fleet) settle(w *watch, r *listed, sent, now time.Time) bool {
	defer func() { w.lo = sent }()
	var op *resource.LastOperation
	if r != nil {
		op = &r.op
	}
	switch {
	case op == nil && w.op.Gone:
		w.res <- watchResult{}
		return true
	case op == nil:
		w.res <- watchResult{err: fmt.Errorf("%s: the resource vanished while it was being worked on", w.op.What)}
		return true
	case !OpBusy(*op) && op.State == "failed":
		w.res <- watchResult{failed: op.Description}
		return true
	case !OpBusy(*op) && !w.op.Gone:
		w.res <- watchResult{out: Outcome{GUID: r.guid, Started: op.CreatedAt}}
		return true
	case !OpBusy(*op):
		// a delete whose resource is still listed and not busy: another
		// operation took over; look again soon
	}
	ph := opPhase(*op)
	// Only a create has a phase ("initial") that tells the CC at work from
	// the CC polling a broker; an update or delete is "in progress" from its
	// start, so it gets the fast schedule first.
	fast := !ph.polling || (op.Type != "create" && now.Sub(w.start) < f.s.backoff.Dense)
	if fast {
		w.polling, w.anchor = false, time.Time{}
		w.next = now.Add(f.s.backoff.interval(now.Sub(w.start)))
		return false
	}
	if w.anchor.IsZero() {
		since := ph.since
		if op.Type != "create" {
			since = time.Time{} // its updated_at is its start, not a broker poll
		}
		w.anchor = pollingSince(since, w.lo, now)
		if since.IsZero() {
			w.anchor = w.start
		}
	}
	w.polling = true
	w.next = f.s.polling.next(w.anchor, now)
	return false
}

// listed is a resource as a list showed it.
type listed struct {
	guid string
	op   resource.LastOperation
}

// list finds each operation's resource (nil when it is not listed).
func (f *Fleet) list(ws []*watch) (map[*watch]*listed, map[*watch]error) {
	found := map[*watch]*listed{}
	errs := map[*watch]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	byKind := map[Kind][]*watch{}
	for _, w := range ws {
		byKind[w.op.Kind] = append(byKind[w.op.Kind], w)
	}
	for kind, group := range byKind {
		s := f.s
		if kind == KeyOp {
			s = f.sk
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := 0; lo < len(group); lo += fleetBatch {
				batch := group[lo:min(lo+fleetBatch, len(group))]
				ops, err := listBatch(f.ctx, s, kind, batch)
				mu.Lock()
				for _, w := range batch {
					if err != nil {
						errs[w] = err
						continue
					}
					found[w] = ops[w.op.Scope+"/"+w.op.Name]
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return found, errs
}

func listBatch(ctx context.Context, s *Session, kind Kind, batch []*watch) (map[string]*listed, error) {
	var scopes, names []string
	for _, w := range batch {
		if !slices.Contains(scopes, w.op.Scope) {
			scopes = append(scopes, w.op.Scope)
		}
		if !slices.Contains(names, w.op.Name) {
			names = append(names, w.op.Name)
		}
	}
	out := map[string]*listed{}
	put := func(scope, name, guid string, op resource.LastOperation) {
		out[scope+"/"+name] = &listed{guid: guid, op: op}
	}
	switch kind {
	case InstanceOp:
		opts := client.NewServiceInstanceListOptions()
		opts.Names = client.Filter{Values: names}
		opts.SpaceGUIDs = client.Filter{Values: scopes}
		opts.PerPage = 5000
		list, err := s.CF.ServiceInstances.ListAll(ctx, opts)
		if err != nil {
			return nil, classifyFleet("list service instances", err)
		}
		for _, si := range list {
			if si.Relationships.Space != nil && si.Relationships.Space.Data != nil {
				put(si.Relationships.Space.Data.GUID, si.Name, si.GUID, si.LastOperation)
			}
		}
	case KeyOp:
		opts := client.NewServiceCredentialBindingListOptions()
		opts.ServiceInstanceGUIDs = client.Filter{Values: scopes}
		opts.Names = client.Filter{Values: names}
		opts.Type = client.Filter{Values: []string{"key"}}
		opts.PerPage = 5000
		list, err := s.CF.ServiceCredentialBindings.ListAll(ctx, opts)
		if err != nil {
			return nil, classifyFleet("list service keys", err)
		}
		for _, k := range list {
			if k.Name != nil && k.Relationships.ServiceInstance != nil && k.Relationships.ServiceInstance.Data != nil {
				put(k.Relationships.ServiceInstance.Data.GUID, *k.Name, k.GUID, k.LastOperation)
			}
		}
	}
	return out, nil
}

func classifyFleet(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return Classify(what, err)
}
