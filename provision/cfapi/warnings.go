package cfapi

import (
	"net/http"
	"net/url"
	"strings"
)

// Warnings is the HTTP decorator that passes on the warnings of
// X-Cf-Warnings response headers (URL-encoded, possibly several, each
// possibly comma-separated).
type Warnings struct {
	Base http.RoundTripper
	On   func(string)
}

var _ http.RoundTripper = (*Warnings)(nil)

// RoundTrip implements http.RoundTripper.
func (t *Warnings) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.Base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	for _, h := range resp.Header.Values("X-Cf-Warnings") {
		for _, part := range strings.Split(h, ",") {
			if w, err := url.QueryUnescape(strings.TrimSpace(part)); err == nil && w != "" {
				t.On(w)
			}
		}
	}
	return resp, nil
}
