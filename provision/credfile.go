package provision

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
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
	EnvPrefix string // default XSUAA_
	// Instance, Offering and Plan label the credentials in default-env,
	// postman and http-client files.
	Instance, Offering, Plan string
}

// Render encodes credentials in a format. JSON keeps them as the broker
// returned them. For pem it returns the JSON; PEMFiles gives the rest.
func Render(creds map[string]any, o Output) ([]byte, error) {
	str := func(k string) string { s, _ := creds[k].(string); return s }
	switch o.Format {
	case FormatJSON, FormatPEM, "":
		return jsonDoc(creds)
	case FormatYAML:
		return yaml.Marshal(creds)
	case FormatEnv:
		prefix := o.EnvPrefix
		if prefix == "" {
			prefix = "XSUAA_"
		}
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
		label := firstNonEmpty(o.Offering, "xsuaa")
		return jsonDoc(map[string]any{"VCAP_SERVICES": map[string]any{label: []any{map[string]any{
			"name": o.Instance, "instance_name": o.Instance, "label": label, "plan": firstNonEmpty(o.Plan, "application"),
			"tags": []string{"xsuaa"}, "credentials": creds,
		}}}})
	case FormatPostman:
		v := func(key, value, typ string) map[string]any {
			return map[string]any{"key": key, "value": value, "type": typ, "enabled": true}
		}
		tokenURL := strings.TrimRight(str("url"), "/") + "/oauth/token"
		return jsonDoc(map[string]any{
			"id":   firstNonEmpty(str("serviceInstanceId"), o.Instance),
			"name": o.Instance + " (XSUAA)",
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
		tokenURL := strings.TrimRight(str("url"), "/") + "/oauth/token"
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
		return jsonDoc(map[string]any{firstNonEmpty(o.Instance, "xsuaa"): env})
	}
	return nil, Usagef("unknown format %q (use one of %s)", o.Format, strings.Join(Formats, ", "))
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

// PEMFiles returns the extra files of --format pem: the certificate chain
// and the private key beside the credentials file (.crt, .key).
func PEMFiles(creds map[string]any, path string) (map[string][]byte, error) {
	cert, _ := creds["certificate"].(string)
	key, _ := creds["key"].(string)
	if cert == "" || key == "" {
		return nil, Usagef("--format pem needs an x509 key (--credential-type x509); this key has no certificate")
	}
	base := strings.TrimSuffix(path, filepath.Ext(path))
	return map[string][]byte{base + ".crt": []byte(cert), base + ".key": []byte(key)}, nil
}

// ReadCredentials reads a credentials file written by xsprov in any format
// that holds the credentials (json, yaml, env, default-env, pem's JSON).
func ReadCredentials(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, Usagef("read credentials: %v", err)
	}
	var m map[string]any
	if json.Unmarshal(b, &m) == nil {
		if vs, ok := m["VCAP_SERVICES"].(map[string]any); ok {
			for _, v := range vs {
				if arr, ok := v.([]any); ok && len(arr) > 0 {
					if inst, ok := arr[0].(map[string]any); ok {
						if c, ok := inst["credentials"].(map[string]any); ok {
							return c, nil
						}
					}
				}
			}
		}
		if m["clientid"] != nil {
			return m, nil
		}
		return nil, Usagef("%s holds no XSUAA credentials (no clientid)", path)
	}
	if env, ok := parseDotenv(b); ok {
		return env, nil
	}
	if yaml.Unmarshal(b, &m) == nil && m["clientid"] != nil {
		return m, nil
	}
	return nil, Usagef("%s is not a credentials file (JSON, YAML or env with XSUAA_CLIENTID)", path)
}

// credKeys are the fields an env file's names are mapped back to.
var credKeys = []string{"clientid", "clientsecret", "url", "certurl", "certificate", "key", "verificationkey", "identityzone",
	"identityzoneid", "zoneid", "tenantid", "subaccountid", "tenantmode", "xsappname", "uaadomain", "apiurl", "sburl",
	"credential-type", "serviceInstanceId"}

func parseDotenv(b []byte) (map[string]any, bool) {
	norm := func(s string) string { return strings.ToLower(reNonEnv.ReplaceAllString(s, "")) }
	byNorm := map[string]string{}
	for _, k := range credKeys {
		byNorm[norm(k)] = k
	}
	out := map[string]any{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			return nil, false
		}
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = envUnquote(val[1 : len(val)-1])
		}
		// The longest known field the name ends with, whatever the prefix:
		// XSUAA_VERIFICATIONKEY is verificationkey, not key.
		n, best := norm(name), ""
		for nk := range byNorm {
			if strings.HasSuffix(n, nk) && len(nk) > len(best) {
				best = nk
			}
		}
		if best != "" {
			out[byNorm[best]] = val
		}
	}
	return out, out["clientid"] != nil
}

func envUnquote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
			if s[i] == 'n' {
				b.WriteByte('\n')
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
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

// envQuote writes a dotenv value: double quoted, with \n for newlines and
// escapes for quotes, backslashes and $, so that dotenv parsers and
// `set -a; . file` read back the same string.
func envQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, `$`, `\$`, "`", "\\`")
	return `"` + r.Replace(s) + `"`
}

// WriteFileAtomic writes data to path with mode 0600 (creating its directory
// with 0700): a temp file in the same directory, fsync, rename, fsync of the
// directory. Readers see the old file
// or the new one, never a part.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// GitExposure reports whether path lies in a git work tree and is not
// ignored there, so committing it would leak the credentials.
func GitExposure(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	inRepo := false
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil {
			inRepo = true
			break
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	if !inRepo {
		return false
	}
	if _, err := exec.LookPath("git"); err != nil {
		return true
	}
	cmd := exec.Command("git", "check-ignore", "-q", abs)
	cmd.Dir = filepath.Dir(abs)
	err = cmd.Run()
	// exit 0: ignored; 1: not ignored; anything else: git could not tell.
	if err == nil {
		return false
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		return true
	}
	return false
}
