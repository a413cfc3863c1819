package provision

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/cloudfoundry/go-cfclient/v3/client"
	"github.com/cloudfoundry/go-cfclient/v3/config"
	"golang.org/x/oauth2"
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
}

// Method names the login method, for messages.
func (a Auth) Method() string {
	switch {
	case a.ClientID != "":
		return "client credentials of " + a.ClientID
	case a.Username != "":
		return "user " + a.Username
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

// Session is a logged-in connection to one Cloud Foundry API.
type Session struct {
	API  string
	User string // who we act as, for progress messages
	CF   *client.Client
	HTTP *http.Client

	auth    Auth
	skipTLS bool
}

// Fork logs in once more and returns a session with a client of its own.
// go-cfclient's re-authentication after a 401 changes its client without a
// lock, so goroutines that work at the same time each need their own.
func (s *Session) Fork(ctx context.Context) (*Session, error) {
	hc := *s.HTTP // config.New sets fields of the client it is given
	return Connect(ctx, s.API, s.auth, &hc, s.skipTLS)
}

// Connect discovers the API's UAA and logs in. Login failures are
// *AuthError (exit 4).
func Connect(ctx context.Context, api string, auth Auth, hc *http.Client, skipTLS bool) (*Session, error) {
	opts := []config.Option{config.HttpClient(hc), config.UserAgent("xsprov")}
	if skipTLS {
		opts = append(opts, config.SkipTLSValidation())
	}
	var user string
	switch {
	case auth.ClientID != "":
		if auth.ClientSecret == "" {
			return nil, &AuthError{Msg: "client " + auth.ClientID + " has no secret", Hint: "set CF_CLIENT_SECRET or --client-secret-file"}
		}
		opts = append(opts, config.ClientCredentials(auth.ClientID, auth.ClientSecret))
		user = auth.ClientID
	case auth.Username != "":
		if auth.Password == "" {
			return nil, &AuthError{Msg: "user " + auth.Username + " has no password", Hint: "set CF_PASSWORD"}
		}
		opts = append(opts, config.UserPassword(auth.Username, auth.Password))
		if auth.Origin != "" {
			opts = append(opts, config.Origin(auth.Origin))
		}
		user = auth.Username
	default:
		cfc, err := LoadCFConfig(auth.CFHome)
		if err != nil {
			return nil, err
		}
		if cfc == nil || cfc.RefreshToken == "" {
			return nil, &AuthError{Msg: "not logged in", Hint: "set CF_CLIENT_ID and CF_CLIENT_SECRET (CI), or CF_USERNAME and CF_PASSWORD, or run 'cf login'"}
		}
		access := strings.TrimSpace(cfc.AccessToken)
		if _, ok := jwtClaims(access); !ok {
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
	return &Session{API: api, User: user, CF: cf, HTTP: hc, auth: auth, skipTLS: skipTLS}, nil
}

func loginError(api string, auth Auth, err error) error {
	if ra := retrieveError(err); ra != nil {
		return ra
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if isConnError(err) || strings.Contains(err.Error(), "discovering token service") {
		return &Hinted{Err: fmt.Errorf("cannot reach the Cloud Foundry API at %s: %w", api, unwrapAll(err)), Hint: "check --api / CF_API and your network"}
	}
	return &AuthError{Msg: fmt.Sprintf("log in to %s with %s: %v", api, auth.Method(), err), Err: err}
}

func unwrapAll(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// retrieveError turns an OAuth error from UAA into an *AuthError.
func retrieveError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return nil
	}
	code, desc := re.ErrorCode, re.ErrorDescription
	if code == "" && re.Response != nil {
		code = re.Response.Status
	}
	msg := "authentication failed: " + code
	if desc != "" {
		msg += ": " + desc
	}
	return &AuthError{Msg: msg, Hint: "check CF_CLIENT_ID/CF_CLIENT_SECRET or CF_USERNAME/CF_PASSWORD (and --origin), or run 'cf login' again", Err: err}
}

// jwtClaims decodes the claims of a JWT ("bearer " prefix allowed) without
// verifying it.
func jwtClaims(tok string) (map[string]any, bool) {
	tok = strings.TrimSpace(tok)
	if i := strings.IndexByte(tok, ' '); i >= 0 {
		tok = tok[i+1:]
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, false
	}
	var c map[string]any
	if json.Unmarshal(b, &c) != nil {
		return nil, false
	}
	return c, true
}

// tokenUser reads user_name or client_id from a JWT without verifying it.
func tokenUser(tok string) string {
	c, _ := jwtClaims(tok)
	for _, k := range []string{"user_name", "client_id"} {
		if s, _ := c[k].(string); s != "" {
			return s
		}
	}
	return "cf CLI user"
}

// ValidateAPI checks an API URL given by the user.
func ValidateAPI(api string) error {
	u, err := url.Parse(api)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Usagef("API URL %q is not an http(s) URL (example: https://api.cf.eu10.hana.ondemand.com)", api)
	}
	return nil
}
