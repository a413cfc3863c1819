package cfapi

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
)

// HTTPOptions configure the HTTP client for Cloud Foundry, UAA and XSUAA.
type HTTPOptions struct {
	// Base is the transport under the decorators (tests); nil: a keep-alive
	// transport with TLS verification per SkipTLS and RootCAs.
	Base       http.RoundTripper
	SkipTLS    bool
	RootCAs    *x509.CertPool
	Clock      Clock
	MaxRetries int
	// Trace, when set, receives each request and response, redacted.
	Trace io.Writer
	// OnWarning receives the warnings of X-Cf-Warnings response headers.
	OnWarning func(string)
	// AllowInsecureHTTP lets credentials go to plain http:// hosts that are
	// not loopback (labs only).
	AllowInsecureHTTP bool
	// MaxRPS caps the requests per second of the whole run (0: none).
	MaxRPS float64
}

// Wrap puts the decorators around base, innermost first: the clear-text
// guard, warnings, trace (so each attempt is traced), the shared request
// budget (each attempt waits its turn), then retry. One Wrap is one budget:
// the sessions forked from one client share it.
func (o HTTPOptions) Wrap(base http.RoundTripper) http.RoundTripper {
	var rt http.RoundTripper = &Guard{Base: base, AllowInsecure: o.AllowInsecureHTTP}
	if o.OnWarning != nil {
		rt = &Warnings{Base: rt, On: o.OnWarning}
	}
	if o.Trace != nil {
		rt = &Trace{Base: rt, W: o.Trace}
	}
	rt = &Budget{Base: rt, Clock: o.Clock, MaxRPS: o.MaxRPS}
	return &Retry{Base: rt, Clock: o.Clock, MaxRetries: o.MaxRetries}
}

// BaseTransport is a keep-alive transport with the TLS settings of o.
func (o HTTPOptions) BaseTransport() *http.Transport {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = &tls.Config{InsecureSkipVerify: o.SkipTLS, RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12} //nolint:gosec // only when the user asked
	base.MaxIdleConnsPerHost = 16
	return base
}

// NewHTTPClient returns the client xsprov uses for Cloud Foundry and UAA.
// It has no overall timeout of its own: the context's deadline bounds every
// request and every wait.
func NewHTTPClient(o HTTPOptions) *http.Client {
	base := o.Base
	if base == nil {
		base = o.BaseTransport()
	}
	return &http.Client{Transport: o.Wrap(base)}
}

// isConnError reports a failure to reach the API at all.
func isConnError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &oe) || (errors.As(err, &ne) && ne.Timeout())
}
