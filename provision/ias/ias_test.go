package ias

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/xsprov/xsprov/provision/xssec"
)

func TestValidate(t *testing.T) {
	apis := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf(`{"name":"api-%d","description":"d"}`, i)
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	for _, tc := range []struct {
		name, json, wantPath, wantMsg string // wantPath "": valid
	}{
		{"empty", `{}`, "", ""},
		{"documented example", `{"oauth2-configuration":{"redirect-uris":["https://*.myapp.cfapps.eu10.hana.ondemand.com/**"],"post-logout-redirect-uris":["https://*.myapp.cfapps.eu10.hana.ondemand.com/logout/**"],"public-client":false,
			"token-policy":{"token-validity":1800,"refresh-validity":7776000,"refresh-parallel":3,"refresh-usage-after-renewal":"off","access-token-format":"jwt"},"grant-types":["client_credentials","authorization_code"]},
			"consumed-services":[{"service-instance-name":"app_log"}],"display-name":"Opportunity Management","subject-name-identifier":{"attribute":"userUuid","fallback-attribute":"uid"},
			"provided-apis":[{"name":"write-access","description":"grants access to write APIs"}],"xsuaa-cross-consumption":true,"authorization":{"enabled":true},"name":"opp-mgmt"}`, "", ""},
		{"fields seen in real configurations", `{"user-access":"public","home-url":"https://x","multi-tenant":true,"default-attributes":null,"assertion-attributes":{"email":"mail"}}`, "", ""},
		{"token validity new maximum", `{"oauth2-configuration":{"token-policy":{"token-validity":43200}}}`, "", ""},
		{"token validity above", `{"oauth2-configuration":{"token-policy":{"token-validity":43201}}}`, "$.oauth2-configuration.token-policy.token-validity", "60..43200"},
		{"token validity below", `{"oauth2-configuration":{"token-policy":{"token-validity":59}}}`, "$.oauth2-configuration.token-policy.token-validity", "outside"},
		{"token validity type", `{"oauth2-configuration":{"token-policy":{"token-validity":"1h"}}}`, "$.oauth2-configuration.token-policy.token-validity", "whole number"},
		{"refresh validity off", `{"oauth2-configuration":{"token-policy":{"refresh-validity":0}}}`, "", ""},
		{"refresh validity low", `{"oauth2-configuration":{"token-policy":{"refresh-validity":3599}}}`, "$.oauth2-configuration.token-policy.refresh-validity", "3600..15552000"},
		{"refresh parallel", `{"oauth2-configuration":{"token-policy":{"refresh-parallel":11}}}`, "$.oauth2-configuration.token-policy.refresh-parallel", "1..10"},
		{"refresh usage", `{"oauth2-configuration":{"token-policy":{"refresh-usage-after-renewal":"always"}}}`, "$.oauth2-configuration.token-policy.refresh-usage-after-renewal", "off, online, mobile"},
		{"access token format", `{"oauth2-configuration":{"token-policy":{"access-token-format":"saml"}}}`, "$.oauth2-configuration.token-policy.access-token-format", "default, jwt, opaque"},
		{"token policy unknown", `{"oauth2-configuration":{"token-policy":{"lifetime":1}}}`, "$.oauth2-configuration.token-policy.lifetime", "unrecognized"},
		{"oauth2 unknown", `{"oauth2-configuration":{"colour":1}}`, "$.oauth2-configuration.colour", "unrecognized"},
		{"grant type", `{"oauth2-configuration":{"grant-types":["implicit"]}}`, "$.oauth2-configuration.grant-types[0]", "not one of"},
		{"public client type", `{"oauth2-configuration":{"public-client":"yes"}}`, "$.oauth2-configuration.public-client", "true or false"},
		{"redirect relative", `{"oauth2-configuration":{"redirect-uris":["/cb"]}}`, "$.oauth2-configuration.redirect-uris[0]", "absolute"},
		{"redirect host all wildcard", `{"oauth2-configuration":{"redirect-uris":["https://*/**"]}}`, "$.oauth2-configuration.redirect-uris[0]", "first label"},
		{"redirect wildcard deeper in host", `{"oauth2-configuration":{"redirect-uris":["https://a.*.example.com/cb"]}}`, "$.oauth2-configuration.redirect-uris[0]", "first label"},
		{"redirect path wildcard in the middle", `{"oauth2-configuration":{"redirect-uris":["https://a.example.com/*/cb"]}}`, "$.oauth2-configuration.redirect-uris[0]", "trailing /**"},
		{"back-channel logout wildcard", `{"oauth2-configuration":{"back-channel-logout-uris":["https://*.example.com/bc"]}}`, "$.oauth2-configuration.back-channel-logout-uris[0]", "not allowed here"},
		{"redirect not an array", `{"oauth2-configuration":{"redirect-uris":"https://a"}}`, "$.oauth2-configuration.redirect-uris", "must be an array"},
		{"display name length", `{"display-name":"` + strings.Repeat("é", 100) + `"}`, "$.display-name", "at most 99"},
		{"display name at the limit", `{"display-name":"` + strings.Repeat("é", 99) + `"}`, "", ""},
		{"name empty", `{"name":""}`, "$.name", "non-empty"},
		{"authorization type", `{"authorization":true}`, "$.authorization", "must be an object"},
		{"authorization value help", `{"authorization":{"enabled":true,"value_help_url":"http://x"}}`, "$.authorization.value_help_url", "https"},
		{"consumed services entry", `{"consumed-services":["app_log"]}`, "$.consumed-services[0]", "must be an object"},
		{"consumed services name", `{"consumed-services":[{}]}`, "$.consumed-services[0].service-instance-name", "is required"},
		{"cross consumption type", `{"xsuaa-cross-consumption":"true"}`, "$.xsuaa-cross-consumption", "true or false"},
		{"subject attribute", `{"subject-name-identifier":{"attribute":"email"}}`, "$.subject-name-identifier.attribute", "not one of"},
		{"provided apis at the limit", `{"provided-apis":` + apis(50) + `}`, "", ""},
		{"provided apis too many", `{"provided-apis":` + apis(51) + `}`, "$.provided-apis", "at most 50"},
		{"provided api name length", `{"provided-apis":[{"name":"` + strings.Repeat("a", 51) + `"}]}`, "$.provided-apis[0].name", "longer than 50"},
		{"provided api duplicate", `{"provided-apis":[{"name":"a"},{"name":"a"}]}`, "$.provided-apis[1].name", "duplicate"},
		{"provided api unknown field", `{"provided-apis":[{"name":"a","scope":"x"}]}`, "$.provided-apis[0].scope", "unrecognized"},
	} {
		t.Run(tc.name, func(t *testing.T) { expect(t, ValidateJSON([]byte(tc.json)).Errors(), tc.wantPath, tc.wantMsg) })
	}
}

func TestValidateWarns(t *testing.T) {
	ps := ValidateJSON([]byte(`{"colour":1,"oauth2-configuration":{"redirect-uris":["https://*.example.com/**","http://app.example.com/cb"]}}`))
	if len(ps.Errors()) != 0 || len(ps.Warnings()) != 3 {
		t.Errorf("errors %v, warnings %v", ps.Errors(), ps.Warnings())
	}
}

func TestValidateKey(t *testing.T) {
	for _, tc := range []struct {
		name, json, wantPath, wantMsg string
	}{
		{"default", `{}`, "", ""},
		{"secret", `{"credential-type":"SECRET"}`, "", ""},
		{"none", `{"credential-type":"NONE"}`, "", ""},
		{"x509 generated", `{"credential-type":"X509_GENERATED","key-length":4096,"validity":30,"validity-type":"DAYS","app-identifier":"orders"}`, "", ""},
		{"x509 validity above", `{"credential-type":"X509_GENERATED","validity":31}`, "$.validity", "1..30"},
		{"x509 months", `{"credential-type":"X509_GENERATED","validity":1,"validity-type":"MONTHS"}`, "$.validity-type", "not DAYS"},
		{"x509 key length", `{"credential-type":"X509_GENERATED","key-length":8192}`, "$.key-length", "2048 or 4096"},
		{"x509 app identifier", `{"credential-type":"X509_GENERATED","app-identifier":"` + strings.Repeat("a", 21) + `"}`, "$.app-identifier", "1 to 20"},
		{"x509 provided without certificate", `{"credential-type":"X509_PROVIDED"}`, "$.certificate", "is required"},
		{"x509 provided", `{"credential-type":"X509_PROVIDED","certificate":"-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----"}`, "", ""},
		{"unknown type", `{"credential-type":"binding-secret"}`, "$.credential-type", "not one of SECRET"},
		{"field of another type", `{"credential-type":"SECRET","key-length":2048}`, "$.key-length", "unrecognized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal([]byte(tc.json), &m); err != nil {
				t.Fatal(err)
			}
			expect(t, ValidateKey(m).Errors(), tc.wantPath, tc.wantMsg)
		})
	}
}

// expect checks that errs are empty (wantPath "") or hold an error at
// wantPath whose message contains wantMsg.
func expect(t *testing.T, errs xssec.Problems, wantPath, wantMsg string) {
	t.Helper()
	if wantPath == "" {
		if len(errs) != 0 {
			t.Fatalf("want valid, got %v", errs)
		}
		return
	}
	for _, e := range errs {
		if e.Path == wantPath && strings.Contains(e.Message, wantMsg) {
			return
		}
	}
	t.Errorf("want an error at %s containing %q, got %v", wantPath, wantMsg, errs)
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{`{}`, `{"oauth2-configuration":{"redirect-uris":["https://*.a/**",1,null],"token-policy":{"token-validity":1e99}}}`,
		`{"provided-apis":[null,{"name":[]}]}`, `{"consumed-services":{}}`, `[`, `{"display-name":"\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, p := range ValidateJSON(b) {
			if p.Message == "" || (p.Path == "" && p.Line == 0) || (p.Severity != xssec.Error && p.Severity != xssec.Warning) {
				t.Fatalf("problem without message, location or severity: %+v", p)
			}
		}
	})
}
