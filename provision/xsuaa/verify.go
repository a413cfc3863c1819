package xsuaa

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// verify checks a token's signature (RS256 only), its expiry and its key
// id: the key is the one with the token's kid among the zone's
// {url}/token_keys (the URL from the credentials, never the token's own jku
// header), else the credentials' verificationkey, as SAP's own libraries fall
// back to it when the keys cannot be fetched. It returns the claims, verified
// or not, and whether they were.
func verify(ctx context.Context, hc *http.Client, tok, zoneURL, keysPath, verificationKey string, now func() time.Time) (jwt.MapClaims, bool) {
	opts := []jwt.ParserOption{jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired()}
	if now != nil {
		opts = append(opts, jwt.WithTimeFunc(now))
	}
	keys := fetchKeys(ctx, hc, zoneURL, keysPath)
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if keys != nil {
			k, ok := keys[kid]
			if !ok {
				return nil, jwt.ErrTokenUnverifiable
			}
			return k, nil
		}
		return jwt.ParseRSAPublicKeyFromPEM([]byte(verificationKey))
	}, opts...)
	if err != nil {
		unverified := jwt.MapClaims{}
		if _, _, perr := jwt.NewParser().ParseUnverified(tok, unverified); perr == nil {
			return unverified, false
		}
		return jwt.MapClaims{}, false
	}
	return claims, true
}

// jwkRSA is the RSA public key of a JWK's n and e (base64url); nil when
// they do not make one.
func jwkRSA(n, e string) *rsa.PublicKey {
	nb, err1 := base64.RawURLEncoding.DecodeString(n)
	eb, err2 := base64.RawURLEncoding.DecodeString(e)
	if err1 != nil || err2 != nil || len(nb) == 0 || len(eb) == 0 || len(eb) > 4 {
		return nil
	}
	exp := 0
	for _, b := range eb {
		exp = exp<<8 | int(b)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: exp}
}

// fetchKeys reads the zone's signing keys by key id; nil when they cannot be
// had.
func fetchKeys(ctx context.Context, hc *http.Client, zoneURL, keysPath string) map[string]*rsa.PublicKey {
	if zoneURL == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(zoneURL, "/")+keysPath, nil)
	if err != nil {
		return nil
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	var set struct {
		Keys []struct {
			Kid   string `json:"kid"`
			Value string `json:"value"` // XSUAA: the PEM
			N     string `json:"n"`     // a JWKS (IAS): modulus and exponent
			E     string `json:"e"`
		} `json:"keys"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set) != nil {
		return nil
	}
	out := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kid == "" {
			continue
		}
		if pub, err := jwt.ParseRSAPublicKeyFromPEM([]byte(k.Value)); err == nil {
			out[k.Kid] = pub
		} else if pub := jwkRSA(k.N, k.E); pub != nil {
			out[k.Kid] = pub
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
