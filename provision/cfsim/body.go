package cfsim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// decodeBody reads a JSON object body, reporting malformed JSON (400 1001)
// and fields outside allowed (422).
func decodeBody(req *request, allowed ...string) (map[string]json.RawMessage, *apiError) {
	b, err := io.ReadAll(http.MaxBytesReader(req.w, req.r.Body, 1<<20))
	if err != nil {
		return nil, errMessageParse("request body too large or unreadable")
	}
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil || m == nil {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, errMessageParse(err.Error())
	}
	if dec.More() {
		return nil, errMessageParse("trailing data after the JSON object")
	}
	var unknown []string
	for k := range m {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, errUnprocessable("Unknown field(s): '" + strings.Join(unknown, "', '") + "'")
	}
	return m, nil
}

func relGUID(raw json.RawMessage, name string) (string, bool) {
	var r map[string]struct {
		Data *struct {
			GUID string `json:"guid"`
		} `json:"data"`
	}
	if json.Unmarshal(raw, &r) != nil {
		return "", false
	}
	if v, ok := r[name]; ok && v.Data != nil {
		return v.Data.GUID, true
	}
	return "", false
}

func decodeObject(raw json.RawMessage) (map[string]any, bool) {
	if raw == nil {
		return nil, true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, false
	}
	if m == nil && string(raw) != "null" {
		return nil, false
	}
	return m, true
}

type metadataBody struct {
	Labels      map[string]*string `json:"labels"`
	Annotations map[string]*string `json:"annotations"`
}

func applyMetadata(m *meta, raw json.RawMessage) *apiError {
	if raw == nil {
		return nil
	}
	var md metadataBody
	if err := json.Unmarshal(raw, &md); err != nil {
		return errUnprocessable("Metadata must be an object")
	}
	merge := func(dst *map[string]string, src map[string]*string) {
		for k, v := range src {
			if *dst == nil {
				*dst = map[string]string{}
			}
			if v == nil {
				delete(*dst, k)
			} else {
				(*dst)[k] = *v
			}
		}
	}
	for k := range md.Labels {
		if k == "" || len(k) > 316 || strings.ContainsAny(k, " ,=!") {
			return errUnprocessable("Metadata label key error: '" + k + "' is not a valid label key")
		}
	}
	merge(&m.Labels, md.Labels)
	merge(&m.Annotations, md.Annotations)
	return nil
}

// ---- service instances ----
