package provision

import (
	"context"
	"fmt"

	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/credfile"
	"github.com/xsprov/xsprov/provision/remedy"
)

// CredsRequest is what `xsprov creds` reads.
type CredsRequest struct {
	Ref
	Key string
	Out credfile.Output
}

// Creds reads the key's credentials and (re)writes the file.
func (p *Provisioner) Creds(ctx context.Context, req CredsRequest) (*Result, error) {
	req.Key = req.keyName(req.Key)
	t, inst, err := p.locate(ctx, req.Ref, true)
	if err != nil {
		return nil, err
	}
	res := p.newResult(t, req.Instance)
	res.Instance.GUID, res.Instance.State, res.Instance.Action = inst.GUID, cfapi.DescribeOp(inst.LastOperation), Unchanged
	keys, err := p.s.KeysOf(ctx, inst.GUID)
	if err != nil {
		return nil, err
	}
	key := cfapi.PickKey(keys, req.Key)
	if key == nil {
		return nil, remedy.With(fmt.Errorf("service key %q of service instance %q not found", req.Key, req.Instance), remedy.Remedy{Action: remedy.Create, Instance: req.Instance})
	}
	if key.LastOperation.State != "succeeded" || key.LastOperation.Type != "create" {
		return nil, fmt.Errorf("service key %q is not usable: %s", *key.Name, cfapi.DescribeOp(key.LastOperation))
	}
	res.Key = &KeyResult{Name: *key.Name, GUID: key.GUID, State: cfapi.DescribeOp(key.LastOperation), Action: Unchanged}
	if err := p.fetchAndWrite(ctx, key, req.Out, res); err != nil {
		return nil, err
	}
	return res, nil
}
