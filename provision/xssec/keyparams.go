package xssec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/xsprov/xsprov/provision/infile"
)

// ParseKeyParams reads key parameters given as a file path or inline JSON;
// where names the input in messages.
func ParseKeyParams(where, v string) (map[string]any, error) {
	if v == "" {
		return nil, nil
	}
	raw := []byte(v)
	if t := strings.TrimSpace(v); !strings.HasPrefix(t, "{") {
		b, err := infile.Read(v, infile.Small)
		if err != nil {
			return nil, usagef("%s: %q is neither inline JSON nor a readable file: %v", where, v, err)
		}
		raw, where = b, v
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		if err == nil {
			err = fmt.Errorf("not a JSON object")
		}
		return nil, usagef("%s: key parameters must be a JSON object: %v", where, err)
	}
	return m, nil
}
