package provision

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/credfile"
	"github.com/xsprov/xsprov/provision/ias"
	"github.com/xsprov/xsprov/provision/offering"
	"github.com/xsprov/xsprov/provision/remedy"
)

// RetireLabel marks a key kept after a rotation with the unix time after
// which the next rotation deletes it.
const RetireLabel = "xsprov.io/retire-after"

// RotateRequest asks for a new key in place of the current one.
type RotateRequest struct {
	Ref
	Key       string
	KeyParams map[string]any // nil: the current key's parameters
	Out       credfile.Output
	// Grace keeps the replaced key this long; zero deletes it at once.
	Grace time.Duration
	// IfExpiringWithin, when set, rotates only a key whose certificate
	// expires within it (a scheduled pipeline's guard for X.509 keys).
	IfExpiringWithin time.Duration
}

// RotatedName is the name of a key rotated at t: base--rYYYYMMDDTHHMMSSZ.
func RotatedName(base string, t time.Time) string {
	return base + cfapi.RotatedSep + t.UTC().Format("20060102T150405Z")
}

// Rotate creates a new key, verifies it, replaces the credentials file
// atomically and then deletes the old key (or keeps it for a grace period,
// deleting keys whose grace ran out). A failure at any step leaves a working
// credentials file and names what is left to clean up.
func (p *Provisioner) Rotate(ctx context.Context, req RotateRequest) (*RotateResult, error) {
	req.Key = req.keyName(req.Key)
	t, inst, err := p.locate(ctx, req.Ref, true)
	if err != nil {
		return nil, err
	}
	if cfapi.OpBusy(inst.LastOperation) {
		if inst, err = p.s.WaitInstance(ctx, inst.GUID); err != nil {
			return nil, cfapi.TimeoutOr(err, "service instance "+quote(req.Instance), "an operation on it is in progress")
		}
	}
	keys, err := p.s.KeysOf(ctx, inst.GUID)
	if err != nil {
		return nil, err
	}
	if req.IfExpiringWithin > 0 {
		if res, due, err := p.expiring(ctx, t, keys, req); err != nil || !due {
			return res, err
		}
	}
	return p.rotate(ctx, t, inst, keys, req)
}

// expiring tells whether the current key's certificate expires within
// req.IfExpiringWithin; when it does not (or the key has no certificate),
// it returns the result of a rotation that was not needed.
func (p *Provisioner) expiring(ctx context.Context, t cfapi.Target, keys []*resource.ServiceCredentialBinding, req RotateRequest) (*RotateResult, bool, error) {
	req.Key = req.keyName(req.Key)
	cur := cfapi.PickKey(keys, req.Key)
	if cur == nil {
		return nil, true, nil // no key: rotating creates one
	}
	det, err := p.s.CF.ServiceCredentialBindings.GetDetails(ctx, cur.GUID)
	if err != nil {
		return nil, false, cfapi.Classify("read credentials of key "+quote(*cur.Name), err)
	}
	res := &RotateResult{FormatVersion: FormatVersion, DryRun: p.dryRun, Org: t.OrgName, Space: t.SpaceName, Instance: req.Instance,
		Deleted: []string{}, Kept: []KeptKey{}, NewKey: KeyResult{Name: *cur.Name, GUID: cur.GUID, Action: Unchanged}}
	pemCert, _ := det.Credentials["certificate"].(string)
	notAfter, ok := certExpiry(pemCert)
	if !ok {
		p.rep.Info("Key " + *cur.Name + " has no certificate: nothing of it expires, so it is not rotated.")
		return res, false, nil
	}
	res.NewKey.ExpiresAt = &notAfter
	left := notAfter.Sub(p.s.Clock().Now())
	if left > req.IfExpiringWithin {
		p.rep.Info(fmt.Sprintf("Key %s's certificate expires at %s (in %s), not within %s: not rotated.", *cur.Name, notAfter.Format(time.RFC3339), left.Round(time.Minute), req.IfExpiringWithin))
		return res, false, nil
	}
	p.rep.Info(fmt.Sprintf("Key %s's certificate expires at %s (in %s), within %s: rotating.", *cur.Name, notAfter.Format(time.RFC3339), left.Round(time.Minute), req.IfExpiringWithin))
	return nil, true, nil
}

// certExpiry reads the end of validity of the first certificate in a PEM
// chain.
func certExpiry(pemChain string) (time.Time, bool) {
	blk, _ := pem.Decode([]byte(pemChain))
	if blk == nil {
		return time.Time{}, false
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return time.Time{}, false
	}
	return c.NotAfter.UTC(), true
}

// rotate replaces the current key of req.Key among the instance's keys.
func (p *Provisioner) rotate(ctx context.Context, t cfapi.Target, inst *resource.ServiceInstance, keys []*resource.ServiceCredentialBinding, req RotateRequest) (*RotateResult, error) {
	req.Key = req.keyName(req.Key)
	old := cfapi.PickKey(keys, req.Key)
	res := &RotateResult{FormatVersion: FormatVersion, DryRun: p.dryRun, Org: t.OrgName, Space: t.SpaceName, Instance: req.Instance, Deleted: []string{}, Kept: []KeptKey{}}
	params := req.KeyParams
	if old != nil {
		res.Replaced = *old.Name
		if params == nil {
			// the old key's parameters as xsprov recorded them (real BTP
			// does not let them be read back)
			params = KeyParamsOf(old)
		}
	}
	now := p.s.Clock().Now()
	name := RotatedName(req.Key, now)
	for i := 2; keyExists(keys, name); i++ {
		name = RotatedName(req.Key, now) + "-" + strconv.Itoa(i)
	}
	keep := "the credentials file is unchanged"
	if old != nil {
		keep = "the credentials file still holds key " + quote(*old.Name)
	}
	if err := p.secretRoom(ctx, inst, keys, params, req.Instance); err != nil {
		return nil, err
	}
	key, err := p.createKey(ctx, inst, name, params, false)
	if errors.Is(err, errLost) || errors.Is(err, errRaced) {
		// The name is new to this run: a key of that name is ours, created
		// by the request whose answer was lost.
		key, err = p.ownNewKey(ctx, inst.GUID, name, err)
	}
	if err != nil {
		r := remedy.Remedy{Action: remedy.RotateAgain, Instance: req.Instance, Note: keep}
		if !errors.Is(err, context.Canceled) {
			if ks, lerr := p.s.KeysOf(ctx, inst.GUID); lerr == nil && keyExists(ks, name) {
				r = remedy.Remedy{Action: remedy.DeleteKeys, Instance: req.Instance, Names: []string{name}, Note: keep + "; key " + quote(name) + " was left behind"}
			}
		}
		return nil, remedy.With(fmt.Errorf("rotate: create key %q: %w", name, err), r)
	}
	res.NewKey = KeyResult{Name: name, GUID: key.GUID, State: cfapi.DescribeOp(key.LastOperation), Action: Created}
	if p.dryRun {
		if req.Out.Path != "" {
			p.would("write the new key's credentials to " + req.Out.Path)
			res.File = req.Out.Path
		}
		for _, k := range keys {
			if n := cfapi.KeyName(k, ""); cfapi.IsKeyOf(n, req.Key) {
				if req.Grace > 0 && old != nil && k.GUID == old.GUID {
					p.would("keep key " + n + " for " + req.Grace.String())
					continue
				}
				p.would("delete key " + n)
				res.Deleted = append(res.Deleted, n)
			}
		}
		return res, nil
	}
	// Read and verify before the file is touched: a broken new key must not
	// replace working credentials.
	r := p.newResult(t, req.Instance)
	r.Instance.Offering = "xsuaa"
	det, err := p.s.CF.ServiceCredentialBindings.GetDetails(ctx, key.GUID)
	if err != nil {
		return nil, remedy.With(fmt.Errorf("rotate: read credentials of key %q: %w", name, cfapi.Classify("get details", err)),
			remedy.Remedy{Action: remedy.RotateAgain, Instance: req.Instance, Names: []string{name}, Note: keep + "; the new key " + quote(name) + " is left"})
	}
	r.creds = det.Credentials
	r.Instance.Name = req.Instance
	p.secrets(det.Credentials)
	if shared, err := p.sharesSecret(ctx, old, det.Credentials); err != nil || shared {
		return nil, p.notRotated(ctx, key, req.Instance, keep, err)
	}
	if err := p.verify(ctx, r); err != nil {
		if derr := p.deleteKey(ctx, key, req.Instance); derr != nil {
			return nil, remedy.With(fmt.Errorf("rotate: the new key %q does not work, and deleting it failed (%v): %w", name, derr, err),
				remedy.Remedy{Action: remedy.DeleteKeys, Instance: req.Instance, Names: []string{name}, Note: keep})
		}
		return nil, remedy.With(fmt.Errorf("rotate: the new key %q does not work (it was deleted again): %w", name, err), remedy.Remedy{Note: keep})
	}
	res.Token = r.Token
	if err := p.writeCreds(det.Credentials, req.Out, r); err != nil {
		return nil, remedy.With(fmt.Errorf("rotate: %w", err),
			remedy.Remedy{Action: remedy.RotateAgain, Instance: req.Instance, Note: keep + "; the new key " + quote(name) + " exists and works"})
	}
	res.File, res.ExtraFiles, res.ClientID = r.File, r.ExtraFiles, r.ClientID
	// Retire old keys: now, or after the grace period.
	var left []string
	for _, k := range keys {
		n := cfapi.KeyName(k, "")
		if !cfapi.IsKeyOf(n, req.Key) {
			continue
		}
		// Every older key of this base goes, unless a grace period keeps it:
		// keys left by an interrupted rotation are not lost track of.
		due := k.GUID != key.GUID
		if at, ok := retireAfter(k); ok && at.After(now) {
			due = false
		}
		if old != nil && k.GUID == old.GUID && req.Grace > 0 {
			at := now.Add(req.Grace).UTC().Truncate(time.Second)
			if err := p.label(ctx, k, strconv.FormatInt(at.Unix(), 10)); err != nil {
				left = append(left, n+" (could not be labelled for retirement: "+err.Error()+")")
			} else {
				res.Kept = append(res.Kept, KeptKey{Name: n, RetireAfter: at})
			}
			continue
		}
		if !due {
			if at, ok := retireAfter(k); ok {
				res.Kept = append(res.Kept, KeptKey{Name: n, RetireAfter: at})
			}
			continue
		}
		if err := p.deleteKey(ctx, k, req.Instance); err != nil {
			left = append(left, n)
			continue
		}
		res.Deleted = append(res.Deleted, n)
	}
	sort.Strings(res.Deleted)
	if len(left) > 0 {
		return res, remedy.With(fmt.Errorf("rotate: the credentials file holds the new key %q, but old keys could not be deleted: %s", name, strings.Join(left, ", ")),
			remedy.Remedy{Action: remedy.RotateAgain, Instance: req.Instance, Names: left})
	}
	return res, nil
}

func keyExists(keys []*resource.ServiceCredentialBinding, name string) bool {
	for _, k := range keys {
		if cfapi.KeyName(k, "") == name {
			return true
		}
	}
	return false
}

func retireAfter(k *resource.ServiceCredentialBinding) (time.Time, bool) {
	if k.Metadata == nil || k.Metadata.Labels == nil {
		return time.Time{}, false
	}
	v := k.Metadata.Labels[RetireLabel]
	if v == nil {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(*v, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(n, 0).UTC(), true
}

func (p *Provisioner) label(ctx context.Context, k *resource.ServiceCredentialBinding, retire string) error {
	_, err := p.s.CF.ServiceCredentialBindings.Update(ctx, k.GUID, &resource.ServiceCredentialBindingUpdate{
		Metadata: &resource.Metadata{Labels: map[string]*string{RetireLabel: &retire}},
	})
	return cfapi.Classify("label key", err)
}

// ownNewKey finds the key a create of this run made although its answer was
// lost, waiting for it to settle.
func (p *Provisioner) ownNewKey(ctx context.Context, instGUID, name string, cause error) (*resource.ServiceCredentialBinding, error) {
	keys, err := p.s.KeysOf(ctx, instGUID)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if cfapi.KeyName(k, "") != name {
			continue
		}
		if cfapi.OpBusy(k.LastOperation) {
			if k, err = p.s.WaitKey(ctx, k.GUID); err != nil || k == nil {
				return nil, cmp.Or(err, fmt.Errorf("key %q vanished", name))
			}
		}
		if k.LastOperation.State != "succeeded" {
			return nil, fmt.Errorf("key %q: %s", name, cfapi.DescribeOp(k.LastOperation))
		}
		return k, nil
	}
	return nil, cause
}

// secretRoom refuses, before anything is created, a new key with a client
// secret on an instance that already has as many as its offering issues
// (the identity service: 20 per application): the broker would refuse it
// after the fact.
func (p *Provisioner) secretRoom(ctx context.Context, inst *resource.ServiceInstance, keys []*resource.ServiceCredentialBinding, params map[string]any, name string) error {
	ct, _ := params["credential-type"].(string)
	if len(keys) < offering.Identity.MaxSecrets || (ct != "" && ct != ias.Secret) {
		return nil // fewer keys than any limit known: no request
	}
	_, off, err := p.s.PlanWithOffering(ctx, inst.Relationships.ServicePlan.Data.GUID)
	if err != nil {
		return cfapi.Classify("read the offering of service instance "+quote(name), err)
	}
	prof := offering.For(off.Name)
	if prof.MaxSecrets == 0 {
		return nil
	}
	var secrets []*resource.ServiceCredentialBinding
	for _, k := range keys {
		if kt, _ := KeyParamsOf(k)["credential-type"].(string); (kt == "" || kt == ias.Secret) && k.LastOperation.State != "failed" {
			secrets = append(secrets, k)
		}
	}
	if len(secrets) < prof.MaxSecrets {
		return nil
	}
	slices.SortFunc(secrets, func(a, b *resource.ServiceCredentialBinding) int { return a.CreatedAt.Compare(b.CreatedAt) })
	oldest := cfapi.KeyName(secrets[0], secrets[0].GUID)
	return remedy.With(&cfapi.UsageError{Msg: fmt.Sprintf("rotate: service instance %q already has %d keys with client secrets, the most the %s service issues per application; nothing was created",
		name, len(secrets), prof.Short)}, remedy.Remedy{Action: remedy.DeleteKeys, Instance: name, Names: []string{oldest}})
}

// KeyParamsOf are the parameters xsprov recorded on a key; nil when none.
func KeyParamsOf(k *resource.ServiceCredentialBinding) map[string]any {
	if k.Metadata == nil || k.Metadata.Annotations[AnnotationKeyParameters] == nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal([]byte(*k.Metadata.Annotations[AnnotationKeyParameters]), &m) != nil {
		return nil
	}
	return m
}

// sharesSecret tells whether new credentials are the instance's one shared
// secret (credential-type instance-secret, or the old key's very client id
// and secret): then a new key rotates nothing.
func (p *Provisioner) sharesSecret(ctx context.Context, old *resource.ServiceCredentialBinding, creds map[string]any) (bool, error) {
	if ct, _ := creds["credential-type"].(string); ct != "" || old == nil || creds["clientsecret"] == nil {
		return ct == "instance-secret", nil
	}
	det, err := p.s.CF.ServiceCredentialBindings.GetDetails(ctx, old.GUID)
	if err != nil {
		return false, cfapi.Classify("read credentials of key "+quote(*old.Name), err)
	}
	return det.Credentials["clientid"] == creds["clientid"] && det.Credentials["clientsecret"] == creds["clientsecret"], nil
}

// notRotated removes the useless new key of an instance-secret instance and
// says why nothing was rotated.
func (p *Provisioner) notRotated(ctx context.Context, key *resource.ServiceCredentialBinding, instance, keep string, cause error) error {
	if cause != nil {
		return cause
	}
	err := fmt.Errorf("rotate: service instance %q issues instance-secret credentials: every key shares one client id and secret, so a new key rotates nothing; the new key was deleted again", instance)
	r := remedy.Remedy{Action: remedy.MoveOffInstanceSecret, Instance: instance, Note: keep}
	if derr := p.deleteKey(ctx, key, instance); derr != nil {
		err = fmt.Errorf("rotate: service instance %q issues instance-secret credentials (a new key rotates nothing), and deleting the new key failed: %w", instance, derr)
		r.Names = []string{cfapi.KeyName(key, "")}
	}
	return remedy.With(err, r)
}
