package cfsim_test

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xsprov/xsprov/internal/cftest"
	"github.com/xsprov/xsprov/provision/cfsim"
)

// TestCFCLIInterop drives the real cf CLI (v8) through the provisioning
// flow against the simulator: what it reads (links.login, JWTs decoded
// locally, Location job URLs) must be what the real Cloud Controller sends.
func TestCFCLIInterop(t *testing.T) {
	t.Parallel()
	cf := cftest.Binary(t, "../..")
	// An instant broker: the cf CLI sleeps 3 s between job polls whatever
	// the broker does, so a delay here only costs time; the slow broker's
	// timing has tests of its own.
	sim := cfsim.MustNew(cfsim.WithBrokerDelay(0))
	srv := httptest.NewServer(sim)
	defer srv.Close()
	home := t.TempDir()
	params := filepath.Join(home, "xs-security.json")
	if err := os.WriteFile(params, []byte(`{"xsappname":"cfcli-app","tenant-mode":"dedicated"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(want string, args ...string) string {
		t.Helper()
		cmd := exec.Command(cf, args...)
		cmd.Env = append(os.Environ(), "CF_HOME="+home, "CF_COLOR=false", "CF_TRACE=false")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cf %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if !strings.Contains(string(out), want) {
			t.Fatalf("cf %s: output lacks %q:\n%s", strings.Join(args, " "), want, out)
		}
		return string(out)
	}
	run("API version:    "+cfsim.APIVersion, "api", srv.URL)
	run("OK", "auth", cfsim.AdminUser, cfsim.AdminPassword)
	run("space:          dev", "target", "-o", "acme", "-s", "dev")
	run("Service instance cf-xsuaa created.", "create-service", "xsuaa", "application", "cf-xsuaa", "-c", params, "--wait")
	run("OK", "create-service-key", "cf-xsuaa", "cf-key", "--wait")
	out := run(`"clientid": "sb-cfcli-app!t1001"`, "service-key", "cf-xsuaa", "cf-key")
	if !strings.Contains(out, `"clientsecret": "`) || !strings.Contains(out, `"url": "`+srv.URL+`/xsuaa/acme"`) {
		t.Errorf("cf service-key output lacks the secret or url:\n%s", out)
	}
	// Read commands that ask for related names through fields[...] / included.
	out = run("cf-xsuaa", "services")
	if !strings.Contains(out, "xsuaa") || !strings.Contains(out, "application") || !strings.Contains(out, "create succeeded") {
		t.Errorf("cf services lacks offering, plan or state:\n%s", out)
	}
	run("offering:        xsuaa", "service", "cf-xsuaa")
	run("cf-key", "service-keys", "cf-xsuaa")
	out = run("application, broker, apiaccess, space", "marketplace")
	if !strings.Contains(out, "identity providers   xsuaa") {
		t.Errorf("cf marketplace lacks the broker:\n%s", out)
	}
	run("OK", "delete-service-key", "cf-xsuaa", "cf-key", "-f")
	run("Service instance cf-xsuaa deleted.", "delete-service", "cf-xsuaa", "-f")
	st := sim.Snapshot()
	if len(st.Instances) != 0 || len(st.Keys) != 0 {
		t.Errorf("after the cf CLI deleted everything the simulator holds %d instances and %d keys", len(st.Instances), len(st.Keys))
	}
}
