// Package xsuaa gets access tokens with a key's credentials and verifies
// them: client secret or mutual TLS, through golang.org/x/oauth2, with the
// signature checked by github.com/golang-jwt/jwt/v5.
package xsuaa

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/xsprov/xsprov/provision/offering"
	"github.com/xsprov/xsprov/provision/remedy"
)

// TokenRequest asks a key's XSUAA for an access token.
type TokenRequest struct {
	Creds map[string]any
	// Grant is client_credentials (default), password or JWTBearer.
	Grant              string
	Username, Password string
	Scopes             []string
	// Assertion is the token JWTBearer exchanges (an IAS token, for an
	// XSUAA one).
	Assertion string
}

// JWTBearer is the grant that exchanges a token of another issuer (IAS) for
// one of this key's XSUAA, as a CAP application in hybrid mode does.
const JWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// TLSOptions say which servers the token client trusts.
type TLSOptions struct {
	RootCAs    *x509.CertPool // nil: the system's
	SkipVerify bool
}

// Options say how to reach the token endpoint.
type Options struct {
	TLS TLSOptions
	// Wrap decorates the per-call transport (retry, trace); nil: none.
	Wrap func(http.RoundTripper) http.RoundTripper
	// Now is the time a token's expiry is checked against (nil: the wall
	// clock).
	Now func() time.Time
	// CheckURL, when set, vets the token endpoint before anything is sent
	// (the command line refuses plain http:// to hosts that are not
	// loopback).
	CheckURL func(*url.URL) error
}

// Token is an access token and what it says. AccessToken is never
// serialised: JSON output shows it only when a command copies it on purpose.
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

// RefusedError is a token endpoint that refused the credentials.
type RefusedError struct {
	Msg      string
	Password bool // a password grant: the user's password may be wrong
	Exchange bool // a jwt-bearer exchange: XSUAA did not take the token
}

func (e *RefusedError) Error() string { return e.Msg }

// Auth marks the error as an authentication failure (exit code 4).
func (e *RefusedError) Auth() bool { return true }

// Hint is what to do about it.
func (e *RefusedError) Hint() remedy.Remedy {
	if e.Password {
		return remedy.Remedy{Action: remedy.CheckTokenUser}
	}
	if e.Exchange {
		return remedy.Remedy{Action: remedy.CrossConsumption}
	}
	return remedy.Remedy{Action: remedy.RereadCredentials}
}

type usageError string

func (e usageError) Error() string { return string(e) }

// Usage marks the error as bad input (exit code 2).
func (e usageError) Usage() bool { return true }

// FetchToken gets an access token with a key's credentials: client secret at
// {url}/oauth/token, or the key's certificate over mutual TLS at
// {certurl}/oauth/token. Refusals from the endpoint are *RefusedError.
func FetchToken(ctx context.Context, req TokenRequest, o Options) (*Token, error) {
	c := req.Creds
	str := func(k string) string { s, _ := c[k].(string); return s }
	clientID := str("clientid")
	if clientID == "" {
		return nil, usageError("the credentials hold no clientid")
	}
	grant := cmp.Or(req.Grant, "client_credentials")
	tcfg := &tls.Config{RootCAs: o.TLS.RootCAs, InsecureSkipVerify: o.TLS.SkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // only when asked
	secret := str("clientsecret")
	var base string
	switch {
	case secret != "":
		base = str("url")
	case str("certificate") != "" && str("key") != "":
		cert, err := tls.X509KeyPair([]byte(str("certificate")), []byte(str("key")))
		if err != nil {
			return nil, usageError(fmt.Sprintf("the key's certificate and private key do not load: %v", err))
		}
		tcfg.Certificates = []tls.Certificate{cert}
		base = cmp.Or(str("certurl"), str("url"))
	default:
		return nil, usageError("the credentials hold neither a clientsecret nor a certificate and key")
	}
	prof := offering.OfCredentials(c) // XSUAA: /oauth/token; IAS: /oauth2/token
	endpoint := strings.TrimRight(base, "/") + prof.TokenPath
	eu, err := url.Parse(endpoint)
	if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
		return nil, usageError("the credentials hold no usable token URL (url / certurl)")
	}
	if o.CheckURL != nil {
		if err := o.CheckURL(eu); err != nil {
			return nil, err
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tcfg
	// one transport per call (a key's client certificate is part of it):
	// close its connection when done instead of leaving it idle
	defer tr.CloseIdleConnections()
	var rt http.RoundTripper = tr
	if o.Wrap != nil {
		rt = o.Wrap(tr)
	}
	hc := &http.Client{Transport: rt}
	octx := context.WithValue(ctx, oauth2.HTTPClient, hc)

	// XSUAA takes the client secret as Basic auth (id and secret URL-encoded:
	// they hold '!' and '$'); an mTLS client sends only its id in the form.
	style := oauth2.AuthStyleInHeader
	if secret == "" {
		style = oauth2.AuthStyleInParams
	}
	var ot *oauth2.Token
	if grant == "password" {
		cfg := oauth2.Config{ClientID: clientID, ClientSecret: secret, Scopes: req.Scopes,
			Endpoint: oauth2.Endpoint{TokenURL: endpoint, AuthStyle: style}}
		ot, err = cfg.PasswordCredentialsToken(octx, req.Username, req.Password)
	} else {
		cfg := clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: endpoint, Scopes: req.Scopes, AuthStyle: style}
		if grant == JWTBearer {
			if req.Assertion == "" {
				return nil, usageError("the jwt-bearer grant needs a token to exchange")
			}
			// clientcredentials lets grant_type be overridden
			cfg.EndpointParams = url.Values{"grant_type": {JWTBearer}, "assertion": {req.Assertion}}
		}
		ot, err = cfg.Token(octx)
	}
	if err != nil {
		return nil, tokenError(endpoint, grant, err)
	}
	tok := &Token{AccessToken: ot.AccessToken, Endpoint: endpoint, GrantType: grant, ClientID: clientID,
		ExpiresAt: ot.Expiry.UTC().Truncate(time.Second), Zone: str("identityzone"),
		ZoneID: cmp.Or(str("zoneid"), str("identityzoneid")), MTLS: secret == ""}
	if s, ok := ot.Extra("scope").(string); ok {
		tok.Scopes = strings.Fields(s)
	}
	if tok.Scopes == nil {
		tok.Scopes = []string{}
	}
	claims, verified := verify(octx, hc, ot.AccessToken, str("url"), prof.KeysPath, str("verificationkey"), o.Now)
	tok.Verified = verified
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		tok.ExpiresAt = exp.UTC()
	}
	if u, ok := claims["user_name"].(string); ok {
		tok.UserName = u
	}
	if z, ok := claims["zid"].(string); ok && tok.ZoneID == "" {
		tok.ZoneID = z
	}
	return tok, nil
}

func tokenError(endpoint, grant string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		msg := fmt.Sprintf("the token endpoint %s refused the request", endpoint)
		if re.Response != nil {
			msg += fmt.Sprintf(": HTTP %d", re.Response.StatusCode)
		}
		if re.ErrorCode != "" {
			msg += ": " + re.ErrorCode
			if re.ErrorDescription != "" {
				msg += ": " + re.ErrorDescription
			}
		}
		return &RefusedError{Msg: msg, Password: grant == "password", Exchange: grant == JWTBearer}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return remedy.With(fmt.Errorf("token request to %s: %w", endpoint, err), remedy.Remedy{Action: remedy.CheckTokenURL})
}
