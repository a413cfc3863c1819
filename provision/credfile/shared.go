package credfile

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
)

// Shared formats hold other things beside one instance's credentials:
// default-env.json holds every service of an app (VCAP_SERVICES, and
// destinations and more), an http-client env file one environment per
// instance. xsprov changes only its own entry in them.

// Shared tells whether a format's file is shared with other content.
func Shared(format string) bool { return format == FormatDefaultEnv || format == FormatHTTPClient }

// Merge puts the entry of o.Instance from rendered into the existing file
// content, keeping everything else. Content that is not a JSON object is
// not clobbered: that is an error.
func Merge(existing, rendered []byte, o Output) ([]byte, error) {
	var have, mine map[string]any
	if err := json.Unmarshal(existing, &have); err != nil || have == nil {
		return nil, usagef("%s exists and is not a JSON object; it is left as it is (move it away, or write elsewhere with --out)", o.Path)
	}
	if err := json.Unmarshal(rendered, &mine); err != nil {
		return nil, err
	}
	switch o.Format {
	case FormatDefaultEnv:
		vcap, _ := have["VCAP_SERVICES"].(map[string]any)
		if vcap == nil {
			vcap = map[string]any{}
		}
		for label, entries := range mine["VCAP_SERVICES"].(map[string]any) {
			vcap[label] = replaceInstance(vcap[label], o.Instance, entries.([]any)[0])
		}
		have["VCAP_SERVICES"] = vcap
	case FormatHTTPClient:
		for env, vars := range mine {
			have[env] = vars
		}
	}
	return jsonDoc(have)
}

// replaceInstance puts entry in place of the instance's entry in a
// VCAP_SERVICES list (appending it when there is none), so that a re-run
// writes the same file.
func replaceInstance(v any, instance string, entry any) []any {
	list, _ := v.([]any)
	for i, e := range list {
		if m, _ := e.(map[string]any); m["name"] == instance || m["instance_name"] == instance {
			list[i] = entry
			return list
		}
	}
	return append(list, entry)
}

// withoutInstance is a VCAP_SERVICES list without the entries of instance.
func withoutInstance(v any, instance string) []any {
	list, _ := v.([]any)
	return slices.DeleteFunc(slices.Clone(list), func(e any) bool {
		m, _ := e.(map[string]any)
		return m["name"] == instance || m["instance_name"] == instance
	})
}

// RemoveInstance removes what xsprov wrote for instance from a credentials
// file: the file itself, or only the instance's entry where the file holds
// other things too (it is deleted once nothing else is left). It tells
// whether the file is gone.
func RemoveInstance(path, instance string) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil || m == nil {
		return true, removeFile(path)
	}
	switch vcap, isDefaultEnv := m["VCAP_SERVICES"].(map[string]any); {
	case isDefaultEnv:
		for label, list := range vcap {
			if rest := withoutInstance(list, instance); len(rest) > 0 {
				vcap[label] = rest
			} else {
				delete(vcap, label)
			}
		}
		if len(vcap) == 0 {
			delete(m, "VCAP_SERVICES")
		}
	case isHTTPClientEnv(m):
		delete(m, instance)
	default:
		return true, removeFile(path)
	}
	if len(m) == 0 {
		return true, removeFile(path)
	}
	out, err := jsonDoc(m)
	if err != nil {
		return false, err
	}
	return false, WriteFileAtomic(path, out)
}

// isHTTPClientEnv: every value is an environment (an object of variables),
// and one of them is xsprov's.
func isHTTPClientEnv(m map[string]any) bool {
	mine := false
	for _, v := range m {
		env, ok := v.(map[string]any)
		if !ok {
			return false
		}
		mine = mine || env["xsuaa_client_id"] != nil
	}
	return mine
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
