package cfapi

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Trace is the HTTP decorator that writes each request and response to W
// with secrets hidden, as CF_TRACE does in the cf CLI.
type Trace struct {
	Base http.RoundTripper
	W    io.Writer

	mu sync.Mutex
}

var _ http.RoundTripper = (*Trace)(nil)

// PrivateData replaces every secret in traces, as the cf CLI does.
const PrivateData = "[PRIVATE DATA HIDDEN]"

var (
	// Field names match whatever their case: clientSecret, Password, privateKey.
	reJSONSecret = regexp.MustCompile(`(?i)("(?:[A-Za-z_-]*(?:secret|password|token|key|certificate|credentials)[A-Za-z_-]*)"\s*:\s*)("(?:[^"\\]|\\.)*"|\{[^{}]*\})`)
	reFormSecret = regexp.MustCompile(`(?i)((?:^|&)(?:password|client_secret|refresh_token|assertion|client_assertion)=)[^&]*`)
)

// Redact hides secrets in a request or response body for traces.
func Redact(body []byte) []byte {
	b := reJSONSecret.ReplaceAll(body, []byte(`${1}"`+PrivateData+`"`))
	return reFormSecret.ReplaceAll(b, []byte("${1}"+PrivateData))
}

// RoundTrip implements http.RoundTripper.
func (t *Trace) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.Base.RoundTrip(req)
	t.write(req, resp, err, time.Since(start))
	return resp, err
}

func (t *Trace) write(req *http.Request, resp *http.Response, err error, took time.Duration) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "REQUEST: [%s]\n%s %s\n", time.Now().UTC().Format(time.RFC3339), req.Method, req.URL.Redacted())
	for k, vs := range req.Header {
		v := strings.Join(vs, ", ")
		if strings.EqualFold(k, "Authorization") {
			v = PrivateData
		}
		fmt.Fprintf(&b, "%s: %s\n", k, v)
	}
	if req.GetBody != nil {
		if rc, e := req.GetBody(); e == nil {
			body, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
			rc.Close()
			if len(body) > 0 {
				b.Write(Redact(body))
				b.WriteByte('\n')
			}
		}
	}
	if err != nil {
		fmt.Fprintf(&b, "RESPONSE: error after %s: %v\n\n", took.Round(time.Millisecond), err)
	} else {
		fmt.Fprintf(&b, "RESPONSE: [%s] %s (%s)\n", time.Now().UTC().Format(time.RFC3339), resp.Status, took.Round(time.Millisecond))
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if len(body) > 0 {
			b.Write(Redact(body))
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = t.W.Write(b.Bytes())
}
