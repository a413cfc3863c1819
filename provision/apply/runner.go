package apply

import (
	"context"
	"sync"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
	"golang.org/x/sync/errgroup"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/credfile"
)

// Engine is what applying needs of the provisioning engine
// (provision.Provisioner implements it): the steps up, down and rotate take,
// on resources the plan resolved.
type Engine interface {
	EnsureInstance(ctx context.Context, t cfapi.Target, plan cfapi.Plan, req provision.UpRequest) (*resource.ServiceInstance, error)
	DeleteInstance(ctx context.Context, inst *resource.ServiceInstance) error
	EnsureKey(ctx context.Context, inst *resource.ServiceInstance, name string, params map[string]any, fresh bool) (*resource.ServiceCredentialBinding, error)
	DeleteKey(ctx context.Context, key *resource.ServiceCredentialBinding, instance string) error
	RotateKey(ctx context.Context, t cfapi.Target, inst *resource.ServiceInstance, keys []*resource.ServiceCredentialBinding, req provision.RotateRequest) (*provision.RotateResult, error)
	WriteCredentials(ctx context.Context, key *resource.ServiceCredentialBinding, creds map[string]any, out credfile.Output) error
}

var _ Engine = (*provision.Provisioner)(nil)

// NewEngine makes the engine of one worker: its own session, its reporter
// (prefixed with the item it works on) and the labels of what it creates.
type NewEngine func(s *cfapi.Session, r provision.Reporter, labels map[string]string) Engine

// Runner plans, applies and destroys specs through one session, forking
// more for parallel workers.
type Runner struct {
	s         *cfapi.Session
	rep       provision.Reporter
	newEngine NewEngine
	pool      *sessionPool
	// fleet watches the operations in flight of an apply or destroy.
	fleet *cfapi.Fleet
}

// New returns a Runner.
func New(s *cfapi.Session, r provision.Reporter, newEngine NewEngine) *Runner {
	if r == nil {
		r = provision.Discard
	}
	return &Runner{s: s, rep: r, newEngine: newEngine, pool: &sessionPool{base: s}}
}

// engine is the engine of this worker, labelling what it creates.
func (w *Runner) engine(labels map[string]string) Engine {
	s := w.s
	if w.fleet != nil {
		s = s.WithFleet(w.fleet)
	}
	return w.newEngine(s, w.rep, labels)
}

// withFleet returns the runner with a fleet watching its operations.
func (w *Runner) withFleet(ctx context.Context) *Runner {
	q := *w
	q.fleet = cfapi.NewFleet(ctx, w.s)
	return &q
}

// clone returns the runner for one item: its own session and a reporter
// prefix, so parallel items neither share a client nor interleave lines.
func (w *Runner) clone(s *cfapi.Session, prefix string) *Runner {
	q := *w
	q.s = s
	if prefix != "" {
		q.rep = prefixReporter{inner: w.rep, prefix: prefix}
	}
	return &q
}

type prefixReporter struct {
	inner  provision.Reporter
	prefix string
}

func (r prefixReporter) Step(m string) { r.inner.Info(r.prefix + m + "...") }
func (r prefixReporter) Done()         {}
func (r prefixReporter) Info(m string) { r.inner.Info(r.prefix + m) }
func (r prefixReporter) Warn(m string) { r.inner.Warn(r.prefix + m) }

func (w *Runner) run(c *Change, f func() error) {
	if err := f(); err != nil {
		c.Result, c.Error = "failed", err.Error()
		w.rep.Warn(c.Address + ": " + err.Error())
		return
	}
	if c.Action == ActNoop {
		c.Result = "unchanged"
	} else {
		c.Result = "ok"
	}
}

// workers runs f for items 0..count-1, at most n at a time. Each running
// item holds a session of its own (the runner's, or one forked for it and
// kept for later items), since a go-cfclient client must not re-authenticate
// from two goroutines at once (see cfapi.Session.Fork).
func (w *Runner) workers(ctx context.Context, n, count int, prefix func(i int) string, f func(q *Runner, i int)) {
	var g errgroup.Group
	g.SetLimit(max(n, 1))
	for i := 0; i < count && ctx.Err() == nil; i++ {
		g.Go(func() error {
			s := w.pool.get(ctx)
			if s == nil {
				return nil // ctx ended
			}
			defer w.pool.put(s)
			p := ""
			if prefix != nil {
				p = prefix(i)
			}
			f(w.clone(s, p), i)
			return nil
		})
	}
	_ = g.Wait()
}

// sessionPool hands each running item a session: an idle one, else the
// base, else a fork. Forks are kept, so plan and apply in one run log in
// once per parallel worker. When a fork's login fails, the item waits for a
// session that another gives back (the base always comes back).
type sessionPool struct {
	base *cfapi.Session

	mu       sync.Mutex
	idle     []*cfapi.Session
	baseUsed bool
	back     chan struct{}
}

func (p *sessionPool) get(ctx context.Context) *cfapi.Session {
	for {
		p.mu.Lock()
		if p.back == nil {
			p.back = make(chan struct{}, 1)
		}
		if n := len(p.idle); n > 0 {
			s := p.idle[n-1]
			p.idle = p.idle[:n-1]
			p.mu.Unlock()
			return s
		}
		if !p.baseUsed {
			p.baseUsed = true
			p.mu.Unlock()
			return p.base
		}
		back := p.back
		p.mu.Unlock()
		if s, err := p.base.Fork(ctx); err == nil {
			return s
		}
		select {
		case <-back:
		case <-ctx.Done():
			return nil
		}
	}
}

func (p *sessionPool) put(s *cfapi.Session) {
	p.mu.Lock()
	p.idle = append(p.idle, s)
	back := p.back
	p.mu.Unlock()
	select {
	case back <- struct{}{}:
	default:
	}
}
