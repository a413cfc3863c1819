// Package ias checks the parameters of SAP Cloud Identity Services'
// `identity` offering (plan application): instance parameters and binding
// (key) parameters, each problem at its JSON path, before any request.
//
// The limits have changed several times; they are kept in one table, with
// the date of the documentation page they come from (SAP-docs/
// btp-cloud-identity-services, "Reference Information for the Identity
// Service of SAP BTP").
package ias

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/xsprov/xsprov/provision/xssec"
)

// Limits of the identity service, as documented on the page of AsOf.
type Limits struct {
	AsOf                               string
	DisplayName                        int // characters
	TokenValidityMin, TokenValidityMax int64
	RefreshValidityMin, RefreshMax     int64
	RefreshParallelMin, RefreshParMax  int64
	ProvidedAPIs, ProvidedAPIName      int
	X509ValidityDaysMax                int64
	AppIdentifier                      int
	SecretsPerApplication              int
}

// Current are the limits in force. Earlier pages said: token-validity
// 60..3600 (before mid-2025), provided-apis at most 20 with names of at most
// 32 characters (before late 2025), x509 validity up to a year in DAYS,
// MONTHS or YEARS (before 2026-05-13).
var Current = Limits{
	AsOf:             "2026-05-13",
	DisplayName:      99,
	TokenValidityMin: 60, TokenValidityMax: 43200,
	RefreshValidityMin: 3600, RefreshMax: 15552000,
	RefreshParallelMin: 1, RefreshParMax: 10,
	ProvidedAPIs: 50, ProvidedAPIName: 50,
	X509ValidityDaysMax:   30,
	AppIdentifier:         20,
	SecretsPerApplication: 20,
}

var (
	uriLists = []string{"redirect-uris", "post-logout-redirect-uris", "front-channel-logout-uris", "back-channel-logout-uris"}
	// grant types the service documents for applications
	grantTypes = []string{"authorization_code", "authorization_code_pkce_s256", "password", "client_credentials", "refresh_token",
		"urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:ietf:params:oauth:grant-type:saml2-bearer", "urn:ietf:params:oauth:grant-type:token-exchange"}
	subjectAttributes = []string{"userUuid", "uid", "mail", "displayName", "loginName", "personnelNumber", "none"}
	// fields seen in real configurations that xsprov does not check
	knownUnchecked = []string{"home-url", "multi-tenant", "user-access", "default-attributes", "assertion-attributes"}
)

// Validate checks an identity instance's parameters with the Current limits.
func Validate(d map[string]any) xssec.Problems {
	v := &checker{l: Current}
	v.run(d)
	return v.Sorted()
}

// ValidateJSON parses and checks raw parameters.
func ValidateJSON(raw []byte) xssec.Problems {
	obj, ps := xssec.Parse(raw)
	if ps != nil {
		return ps
	}
	return Validate(obj)
}

type checker struct {
	xssec.Checker
	l Limits
}

func (v *checker) run(d map[string]any) {
	known := []string{"name", "display-name", "authorization", "oauth2-configuration", "consumed-services", "xsuaa-cross-consumption", "subject-name-identifier", "provided-apis"}
	for _, k := range slices.Sorted(maps.Keys(d)) {
		if !slices.Contains(known, k) && !slices.Contains(knownUnchecked, k) {
			// the service's documentation lists more than this over time:
			// not refused here
			v.Warnf("$."+k, "unrecognized field %q (xsprov does not check it)", k)
		}
	}
	if raw, ok := d["name"]; ok {
		if s, isStr := raw.(string); !isStr || s == "" {
			v.Errf("$.name", "must be a non-empty string (the technical name, unique in the tenant)")
		}
	}
	if raw, ok := d["display-name"]; ok {
		s, isStr := raw.(string)
		switch {
		case !isStr:
			v.Errf("$.display-name", "must be a string")
		case utf8.RuneCountInString(s) > v.l.DisplayName:
			v.Errf("$.display-name", "is %d characters long, at most %d are allowed", utf8.RuneCountInString(s), v.l.DisplayName)
		}
	}
	if raw, ok := d["authorization"]; ok {
		obj, isObj := raw.(map[string]any)
		if !isObj {
			v.Errf("$.authorization", "must be an object")
		} else {
			v.Only(obj, "$.authorization", "enabled", "value_help_url")
			v.Bool(obj, "enabled", "$.authorization")
			if u, has := obj["value_help_url"]; has {
				if s, _ := u.(string); !strings.HasPrefix(s, "https://") {
					v.Errf("$.authorization.value_help_url", "must be an https:// URL")
				}
			}
		}
	}
	v.oauth2(d)
	if items, ok := v.Array(d, "consumed-services", "$.consumed-services"); ok {
		for i, it := range items {
			p := fmt.Sprintf("$.consumed-services[%d]", i)
			obj, isObj := it.(map[string]any)
			if !isObj {
				v.Errf(p, "must be an object with service-instance-name")
				continue
			}
			v.Only(obj, p, "service-instance-name")
			if s, _ := obj["service-instance-name"].(string); s == "" {
				v.Errf(p+".service-instance-name", "is required (the name of a service instance in the same space)")
			}
		}
	}
	v.Bool(d, "xsuaa-cross-consumption", "$")
	if raw, ok := d["subject-name-identifier"]; ok {
		obj, isObj := raw.(map[string]any)
		if !isObj {
			v.Errf("$.subject-name-identifier", "must be an object")
		} else {
			v.Only(obj, "$.subject-name-identifier", "attribute", "fallback-attribute")
			for _, f := range []string{"attribute", "fallback-attribute"} {
				if a, has := obj[f]; has {
					if s, _ := a.(string); !slices.Contains(subjectAttributes, s) {
						v.Errf("$.subject-name-identifier."+f, "%s is not one of %s", xssec.Text(a), strings.Join(subjectAttributes, ", "))
					}
				}
			}
		}
	}
	if items, ok := v.Array(d, "provided-apis", "$.provided-apis"); ok {
		if len(items) > v.l.ProvidedAPIs {
			v.Errf("$.provided-apis", "has %d entries, at most %d are allowed (as of %s)", len(items), v.l.ProvidedAPIs, v.l.AsOf)
		}
		seen := map[string]bool{}
		for i, it := range items {
			p := fmt.Sprintf("$.provided-apis[%d]", i)
			obj, isObj := it.(map[string]any)
			if !isObj {
				v.Errf(p, "must be an object with name and description")
				continue
			}
			v.Only(obj, p, "name", "description")
			name, _ := obj["name"].(string)
			switch {
			case name == "":
				v.Errf(p+".name", "is required")
			case utf8.RuneCountInString(name) > v.l.ProvidedAPIName:
				v.Errf(p+".name", "%q is longer than %d characters (as of %s)", name, v.l.ProvidedAPIName, v.l.AsOf)
			case seen[name]:
				v.Errf(p+".name", "duplicate API %q (names are unique)", name)
			}
			seen[name] = true
			if dsc, has := obj["description"]; has {
				if _, isStr := dsc.(string); !isStr {
					v.Errf(p+".description", "must be a string")
				}
			}
		}
	}
}

func (v *checker) oauth2(d map[string]any) {
	p := "$.oauth2-configuration"
	obj, ok := v.Object(d, "oauth2-configuration", p)
	if !ok {
		return
	}
	v.Only(obj, p, append(slices.Clone(uriLists), "public-client", "grant-types", "token-policy")...)
	for _, f := range uriLists {
		items, ok := v.Array(obj, f, p+"."+f)
		if !ok {
			continue
		}
		for i, it := range items {
			v.uri(it, fmt.Sprintf("%s.%s[%d]", p, f, i), f == "redirect-uris" || f == "post-logout-redirect-uris")
		}
	}
	v.Bool(obj, "public-client", p)
	if items, ok := v.Array(obj, "grant-types", p+".grant-types"); ok {
		for i, it := range items {
			if s, _ := it.(string); !slices.Contains(grantTypes, s) {
				v.Errf(fmt.Sprintf("%s.grant-types[%d]", p, i), "%s is not one of %s", xssec.Text(it), strings.Join(grantTypes, ", "))
			}
		}
	}
	if raw, ok := obj["token-policy"]; ok {
		tp, isObj := raw.(map[string]any)
		if !isObj {
			v.Errf(p+".token-policy", "must be an object")
			return
		}
		tpp := p + ".token-policy"
		v.Only(tp, tpp, "token-validity", "refresh-validity", "refresh-parallel", "refresh-usage-after-renewal", "access-token-format")
		v.intRange(tp, "token-validity", tpp, v.l.TokenValidityMin, v.l.TokenValidityMax, false)
		v.intRange(tp, "refresh-validity", tpp, v.l.RefreshValidityMin, v.l.RefreshMax, true)
		v.intRange(tp, "refresh-parallel", tpp, v.l.RefreshParallelMin, v.l.RefreshParMax, false)
		v.Enum(tp, "refresh-usage-after-renewal", tpp, "off", "online", "mobile")
		v.Enum(tp, "access-token-format", tpp, "default", "jwt", "opaque")
	}
}

// uri checks a redirect or logout URI: absolute; wildcards only as the
// service allows them (`*` in the host's first label, `/**` at the end of
// the path), and never a host that is all wildcard.
func (v *checker) uri(it any, p string, wildcards bool) {
	s, _ := it.(string)
	scheme, rest, found := strings.Cut(s, "://")
	switch {
	case s == "":
		v.Errf(p, "must be a non-empty string")
		return
	case !found || scheme == "":
		v.Errf(p, "%q is not an absolute URI", s)
		return
	}
	host, path, _ := strings.Cut(rest, "/")
	if strings.Contains(host, "*") {
		first, others, _ := strings.Cut(host, ".")
		switch {
		case !wildcards:
			v.Errf(p, "%q: wildcards are not allowed here", s)
		case first == "*" && others == "", strings.Contains(others, "*"):
			v.Errf(p, "%q: a wildcard may stand only in the host's first label, before a domain", s)
		default:
			v.Warnf(p, "%q contains a wildcard; make sure it cannot match hosts you do not control", s)
		}
	}
	if strings.Contains(path, "*") {
		if !wildcards || (!strings.HasSuffix(path, "/**") && path != "**") || strings.Contains(strings.TrimSuffix(path, "**"), "*") {
			v.Errf(p, "%q: in the path only a trailing /** is allowed", s)
		}
	}
	if scheme == "http" && !strings.HasPrefix(host, "localhost") && !strings.HasPrefix(host, "127.0.0.1") {
		v.Warnf(p, "%q is plain http; only local development should use it", s)
	}
}

func (v *checker) intRange(obj map[string]any, field, parent string, lo, hi int64, zeroOK bool) {
	p := parent + "." + field
	f, n, ok := v.WholeNumber(obj, field, p)
	if !ok || (zeroOK && f == 0) { // 0 turns refreshing off
		return
	}
	if f < float64(lo) || f > float64(hi) {
		v.Errf(p, "%s is outside the allowed range %d..%d (as of %s)", n, lo, hi, v.l.AsOf)
	}
}

// Credential types of identity bindings.
const (
	Secret        = "SECRET"
	X509Generated = "X509_GENERATED"
	X509Provided  = "X509_PROVIDED"
	None          = "NONE"
)

// CredentialType is a key's credential type (SECRET when not given).
func CredentialType(params map[string]any) string {
	if s, _ := params["credential-type"].(string); s != "" {
		return s
	}
	return Secret
}

// ValidateKey checks an identity key's (binding's) parameters.
func ValidateKey(params map[string]any) xssec.Problems {
	v := &checker{l: Current}
	ct := CredentialType(params)
	fields := map[string][]string{
		Secret: {"credential-type"}, None: {"credential-type"},
		X509Generated: {"credential-type", "key-length", "validity", "validity-type", "app-identifier"},
		X509Provided:  {"credential-type", "certificate"},
	}
	allowed, known := fields[ct]
	if !known {
		v.Errf("$.credential-type", "%s is not one of SECRET, X509_GENERATED, X509_PROVIDED, NONE", xssec.Text(params["credential-type"]))
	} else {
		v.Only(params, "$", allowed...)
	}
	switch ct {
	case X509Generated:
		if kl, has := params["key-length"]; has {
			if s := xssec.Text(kl); s != "2048" && s != "4096" {
				v.Errf("$.key-length", "%s is not 2048 or 4096", s)
			}
		}
		if vt, has := params["validity-type"]; has {
			if s, _ := vt.(string); s != "DAYS" {
				v.Errf("$.validity-type", "%s is not DAYS (MONTHS and YEARS were allowed before %s)", xssec.Text(vt), v.l.AsOf)
			}
		}
		v.intRange(params, "validity", "$", 1, v.l.X509ValidityDaysMax, false)
		if ai, has := params["app-identifier"]; has {
			if s, isStr := ai.(string); !isStr || s == "" || utf8.RuneCountInString(s) > v.l.AppIdentifier {
				v.Errf("$.app-identifier", "must be a string of 1 to %d characters (it keeps the certificate's subject across rotations)", v.l.AppIdentifier)
			}
		}
	case X509Provided:
		if s, _ := params["certificate"].(string); !strings.Contains(s, "-----BEGIN CERTIFICATE-----") {
			v.Errf("$.certificate", "is required: a PEM certificate (unique in the tenant)")
		}
	}
	return v.Problems
}
