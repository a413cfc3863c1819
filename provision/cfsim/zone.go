package cfsim

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// zoneToken serves POST {credentials.url}/oauth/token for XSUAA keys: the
// client_credentials grant with a key's secret or, over TLS, its client
// certificate; and the password grant for a seeded user on behalf of the key's
// application.
func (s *Sim) zoneToken(req *request) {
	w, r := req.w, req.r
	zone := req.params[0]
	form, clientID, secret, grant, ok := tokenGrant(w, r, "client_credentials", "password", jwtBearer)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	var peer *x509.Certificate
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		peer = r.TLS.PeerCertificates[0]
	}
	var key *Key
	var inst *Instance
	for _, k := range s.st.Keys {
		if k.LastOp.State != "succeeded" || k.Creds == nil || k.Creds["clientid"] != clientID {
			continue
		}
		i := s.st.Instances[k.InstanceGUID]
		org := s.orgOfInstance(i)
		if org == nil || zoneName(org) != zone {
			continue
		}
		cs, _ := k.Creds["clientsecret"].(string)
		switch {
		case cs != "" && secret != "" && eq(cs, secret):
			key, inst = k, i
		case peer != nil && secret == "" && certMatches(k, peer):
			key, inst = k, i
		}
	}
	if key == nil {
		writeOAuthError(w, errBadCredentials)
		return
	}
	if grant == jwtBearer {
		s.exchange(req, zone, key, inst, form.Get("assertion"))
		return
	}
	var user *User
	if grant == "password" {
		for _, u := range s.st.Users {
			if u.Name == form.Get("username") && eq(u.Password, form.Get("password")) {
				user = u
			}
		}
		if user == nil {
			writeOAuthError(w, oauthError{status: 401, code: "unauthorized", descr: "Bad credentials"})
			return
		}
	}
	s.issueZoneToken(req, zone, key, inst, user, strings.Fields(form.Get("scope")))
}

// tokenGrant reads a token request whose grant is one of allowed; it
// answers the client itself when it is not.
func tokenGrant(w http.ResponseWriter, r *http.Request, allowed ...string) (form url.Values, clientID, secret, grant string, ok bool) {
	form, clientID, secret, ok = tokenRequest(w, r)
	if !ok {
		return nil, "", "", "", false
	}
	switch grant = form.Get("grant_type"); {
	case grant == "":
		writeOAuthError(w, errMissingGrant)
		return nil, "", "", "", false
	case !slices.Contains(allowed, grant):
		writeOAuthError(w, oauthError{status: 400, code: "unsupported_grant_type", descr: "Unsupported grant type: " + grant})
		return nil, "", "", "", false
	}
	return form, clientID, secret, grant, true
}

// certMatches tells whether the TLS client certificate is the key's.
func certMatches(k *Key, peer *x509.Certificate) bool {
	pemChain, _ := k.Creds["certificate"].(string)
	blk, _ := pem.Decode([]byte(pemChain))
	return blk != nil && string(blk.Bytes) == string(peer.Raw)
}

// issueZoneTokenGrant issues a token of key for subject (an exchanged
// token's) with the given grant.
func (s *Sim) issueZoneTokenGrant(req *request, zone string, key *Key, inst *Instance, subject, grant string) {
	s.issueZoneTokenFor(req, zone, key, inst, nil, nil, subject, grant)
}

func (s *Sim) issueZoneToken(req *request, zone string, key *Key, inst *Instance, user *User, want []string) {
	s.issueZoneTokenFor(req, zone, key, inst, user, want, "", "")
}

func (s *Sim) issueZoneTokenFor(req *request, zone string, key *Key, inst *Instance, user *User, want []string, subject, grantName string) {
	g, err := s.ensureSigner()
	if err != nil {
		writeOAuthError(req.w, oauthError{status: 500, code: "server_error", descr: "signing key unavailable"})
		return
	}
	now := s.now()
	validity := 43200
	if cfg, ok := inst.Params["oauth2-configuration"].(map[string]any); ok {
		if n, err := strconv.Atoi(jsonNumber(cfg["token-validity"])); err == nil && n > 0 {
			validity = n
		}
	}
	org := s.orgOfInstance(inst)
	// A client-credentials token carries the scopes the app grants itself
	// through authorities; a user's token the app's own scopes (the simulator
	// treats every user as holding every role collection).
	var scopes []string
	source := "authorities"
	if user != nil {
		source = "scopes"
		scopes = append(scopes, "openid")
	} else {
		scopes = append(scopes, "uaa.resource")
	}
	if list, ok := inst.Params[source].([]any); ok {
		for _, a := range list {
			sc, _ := a.(string)
			if m, isObj := a.(map[string]any); isObj {
				sc, _ = m["name"].(string)
			}
			if strings.HasPrefix(sc, "$XSAPPNAME.") {
				scopes = append(scopes, inst.AppID+strings.TrimPrefix(sc, "$XSAPPNAME"))
			}
		}
	}
	if len(want) > 0 {
		scopes = intersect(scopes, want)
	}
	clientID, _ := key.Creds["clientid"].(string)
	zoneURL := req.base + "/xsuaa/" + zone
	grant := "client_credentials"
	c := &claims{
		Jti: s.newID(), Sub: clientID, ClientID: clientID, Cid: clientID, Azp: clientID,
		Scope: scopes, Aud: []string{"uaa", clientID}, Iss: zoneURL + "/oauth/token", Zid: org.GUID,
		Iat: now.Unix(), Exp: now.Add(time.Duration(validity) * time.Second).Unix(),
		ExtAttr: map[string]any{"enhancer": "XSUAA", "zdn": zone, "serviceinstanceid": inst.GUID},
	}
	if user != nil {
		grant = "password"
		c.Sub, c.UserID, c.UserName, c.Origin, c.Email = user.GUID, user.GUID, user.Name, user.Origin, user.Name+"@sim.local"
	} else {
		c.Auth = scopes
	}
	if grantName != "" {
		grant = grantName
		c.Sub = subject
		c.ExtAttr["ias_subject"] = subject
	}
	c.GrantType = grant
	tok, err := g.sign(c, zoneURL+"/token_keys")
	if err != nil {
		writeOAuthError(req.w, oauthError{status: 500, code: "server_error", descr: "signing failed"})
		return
	}
	req.w.Header().Set("Cache-Control", "no-store")
	writeJSON(req.w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "bearer", "expires_in": validity - 1,
		"scope": strings.Join(scopes, " "), "jti": c.Jti,
	})
}

func (s *Sim) tokenKeys(req *request) {
	s.mu.Lock()
	g, err := s.ensureSigner()
	s.mu.Unlock()
	if err != nil {
		writeError(req.w, &apiError{Code: 10001, Title: "UnknownError", Detail: "An unknown error occurred.", status: 500})
		return
	}
	pub := g.key.PublicKey
	writeJSON(req.w, http.StatusOK, map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": g.kid, "value": g.pubPEM,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

func (s *Sim) zoneOpenID(req *request) {
	u := req.base + "/xsuaa/" + req.params[0]
	writeJSON(req.w, http.StatusOK, map[string]any{
		"issuer": u + "/oauth/token", "token_endpoint": u + "/oauth/token", "jwks_uri": u + "/token_keys",
		"grant_types_supported": []string{"client_credentials"},
	})
}
