package apply

import (
	"context"
	"errors"
	"os"
	"sort"
	"strings"

	"github.com/xsprov/xsprov/provision/credfile"
	"github.com/xsprov/xsprov/provision/spec"
)

// Destroy deletes what the spec owns, in reverse order: each instance
// with its keys (Cloud Foundry deletes keys first), then the files, and with
// DeleteSpaces the spaces the spec created. Unlabelled resources are never
// touched.
func (w *Runner) Destroy(ctx context.Context, s *spec.Spec, o Options) (*Result, error) {
	w = w.withFleet(ctx)
	st, res, err := w.loadOrg(ctx, s, o)
	if err != nil {
		return nil, err
	}
	existing, err := w.instancesIn(ctx, st)
	if err != nil {
		return nil, err
	}
	var items []*Change
	for _, in := range s.Instances {
		if !spec.InShard(in.Space, in.Name, o.Shard, o.Shards) {
			continue
		}
		c := &Change{Kind: "instance", Address: instAddr(in.Space, in.Name), Action: ActDelete, inst: in}
		if sp := st.spaces[strings.ToLower(in.Space)]; sp != nil {
			c.cur = existing[sp.GUID+"/"+in.Name]
		}
		switch {
		case c.cur == nil:
			c.Action = ActNoop
			c.Reason = "absent"
		case ownedBy(c.cur.Metadata) != s.Metadata.Name:
			c.Action, c.Reason = ActNoop, "not managed by this spec; left alone"
		}
		items = append(items, c)
		res.Changes = append(res.Changes, c)
		for _, k := range in.Keys {
			if k.Out != "" {
				fc := &Change{Kind: "file", Address: "file " + k.Out, Action: ActDelete, inst: in, key: k}
				switch {
				case !fileExists(k.Out) || c.Action == ActNoop && c.Reason != "absent":
					fc.Action = ActNoop
				case !isCredentialsFile(k.Out):
					// a spec may name any path: only a file that holds
					// credentials (as xsprov writes them) is deleted
					fc.Action, fc.Reason = ActNoop, "not a credentials file; left alone"
				}
				res.Changes = append(res.Changes, fc)
			}
		}
	}
	if o.Expect != nil {
		if err := o.Expect(res); err != nil {
			return nil, err
		}
	}
	w.workers(ctx, o.Parallel, len(items), func(i int) string { return itemPrefix(items[i].Address) }, func(q *Runner, i int) {
		c := items[i]
		if c.Action != ActDelete {
			return
		}
		q.run(c, func() error { return q.engine(nil).DeleteInstance(ctx, c.cur) })
	})
	for _, c := range res.Changes {
		if c.Kind != "file" || c.Action != ActDelete {
			continue
		}
		owner := c.inst
		failed := false
		for _, ic := range items {
			if ic.inst == owner && ic.Result == "failed" {
				failed = true
			}
		}
		if failed {
			skip([]*Change{c}, "the instance deletion failed; the file is kept")
			continue
		}
		w.run(c, func() error {
			for _, p := range credfile.OwnedPEMFiles(c.key.Out) {
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
			}
			_, err := credfile.RemoveInstance(c.key.Out, c.inst.Name)
			return err
		})
	}
	if o.DeleteSpaces {
		for _, sp := range s.Spaces {
			cur := st.spaces[strings.ToLower(sp.Name)]
			c := &Change{Kind: "space", Address: "space " + sp.Name, Action: ActDelete}
			switch {
			case cur == nil:
				c.Action, c.Reason = ActNoop, "absent"
			case ownedBy(cur.Metadata) != s.Metadata.Name:
				c.Action, c.Reason = ActNoop, "not created by this spec; left alone"
			default:
				w.run(c, func() error { return w.deleteSpace(ctx, cur) })
			}
			res.Changes = append(res.Changes, c)
		}
	}
	sort.SliceStable(res.Changes, func(i, j int) bool { return kindOrder(res.Changes[i].Kind) < kindOrder(res.Changes[j].Kind) })
	res.summarize()
	return res, ctx.Err()
}

func kindOrder(k string) int {
	// the order destroy works in: instances (with their keys), files, spaces
	return map[string]int{"instance": 0, "key": 1, "file": 2, "role": 3, "space": 4}[k]
}

// isCredentialsFile tells whether path holds credentials as xsprov writes
// them (a client id, in any of its formats).
func isCredentialsFile(path string) bool {
	_, err := credfile.ReadCredentials(path)
	return err == nil
}
