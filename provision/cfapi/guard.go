package cfapi

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Guard is the HTTP decorator that keeps secrets off the network in clear:
// a request to a plain http:// URL of a host that is not loopback is refused
// before it is sent, unless AllowInsecure (labs). Every request xsprov sends
// carries a secret or a token (a bearer token, a password, a client secret)
// or leads to one (discovery), so the rule holds for all of them.
type Guard struct {
	Base          http.RoundTripper
	AllowInsecure bool
}

var _ http.RoundTripper = (*Guard)(nil)

// RoundTrip implements http.RoundTripper.
func (g *Guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if !g.AllowInsecure {
		if err := CheckSecureURL(req.URL); err != nil {
			return nil, err
		}
	}
	return g.Base.RoundTrip(req)
}

// InsecureURLError is a plain http:// URL of a host that is not loopback:
// credentials would cross the network in clear. Nothing was sent.
type InsecureURLError struct{ URL string }

func (e *InsecureURLError) Error() string {
	return fmt.Sprintf("refusing to send credentials in clear text to %s (plain http:// to a host that is not loopback)", e.URL)
}

// Usage marks the error as bad input (exit code 2).
func (e *InsecureURLError) Usage() bool { return true }

// CheckSecureURL refuses a plain http:// URL whose host is not loopback.
func CheckSecureURL(u *url.URL) error {
	if !strings.EqualFold(u.Scheme, "http") || IsLoopback(u.Hostname()) {
		return nil
	}
	return &InsecureURLError{URL: u.Scheme + "://" + u.Host}
}

// IsLoopback tells whether host is this machine (localhost, 127.0.0.0/8, ::1).
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
