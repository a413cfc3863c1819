package credfile

import (
	"encoding/json"
	"os"
	"sort"
	"strings"

	"github.com/xsprov/xsprov/provision/infile"
	"gopkg.in/yaml.v3"
)

// ReadCredentials reads a credentials file written by xsprov in any format
// (json, yaml, env, default-env, pem's JSON, and the client id, secret and
// url of postman and http-client files).
func ReadCredentials(path string) (map[string]any, error) {
	b, err := infile.Read(path, infile.Document)
	if err != nil {
		return nil, usagef("read credentials: %v", err)
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
		if c := fromTool(m); c != nil {
			return c, nil
		}
		return nil, usagef("%s holds no XSUAA credentials (no clientid)", path)
	}
	if env, ok := parseDotenv(b); ok {
		return env, nil
	}
	if yaml.Unmarshal(b, &m) == nil && m["clientid"] != nil {
		return m, nil
	}
	return nil, usagef("%s is not a credentials file (JSON, YAML or env with XSUAA_CLIENTID)", path)
}

// credKeys are the fields an env file's names are mapped back to.
var credKeys = []string{"clientid", "clientsecret", "url", "certurl", "certificate", "key", "verificationkey", "identityzone",
	"identityzoneid", "zoneid", "tenantid", "subaccountid", "tenantmode", "xsappname", "uaadomain", "apiurl", "sburl",
	"credential-type", "serviceInstanceId", "domains"}

func parseDotenv(b []byte) (map[string]any, bool) {
	norm := func(s string) string { return strings.ToLower(reNonEnv.ReplaceAllString(s, "")) }
	byNorm := map[string]string{}
	for _, k := range credKeys {
		byNorm[norm(k)] = k
	}
	out := map[string]any{}
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			return nil, false
		}
		switch {
		case strings.HasPrefix(val, "'"):
			// single quotes: literal, and may span lines
			val = val[1:]
			for !strings.HasSuffix(val, "'") && i+1 < len(lines) {
				i++
				val += "\n" + strings.TrimRight(lines[i], "\r")
			}
			val = strings.TrimSuffix(val, "'")
		case len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"':
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

// OwnedPEMFiles are the .crt and .key beside a pem credentials file that
// hold exactly the certificate and key of the credentials in it: the files
// xsprov wrote for that key, and no others.
func OwnedPEMFiles(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var creds map[string]any
	if json.Unmarshal(b, &creds) != nil {
		return nil
	}
	cert, _ := creds["certificate"].(string)
	key, _ := creds["key"].(string)
	if cert == "" || key == "" {
		return nil
	}
	crt, keyPath := pemPaths(path)
	var out []string
	for p, want := range map[string]string{crt: cert, keyPath: key} {
		if got, err := os.ReadFile(p); err == nil && string(got) == want {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// toolKeys map the variables of postman and http-client files back to
// credentials.
var toolKeys = map[string]string{"xsuaa_url": "url", "xsuaa_client_id": "clientid", "xsuaa_client_secret": "clientsecret"}

// fromTool reads a postman environment ({"values":[{key,value}…]}) or an
// http-client env file ({"<instance>": {"xsuaa_client_id": …}}).
func fromTool(m map[string]any) map[string]any {
	out := map[string]any{}
	if vals, ok := m["values"].([]any); ok {
		for _, v := range vals {
			kv, _ := v.(map[string]any)
			k, _ := kv["key"].(string)
			if name, ok := toolKeys[k]; ok {
				if s, _ := kv["value"].(string); s != "" {
					out[name] = s
				}
			}
		}
	}
	for _, env := range m {
		vars, ok := env.(map[string]any)
		if !ok || vars["xsuaa_client_id"] == nil || out["clientid"] != nil {
			continue
		}
		for k, name := range toolKeys {
			if s, _ := vars[k].(string); s != "" {
				out[name] = s
			}
		}
	}
	if out["clientid"] == nil {
		return nil
	}
	return out
}
