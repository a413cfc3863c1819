package provision

import (
	"context"
	"os"

	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/xssec"
)

// StatusRequest asks for the state of an instance, and optionally compares
// its parameters with desired ones.
type StatusRequest struct {
	Ref
	Key     string
	Desired map[string]any // nil: no drift check
	OutPath string
}

// Status reports the state of an instance and its keys.
func (p *Provisioner) Status(ctx context.Context, req StatusRequest) (*Status, error) {
	req.Key = req.keyName(req.Key)
	t, inst, err := p.locate(ctx, req.Ref, false)
	if err != nil {
		return nil, err
	}
	st := &Status{FormatVersion: FormatVersion, API: p.s.API, Org: t.OrgName, Space: t.SpaceName, Keys: []KeyState{}}
	if req.OutPath != "" {
		fs := &FileState{Path: req.OutPath}
		if fi, err := os.Stat(req.OutPath); err == nil {
			mt := fi.ModTime().UTC()
			fs.Exists, fs.ModifiedAt, fs.Mode = true, &mt, fi.Mode().Perm().String()
			fs.AgeSeconds = int64(p.s.Clock().Now().Sub(fi.ModTime()).Seconds())
		}
		st.File = fs
	}
	if inst == nil {
		return st, nil
	}
	st.Exists = true
	is := &InstState{Name: inst.Name, GUID: inst.GUID, LastOperation: opView(inst.LastOperation)}
	plan, off, err := p.s.PlanWithOffering(ctx, inst.Relationships.ServicePlan.Data.GUID)
	if err != nil {
		return nil, cfapi.Classify("read service plan of instance", err)
	}
	is.Plan, is.Offering = plan.Name, off.Name
	st.Instance = is
	keys, err := p.s.KeysOf(ctx, inst.GUID)
	if err != nil {
		return nil, err
	}
	cur := cfapi.PickKey(keys, req.Key)
	for _, k := range keys {
		st.Keys = append(st.Keys, KeyState{Name: cfapi.KeyName(k, ""), GUID: k.GUID, Current: cur != nil && k.GUID == cur.GUID, CreatedAt: k.CreatedAt, LastOperation: opView(k.LastOperation)})
	}
	if req.Desired != nil && !cfapi.OpBusy(inst.LastOperation) {
		current, err := p.current(ctx, inst, nil) // the record, else read back
		if err != nil {
			return nil, err
		}
		if current != nil {
			d := xssec.Diff(current, req.Desired)
			st.Drift = &Drift{Drifted: len(d) > 0, Changes: d, NeedsRecreate: xssec.ImmutableChanges(current, req.Desired)}
			if st.Drift.Changes == nil {
				st.Drift.Changes = []xssec.DiffEntry{}
			}
		}
	}
	return st, nil
}
