package provision

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/credfile"
)

// DownRequest is what `xsprov down` removes.
type DownRequest struct {
	Ref
	Key          string
	KeepInstance bool
	OutPath      string
	NoWait       bool
}

// Down deletes the key(s) and the instance, and removes the credentials file
// once Cloud Foundry confirmed the deletion.
func (p *Provisioner) Down(ctx context.Context, req DownRequest) (*Result, error) {
	req.Key = req.keyName(req.Key)
	t, inst, err := p.locate(ctx, req.Ref, false)
	if err != nil {
		return nil, err
	}
	res := p.newResult(t, req.Instance)
	if inst == nil {
		p.rep.Info(fmt.Sprintf("Service instance %s does not exist.", req.Instance))
		res.Instance.Action = Absent
	} else {
		res.Instance.GUID = inst.GUID
		if req.KeepInstance {
			res.Instance.Action = Unchanged
			keys, err := p.s.KeysOf(ctx, inst.GUID)
			if err != nil {
				return nil, err
			}
			res.Key = &KeyResult{Name: req.Key, Action: Absent}
			for _, k := range keys {
				if n := cfapi.KeyName(k, ""); n == req.Key || len(n) > len(req.Key) && n[:len(req.Key)+len(cfapi.RotatedSep)] == req.Key+cfapi.RotatedSep {
					if err := p.deleteKey(ctx, k, inst.Name); err != nil {
						return nil, err
					}
					res.Key.Action = Deleted
				}
			}
		} else {
			if err := p.deleteInstance(ctx, inst, req.NoWait); err != nil {
				return nil, err
			}
			res.Instance.Action = Deleted
			if req.NoWait {
				res.Instance.Action = Submitted
				return res, nil
			}
		}
	}
	if req.OutPath != "" && p.dryRun {
		if _, err := os.Stat(req.OutPath); err == nil {
			p.would("remove what " + req.OutPath + " holds for " + req.Instance)
			res.File, res.FileAction = req.OutPath, Deleted
		}
		return res, nil
	}
	if req.OutPath != "" {
		// pem's certificate and key beside it go too, when they are the ones
		// written for this key
		for _, extra := range credfile.OwnedPEMFiles(req.OutPath) {
			if err := os.Remove(extra); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("remove %s: %w", extra, err)
			}
			p.rep.Info("Removed " + extra + ".")
			res.ExtraFiles = append(res.ExtraFiles, extra)
		}
		_, statErr := os.Stat(req.OutPath)
		gone, err := credfile.RemoveInstance(req.OutPath, req.Instance)
		switch {
		case err != nil:
			return nil, fmt.Errorf("remove credentials file: %w", err)
		case errors.Is(statErr, os.ErrNotExist):
			res.File, res.FileAction = req.OutPath, Absent
		case gone:
			p.rep.Info("Removed credentials file " + req.OutPath + ".")
			res.File, res.FileAction = req.OutPath, Deleted
		default:
			p.rep.Info("Removed the entry of " + req.Instance + " from " + req.OutPath + "; the rest of it is kept.")
			res.File, res.FileAction = req.OutPath, Updated
		}
	}
	return res, nil
}
