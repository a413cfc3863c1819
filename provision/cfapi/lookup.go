package cfapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cloudfoundry/go-cfclient/v3/client"
	"github.com/cloudfoundry/go-cfclient/v3/resource"
)

// FindInstance looks an instance up by name in the space (nil when absent).
func (s *Session) FindInstance(ctx context.Context, t Target, name string) (*resource.ServiceInstance, error) {
	opts := client.NewServiceInstanceListOptions()
	opts.Names = client.Filter{Values: []string{name}}
	opts.SpaceGUIDs = client.Filter{Values: []string{t.SpaceGUID}}
	list, _, err := s.CF.ServiceInstances.List(ctx, opts)
	if err != nil {
		return nil, Classify("look up service instance "+quote(name), err)
	}
	for _, si := range list {
		if si.Name == name {
			return si, nil
		}
	}
	return nil, nil
}

// KeysOf lists the keys of an instance.
func (s *Session) KeysOf(ctx context.Context, instGUID string) ([]*resource.ServiceCredentialBinding, error) {
	opts := client.NewServiceCredentialBindingListOptions()
	opts.ServiceInstanceGUIDs = client.Filter{Values: []string{instGUID}}
	opts.Type = client.Filter{Values: []string{"key"}}
	opts.PerPage = 5000
	keys, err := s.CF.ServiceCredentialBindings.ListAll(ctx, opts)
	if err != nil {
		return nil, Classify("list service keys", err)
	}
	return keys, nil
}

// RotatedSep separates a key's base name from a rotation suffix
// ("my-key--r20261127T043712Z"); suffixes sort by time.
const RotatedSep = "--r"

// PickKey returns the instance's key named base, preferring the newest
// rotated one ("base--r<time>") when there is one.
func PickKey(keys []*resource.ServiceCredentialBinding, base string) *resource.ServiceCredentialBinding {
	var best *resource.ServiceCredentialBinding
	bestName := ""
	for _, k := range keys {
		if k.Name == nil {
			continue
		}
		n := *k.Name
		if !IsKeyOf(n, base) {
			continue
		}
		if best == nil || n > bestName {
			best, bestName = k, n
		}
	}
	return best
}

// KeysOfInstances lists the keys of many instances in a few requests (many
// instance GUIDs per filter), by instance GUID.
func (s *Session) KeysOfInstances(ctx context.Context, guids []string) (map[string][]*resource.ServiceCredentialBinding, error) {
	out := map[string][]*resource.ServiceCredentialBinding{}
	const batch = 100 // keeps the URL well below common limits
	for lo := 0; lo < len(guids); lo += batch {
		opts := client.NewServiceCredentialBindingListOptions()
		opts.ServiceInstanceGUIDs = client.Filter{Values: guids[lo:min(lo+batch, len(guids))]}
		opts.Type = client.Filter{Values: []string{"key"}}
		opts.PerPage = 5000
		keys, err := s.CF.ServiceCredentialBindings.ListAll(ctx, opts)
		if err != nil {
			return nil, Classify("list service keys", err)
		}
		for _, k := range keys {
			if k.Relationships.ServiceInstance != nil && k.Relationships.ServiceInstance.Data != nil {
				g := k.Relationships.ServiceInstance.Data.GUID
				out[g] = append(out[g], k)
			}
		}
	}
	return out, nil
}

// KeyName is the key's name, or def when it has none.
func KeyName(k *resource.ServiceCredentialBinding, def string) string {
	if k != nil && k.Name != nil {
		return *k.Name
	}
	return def
}

// IsKeyOf tells whether name is base or one of its rotations.
func IsKeyOf(name, base string) bool {
	return name == base || strings.HasPrefix(name, base+RotatedSep)
}

// InstanceParams reads an instance's parameters, waiting for an operation
// in progress; nil when the offering does not allow reading them (400
// 120004).
func (s *Session) InstanceParams(ctx context.Context, guid string) (map[string]any, error) {
	for {
		raw, err := s.CF.ServiceInstances.GetManagedParameters(ctx, guid)
		if IsCode(err, CodeParamsNotRetrievable) {
			return nil, nil
		}
		if IsInProgress(err) {
			if _, werr := s.WaitInstance(ctx, guid); werr != nil {
				return nil, werr
			}
			continue
		}
		if err != nil {
			return nil, Classify("read parameters of service instance", err)
		}
		m := map[string]any{}
		if raw != nil {
			if err := json.Unmarshal(*raw, &m); err != nil {
				return nil, fmt.Errorf("parameters of service instance %s are not a JSON object: %w", guid, err)
			}
		}
		return m, nil
	}
}

// LabelsMeta is metadata that sets labels (nil when there are none).
func LabelsMeta(labels map[string]string) *resource.Metadata {
	if len(labels) == 0 {
		return nil
	}
	m := &resource.Metadata{Labels: map[string]*string{}}
	for k, v := range labels {
		m.Labels[k] = &v
	}
	return m
}
