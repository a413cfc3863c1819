package cfsim

import (
	"cmp"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// pregenerate makes the signing key in the background, outside the lock, so
// that the first token request does not pay for it.
func (s *Sim) pregenerate() {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.SigningKey == "" {
		s.pregen = k
		_, _ = s.ensureSigner()
	}
}

// signer signs and verifies RS256 JWTs.
type signer struct {
	key    *rsa.PrivateKey
	kid    string
	pubPEM string
}

// claims are the JWT claims the simulator issues and reads.
type claims struct {
	Jti       string         `json:"jti"`
	Sub       string         `json:"sub"`
	UserID    string         `json:"user_id,omitempty"`
	UserName  string         `json:"user_name,omitempty"`
	Email     string         `json:"email,omitempty"`
	Origin    string         `json:"origin,omitempty"`
	ClientID  string         `json:"client_id"`
	Cid       string         `json:"cid"`
	Azp       string         `json:"azp"`
	GrantType string         `json:"grant_type"`
	Scope     []string       `json:"scope"`
	Auth      []string       `json:"authorities,omitempty"`
	Aud       []string       `json:"aud"`
	Iss       string         `json:"iss"`
	Zid       string         `json:"zid"`
	Iat       int64          `json:"iat"`
	Exp       int64          `json:"exp"`
	ExtAttr   map[string]any `json:"ext_attr,omitempty"`
	// Refresh marks a refresh token, which is not accepted as an access token.
	Refresh bool `json:"refresh,omitempty"`
}

func (c *claims) hasScope(s string) bool { return slices.Contains(c.Scope, s) }

// ensureSigner loads or creates the signing key. Callers hold s.mu.
func (s *Sim) ensureSigner() (*signer, error) {
	if s.signer != nil {
		return s.signer, nil
	}
	var key *rsa.PrivateKey
	if s.st.SigningKey != "" {
		blk, _ := pem.Decode([]byte(s.st.SigningKey))
		if blk == nil {
			return nil, errors.New("simulator state holds an unreadable signing key")
		}
		k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		key = k
	} else {
		k := s.pregen
		if k == nil {
			var err error
			if k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				return nil, err
			}
		}
		key = k
		s.st.SigningKey = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
		s.dirty = true
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(pub)
	s.signer = &signer{
		key:    key,
		kid:    "sim-" + base64.RawURLEncoding.EncodeToString(sum[:6]),
		pubPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
	}
	return s.signer, nil
}

func (g *signer) sign(c *claims, jku string) (string, error) {
	hdr, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": g.kid, "jku": jku})
	body, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signing := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(body)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, g.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func (g *signer) verify(tok string) (*claims, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&g.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return nil, err
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var c claims
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// authenticate checks the bearer token of a Cloud Controller request.
func (s *Sim) authenticate(r *http.Request) (*claims, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, errNotAuthenticated()
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || tok == "" {
		return nil, errInvalidToken()
	}
	var c *claims
	if v, ok := s.verified.Load(tok); ok {
		c = v.(*claims)
	} else {
		s.mu.Lock()
		g, err := s.ensureSigner()
		s.mu.Unlock()
		if err != nil {
			return nil, errInvalidToken()
		}
		c, err = g.verify(tok)
		if err != nil {
			return nil, errInvalidToken()
		}
		s.verified.Store(tok, c)
	}
	if c.Refresh || !slices.Contains(c.Aud, "cloud_controller") || s.now().Unix() >= c.Exp {
		return nil, errInvalidToken()
	}
	return c, nil
}

type oauthError struct {
	status      int
	code, descr string
	clientAuth  bool
}

func writeOAuthError(w http.ResponseWriter, e oauthError) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if e.clientAuth {
		w.Header().Set("WWW-Authenticate", `Basic realm="UAA/client", error="unauthorized", error_description="`+e.descr+`"`)
	}
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.descr})
}

var errBadCredentials = oauthError{status: 401, code: "invalid_client", descr: "Bad credentials", clientAuth: true}

// tokenRequest reads the common parts of an OAuth token request: method,
// form, and client authentication (Basic or form).
func tokenRequest(w http.ResponseWriter, r *http.Request) (form url.Values, clientID, secret string, ok bool) {
	if r.Method != http.MethodPost {
		writeOAuthError(w, oauthError{status: 405, code: "method_not_allowed", descr: "Request method '" + r.Method + "' is not supported"})
		return nil, "", "", false
	}
	q := r.URL.Query()
	if q.Has("client_secret") || q.Has("password") {
		writeOAuthError(w, oauthError{status: 406, code: "query_string_not_allowed", descr: "Parameters must be passed in the body of the request"})
		return nil, "", "", false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, oauthError{status: 400, code: "invalid_request", descr: "Malformed request body"})
		return nil, "", "", false
	}
	form = r.PostForm
	if u, p, has := r.BasicAuth(); has {
		var err1, err2 error
		clientID, err1 = url.QueryUnescape(u)
		secret, err2 = url.QueryUnescape(p)
		if err1 != nil || err2 != nil {
			writeOAuthError(w, errBadCredentials)
			return nil, "", "", false
		}
	} else {
		clientID, secret = form.Get("client_id"), form.Get("client_secret")
	}
	return form, clientID, secret, true
}

func eq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// uaaToken serves POST {uaa}/oauth/token.
func (s *Sim) uaaToken(req *request) {
	w, r := req.w, req.r
	form, clientID, secret, ok := tokenRequest(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var client *Client
	for _, c := range s.st.Clients {
		if c.ID == clientID && eq(c.Secret, secret) {
			client = c
		}
	}
	if client == nil {
		writeOAuthError(w, errBadCredentials)
		return
	}
	grant := form.Get("grant_type")
	switch {
	case grant == "":
		writeOAuthError(w, errMissingGrant)
		return
	case !slices.Contains(knownGrants, grant):
		writeOAuthError(w, oauthError{status: 400, code: "unsupported_grant_type", descr: "Unsupported grant type: " + grant})
		return
	}
	if !slices.Contains(client.Grants, grant) {
		writeOAuthError(w, oauthError{status: 401, code: "invalid_client", descr: "Unauthorized grant type: " + grant})
		return
	}
	g, err := s.ensureSigner()
	if err != nil {
		writeOAuthError(w, oauthError{status: 500, code: "server_error", descr: "signing key unavailable"})
		return
	}
	now := s.now()
	iss := req.base + "/uaa/oauth/token"
	c := &claims{
		Jti: s.newID(), ClientID: client.ID, Cid: client.ID, Azp: client.ID, GrantType: grant,
		Aud: []string{"cloud_controller", "openid", client.ID}, Iss: iss, Zid: "uaa",
		Iat: now.Unix(), Exp: now.Add(s.opts.tokenLifetime).Unix(),
	}
	switch grant {
	case "password":
		origin := "uaa"
		if hint := cmp.Or(form.Get("login_hint"), r.URL.Query().Get("login_hint")); hint != "" {
			var h struct {
				Origin string `json:"origin"`
			}
			if json.Unmarshal([]byte(hint), &h) == nil && h.Origin != "" {
				origin = h.Origin
			}
		}
		var user *User
		for _, u := range s.st.Users {
			if u.Name == form.Get("username") && u.Origin == origin && eq(u.Password, form.Get("password")) {
				user = u
			}
		}
		if user == nil {
			writeOAuthError(w, oauthError{status: 401, code: "invalid_client", descr: "Bad credentials"})
			return
		}
		c.Sub, c.UserID, c.UserName, c.Origin, c.Email = user.GUID, user.GUID, user.Name, user.Origin, user.Name+"@sim.local"
		c.Scope = intersect(user.Scopes, client.Scopes)
	case "client_credentials":
		c.Sub = client.ID
		c.Scope = client.Scopes
		c.Auth = client.Scopes
	case "refresh_token":
		rt, err := g.verify(form.Get("refresh_token"))
		if err != nil || !rt.Refresh || rt.ClientID != client.ID || now.Unix() >= rt.Exp {
			writeOAuthError(w, oauthError{status: 401, code: "invalid_token", descr: "Invalid refresh token"})
			return
		}
		c.Sub, c.UserID, c.UserName, c.Origin, c.Email, c.Scope = rt.Sub, rt.UserID, rt.UserName, rt.Origin, rt.Email, rt.Scope
		c.GrantType = rt.GrantType
	default:
		writeOAuthError(w, oauthError{status: 400, code: "unsupported_grant_type", descr: "Unsupported grant type: " + grant})
		return
	}
	access, err := g.sign(c, req.base+"/uaa/token_keys")
	if err != nil {
		writeOAuthError(w, oauthError{status: 500, code: "server_error", descr: "signing failed"})
		return
	}
	resp := map[string]any{
		"access_token": access, "token_type": "bearer", "expires_in": int(s.opts.tokenLifetime.Seconds()) - 1,
		"scope": strings.Join(c.Scope, " "), "jti": c.Jti,
	}
	if grant == "refresh_token" {
		resp["refresh_token"] = form.Get("refresh_token")
	} else if grant == "password" {
		rc := *c
		rc.Jti += "-r"
		rc.Refresh = true
		rc.Exp = now.Add(30 * 24 * time.Hour).Unix()
		refresh, err := g.sign(&rc, req.base+"/uaa/token_keys")
		if err != nil {
			writeOAuthError(w, oauthError{status: 500, code: "server_error", descr: "signing failed"})
			return
		}
		resp["refresh_token"] = refresh
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

func (s *Sim) loginInfo(req *request) {
	writeJSON(req.w, http.StatusOK, map[string]any{
		"app":            map[string]any{"version": "77.18.0"},
		"links":          map[string]any{"uaa": req.base + "/uaa", "login": req.base + "/uaa", "passwd": "/forgot_password", "register": "/create_account"},
		"zone_name":      "uaa",
		"entityID":       "login.sim.local",
		"commit_id":      "cfsim",
		"idpDefinitions": map[string]any{},
		"prompts":        map[string]any{"username": []string{"text", "Email"}, "password": []string{"password", "Password"}},
		"timestamp":      s.now().Format("2006-01-02T15:04:05-0700"),
	})
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func jsonNumber(v any) string {
	switch n := v.(type) {
	case json.Number:
		return n.String()
	case float64:
		return strconv.FormatFloat(n, 'f', -1, 64)
	case string:
		return n
	}
	return ""
}

// knownGrants are the grant types UAA knows; an unknown one is 400
// unsupported_grant_type, a known one the client may not use 401.
var knownGrants = []string{"password", "client_credentials", "refresh_token", "authorization_code", "implicit",
	"urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:ietf:params:oauth:grant-type:saml2-bearer", "user_token"}

// errMissingGrant is UAA's answer to a token request without grant_type.
var errMissingGrant = oauthError{status: 400, code: "invalid_request", descr: "Missing grant type"}
