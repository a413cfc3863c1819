package provision

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// TokenRequest asks a key's XSUAA for an access token.
type TokenRequest struct {
	Creds map[string]any
	// Grant is client_credentials (default) or password.
	Grant              string
	Username, Password string
	Scopes             []string
}

// TLSOptions say which servers the token client trusts.
type TLSOptions struct {
	RootCAs    *x509.CertPool // nil: the system's
	SkipVerify bool
}

// Token is an access token and what it says. AccessToken is never
// serialised: --json shows it only when the command copies it on purpose.
type Token struct {
	AccessToken string    `json:"-"`
	Endpoint    string    `json:"token_endpoint"`
	GrantType   string    `json:"grant_type"`
	ClientID    string    `json:"client_id"`
	UserName    string    `json:"user_name,omitempty"`
	Scopes      []string  `json:"scopes"`
	ExpiresAt   time.Time `json:"expires_at"`
	Zone        string    `json:"zone,omitempty"`
	ZoneID      string    `json:"zone_id,omitempty"`
	Verified    bool      `json:"verified_with_verificationkey"`
	MTLS        bool      `json:"mtls"`
}

// FetchToken gets an access token with a key's credentials: client secret at
// {url}/oauth/token, or the key's certificate over mutual TLS at
// {certurl}/oauth/token. Refusals from the endpoint are *AuthError.
func FetchToken(ctx context.Context, base http.RoundTripper, req TokenRequest, tlsOpts TLSOptions) (*Token, error) {
	c := req.Creds
	str := func(k string) string { s, _ := c[k].(string); return s }
	clientID := str("clientid")
	if clientID == "" {
		return nil, Usagef("the credentials hold no clientid")
	}
	grant := req.Grant
	if grant == "" {
		grant = "client_credentials"
	}
	form := url.Values{"grant_type": {grant}}
	if grant == "password" {
		form.Set("username", req.Username)
		form.Set("password", req.Password)
	}
	if len(req.Scopes) > 0 {
		form.Set("scope", strings.Join(req.Scopes, " "))
	}
	tcfg := &tls.Config{RootCAs: tlsOpts.RootCAs, InsecureSkipVerify: tlsOpts.SkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // only when asked
	var endpoint string
	useSecret := str("clientsecret") != ""
	switch {
	case useSecret:
		endpoint = strings.TrimRight(str("url"), "/") + "/oauth/token"
	case str("certificate") != "" && str("key") != "":
		cert, err := tls.X509KeyPair([]byte(str("certificate")), []byte(str("key")))
		if err != nil {
			return nil, Usagef("the key's certificate and private key do not load: %v", err)
		}
		tcfg.Certificates = []tls.Certificate{cert}
		endpoint = strings.TrimRight(firstNonEmpty(str("certurl"), str("url")), "/") + "/oauth/token"
		form.Set("client_id", clientID)
	default:
		return nil, Usagef("the credentials hold neither a clientsecret nor a certificate and key")
	}
	if !strings.HasPrefix(endpoint, "http") {
		return nil, Usagef("the credentials hold no usable token URL (url / certurl)")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tcfg
	// one transport per call (a key's client certificate is part of it):
	// close its connection when done instead of leaving it idle
	defer tr.CloseIdleConnections()
	var rt http.RoundTripper = tr
	if t, ok := base.(*Transport); ok {
		cp := &Transport{Base: tr, Clock: t.Clock, Done: t.Done, Deadline: t.Deadline, MaxRetries: t.MaxRetries, Trace: t.Trace}
		rt = cp
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hreq.Header.Set("Accept", "application/json")
	if useSecret {
		hreq.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(str("clientsecret")))
	}
	resp, err := (&http.Client{Transport: rt, Timeout: 60 * time.Second}).Do(hreq)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, &Hinted{Err: fmt.Errorf("token request to %s: %w", endpoint, unwrapAll(err)), Hint: "check the url/certurl in the credentials and your network"}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
			Desc  string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &e)
		msg := fmt.Sprintf("the token endpoint %s refused the request: HTTP %d", endpoint, resp.StatusCode)
		if e.Error != "" {
			msg += ": " + e.Error
			if e.Desc != "" {
				msg += ": " + e.Desc
			}
		}
		hint := "the key may have been deleted or rotated; run 'xsprov creds INSTANCE' to re-read the current one"
		if grant == "password" {
			hint = "check --username and XSUAA_PASSWORD"
		}
		return nil, &AuthError{Msg: msg, Hint: hint}
	}
	var tr2 struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
	}
	if err := json.Unmarshal(body, &tr2); err != nil || tr2.AccessToken == "" {
		return nil, fmt.Errorf("the token endpoint %s answered without an access token", endpoint)
	}
	tok := &Token{AccessToken: tr2.AccessToken, Endpoint: endpoint, GrantType: grant, ClientID: clientID,
		Scopes: strings.Fields(tr2.Scope), ExpiresAt: time.Now().Add(time.Duration(tr2.ExpiresIn) * time.Second).UTC().Truncate(time.Second),
		Zone: str("identityzone"), ZoneID: firstNonEmpty(str("zoneid"), str("identityzoneid")), MTLS: !useSecret}
	if claims, ok := jwtClaims(tr2.AccessToken); ok {
		if exp, ok := claims["exp"].(float64); ok {
			tok.ExpiresAt = time.Unix(int64(exp), 0).UTC()
		}
		if u, ok := claims["user_name"].(string); ok {
			tok.UserName = u
		}
		if z, ok := claims["zid"].(string); ok && tok.ZoneID == "" {
			tok.ZoneID = z
		}
	}
	if vk := str("verificationkey"); vk != "" {
		tok.Verified = verifyRS256(tr2.AccessToken, vk) == nil
	}
	return tok, nil
}

// verifyRS256 checks a JWT's signature with a PEM public key.
func verifyRS256(tok, pubPEM string) error {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return errors.New("not a JWT")
	}
	blk, _ := pem.Decode([]byte(pubPEM))
	if blk == nil {
		return errors.New("verificationkey is not PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return err
	}
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return errors.New("verificationkey is not an RSA key")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	return rsa.VerifyPKCS1v15(rsaPub, crypto.SHA256, sum[:], sig)
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// SecretValues lists the secret values in credentials (for masking in CI).
// PEM blocks are split into lines, since CI masks match single lines.
func SecretValues(creds map[string]any) []string {
	var out []string
	for _, k := range []string{"clientsecret", "key", "password"} {
		s, _ := creds[k].(string)
		for _, line := range strings.Split(s, "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "-----") {
				out = append(out, line)
			}
		}
	}
	return out
}
