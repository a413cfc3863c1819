package xsuaa

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// zone is a token endpoint that hands out the token its test asks for and
// serves its signing key under kid "k1".
func zone(t *testing.T, key *rsa.PrivateKey, token func() string) (*httptest.Server, string) {
	t.Helper()
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/token_keys":
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]any{"kid": "k1", "value": pubPEM}}})
		case "/oauth/token":
			// RFC 6749 2.3.1: id and secret are form-encoded inside Basic.
			id, secret, _ := r.BasicAuth()
			id, _ = url.QueryUnescape(id)
			secret, _ = url.QueryUnescape(secret)
			if id != "sb-app!t1" || secret != "s$cret" {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"Bad credentials"}`))
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": token(), "token_type": "bearer", "expires_in": 3600, "scope": "uaa.resource"})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, pubPEM
}

func TestFetchTokenVerifies(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	now := time.Now()
	sign := func(m jwt.SigningMethod, k any, kid string, exp time.Time) string {
		tok := jwt.NewWithClaims(m, jwt.MapClaims{"client_id": "sb-app!t1", "zid": "z1", "exp": exp.Unix()})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cases := []struct {
		name     string
		token    func() string
		verified bool
	}{
		{"valid", func() string { return sign(jwt.SigningMethodRS256, key, "k1", now.Add(time.Hour)) }, true},
		{"expired", func() string { return sign(jwt.SigningMethodRS256, key, "k1", now.Add(-time.Minute)) }, false},
		{"unknown kid", func() string { return sign(jwt.SigningMethodRS256, key, "k2", now.Add(time.Hour)) }, false},
		{"other key", func() string { return sign(jwt.SigningMethodRS256, other, "k1", now.Add(time.Hour)) }, false},
		{"HS256", func() string { return sign(jwt.SigningMethodHS256, []byte("x"), "k1", now.Add(time.Hour)) }, false},
		{"RS512", func() string { return sign(jwt.SigningMethodRS512, key, "k1", now.Add(time.Hour)) }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, pubPEM := zone(t, key, c.token)
			creds := map[string]any{"clientid": "sb-app!t1", "clientsecret": "s$cret", "url": srv.URL, "verificationkey": pubPEM}
			tok, err := FetchToken(context.Background(), TokenRequest{Creds: creds}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tok.Verified != c.verified {
				t.Errorf("verified = %v, want %v", tok.Verified, c.verified)
			}
			if tok.ZoneID != "z1" || tok.AccessToken == "" {
				t.Errorf("token = %+v", tok)
			}
		})
	}
}

func TestFetchTokenRefusedIsAuth(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	srv, _ := zone(t, key, func() string { return "" })
	_, err := FetchToken(context.Background(), TokenRequest{Creds: map[string]any{"clientid": "sb-app!t1", "clientsecret": "wrong", "url": srv.URL}}, Options{})
	var auth interface{ Auth() bool }
	if !errors.As(err, &auth) || !auth.Auth() {
		t.Fatalf("err = %v (%T), want an authentication failure", err, err)
	}
}
