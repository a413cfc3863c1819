package cfsim

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/xsprov/xsprov/provision/ias"
	"github.com/xsprov/xsprov/provision/xssec"
)

// SAP Cloud Identity Services' identity offering (IAS): every operation is
// asynchronous (the CC polls the broker on its cadence), parameters follow
// the service's rules (provision/ias), keys carry a client secret, an X.509
// certificate and key, or nothing (public clients), and each application
// issues at most 20 client secrets. Tokens come from
// {url}/oauth2/token, with a secret or over mutual TLS.

const identityBroker = "sap-cloud-identity-services"

// jwtBearer is the grant that exchanges an IAS token for an XSUAA one.
const jwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

func (s *Sim) isIdentity(planGUID string) bool {
	o := s.offeringOfPlan(planGUID)
	return o != nil && o.Name == "identity"
}

// identityAsync: the identity broker answers every operation with 202.
func (s *Sim) identityAsync(rguid string) bool {
	if i := s.st.Instances[rguid]; i != nil {
		return s.isIdentity(i.PlanGUID)
	}
	if k := s.st.Keys[rguid]; k != nil {
		if i := s.st.Instances[k.InstanceGUID]; i != nil {
			return s.isIdentity(i.PlanGUID)
		}
	}
	return false
}

// identityCheck fails a job with the broker's words for the first error.
func (s *Sim) identityCheck(j *Job, ps xssec.Problems) bool {
	for _, p := range ps {
		if p.Severity == xssec.Error {
			s.failEarly(j, "Invalid parameters: "+p.Path+" "+p.Message)
			return false
		}
	}
	return true
}

func (s *Sim) identityBind(j *Job, i *Instance, k *Key) {
	if !s.identityCheck(j, ias.ValidateKey(k.Params)) {
		return
	}
	if ias.CredentialType(k.Params) != ias.Secret {
		return
	}
	n := 0
	for _, o := range s.st.Keys {
		if o.InstanceGUID == i.GUID && o.GUID != k.GUID && o.LastOp.State != "failed" && ias.CredentialType(o.Params) == ias.Secret {
			n++
		}
	}
	if n >= ias.Current.SecretsPerApplication {
		s.failEarly(j, "The application has reached the maximum of "+strconv.Itoa(ias.Current.SecretsPerApplication)+" client secrets; delete a binding first")
	}
}

// identityCredentials issues an identity key's credentials.
func (s *Sim) identityCredentials(k *Key, i *Instance) error {
	org := s.orgOfInstance(i)
	if i.AppID == "" {
		i.AppID = s.newID() // the application's client id
	}
	ct := ias.CredentialType(k.Params)
	c := map[string]any{"clientid": i.AppID, "credential-type": ct, "ias-tenant": zoneName(org), "app_tid": org.GUID}
	switch ct {
	case ias.X509Generated:
		bits, days := 2048, 30
		if n, err := strconv.Atoi(jsonNumber(k.Params["key-length"])); err == nil {
			bits = n
		}
		if n, err := strconv.Atoi(jsonNumber(k.Params["validity"])); err == nil {
			days = n
		}
		certPEM, keyPEM, err := s.issueCert(i.AppID, bits, time.Duration(days)*24*time.Hour)
		if err != nil {
			return err
		}
		c["certificate"], c["key"] = certPEM, keyPEM
	case ias.X509Provided:
		c["certificate"] = k.Params["certificate"]
	case ias.None:
	default:
		c["clientsecret"] = s.secret()
	}
	k.Creds = c
	return nil
}

// identityURLs renders the tenant's URLs for the host the simulator is
// reached at.
func identityURLs(out map[string]any, base string) {
	t, _ := out["ias-tenant"].(string)
	delete(out, "ias-tenant")
	host := strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://")
	out["url"] = base + "/ias/" + t
	out["domains"] = []any{host}
}

// iasToken serves POST {url}/oauth2/token: client_credentials with a key's
// secret, or over TLS with its certificate.
func (s *Sim) iasToken(req *request) {
	w, r := req.w, req.r
	tenant := req.params[0]
	_, clientID, secret, _, ok := tokenGrant(w, r, "client_credentials")
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	var key *Key
	var inst *Instance
	for _, k := range s.st.Keys {
		if k.LastOp.State != "succeeded" || k.Creds == nil || k.Creds["clientid"] != clientID || k.Creds["ias-tenant"] != tenant {
			continue
		}
		cs, _ := k.Creds["clientsecret"].(string)
		switch {
		case cs != "" && secret != "" && eq(cs, secret):
			key, inst = k, s.st.Instances[k.InstanceGUID]
		case r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && secret == "" && certMatches(k, r.TLS.PeerCertificates[0]):
			key, inst = k, s.st.Instances[k.InstanceGUID]
		}
	}
	if key == nil || inst == nil {
		writeOAuthError(w, oauthError{status: 401, code: "invalid_client", descr: "Client authentication failed"})
		return
	}
	g, err := s.ensureSigner()
	if err != nil {
		writeOAuthError(w, oauthError{status: 500, code: "server_error", descr: "signing key unavailable"})
		return
	}
	validity := 3600
	if cfg, ok := inst.Params["oauth2-configuration"].(map[string]any); ok {
		if tp, ok := cfg["token-policy"].(map[string]any); ok {
			if n, err := strconv.Atoi(jsonNumber(tp["token-validity"])); err == nil && n > 0 {
				validity = n
			}
		}
	}
	now := s.now()
	iss := req.base + "/ias/" + tenant
	c := &claims{Jti: s.newID(), Sub: clientID, ClientID: clientID, Azp: clientID, Aud: []string{clientID}, Iss: iss,
		Iat: now.Unix(), Exp: now.Add(time.Duration(validity) * time.Second).Unix(), GrantType: "client_credentials",
		ExtAttr: map[string]any{"app_tid": key.Creds["app_tid"]}}
	tok, err := g.sign(c, iss+"/oauth2/certs")
	if err != nil {
		writeOAuthError(w, oauthError{status: 500, code: "server_error", descr: "signing failed"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": validity})
}

// exchange serves the jwt-bearer grant at an XSUAA zone's token endpoint:
// an IAS token (the assertion) becomes an XSUAA token of the key that
// authenticated the request. XSUAA accepts it only from an IAS application
// of the same subaccount that consumes XSUAA (xsuaa-cross-consumption).
// Callers hold s.mu.
func (s *Sim) exchange(req *request, zone string, key *Key, inst *Instance, assertion string) {
	refuse := func(descr string) {
		writeOAuthError(req.w, oauthError{status: 401, code: "invalid_grant", descr: descr})
	}
	g, err := s.ensureSigner()
	if err != nil {
		writeOAuthError(req.w, oauthError{status: 500, code: "server_error", descr: "signing key unavailable"})
		return
	}
	c, err := g.verify(assertion)
	switch {
	case assertion == "":
		writeOAuthError(req.w, oauthError{status: 400, code: "invalid_request", descr: "Missing assertion"})
		return
	case err != nil:
		refuse("The assertion is not a valid token")
		return
	case c.Exp < s.now().Unix():
		refuse("The assertion has expired")
		return
	case !strings.HasSuffix(c.Iss, "/ias/"+zone):
		refuse("The assertion was not issued by the subaccount's Identity Authentication tenant")
		return
	}
	var ias *Instance
	for _, k := range s.st.Keys {
		if k.Creds != nil && k.Creds["clientid"] == c.ClientID && k.Creds["ias-tenant"] == zone {
			ias = s.st.Instances[k.InstanceGUID]
		}
	}
	if ias == nil {
		refuse("The assertion's application is unknown")
		return
	}
	if on, _ := ias.Params["xsuaa-cross-consumption"].(bool); !on {
		refuse("The assertion's application does not consume XSUAA (set xsuaa-cross-consumption: true on " + ias.Name + ")")
		return
	}
	s.issueZoneTokenGrant(req, zone, key, inst, c.Sub, jwtBearer)
}
