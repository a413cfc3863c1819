package cfapi

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cloudfoundry/go-cfclient/v3/client"
	"github.com/cloudfoundry/go-cfclient/v3/config"
	"github.com/golang-jwt/jwt/v5"

	"github.com/xsprov/xsprov/provision/remedy"
)

// Auth says how to log in. Exactly one way is used, in this order: client
// credentials, user and password, the cf CLI's saved login.
type Auth struct {
	ClientID     string
	ClientSecret string
	Username     string
	Password     string
	Origin       string
	// CFHome is the directory holding .cf/config.json (the cf CLI's CF_HOME).
	CFHome string
	// Token is an access token handed over by a running cf CLI (plugin
	// mode): used as it is, never refreshed by xsprov.
	Token string
}

// Method names the login method, for messages.
func (a Auth) Method() string {
	switch {
	case a.ClientID != "":
		return "client credentials of " + a.ClientID
	case a.Username != "":
		return "user " + a.Username
	case a.Token != "":
		return "the cf CLI session (plugin)"
	default:
		return "the cf CLI login in " + filepath.Join(a.CFHome, ".cf", "config.json")
	}
}

// CFConfig is the part of the cf CLI's config.json xsprov reads.
type CFConfig struct {
	Target             string
	AccessToken        string
	RefreshToken       string
	SSLDisabled        bool
	UAAOAuthClient     string
	OrganizationFields struct{ GUID, Name string }
	SpaceFields        struct{ GUID, Name string }
}

// LoadCFConfig reads CF_HOME/.cf/config.json; a missing file gives nil, nil.
func LoadCFConfig(cfHome string) (*CFConfig, error) {
	if cfHome == "" {
		return nil, nil
	}
	path := filepath.Join(cfHome, ".cf", "config.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, Usagef("read cf CLI config %s: %v", path, err)
	}
	var c CFConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, Usagef("cf CLI config %s is not valid JSON: %v", path, err)
	}
	return &c, nil
}

// Options tune a session.
type Options struct {
	SkipTLS bool
	// Clock, Backoff and Polling steer waiting for jobs (tests and
	// benchmarks): Backoff while the Cloud Controller works (PROCESSING),
	// Polling once it polls an asynchronous broker (POLLING).
	Clock   Clock
	Backoff Backoff
	Polling Polling

	// authURLs are the login and token URLs the API root lists; given, the
	// root is not asked again (forks).
	authURLs [2]string
}

// Session is a logged-in connection to one Cloud Foundry API.
type Session struct {
	API  string
	User string // who we act as, for progress messages
	CF   *client.Client
	HTTP *http.Client

	auth    Auth
	opts    Options
	clock   Clock
	backoff Backoff
	polling Polling
	fleet   *Fleet // waits go through it when set (WithFleet)
	root    *rootCache
	bound   *boundTransport
}

// Identity is who the session acts as, read from its bearer token.
type Identity struct {
	UserGUID string   // user_id, or the client id of a client's token
	UserName string   // "" for a client
	ClientID string   // the OAuth client
	Scopes   []string // e.g. cloud_controller.admin
	Origin   string
}

// Identity says who the last request was sent as (after at least one).
func (s *Session) Identity() Identity {
	if s.bound == nil {
		return Identity{}
	}
	s.bound.mu.Lock()
	c := s.bound.claims
	s.bound.mu.Unlock()
	str := func(k string) string { v, _ := c[k].(string); return v }
	id := Identity{UserGUID: cmp.Or(str("user_id"), str("sub")), UserName: str("user_name"), ClientID: str("client_id"), Origin: str("origin")}
	if sc, ok := c["scope"].([]any); ok {
		for _, v := range sc {
			if s, ok := v.(string); ok {
				id.Scopes = append(id.Scopes, s)
			}
		}
	} else if sc, ok := c["scope"].(string); ok {
		id.Scopes = strings.Fields(sc)
	}
	return id
}

// rootCache holds what forks of a session need from the API root, read once.
type rootCache struct {
	once     sync.Once
	authURLs [2]string
}

// Clock is the session's time source.
func (s *Session) Clock() Clock { return s.clock }

// Fork logs in once more and returns a session with a client of its own.
// go-cfclient's re-authentication after a 401 assigns its token source
// without a lock (client/client.go, ReAuthenticate in v3.0.0-alpha.21; see
// https://github.com/cloudfoundry/go-cfclient/blob/v3.0.0-alpha.21/client/client.go),
// so goroutines that work at the same time each need their own.
func (s *Session) Fork(ctx context.Context) (*Session, error) {
	hc := *s.HTTP // config.New sets fields of the client it is given
	o := s.opts
	if o.authURLs[1] == "" {
		// Forks do not ask the root again (one request per fork saved).
		s.root.once.Do(func() {
			if r, err := s.CF.Root.Get(ctx); err == nil && r.Links.Uaa.Href != "" {
				s.root.authURLs = [2]string{cmp.Or(r.Links.Login.Href, r.Links.Uaa.Href), r.Links.Uaa.Href}
			}
		})
		o.authURLs = s.root.authURLs
	}
	n, err := Connect(ctx, s.API, s.auth, &hc, o)
	if err == nil {
		n.root = s.root
	}
	return n, err
}

// Connect discovers the API's UAA and logs in. Login failures are
// *AuthError.
func Connect(ctx context.Context, api string, auth Auth, hc *http.Client, o Options) (*Session, error) {
	// go-cfclient discovers and logs in (and logs in again after a 401)
	// with context.Background() (config.New, retryableAuthTransport in
	// v3.0.0-alpha.21): bound those requests by ctx, so --timeout and
	// Ctrl-C cover login too.
	bound := *hc
	bt := &boundTransport{base: hc.Transport, ctx: ctx}
	bound.Transport = bt
	// go-cfclient puts a 30 s timeout on each request (retries and 429
	// waits included); ctx's deadline (--timeout) is the one limit instead.
	opts := []config.Option{config.HttpClient(&bound), config.UserAgent("xsprov"), config.RequestTimeout(noRequestTimeout)}
	if o.SkipTLS {
		opts = append(opts, config.SkipTLSValidation())
	}
	if o.authURLs[1] != "" {
		opts = append(opts, config.AuthTokenURL(o.authURLs[0], o.authURLs[1]))
	}
	var user string
	switch {
	case auth.ClientID != "":
		if auth.ClientSecret == "" {
			return nil, &AuthError{Msg: "client " + auth.ClientID + " has no secret", Remedy: remedy.Remedy{Action: remedy.SetClientSecret}}
		}
		opts = append(opts, config.ClientCredentials(auth.ClientID, auth.ClientSecret))
		user = auth.ClientID
	case auth.Username != "":
		if auth.Password == "" {
			return nil, &AuthError{Msg: "user " + auth.Username + " has no password", Remedy: remedy.Remedy{Action: remedy.SetPassword}}
		}
		opts = append(opts, config.UserPassword(auth.Username, auth.Password))
		if auth.Origin != "" {
			opts = append(opts, config.Origin(auth.Origin))
		}
		user = auth.Username
	case auth.Token != "":
		opts = append(opts, config.Token(strings.TrimSpace(auth.Token), ""))
		user = tokenUser(auth.Token)
	default:
		cfc, err := LoadCFConfig(auth.CFHome)
		if err != nil {
			return nil, err
		}
		if cfc == nil || cfc.RefreshToken == "" {
			return nil, &AuthError{Msg: "not logged in", Remedy: remedy.Remedy{Action: remedy.Login}}
		}
		access := strings.TrimSpace(cfc.AccessToken)
		if _, ok := unverifiedClaims(access); !ok {
			access = "" // unreadable: let the refresh token get a new one
		}
		opts = append(opts, config.Token(access, cfc.RefreshToken))
		user = tokenUser(cfc.AccessToken)
	}
	cfg, err := config.New(api, opts...)
	if err != nil {
		return nil, loginError(api, auth, err)
	}
	cf, err := client.New(cfg)
	if err != nil {
		return nil, loginError(api, auth, err)
	}
	clk := clockOr(o.Clock)
	b := o.Backoff
	if b.Min == 0 {
		b = DefaultBackoff
	}
	p := o.Polling
	if p.Step == 0 {
		p = DefaultPolling
	}
	return &Session{API: api, User: user, CF: cf, HTTP: hc, auth: auth, opts: o, clock: clk, backoff: b, polling: p, root: &rootCache{}, bound: bt}, nil
}

func loginError(api string, auth Auth, err error) error {
	if ra := retrieveError(err); ra != nil {
		return ra
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if IsUntrustedCert(err) {
		return remedy.With(fmt.Errorf("the TLS certificate of %s is not trusted: %w", api, innermost(err)), remedy.Remedy{Action: remedy.TrustCA})
	}
	if isConnError(err) || strings.Contains(err.Error(), "discovering token service") {
		// go-cfclient wraps discovery failures in fmt.Errorf without a type
		// of its own: its message prefix is the only sign of one.
		return remedy.With(fmt.Errorf("cannot reach the Cloud Foundry API at %s: %w", api, innermost(err)), remedy.Remedy{Action: remedy.CheckAPI})
	}
	return &AuthError{Msg: fmt.Sprintf("log in to %s with %s: %v", api, auth.Method(), err), Err: err}
}

// IsUntrustedCert tells whether err is a TLS certificate that failed
// verification (unknown authority, wrong host name, expired).
func IsUntrustedCert(err error) bool {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var cv *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &cv)
}

func innermost(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// unverifiedClaims decodes the claims of a JWT ("bearer " prefix allowed)
// without verifying it: the token is the cf CLI's own, only read for who it
// belongs to.
func unverifiedClaims(tok string) (jwt.MapClaims, bool) {
	tok = strings.TrimSpace(tok)
	if i := strings.IndexByte(tok, ' '); i >= 0 {
		tok = tok[i+1:]
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		return nil, false
	}
	return claims, true
}

// tokenUser reads user_name or client_id from a JWT without verifying it.
func tokenUser(tok string) string {
	c, _ := unverifiedClaims(tok)
	for _, k := range []string{"user_name", "client_id"} {
		if s, _ := c[k].(string); s != "" {
			return s
		}
	}
	return "cf CLI user"
}

// ValidateAPI checks an API URL given by the user. A URL with a user or a
// password in it is refused without echoing it.
func ValidateAPI(api string, allowInsecure bool) error {
	u, err := url.Parse(api)
	if (err == nil && u.User != nil) || (err != nil && strings.Contains(api, "@")) {
		return Usagef("the API URL holds a user name or password; give credentials through the environment instead (the URL is not shown)")
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Usagef("API URL %q is not an http(s) URL (example: https://api.cf.eu10.hana.ondemand.com)", api)
	}
	if !allowInsecure {
		return CheckSecureURL(u)
	}
	return nil
}

// boundTransport ends every request with the session's context too: its
// deadline and its cancellation reach requests that go-cfclient sends with
// a context of its own.
type boundTransport struct {
	base http.RoundTripper
	ctx  context.Context

	// who the bearer token of the last request speaks for (its claims,
	// read unverified; never the token itself)
	mu       sync.Mutex
	lastAuth string
	claims   jwt.MapClaims
}

func (t *boundTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if h := req.Header.Get("Authorization"); h != "" {
		t.mu.Lock()
		if h != t.lastAuth {
			if c, ok := unverifiedClaims(h); ok {
				t.lastAuth, t.claims = h, c
			}
		}
		t.mu.Unlock()
	}
	ctx := req.Context()
	cancelDeadline := func() {}
	if dl, ok := t.ctx.Deadline(); ok {
		ctx, cancelDeadline = context.WithDeadline(ctx, dl)
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(t.ctx, func() {
		// a deadline is the WithDeadline's to report (DeadlineExceeded,
		// not Canceled): only pass on a cancellation
		if errors.Is(t.ctx.Err(), context.Canceled) {
			cancel()
		}
	})
	release := func() { stop(); cancel(); cancelDeadline() }
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		release()
		return nil, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: release}
	return resp, nil
}

// releasingBody releases the request's context when the body is closed.
type releasingBody struct {
	io.ReadCloser
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}

// noRequestTimeout is go-cfclient's per-request timeout, long enough never
// to end a request before the context does (0 would mean its default).
const noRequestTimeout = 7 * 24 * time.Hour
