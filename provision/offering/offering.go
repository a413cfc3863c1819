// Package offering holds what differs between the service offerings xsprov
// provisions, as data: a profile per offering (XSUAA's xsuaa, SAP Cloud
// Identity Services' identity) chosen by the offering's name, so that the
// engine has no branch per offering.
package offering

import (
	"github.com/xsprov/xsprov/provision/ias"
	"github.com/xsprov/xsprov/provision/xssec"
)

// Profile is what xsprov knows of one offering.
type Profile struct {
	Name  string // the offering's name in the marketplace
	Short string // what people call it: XSUAA, IAS
	// Label is the VCAP_SERVICES label of its bindings; EnvPrefix the
	// default prefix of --format env.
	Label, EnvPrefix string
	// TokenPath and KeysPath are the token endpoint and the signing keys
	// below the credentials' url.
	TokenPath, KeysPath string
	// Validate checks instance parameters, ValidateKey key parameters; nil:
	// nothing known.
	Validate    func(map[string]any) xssec.Problems
	ValidateKey func(map[string]any) xssec.Problems
	// Immutable lists the fields whose change needs a new instance.
	Immutable func(old, desired map[string]any) []string
	// Minimal is a new instance's descriptor when none is given.
	Minimal func(instance string) map[string]any
	// Named: the descriptor names the application (xsappname), so fields of
	// it given alone keep that name.
	Named bool
	// KeyTypes are the credential types a new key may be asked for
	// (--credential-type).
	KeyTypes []string
	// MaxSecrets is the most client secrets an instance issues (0: no
	// limit known).
	MaxSecrets int
	// Replicates: changes take time to reach every data centre (what to
	// tell the user after an update; "" when nothing).
	Replicates string
}

// XSUAA is SAP Authorization and Trust Management (xsuaa).
var XSUAA = Profile{
	Name: "xsuaa", Short: "XSUAA", Label: "xsuaa", EnvPrefix: "XSUAA_",
	TokenPath: "/oauth/token", KeysPath: "/token_keys",
	Validate: xssec.Validate, Immutable: xssec.ImmutableChanges, Named: true,
	KeyTypes: []string{"binding-secret", "x509"},
	Minimal: func(instance string) map[string]any {
		return map[string]any{"xsappname": instance, "tenant-mode": xssec.DefaultTenantMode}
	},
}

// Identity is SAP Cloud Identity Services' identity offering (IAS).
var Identity = Profile{
	Name: "identity", Short: "IAS", Label: "identity", EnvPrefix: "IAS_",
	TokenPath: "/oauth2/token", KeysPath: "/oauth2/certs",
	Validate: ias.Validate, ValidateKey: ias.ValidateKey,
	KeyTypes:   []string{ias.Secret, ias.X509Generated, ias.X509Provided, ias.None},
	Immutable:  func(_, _ map[string]any) []string { return nil },
	Minimal:    func(string) map[string]any { return map[string]any{} },
	MaxSecrets: ias.Current.SecretsPerApplication,
	Replicates: "changes to redirect URIs and certificates of an identity instance can take up to 24 hours to reach every IAS data centre",
}

// Generic is any other offering: treated as XSUAA was before profiles (an
// XSUAA broker under another name, say), without XSUAA's rules.
var Generic = func() Profile {
	g := XSUAA
	g.Short, g.Validate = "service", nil
	return g
}()

// For returns the profile of an offering by name ("" is xsuaa).
func For(name string) Profile {
	switch name {
	case "", XSUAA.Name:
		return XSUAA
	case Identity.Name:
		return Identity
	}
	g := Generic
	g.Name, g.Label = name, name
	return g
}

// OfCredentials tells a key's offering from its credentials: identity
// bindings list their IAS domains, XSUAA ones their identity zone.
func OfCredentials(creds map[string]any) Profile {
	if _, ok := creds["domains"]; ok {
		return Identity
	}
	return XSUAA
}

// Build reads the descriptor of an offering without a name field (identity):
// the whole of it from file, else inline (a rendered template), validated
// with the profile's rules; it returns it with the warnings. Problems are
// usage errors naming where they are. XSUAA's descriptors go through
// xssec.Build, which also merges flags into them.
func (p Profile) Build(file string, inline map[string]any, source string) (map[string]any, xssec.Problems, error) {
	d, src := inline, source
	if file != "" {
		obj, err := xssec.ReadFile(file)
		if err != nil {
			return nil, nil, err
		}
		d, src = obj, file
	}
	if d == nil {
		d = p.Minimal("")
	}
	if p.Validate == nil {
		return d, nil, nil
	}
	ps := p.Validate(d)
	if errs := ps.Errors(); len(errs) > 0 {
		return nil, ps, &xssec.InvalidError{Source: src, Problems: errs}
	}
	return xssec.Normalize(d).(map[string]any), ps.Warnings(), nil
}
