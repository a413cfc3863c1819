package cfsim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/xsprov/xsprov/provision/xssec"
)

// issueCredentials is the broker's bind: it stores what the broker returns.
func (s *Sim) issueCredentials(k *Key) error {
	i := s.st.Instances[k.InstanceGUID]
	org := s.orgOfInstance(i)
	g, err := s.ensureSigner()
	if err != nil {
		return err
	}
	if s.isIdentity(i.PlanGUID) {
		return s.identityCredentials(k, i)
	}
	if !s.isXSUAA(i.PlanGUID) {
		k.Creds = map[string]any{"username": "user-" + k.GUID[:8], "password": s.secret()}
		return nil
	}
	ct, _ := k.Params["credential-type"].(string)
	if ct == "" {
		ct = xssec.CredentialTypes(i.Params)[0]
	}
	c := map[string]any{
		"clientid":          "sb-" + i.AppID,
		"credential-type":   ct,
		"identityzone":      zoneName(org),
		"identityzoneid":    org.GUID,
		"zoneid":            org.GUID,
		"tenantid":          org.GUID,
		"subaccountid":      org.GUID,
		"tenantmode":        xssec.TenantMode(i.Params),
		"xsappname":         i.AppID,
		"serviceInstanceId": i.GUID,
		"verificationkey":   g.pubPEM,
	}
	switch ct {
	case "x509":
		x, _ := k.Params["x509"].(map[string]any)
		bits, days := 2048, 7
		if n, err := strconv.Atoi(jsonNumber(x["key-length"])); err == nil {
			bits = n
		}
		if n, err := strconv.Atoi(jsonNumber(x["validity"])); err == nil {
			days = n
		}
		certPEM, keyPEM, err := s.issueCert("sb-"+i.AppID, bits, time.Duration(days)*24*time.Hour)
		if err != nil {
			return err
		}
		c["certificate"], c["key"] = certPEM, keyPEM
		c["certificate-pinning"] = true
	case "instance-secret":
		// every key of the instance has the same client id and secret
		if i.InstanceSecret == "" {
			i.InstanceSecret = s.secret()
		}
		c["clientsecret"] = i.InstanceSecret
	default:
		if hide(k.Params["hide-secret"]) {
			break
		}
		c["clientsecret"] = s.secret()
	}
	k.Creds = c
	return nil
}

// credentials renders a key's credentials with URLs for the host the
// simulator is reached at.
func (s *Sim) credentials(base string, k *Key) map[string]any {
	out := make(map[string]any, len(k.Creds)+6)
	for key, v := range k.Creds {
		out[key] = v
	}
	if _, ok := out["ias-tenant"]; ok {
		// IAS takes certificates at the tenant's own host: the TLS
		// listener stands for it for x509 keys
		if ct, _ := out["credential-type"].(string); strings.HasPrefix(ct, "X509") && s.certURL != "" {
			base = s.certURL
		}
		identityURLs(out, base)
		return out
	}
	zone, _ := k.Creds["identityzone"].(string)
	if zone == "" {
		return out
	}
	host := base
	if u, err := url.Parse(base); err == nil {
		host = u.Host
	}
	out["url"] = base + "/xsuaa/" + zone
	out["uaadomain"] = host
	out["apiurl"] = base + "/xsuaa/" + zone
	out["sburl"] = base + "/xsuaa/" + zone
	if k.Creds["credential-type"] == "x509" {
		cb := s.certURL
		if cb == "" {
			cb = base // no TLS listener: the address is right, mTLS is not possible
		}
		out["certurl"] = cb + "/xsuaa/" + zone
	}
	return out
}

// ensureCA loads or creates the CA that signs x509 key certificates.
func (s *Sim) ensureCA() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if s.st.CAKey == "" {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cfsim XSUAA CA", Organization: []string{"xsprov simulator"}},
			NotBefore: s.now().Add(-time.Hour), NotAfter: s.now().Add(10 * 365 * 24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return nil, nil, err
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		s.st.CAKey = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
		s.st.CACert = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		s.dirty = true
	}
	kb, _ := pem.Decode([]byte(s.st.CAKey))
	cb, _ := pem.Decode([]byte(s.st.CACert))
	if kb == nil || cb == nil {
		return nil, nil, errors.New("simulator state holds an unreadable CA")
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func (s *Sim) issueCert(cn string, bits int, validity time.Duration) (string, string, error) {
	ca, caKey, err := s.ensureCA()
	if err != nil {
		return "", "", err
	}
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return "", "", err
	}
	s.st.Seq++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(s.st.Seq + 1), Subject: pkix.Name{CommonName: cn, OrganizationalUnit: []string{"cfsim"}},
		NotBefore: s.now().Add(-time.Minute), NotAfter: s.now().Add(validity),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", "", err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	chain := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) + s.st.CACert
	return chain, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})), nil
}

func urlEscape(s string) string { return url.QueryEscape(s) }

// TLSConfig returns a server TLS configuration for the simulator's mTLS
// listener (the certurl of x509 keys): a certificate from the simulator's CA
// for the given hosts, and client certificates verified against that CA when
// presented. Call SetCertURL with the listener's base URL.
func (s *Sim) TLSConfig(hosts ...string) (*tls.Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ca, caKey, err := s.ensureCA()
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "cfsim mTLS"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der, ca.Raw}, PrivateKey: key}},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// SetCertURL sets the base URL of the mTLS listener that certurl points to.
func (s *Sim) SetCertURL(base string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certURL = base
}

// CACertPEM returns the simulator's CA certificate (it signs x509 key
// certificates and the mTLS listener's certificate).
func (s *Sim) CACertPEM() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, err := s.ensureCA(); err != nil {
		return "", err
	}
	return s.st.CACert, nil
}

// hide reads hide-secret, a string "true" or (as brokers take it too) a JSON
// boolean.
func hide(v any) bool { return v == "true" || v == true }
