package xsuaa

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"io"
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
func verify(ctx context.Context, hc *http.Client, tok, zoneURL, verificationKey string, now func() time.Time) (jwt.MapClaims, bool) {
	opts := []jwt.ParserOption{jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired()}
	if now != nil {
		opts = append(opts, jwt.WithTimeFunc(now))
	}
	keys := fetchKeys(ctx, hc, zoneURL)
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

// fetchKeys reads the zone's signing keys by key id; nil when they cannot be
// had.
func fetchKeys(ctx context.Context, hc *http.Client, zoneURL string) map[string]*rsa.PublicKey {
	if zoneURL == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(zoneURL, "/")+"/token_keys", nil)
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
			Value string `json:"value"`
		} `json:"keys"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set) != nil {
		return nil
	}
	out := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if pub, err := jwt.ParseRSAPublicKeyFromPEM([]byte(k.Value)); err == nil && k.Kid != "" {
			out[k.Kid] = pub
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
