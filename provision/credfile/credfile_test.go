package credfile

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/joho/godotenv"
	"gopkg.in/yaml.v3"
)

var sampleCreds = map[string]any{
	"clientid":        "sb-my-app!t1001",
	"clientsecret":    `2f1d-x$Qk="quoted"\back` + "`tick`",
	"url":             "https://acme.authentication.example.com",
	"identityzone":    "acme",
	"verificationkey": "-----BEGIN PUBLIC KEY-----\nMIIB\nIDAQAB\n-----END PUBLIC KEY-----\n",
	"credential-type": "binding-secret",
	"xsappname":       "my-app!t1001",
	"nested":          map[string]any{"a": 1.0},
}

func TestFormatsParseWithRealParsers(t *testing.T) {
	dir := t.TempDir()
	out := Output{Instance: "my-xsuaa", Offering: "xsuaa", Plan: "application"}
	render := func(format string) []byte {
		t.Helper()
		o := out
		o.Format = format
		b, err := Render(sampleCreds, o)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		return b
	}
	var j map[string]any
	if err := json.Unmarshal(render(FormatJSON), &j); err != nil || j["clientsecret"] != sampleCreds["clientsecret"] || j["verificationkey"] != sampleCreds["verificationkey"] {
		t.Errorf("json: %v %v", err, j)
	}
	var y map[string]any
	if err := yaml.Unmarshal(render(FormatYAML), &y); err != nil || y["clientsecret"] != sampleCreds["clientsecret"] {
		t.Errorf("yaml: %v %v", err, y)
	}
	envFile := filepath.Join(dir, "c.env")
	if err := os.WriteFile(envFile, render(FormatEnv), 0o600); err != nil {
		t.Fatal(err)
	}
	env, err := godotenv.Read(envFile)
	if err != nil {
		t.Fatalf("dotenv: %v", err)
	}
	for k, want := range map[string]string{"XSUAA_CLIENTID": "sb-my-app!t1001", "XSUAA_URL": sampleCreds["url"].(string),
		"XSUAA_VERIFICATIONKEY": sampleCreds["verificationkey"].(string), "XSUAA_CREDENTIAL_TYPE": "binding-secret"} {
		if env[k] != want {
			t.Errorf("dotenv %s = %q, want %q", k, env[k], want)
		}
	}
	// The shell is a real parser too: `set -a; . file` must give the same values.
	shOut, err := exec.Command("sh", "-c", `set -a; . "$1"; printf '%s' "$XSUAA_CLIENTSECRET"`, "sh", envFile).Output()
	if err != nil || string(shOut) != sampleCreds["clientsecret"] {
		t.Errorf("sh reads XSUAA_CLIENTSECRET = %q (%v), want %q", shOut, err, sampleCreds["clientsecret"])
	}
	var de struct {
		VCAP map[string][]struct {
			Name        string         `json:"name"`
			Label       string         `json:"label"`
			Plan        string         `json:"plan"`
			Tags        []string       `json:"tags"`
			Credentials map[string]any `json:"credentials"`
		} `json:"VCAP_SERVICES"`
	}
	if err := json.Unmarshal(render(FormatDefaultEnv), &de); err != nil || len(de.VCAP["xsuaa"]) != 1 ||
		de.VCAP["xsuaa"][0].Name != "my-xsuaa" || de.VCAP["xsuaa"][0].Credentials["clientid"] != "sb-my-app!t1001" || de.VCAP["xsuaa"][0].Plan != "application" {
		t.Errorf("default-env: %v %+v", err, de)
	}
	var pm struct {
		Name   string                              `json:"name"`
		Scope  string                              `json:"_postman_variable_scope"`
		Values []struct{ Key, Value, Type string } `json:"values"`
	}
	if err := json.Unmarshal(render(FormatPostman), &pm); err != nil || pm.Scope != "environment" {
		t.Fatalf("postman: %v %+v", err, pm)
	}
	got := map[string]string{}
	for _, v := range pm.Values {
		got[v.Key] = v.Value + "|" + v.Type
	}
	if got["xsuaa_token_url"] != sampleCreds["url"].(string)+"/oauth/token|default" || got["xsuaa_client_secret"] != sampleCreds["clientsecret"].(string)+"|secret" ||
		got["xsuaa_password"] != "|secret" {
		t.Errorf("postman values: %v", got)
	}
	var hc map[string]map[string]any
	if err := json.Unmarshal(render(FormatHTTPClient), &hc); err != nil || hc["my-xsuaa"]["xsuaa_client_id"] != "sb-my-app!t1001" {
		t.Errorf("http-client: %v %v", err, hc)
	}
	if _, err := PEMFiles(sampleCreds, "x.json"); err == nil {
		t.Error("pem accepted a key without certificate")
	}
	files, err := PEMFiles(map[string]any{"certificate": "C", "key": "K"}, filepath.Join(dir, "my-credentials.json"))
	if err != nil || string(files[filepath.Join(dir, "my-credentials.crt")]) != "C" || string(files[filepath.Join(dir, "my-credentials.key")]) != "K" {
		t.Errorf("pem files: %v %v", err, files)
	}
}

func TestReadCredentialsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, format := range []string{FormatJSON, FormatYAML, FormatEnv, FormatDefaultEnv} {
		b, err := Render(sampleCreds, Output{Format: format, Instance: "i", EnvPrefix: "MY_APP_"})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "c."+format)
		_ = os.WriteFile(path, b, 0o600)
		got, err := ReadCredentials(path)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		for _, k := range []string{"clientid", "clientsecret", "url", "verificationkey"} {
			if got[k] != sampleCreds[k] {
				t.Errorf("%s: %s = %q, want %q", format, k, got[k], sampleCreds[k])
			}
		}
	}
	_ = os.WriteFile(filepath.Join(dir, "junk"), []byte("hello"), 0o600)
	if _, err := ReadCredentials(filepath.Join(dir, "junk")); err == nil || !strings.Contains(err.Error(), "not a credentials file") {
		t.Errorf("junk: %v", err)
	}
}

func TestWriteFileAtomicMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.json")
	_ = os.WriteFile(path, []byte("old"), 0o644)
	if err := WriteFileAtomic(path, []byte("new")); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	b, _ := os.ReadFile(path)
	if fi.Mode().Perm() != 0o600 || string(b) != "new" {
		t.Errorf("mode %v, content %q", fi.Mode().Perm(), b)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
	if err := WriteFileAtomic(filepath.Join(path, "sub"), []byte("x")); err == nil {
		t.Error("write under a file succeeded")
	}
}

// TestWriteFileAtomicReplacesWhole proves that a write replaces the file
// rather than rewriting it in place: a hard link to the old file (and a
// reader that opened it before) still sees the old content whole, so no
// reader can ever see a half-written file.
func TestWriteFileAtomicReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.json")
	old := []byte(`{"clientid":"old"}`)
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Link(path, link); err != nil {
		t.Skipf("no hard links here: %v", err)
	}
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := WriteFileAtomic(path, []byte(`{"clientid":"new","longer":true}`)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(link); string(b) != string(old) {
		t.Errorf("the old file was rewritten in place: the link reads %q", b)
	}
	if b, _ := io.ReadAll(r); string(b) != string(old) {
		t.Errorf("a reader of the old file read %q", b)
	}
	if b, _ := os.ReadFile(path); string(b) != `{"clientid":"new","longer":true}` {
		t.Errorf("new content: %q", b)
	}
}

func FuzzReadCredentials(f *testing.F) {
	for _, format := range []string{FormatJSON, FormatYAML, FormatEnv, FormatDefaultEnv} {
		b, _ := Render(sampleCreds, Output{Format: format})
		f.Add(b)
	}
	f.Add([]byte("XSUAA_CLIENTID=\"a\\\"\nB=1"))
	f.Add([]byte(`{"VCAP_SERVICES":{"x":[1]}}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "c")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Skip()
		}
		c, err := ReadCredentials(path)
		if err == nil && c["clientid"] == nil {
			t.Fatalf("accepted credentials without clientid: %v", c)
		}
	})
}

func FuzzEnvRoundTrip(f *testing.F) {
	for _, s := range []string{"plain", "a\"b", "x\ny", `back\slash`, "$HOME", "`id`", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if strings.ContainsAny(v, "\r\x00") {
			t.Skip() // not representable on one dotenv line
		}
		b, err := Render(map[string]any{"clientid": "c", "clientsecret": v}, Output{Format: FormatEnv})
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseDotenv(b)
		if !ok || got["clientsecret"] != v {
			t.Fatalf("%q read back as %q", v, got["clientsecret"])
		}
	})
}

// TestSecretValuesCoverEveryPrintedForm: every line of every format that
// holds a secret contains one of the values to mask in full, so a CI log
// shows none of it (a "$" written as "\$" in env files was not masked).
func TestSecretValuesCoverEveryPrintedForm(t *testing.T) {
	creds := map[string]any{
		"clientid": "sb-app!t1", "url": "https://z.example.com",
		"clientsecret": `a$b"c\d'e`,
		"key":          "-----BEGIN PRIVATE KEY-----\nMIIEvQ$abc\nAAAA==\n-----END PRIVATE KEY-----\n",
	}
	masks := SecretValues(creds)
	for _, format := range []string{FormatJSON, FormatEnv, FormatYAML, FormatDefaultEnv, FormatPostman, FormatHTTPClient} {
		b, err := Render(creds, Output{Format: format, Instance: "x"})
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, "$b") && !strings.Contains(line, "MIIEvQ") && !strings.Contains(line, "AAAA==") {
				continue // no secret on this line
			}
			masked := false
			for _, m := range masks {
				if strings.Contains(line, m) && (strings.Contains(m, "$b") || strings.Contains(m, "MIIEvQ") || strings.Contains(m, "AAAA==")) {
					masked = true
				}
			}
			if !masked {
				t.Errorf("%s: the secret on line %q is not masked by any of %q", format, line, masks)
			}
		}
	}
}

// TestReadCredentialsEveryFormat: every format xsprov writes reads back with
// the client id, secret and url (postman and http-client files were refused).
func TestReadCredentialsEveryFormat(t *testing.T) {
	dir := t.TempDir()
	for _, format := range Formats {
		b, err := Render(sampleCreds, Output{Format: format, Instance: "x"})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, format)
		_ = os.WriteFile(path, b, 0o600)
		c, err := ReadCredentials(path)
		if err != nil {
			t.Errorf("%s: %v", format, err)
			continue
		}
		for _, k := range []string{"clientid", "clientsecret", "url"} {
			if c[k] != sampleCreds[k] {
				t.Errorf("%s: %s = %v, want %v", format, k, c[k], sampleCreds[k])
			}
		}
	}
}

// parsers are the dotenv readers people use, each printing the file's
// variables as JSON; nil where one is not installed.
func dotenvParsers(t *testing.T) map[string][]string {
	t.Helper()
	ps := map[string][]string{
		"sh": {"sh", "-c", `set -a; . "$1"; for v in $(sed -n "s/^\([A-Z_]*\)=.*/\1/p" "$1"); do printf '%s\0' "$v"; eval "printf '%s\0' \"\$$v\""; done`, "sh"},
	}
	if exec.Command("python3", "-c", "import dotenv").Run() == nil {
		ps["python-dotenv"] = []string{"python3", "-c", "import sys, json\nfrom dotenv import dotenv_values\nprint(json.dumps(dotenv_values(sys.argv[1])))"}
	}
	nodeModules, _ := filepath.Abs("../../.bin/node_modules")
	if exec.Command("node", "-e", `require(process.argv[1] + "/dotenv")`, nodeModules).Run() == nil {
		ps["node-dotenv"] = []string{"node", "-e", `console.log(JSON.stringify(require(process.argv[1] + "/dotenv").parse(require("fs").readFileSync(process.argv[2]))))`, nodeModules}
	}
	for _, name := range []string{"python-dotenv", "node-dotenv"} {
		if ps[name] == nil {
			t.Logf("%s is not installed here: not checked (scripts/test installs node's dotenv into .bin)", name)
		}
	}
	return ps
}

// TestEnvFormatReadAlikeByEveryParser: sh, godotenv, python-dotenv and
// node's dotenv read an env file xsprov wrote as the same strings (a "\$"
// in a secret broke python-dotenv), multi-line PEM values included.
func TestEnvFormatReadAlikeByEveryParser(t *testing.T) {
	creds := map[string]any{
		"clientid": "sb-my-app!t1001", "url": "https://acme.authentication.example.com",
		"clientsecret":    "2f1d0c3e-93a1-4c1e-9c0f-1b2c3d4e5f60$Qk8+/x=z=",
		"verificationkey": "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\nIDAQAB\n-----END PUBLIC KEY-----",
		"odd":             `a"b` + "`c`" + ` $HOME \n`,
	}
	b, err := Render(creds, Output{Format: FormatEnv})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.env")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for k, v := range creds {
		want["XSUAA_"+envName(k)] = v.(string)
	}
	check := func(parser string, got map[string]string) {
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s reads %s = %q, want %q", parser, k, got[k], w)
			}
		}
	}
	g, err := godotenv.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	check("godotenv", g)
	own, ok := parseDotenv(b)
	if !ok || own["clientsecret"] != creds["clientsecret"] || own["verificationkey"] != creds["verificationkey"] {
		t.Errorf("xsprov reads back %v", own)
	}
	for name, cmd := range dotenvParsers(t) {
		out, err := exec.Command(cmd[0], append(cmd[1:], path)...).Output()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		got := map[string]string{}
		if name == "sh" {
			parts := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
			for i := 0; i+1 < len(parts); i += 2 {
				got[parts[i]] = parts[i+1]
			}
		} else if err := json.Unmarshal(out, &got); err != nil {
			t.Errorf("%s: %v: %s", name, err, out)
			continue
		}
		check(name, got)
	}
}
