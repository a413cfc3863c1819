// Package credfile renders a key's credentials in the formats xsprov writes,
// reads them back, and writes files atomically with mode 0600.
package credfile

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/xsprov/xsprov/provision/offering"
	"github.com/xsprov/xsprov/provision/remedy"
)

// Formats of a credentials file.
const (
	FormatJSON       = "json"
	FormatEnv        = "env"
	FormatYAML       = "yaml"
	FormatDefaultEnv = "default-env"
	FormatPostman    = "postman"
	FormatHTTPClient = "http-client"
	FormatPEM        = "pem"
)

// Formats lists the supported formats.
var Formats = []string{FormatJSON, FormatEnv, FormatYAML, FormatDefaultEnv, FormatPostman, FormatHTTPClient, FormatPEM}

// DefaultOutPath is the default credentials file of an instance for a format.
func DefaultOutPath(instance, format string) string {
	switch format {
	case FormatEnv:
		return instance + "-credentials.env"
	case FormatYAML:
		return instance + "-credentials.yaml"
	case FormatDefaultEnv:
		return "default-env.json"
	case FormatPostman:
		return instance + ".postman_environment.json"
	case FormatHTTPClient:
		return "http-client.private.env.json"
	}
	return instance + "-credentials.json"
}

// Output says where and how credentials are written.
type Output struct {
	Path      string
	Format    string
	EnvPrefix string // default: the offering's (XSUAA_, IAS_)
	// Instance, Offering and Plan label the credentials in default-env,
	// postman and http-client files.
	Instance, Offering, Plan string
}

// Render encodes credentials in a format. JSON keeps them as the broker
// returned them. For pem it returns the JSON; PEMFiles gives the rest.
func Render(creds map[string]any, o Output) ([]byte, error) {
	str := func(k string) string { s, _ := creds[k].(string); return s }
	prof := offering.OfCredentials(creds)
	if o.Offering != "" {
		prof = offering.For(o.Offering)
	}
	switch o.Format {
	case FormatJSON, FormatPEM, "":
		return jsonDoc(creds)
	case FormatYAML:
		return yaml.Marshal(creds)
	case FormatEnv:
		prefix := cmp.Or(o.EnvPrefix, prof.EnvPrefix, "XSUAA_")
		keys := make([]string, 0, len(creds))
		for k := range creds {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b bytes.Buffer
		for _, k := range keys {
			fmt.Fprintf(&b, "%s%s=%s\n", prefix, envName(k), envQuote(scalar(creds[k])))
		}
		return b.Bytes(), nil
	case FormatDefaultEnv:
		// What the approuter and CAP read locally: VCAP_SERVICES with the
		// instance under its offering's label.
		label := prof.Label
		return jsonDoc(map[string]any{"VCAP_SERVICES": map[string]any{label: []any{map[string]any{
			"name": o.Instance, "instance_name": o.Instance, "label": label, "plan": cmp.Or(o.Plan, "application"),
			"tags": []string{label}, "credentials": creds,
		}}}})
	case FormatPostman:
		v := func(key, value, typ string) map[string]any {
			return map[string]any{"key": key, "value": value, "type": typ, "enabled": true}
		}
		tokenURL := strings.TrimRight(str("url"), "/") + prof.TokenPath
		return jsonDoc(map[string]any{
			"id":   cmp.Or(str("serviceInstanceId"), o.Instance),
			"name": o.Instance + " (" + prof.Short + ")",
			"values": []any{
				v("xsuaa_url", str("url"), "default"),
				v("xsuaa_token_url", tokenURL, "default"),
				v("xsuaa_client_id", str("clientid"), "default"),
				v("xsuaa_client_secret", str("clientsecret"), "secret"),
				v("xsuaa_username", "", "default"),
				v("xsuaa_password", "", "secret"),
			},
			"_postman_variable_scope": "environment",
		})
	case FormatHTTPClient:
		tokenURL := strings.TrimRight(str("url"), "/") + prof.TokenPath
		env := map[string]any{
			"xsuaa_url": str("url"), "xsuaa_token_url": tokenURL,
			"xsuaa_client_id": str("clientid"), "xsuaa_client_secret": str("clientsecret"),
			// The JetBrains HTTP client gets tokens itself with this block:
			// Authorization: Bearer {{$auth.token("xsuaa")}}
			"Security": map[string]any{"Auth": map[string]any{"xsuaa": map[string]any{
				"Type": "OAuth2", "Grant Type": "Client Credentials", "Token URL": tokenURL,
				"Client ID": str("clientid"), "Client Secret": str("clientsecret"),
			}}},
		}
		return jsonDoc(map[string]any{cmp.Or(o.Instance, "xsuaa"): env})
	}
	return nil, usagef("unknown format %q (use one of %s)", o.Format, strings.Join(Formats, ", "))
}

func jsonDoc(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ErrNoCertificate: the pem format needs an x509 key.
var ErrNoCertificate = remedy.With(usageError("the pem format needs an x509 key; this key has no certificate"), remedy.Remedy{Action: remedy.UseX509})

// PEMFiles returns the extra files of --format pem: the certificate chain
// and the private key beside the credentials file (.crt, .key).
func PEMFiles(creds map[string]any, path string) (map[string][]byte, error) {
	cert, _ := creds["certificate"].(string)
	key, _ := creds["key"].(string)
	if cert == "" || key == "" {
		return nil, ErrNoCertificate
	}
	crt, keyPath := pemPaths(path)
	return map[string][]byte{crt: []byte(cert), keyPath: []byte(key)}, nil
}

// pemPaths are the certificate and key files beside a pem credentials file.
func pemPaths(path string) (string, string) {
	base := strings.TrimSuffix(path, filepath.Ext(path))
	return base + ".crt", base + ".key"
}

// OutputPaths are the files a credentials file of this format consists of:
// the file, and for pem its .crt and .key.
func OutputPaths(path, format string) []string {
	if format != FormatPEM {
		return []string{path}
	}
	crt, key := pemPaths(path)
	return []string{path, crt, key}
}

// CheckOutput refuses an output whose own files collide (pem's X.key would
// be both the credentials and the private key).
func CheckOutput(path, format string) error {
	ps := OutputPaths(path, format)
	for i, p := range ps {
		for _, q := range ps[i+1:] {
			if filepath.Clean(p) == filepath.Clean(q) {
				return usagef("the %s format writes %s twice (the credentials and the .crt/.key beside them); name the file with another extension, e.g. .json", format, p)
			}
		}
	}
	return nil
}

var reNonEnv = regexp.MustCompile(`[^A-Za-z0-9]+`)

func envName(k string) string {
	return strings.ToUpper(strings.Trim(reNonEnv.ReplaceAllString(k, "_"), "_"))
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// envQuote writes a dotenv value in single quotes, with newlines as they
// are: `set -a; . file`, godotenv, python-dotenv and node's dotenv all read
// that back as the same string (in double quotes each of them unescapes
// differently: python-dotenv keeps "\$", node's keeps "\""). Three
// sequences single quotes cannot carry for all four: a "'" (sh), a "\\" or
// "\'" (python-dotenv unescapes them) and "${" (python-dotenv expands it);
// such values (XSUAA secrets have none of them) fall back to double quotes
// with sh's escapes (envQuoteDouble).
//
// It is our own rather than godotenv.Marshal: Marshal escapes '!' as "\!",
// which sh reads back with the backslash, and writes values that parse as
// integers unquoted (a "007" comes back as 7).
func envQuote(s string) string {
	if strings.ContainsRune(s, '\'') || strings.Contains(s, `\\`) || strings.Contains(s, "${") {
		return envQuoteDouble(s)
	}
	return "'" + s + "'"
}

// envQuoteDouble is the double-quoted form: \n for newlines, escapes for
// quotes, backslashes, $ and backquotes (sh and godotenv read it back).
func envQuoteDouble(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, `$`, `\$`, "`", "\\`")
	return `"` + r.Replace(s) + `"`
}

// usageError is a problem with the user's input (a format, a file).
type usageError string

func (e usageError) Error() string { return string(e) }

// Usage marks the error as bad input (exit code 2).
func (e usageError) Usage() bool { return true }

func usagef(format string, args ...any) error { return usageError(fmt.Sprintf(format, args...)) }

// SecretValues lists the secret values in credentials in every form a
// credentials file or xsprov's output shows them, for masking in CI logs
// (masks match exact strings): each line of the value (PEM blocks are many
// lines), and each line as JSON, YAML and the env format escape it (a "$" is
// printed as "\$" in env files).
func SecretValues(creds map[string]any) []string {
	var out []string
	seen := map[string]bool{}
	add := func(v string) {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	for _, k := range []string{"clientsecret", "key", "password"} {
		s, _ := creds[k].(string)
		if s == "" {
			continue
		}
		for _, line := range strings.Split(s, "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "-----") {
				add(line)
			}
		}
		for _, escaped := range []string{jsonEscaped(s), envQuote(s), yamlEscaped(s)} {
			for _, line := range strings.Split(escaped, "\n") {
				if line = strings.Trim(strings.TrimSpace(line), `"'`); line != "" && !strings.Contains(line, "-----") {
					add(line)
				}
			}
		}
	}
	return out
}

// jsonEscaped is s as JSON writes it inside quotes.
func jsonEscaped(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSpace(b.String())
}

// yamlEscaped is s as a YAML mapping value writes it.
func yamlEscaped(s string) string {
	b, err := yaml.Marshal(map[string]string{"v": s})
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(strings.TrimSpace(string(b)), "v: ")
}
