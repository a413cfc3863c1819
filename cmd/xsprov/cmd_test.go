package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"

	"github.com/xsprov/xsprov/provision/cfapi"
	"github.com/xsprov/xsprov/provision/cfsim"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestUpFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		want    UpOptions
		wantErr string
	}{
		{name: "defaults", args: []string{"my-xsuaa"}, want: UpOptions{Instance: "my-xsuaa", Offering: "xsuaa", Plan: "application",
			Out: "my-xsuaa-credentials.json", Format: "json", EnvPrefix: "", Verify: true}},
		{name: "env format names the file", args: []string{"a", "--format", "env"}, want: UpOptions{Instance: "a", Offering: "xsuaa", Plan: "application",
			Out: "a-credentials.env", Format: "env", EnvPrefix: "", Verify: true}},
		{name: "everything", args: []string{"a", "--plan", "broker", "--offering", "x", "--broker", "b",
			"--xsappname", "app", "--tenant-mode", "shared", "--foreign-scope", "r1", "--foreign-scope", "r2", "--tag", "t",
			"--key", "k", "--key-params", `{"a":1}`, "--credential-type", "x509", "--out", "o.yaml", "--format", "yaml",
			"--env-prefix", "P_", "--json", "--no-wait", "--template", "minimal", "--var", "a=b", "--x509-validity", "3"},
			want: UpOptions{Instance: "a", Offering: "x", Plan: "broker", Broker: "b", XSAppName: "app", X509Validity: 3,
				Templates:  templateFlags{Template: "minimal", Vars: []string{"a=b"}},
				TenantMode: "shared", ForeignScopes: []string{"r1", "r2"}, Tags: []string{"t"}, Key: "k", KeyParams: `{"a":1}`,
				CredentialType: "x509", Out: "o.yaml", Format: "yaml", EnvPrefix: "P_", JSON: true, NoWait: true, Verify: true}},
		{name: "no instance", args: []string{}, wantErr: "expected INSTANCE"},
		{name: "two instances", args: []string{"a", "b"}, wantErr: "expected INSTANCE"},
		{name: "bad tenant mode", args: []string{"a", "--tenant-mode", "x"}, wantErr: "--tenant-mode"},
		{name: "bad credential type", args: []string{"a", "--credential-type", "instance-secret"}, wantErr: "--credential-type"},
		{name: "bad format", args: []string{"a", "--format", "toml"}, wantErr: "--format"},
		{name: "unknown flag", args: []string{"a", "--colour"}, wantErr: "unknown flag"},
		{name: "empty plan", args: []string{"a", "--plan", ""}, wantErr: "--plan must not be empty"},
		{name: "params and template", args: []string{"a", "--params", "p.json", "--template", "minimal"}, wantErr: "either --params or --template"},
		{name: "var without template", args: []string{"a", "--var", "x=y"}, wantErr: "--var and --vars need --template"},
		{name: "x509 key length", args: []string{"a", "--x509-key-length", "1024"}, wantErr: "--x509-key-length 1024"},
		{name: "x509 contradiction", args: []string{"a", "--x509-validity", "3", "--credential-type", "binding-secret"}, wantErr: "contradict"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, _, _ := TestStreams()
			var got *UpOptions
			cmd := newUpCmd(&Factory{IO: ios}, func(_ context.Context, o *UpOptions) error { got = o; return nil })
			cmd.SetArgs(tc.args)
			cmd.SetOut(ios.Out)
			cmd.SetErr(ios.ErrOut)
			cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &flagError{err: err} })
			err := cmd.Execute()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || exitCode(err) != exitUsage {
					t.Fatalf("err = %v (exit %d), want usage error with %q", err, exitCode(err), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.Target = targetFlags{}
			if d := cmp.Diff(tc.want, *got, cmp.AllowUnexported(UpOptions{})); d != "" {
				t.Errorf("options (-want +got):\n%s", d)
			}
		})
	}
}

func TestTargetResolution(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	_ = os.WriteFile(secretFile, []byte("s3cret\n"), 0o600)
	cfHome := filepath.Join(dir, "home")
	_ = os.MkdirAll(filepath.Join(cfHome, ".cf"), 0o700)
	_ = os.WriteFile(filepath.Join(cfHome, ".cf", "config.json"), []byte(`{"Target":"https://api.cf.example.com","RefreshToken":"r","AccessToken":"bearer a",
		"OrganizationFields":{"Name":"cforg"},"SpaceFields":{"Name":"cfspace"}}`), 0o600)
	cases := []struct {
		name    string
		flags   targetFlags
		env     map[string]string
		check   func(*settings) string
		wantErr string
	}{
		{name: "cf CLI target and login", env: map[string]string{"CF_HOME": cfHome}, check: func(s *settings) string {
			if s.api != "https://api.cf.example.com" || s.org != "cforg" || s.space != "cfspace" || s.auth.CFHome != cfHome {
				return "did not use the cf CLI config"
			}
			return ""
		}},
		{name: "env wins over cf config", env: map[string]string{"CF_HOME": cfHome, "CF_API": "https://api.other.example.com", "CF_ORG": "o", "CF_SPACE": "s",
			"CF_CLIENT_ID": "c", "CF_CLIENT_SECRET": "x"}, check: func(s *settings) string {
			if s.api != "https://api.other.example.com" || s.org != "o" || s.auth.ClientID != "c" || s.auth.ClientSecret != "x" {
				return "environment not used"
			}
			return ""
		}},
		{name: "flags win", flags: targetFlags{API: "https://api.flag.example.com/", Org: "fo", Space: "fs", ClientID: "fc", ClientSecretFile: secretFile},
			env: map[string]string{"CF_API": "https://api.env.example.com"}, check: func(s *settings) string {
				if s.api != "https://api.flag.example.com" || s.org != "fo" || s.auth.ClientID != "fc" || s.auth.ClientSecret != "s3cret" {
					return "flags not used"
				}
				return ""
			}},
		{name: "user and password with origin", flags: targetFlags{API: "https://a.example.com", Org: "o", Space: "s", Origin: "corp-idp"},
			env: map[string]string{"CF_USERNAME": "u", "CF_PASSWORD": "p"}, check: func(s *settings) string {
				if s.auth.Username != "u" || s.auth.Origin != "corp-idp" {
					return "password login not used"
				}
				return ""
			}},
		{name: "sim defaults", flags: targetFlags{API: "sim"}, check: func(s *settings) string {
			if !s.sim || s.org != "acme" || s.space != "dev" || s.auth.ClientID != cfsim.CIClientID {
				return "sim defaults not used"
			}
			return ""
		}},
		{name: "no api", env: map[string]string{"CF_HOME": dir}, wantErr: "no Cloud Foundry API"},
		{name: "bad api flag", flags: targetFlags{API: "api.example.com"}, wantErr: "is not an http(s) URL"},
		{name: "bad CF_API", env: map[string]string{"CF_API": "::"}, wantErr: "CF_API:"},
		{name: "no space", flags: targetFlags{API: "https://a.example.com", Org: "o"}, wantErr: "no org and space"},
		{name: "client id without secret", flags: targetFlags{API: "https://a.example.com", Org: "o", Space: "s", ClientID: "c"}, wantErr: "needs --client-secret-file"},
		{name: "secret file missing", flags: targetFlags{API: "https://a.example.com", Org: "o", Space: "s", ClientID: "c", ClientSecretFile: "/nope"}, wantErr: "--client-secret-file"},
		{name: "CF_CLIENT_ID without secret", flags: targetFlags{API: "https://a.example.com", Org: "o", Space: "s"}, env: map[string]string{"CF_CLIENT_ID": "c"}, wantErr: "CF_CLIENT_SECRET is empty"},
		{name: "CF_USERNAME without password", flags: targetFlags{API: "https://a.example.com", Org: "o", Space: "s"}, env: map[string]string{"CF_USERNAME": "u"}, wantErr: "CF_PASSWORD is empty"},
		{name: "origin without user", flags: targetFlags{API: "sim", Origin: "x"}, wantErr: "--origin"},
		{name: "corrupt cf config", env: map[string]string{"CF_HOME": filepath.Join(dir, "bad")}, wantErr: "not valid JSON"},
	}
	_ = os.MkdirAll(filepath.Join(dir, "bad", ".cf"), 0o700)
	_ = os.WriteFile(filepath.Join(dir, "bad", ".cf", "config.json"), []byte("{"), 0o600)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, _, _ := TestStreams()
			env := map[string]string{"CF_HOME": filepath.Join(dir, "empty")}
			for k, v := range tc.env {
				env[k] = v
			}
			f := &Factory{IO: ios, Getenv: func(k string) string { return env[k] }}
			tc.flags.Timeout = time.Minute
			s, err := f.resolve(tc.flags)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || exitCode(err) != exitUsage {
					t.Fatalf("err = %v (exit %d), want usage error with %q", err, exitCode(err), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.check(s); msg != "" {
				t.Errorf("%s: %+v", msg, s)
			}
		})
	}
}

// runIn runs xsprov in-process against a simulator and returns exit code,
// stdout and stderr with the simulator's URL replaced by SIM.
func runIn(t *testing.T, srvURL, dir string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	return runInAt(t, nil, srvURL, dir, env, args...)
}

// stoppedClock reads a fixed time (the simulator's) and sleeps for real.
type stoppedClock struct{ t time.Time }

func (c stoppedClock) Now() time.Time                         { return c.t }
func (c stoppedClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// runInAt is runIn with the client on clk (nil: the wall clock), so tokens
// of a simulator on a fixed clock are not expired for it.
func runInAt(t *testing.T, clk cfapi.Clock, srvURL, dir string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	ios, _, out, errOut := TestStreams()
	full := map[string]string{"CF_API": srvURL, "CF_CLIENT_ID": cfsim.CIClientID, "CF_CLIENT_SECRET": cfsim.CIClientSecret,
		"CF_ORG": "acme", "CF_SPACE": "dev", "CF_HOME": dir}
	for k, v := range env {
		full[k] = v
	}
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	code := run(context.Background(), args, &Factory{IO: ios, Clock: clk, Getenv: func(k string) string { return full[k] }})
	norm := func(b *bytes.Buffer) string { return strings.ReplaceAll(b.String(), srvURL, "SIM") }
	return code, norm(out), norm(errOut)
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		_ = os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s (-want +got):\n%s", name, d)
	}
}

// TestGoldenOutput pins what a user sees: stdout, stderr and --json of the
// lifecycle against a deterministic simulator.
func TestGoldenOutput(t *testing.T) {
	clk := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	sim := cfsim.MustNew(cfsim.WithDeterministicIDs(), cfsim.WithClock(func() time.Time { return clk }))
	srv := httptest.NewServer(sim)
	defer srv.Close()
	dir := t.TempDir()
	steps := []struct {
		name string
		args []string
		code int
	}{
		{"up", []string{"up", "my-xsuaa", "--xsappname", "myAppName"}, 0},
		{"up-rerun-json", []string{"up", "my-xsuaa", "--xsappname", "myAppName", "--json"}, 0},
		{"up-xsappname-change", []string{"up", "my-xsuaa", "--xsappname", "other"}, 1},
		{"status-json", []string{"status", "my-xsuaa", "--json", "--tenant-mode", "shared", "--out", "none.json"}, 0},
		{"down", []string{"down", "my-xsuaa", "--yes"}, 0},
		{"up-bad-descriptor", []string{"up", "x", "--xsappname", "a b", "--foreign-scope", "nope"}, 2},
	}
	for _, st := range steps {
		code, out, errOut := runInAt(t, stoppedClock{clk}, srv.URL, dir, nil, st.args...)
		if code != st.code {
			t.Errorf("%s: exit %d, want %d\n%s", st.name, code, st.code, errOut)
		}
		golden(t, st.name+".stdout", out)
		golden(t, st.name+".stderr", errOut)
	}
}

// TestCFHomeLogin uses a cf CLI config.json (target, org, space, tokens),
// as `cf login` leaves it, and refreshes the expired access token.
func TestCFHomeLogin(t *testing.T) {
	sim := cfsim.MustNew()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	form := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"admin-secret"}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/uaa/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("cf", "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	dir := t.TempDir()
	// An access token that expired long ago, as cf leaves it after a while.
	expired := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(`{"exp":1,"user_name":"admin"}`)) + ".c2ln"
	cfg := map[string]any{"Target": srv.URL, "AccessToken": "bearer " + expired, "RefreshToken": tok.RefreshToken,
		"UAAOAuthClient": "cf", "OrganizationFields": map[string]string{"Name": "acme"}, "SpaceFields": map[string]string{"Name": "prod"}}
	b, _ := json.Marshal(cfg)
	_ = os.MkdirAll(filepath.Join(dir, ".cf"), 0o700)
	_ = os.WriteFile(filepath.Join(dir, ".cf", "config.json"), b, 0o600)
	code, out, errOut := runIn(t, srv.URL, dir, map[string]string{"CF_API": "", "CF_CLIENT_ID": "", "CF_CLIENT_SECRET": "", "CF_ORG": "", "CF_SPACE": ""},
		"up", "viacf", "--xsappname", "viacf")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "in org acme / space prod as admin") || !strings.Contains(out, "viacf (created)") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}
}

// TestNoSecretsInAnyOutput runs the lifecycle with --trace and --json and
// searches everything printed for every secret the simulator ever issued or
// knows: client secrets, private keys, passwords, tokens.
func TestNoSecretsInAnyOutput(t *testing.T) {
	sim := cfsim.MustNew()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	dir := t.TempDir()
	var all strings.Builder
	var secrets []string
	collect := func() {
		for _, k := range sim.Snapshot().Keys {
			for _, f := range []string{"clientsecret", "key"} {
				if v, _ := k.Creds[f].(string); v != "" {
					secrets = append(secrets, v)
				}
			}
		}
	}
	runs := [][]string{
		{"up", "s1", "--xsappname", "s1", "--trace", "--json"},
		{"up", "s2", "--xsappname", "s2", "--credential-type", "x509", "--template", "x509", "--var", "xsappname=s2", "--trace", "--no-verify"},
		{"creds", "s1", "--trace", "--format", "env"},
		{"status", "s1", "--trace", "--json"},
		{"rotate", "s1", "--trace", "--json", "--grace", "1h"},
		{"token", "s1", "--check", "--trace"},
		{"token", "s1", "--json", "--trace"},
		{"down", "s1", "--yes", "--trace", "--json"},
	}
	env := map[string]string{"CF_CLIENT_ID": "", "CF_CLIENT_SECRET": "", "CF_USERNAME": cfsim.AdminUser, "CF_PASSWORD": cfsim.AdminPassword}
	for _, args := range runs {
		code, out, errOut := runIn(t, srv.URL, dir, env, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, errOut)
		}
		all.WriteString(out)
		all.WriteString(errOut)
		collect()
	}
	secrets = append(secrets, cfsim.AdminPassword, cfsim.CIClientSecret)
	text := all.String()
	if !strings.Contains(text, "[PRIVATE DATA HIDDEN]") {
		t.Fatal("the traces did not run")
	}
	found := 0
	for _, s := range secrets {
		for _, line := range strings.Split(s, "\n") {
			if len(line) > 8 && !strings.HasPrefix(line, "-----") && strings.Contains(text, line) {
				found++
				t.Errorf("a secret appears in the output: %.12s…", line)
			}
		}
	}
	if strings.Contains(text, "eyJ") {
		found++
		t.Error("a JWT appears in the output")
	}
	t.Logf("secret scan: %d runs, %d secret values checked, %d found", len(runs), len(secrets), found)
}

// TestTimeoutOutsideAWaitSaysWhat: a deadline that runs out in a request
// (an API that stops answering), not in a job wait, still says what was
// being done, and exits 3.
func TestTimeoutOutsideAWaitSaysWhat(t *testing.T) {
	sim := cfsim.MustNew()
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v3/service_instances" {
			<-stop // never answers while the client waits
			return
		}
		sim.ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer close(stop)
	code, _, errOut := runIn(t, srv.URL, t.TempDir(), nil, "up", "hang", "--xsappname", "hang", "--timeout", "500ms")
	if code != exitTimeout || !strings.Contains(errOut, "timed out (--timeout) while creating service instance hang in org acme / space dev") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
}

// TestDevNullIsNotATerminal: a character device is not a terminal, so a
// confirmation is not asked of /dev/null.
func TestDevNullIsNotATerminal(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Errorf("%s is taken for a terminal", os.DevNull)
	}
}

// TestRecreateVerifies: recreate proves the new credentials as up does
// (--verify is on by default), and --no-verify turns it off.
func TestRecreateVerifies(t *testing.T) {
	sim := cfsim.MustNew()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	dir := t.TempDir()
	if code, _, errOut := runIn(t, srv.URL, dir, nil, "up", "rv", "--xsappname", "rv"); code != 0 {
		t.Fatalf("up: %d\n%s", code, errOut)
	}
	code, out, errOut := runIn(t, srv.URL, dir, nil, "recreate", "rv", "--xsappname", "rv", "--yes", "--json")
	if code != 0 || !strings.Contains(errOut, "Verifying the credentials") || !strings.Contains(out, `"verified_token"`) {
		t.Errorf("recreate: exit %d, no verification:\n%s\n%s", code, errOut, out)
	}
	code, _, errOut = runIn(t, srv.URL, dir, nil, "recreate", "rv", "--xsappname", "rv", "--yes", "--no-verify")
	if code != 0 || strings.Contains(errOut, "Verifying the credentials") {
		t.Errorf("recreate --no-verify: exit %d\n%s", code, errOut)
	}
}

// TestNoSecretInClearText: credentials never go over plain http:// to a host
// that is not loopback (exit 2, nothing sent: the .invalid host cannot even
// be resolved), a user:password in --api is refused without being echoed,
// and --allow-insecure-http is the lab's way out.
func TestNoSecretInClearText(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "c.json")
	if err := os.WriteFile(creds, []byte(`{"clientid":"sb-x!t1","clientsecret":"s3cret","url":"http://xsuaa.example.invalid"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"api", nil, []string{"status", "x", "--api", "http://api.example.invalid"}, "refusing to send credentials in clear text to http://api.example.invalid"},
		{"CF_API", map[string]string{"CF_API": "http://api.example.invalid"}, []string{"status", "x"}, "CF_API: refusing to send credentials in clear text"},
		{"user in api", nil, []string{"status", "x", "--api", "https://admin:hunter2@api.example.invalid"}, "holds a user name or password"},
		{"token url", nil, []string{"token", "--creds", creds}, "refusing to send credentials in clear text to http://xsuaa.example.invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runIn(t, "http://unused.invalid", dir, c.env, c.args...)
			if code != exitUsage || !strings.Contains(errOut, c.want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr:\n%s", code, out, errOut)
			}
			if strings.Contains(errOut, "hunter2") || strings.Contains(errOut, "s3cret") {
				t.Errorf("a secret was echoed:\n%s", errOut)
			}
		})
	}
	// A lab's http endpoint with --allow-insecure-http: the request is sent
	// (and fails to resolve, exit 1, not 2).
	code, _, errOut := runIn(t, "http://unused.invalid", dir, nil, "token", "--creds", creds, "--allow-insecure-http", "--timeout", "1s")
	if code == exitUsage || strings.Contains(errOut, "refusing") {
		t.Errorf("--allow-insecure-http: exit %d\n%s", code, errOut)
	}
}

// TestTokenTimeout: --timeout bounds the token request of `token --creds`
// against an endpoint that never answers.
func TestTokenTimeout(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-stop }))
	defer srv.Close()
	defer close(stop)
	dir := t.TempDir()
	creds := filepath.Join(dir, "c.json")
	_ = os.WriteFile(creds, []byte(`{"clientid":"sb-x!t1","clientsecret":"s3cret","url":"`+srv.URL+`"}`), 0o600)
	start := time.Now()
	code, _, errOut := runIn(t, srv.URL, dir, nil, "token", "--creds", creds, "--timeout", "500ms")
	if code != exitTimeout || time.Since(start) > 10*time.Second {
		t.Errorf("exit %d after %s:\n%s", code, time.Since(start), errOut)
	}
}

// TestTimeoutDuringLogin: an API that never answers its root is bounded by
// --timeout (go-cfclient discovers with a context of its own).
func TestTimeoutDuringLogin(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-stop }))
	defer srv.Close()
	defer close(stop)
	start := time.Now()
	code, _, errOut := runIn(t, srv.URL, t.TempDir(), nil, "status", "x", "--timeout", "500ms")
	if code != exitTimeout || time.Since(start) > 10*time.Second {
		t.Errorf("exit %d after %s:\n%s", code, time.Since(start), errOut)
	}
}

// TestUnknownCommandsExit2: an unknown command or subcommand is a usage
// error (exit 2) with a suggestion, not help and exit 0.
func TestUnknownCommandsExit2(t *testing.T) {
	for _, c := range []struct{ args, want string }{
		{"lsit", `unknown command "lsit" for "xsprov"`},
		{"templates lsit", `unknown command "lsit" for "xsprov templates"; did you mean list?`},
		{"upp", "did you mean up?"},
	} {
		code, out, errOut := runIn(t, "http://unused.invalid", t.TempDir(), nil, strings.Fields(c.args)...)
		if code != exitUsage || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", c.args, code, out, errOut)
		}
	}
	if code, out, _ := runIn(t, "http://unused.invalid", t.TempDir(), nil, "templates"); code != 0 || !strings.Contains(out, "Available Commands") {
		t.Errorf("templates alone: exit %d\n%s", code, out)
	}
}

// TestPlanDetailedExitCodeOnErrors: with --detailed-exitcode, 2 means
// "changes" only; every error exits 1 (spec, usage, login).
func TestPlanDetailedExitCodeOnErrors(t *testing.T) {
	sim := cfsim.MustNew()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	dir := t.TempDir()
	good := "apiVersion: xsprov/v1\nmetadata: {name: p}\ninstances:\n  - {name: p1, space: dev}\n"
	_ = os.WriteFile(filepath.Join(dir, "good.yaml"), []byte(good), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("apiVersion: xsprov/v1\nbogus: 1\n"), 0o600)
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"changes", nil, []string{"plan", "-f", "good.yaml", "--detailed-exitcode"}, 2},
		{"spec error", nil, []string{"plan", "-f", "bad.yaml", "--detailed-exitcode"}, exitFailure},
		{"usage error", nil, []string{"plan", "-f", "good.yaml", "--detailed-exitcode", "--parallel", "0"}, exitFailure},
		{"login error", map[string]string{"CF_CLIENT_SECRET": "wrong"}, []string{"plan", "-f", "good.yaml", "--detailed-exitcode"}, exitFailure},
		{"spec error without the flag", nil, []string{"plan", "-f", "bad.yaml"}, exitUsage},
	}
	for _, c := range cases {
		if code, _, errOut := runIn(t, srv.URL, dir, c.env, c.args...); code != c.want {
			t.Errorf("%s: exit %d, want %d\n%s", c.name, code, c.want, errOut)
		}
	}
}

// TestUpOnALegacyInstance: an instance made with `cf create-service … -c
// xs-security.json` keeps its scopes and role templates through `up legacy
// --xsappname legacy-app` (they were replaced with defaults, unasked).
func TestUpOnALegacyInstance(t *testing.T) {
	for _, readable := range []bool{true, false} {
		t.Run(map[bool]string{true: "readable", false: "btp"}[readable], func(t *testing.T) { upOnALegacyInstance(t, readable) })
	}
}

// upOnALegacyInstance: where the parameters can be read back, the field is
// merged and nothing changes; where not (real BTP), it is refused (exit 2)
// rather than replacing the descriptor blind. The scopes stay either way.
func upOnALegacyInstance(t *testing.T, readable bool) {
	var opts []cfsim.Option
	if readable {
		opts = append(opts, cfsim.WithRetrievableParameters())
	}
	sim := cfsim.MustNew(opts...)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	ctx := context.Background()
	s, err := cfapi.Connect(ctx, srv.URL, cfapi.Auth{ClientID: cfsim.CIClientID, ClientSecret: cfsim.CIClientSecret}, cfapi.NewHTTPClient(cfapi.HTTPOptions{}), cfapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tg, _ := s.ResolveTarget(ctx, "acme", "dev")
	plan, err := s.ResolvePlan(ctx, tg, "xsuaa", "application", "")
	if err != nil {
		t.Fatal(err)
	}
	raw := json.RawMessage(`{"xsappname":"legacy-app","tenant-mode":"dedicated","scopes":[{"name":"$XSAPPNAME.Read"}],
		"role-templates":[{"name":"Viewer","scope-references":["$XSAPPNAME.Read"]}]}`)
	job, err := s.CF.ServiceInstances.CreateManaged(ctx, &resource.ServiceInstanceManagedCreate{Type: "managed", Name: "legacy", Parameters: &raw,
		Relationships: resource.ServiceInstanceRelationships{
			Space:       &resource.ToOneRelationship{Data: &resource.Relationship{GUID: tg.SpaceGUID}},
			ServicePlan: &resource.ToOneRelationship{Data: &resource.Relationship{GUID: plan.GUID}}}})
	if err == nil {
		_, err = s.WaitJob(ctx, job, "create", nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	sim.ResetCounts()
	code, _, errOut := runIn(t, srv.URL, t.TempDir(), nil, "up", "legacy", "--xsappname", "legacy-app")
	switch {
	case readable && code != 0:
		t.Fatalf("exit %d\n%s", code, errOut)
	case !readable && (code != exitUsage || !strings.Contains(errOut, "cannot be merged") || !strings.Contains(errOut, "--params")):
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if n := sim.Counts().ByCall["PATCH /v3/service_instances/:guid"]; n != 0 {
		t.Errorf("%d updates of the instance, want 0", n)
	}
	for _, i := range sim.Snapshot().Instances {
		if i.Params["scopes"] == nil || i.Params["role-templates"] == nil {
			t.Errorf("the instance lost its scopes or role templates: %v", i.Params)
		}
	}
}

// TestBadInputsExitTwoWithoutARequest tries bad inputs a user makes and
// checks that each is answered with exit 2, a message, and no request at
// all to the Cloud Controller.
func TestBadInputsExitTwoWithoutARequest(t *testing.T) {
	sim := cfsim.MustNew()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badJSON := write("bad.json", `{"xsappname": "a b"`)
	badDesc := write("desc.json", `{"xsappname":"x","oauth2-configuration":{"credential-types":null}}`)
	spec := write("spec.yaml", "apiVersion: xsprov/v1\ninstances:\n  - {name: a, space: dev, keys: [{name: k, out: ../../outside.json}]}\n")
	bomb := write("bomb.yaml", "apiVersion: xsprov/v1\n---\napiVersion: xsprov/v1\n")
	inputs := [][]string{
		{"up"},
		{"up", ""},
		{"up", "x", "--params", badJSON},
		{"up", "x", "--params", badDesc},
		{"up", "x", "--params", "/dev/zero"},
		{"up", "x", "--params", filepath.Join(dir, "missing.json")},
		{"up", "x", "--template", "nonexistent"},
		{"up", "x", "--template", "minimal", "--var", "nosuch=1"},
		{"up", "x", "--tenant-mode", "solo"},
		{"up", "x", "--format", "toml"},
		{"up", "x", "--format", "pem", "--out", "x.key"},
		{"up", "x", "--format", "pem", "--credential-type", "binding-secret"},
		{"up", "x", "--key-params", "{"},
		{"up", "x", "--x509-validity", "99"},
		{"up", "x", "--out", filepath.Join(badJSON, "sub", "c.json")},
		{"up", "x", "--timeout", "0s"},
		{"up", "x", "--github-output"},
		{"up", "x", "--api", "http://api.example.invalid"},
		{"up", "x", "--api", "https://u:p@api.example.invalid"},
		{"up", "x", "--api", "ftp://x"},
		{"rotate", "x", "--grace", "-1s"},
		{"up", "x", "--max-rps", "-1"},
		{"down", "x"},
		{"token", "--creds", badJSON},
		{"apply", "-f", spec},
		{"plan", "-f", bomb},
		{"apply", "-f", spec, "--parallel", "0"},
		{"templates", "lsit"},
		{"lsit"},
	}
	answered := 0
	for _, args := range inputs {
		sim.ResetCounts()
		code, out, errOut := runIn(t, srv.URL, dir, map[string]string{"GITHUB_OUTPUT": ""}, args...)
		n := sim.Counts().Total
		if code == exitUsage && n == 0 && strings.HasPrefix(errOut, "Error: ") && !strings.Contains(out, "::") {
			answered++
			continue
		}
		t.Errorf("%q: exit %d, %d requests, stderr %q", args, code, n, errOut)
	}
	t.Logf("bad inputs: %d tried, %d answered with exit 2, a message and no request", len(inputs), answered)
}
