package provision

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
)

// RetireLabel marks a key kept after a rotation with the unix time after
// which the next rotation deletes it.
const RetireLabel = "xsprov.io/retire-after"

// RotateRequest asks for a new key in place of the current one.
type RotateRequest struct {
	Ref
	Key       string
	KeyParams map[string]any // nil: the current key's parameters
	Out       Output
	// Grace keeps the replaced key this long; zero deletes it at once.
	Grace time.Duration
}

// RotateResult is the machine-readable result of a rotation.
type RotateResult struct {
	FormatVersion string    `json:"format_version"`
	Org           string    `json:"org"`
	Space         string    `json:"space"`
	Instance      string    `json:"instance"`
	NewKey        KeyResult `json:"new_key"`
	Replaced      string    `json:"replaced_key,omitempty"`
	Deleted       []string  `json:"deleted_keys"`
	Kept          []KeptKey `json:"kept_keys"`
	File          string    `json:"credentials_file,omitempty"`
	ExtraFiles    []string  `json:"extra_files,omitempty"`
	ClientID      string    `json:"client_id,omitempty"`
	Token         *Token    `json:"verified_token,omitempty"`
}

// KeptKey is an old key kept for a grace period.
type KeptKey struct {
	Name        string    `json:"name"`
	RetireAfter time.Time `json:"retire_after"`
}

// RotatedName is the name of a key rotated at t: base--rYYYYMMDDTHHMMSSZ.
func RotatedName(base string, t time.Time) string {
	return base + RotatedSep + t.UTC().Format("20060102T150405Z")
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
	if opBusy(inst.LastOperation) {
		if inst, err = p.waitInstance(ctx, inst.GUID); err != nil {
			return nil, p.timeoutOr(err, "service instance "+quote(req.Instance), "an operation on it is in progress")
		}
	}
	keys, err := p.keysOf(ctx, inst.GUID)
	if err != nil {
		return nil, err
	}
	old := pickKey(keys, req.Key)
	res := &RotateResult{FormatVersion: FormatVersion, Org: t.OrgName, Space: t.SpaceName, Instance: req.Instance, Deleted: []string{}, Kept: []KeptKey{}}
	params := req.KeyParams
	if old != nil {
		res.Replaced = *old.Name
		if params == nil {
			if raw, err := p.S.CF.ServiceCredentialBindings.GetParameters(ctx, old.GUID); err == nil && raw != nil {
				params = map[string]any{}
				_ = jsonUnmarshal(*raw, &params)
			}
		}
	}
	now := p.clock().Now()
	name := RotatedName(req.Key, now)
	for i := 2; keyExists(keys, name); i++ {
		name = RotatedName(req.Key, now) + "-" + strconv.Itoa(i)
	}
	keep := "the credentials file is unchanged"
	if old != nil {
		keep = "the credentials file still holds key " + quote(*old.Name)
	}
	key, err := p.createKey(ctx, inst, name, params, false)
	if err != nil {
		left := ""
		if !errors.Is(err, context.Canceled) {
			if ks, lerr := p.keysOf(ctx, inst.GUID); lerr == nil && keyExists(ks, name) {
				left = "; key " + quote(name) + " was left behind: delete it with 'cf delete-service-key " + req.Instance + " " + name + " -f'"
			}
		}
		return nil, &Hinted{Err: fmt.Errorf("rotate: create key %q: %w", name, err), Hint: keep + left}
	}
	res.NewKey = KeyResult{Name: name, GUID: key.GUID, State: describeOp(key.LastOperation), Action: Created}
	// Read and verify before the file is touched: a broken new key must not
	// replace working credentials.
	r := p.newResult(t, req.Instance)
	r.Instance.Offering = "xsuaa"
	det, err := p.S.CF.ServiceCredentialBindings.GetDetails(ctx, key.GUID)
	if err != nil {
		return nil, &Hinted{Err: fmt.Errorf("rotate: read credentials of key %q: %w", name, classify("get details", err)), Hint: keep + "; the new key " + quote(name) + " is left: run rotate again or delete it"}
	}
	r.creds = det.Credentials
	r.Instance.Name = req.Instance
	if p.OnSecrets != nil {
		p.OnSecrets(SecretValues(det.Credentials))
	}
	if err := p.verify(ctx, r); err != nil {
		_ = p.deleteKey(ctx, key, req.Instance)
		return nil, &Hinted{Err: fmt.Errorf("rotate: the new key %q does not work (it was deleted again): %w", name, err), Hint: keep}
	}
	res.Token = r.Token
	if err := p.writeCreds(det.Credentials, req.Out, r); err != nil {
		return nil, &Hinted{Err: fmt.Errorf("rotate: %w", err), Hint: keep + "; the new key " + quote(name) + " exists and works: run rotate again"}
	}
	res.File, res.ExtraFiles, res.ClientID = r.File, r.ExtraFiles, r.ClientID
	// Retire old keys: now, or after the grace period.
	var left []string
	for _, k := range keys {
		n := keyName(k, "")
		if n != req.Key && !strings.HasPrefix(n, req.Key+RotatedSep) {
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
		return res, &Hinted{Err: fmt.Errorf("rotate: the credentials file holds the new key %q, but old keys could not be deleted: %s", name, strings.Join(left, ", ")),
			Hint: "run 'xsprov rotate' again later, or delete them with 'cf delete-service-key " + req.Instance + " KEY -f'"}
	}
	return res, nil
}

func keyExists(keys []*resource.ServiceCredentialBinding, name string) bool {
	for _, k := range keys {
		if keyName(k, "") == name {
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
	_, err := p.S.CF.ServiceCredentialBindings.Update(ctx, k.GUID, &resource.ServiceCredentialBindingUpdate{
		Metadata: &resource.Metadata{Labels: map[string]*string{RetireLabel: &retire}},
	})
	return classify("label key", err)
}
