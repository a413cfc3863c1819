package main

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

// TestCFPlugin installs the xsprov binary into the real cf CLI (v8) and
// runs `cf xsprov up` against the simulator after `cf auth`: the endpoint,
// token, org and space come from the cf session over the plugin RPC.
func TestCFPlugin(t *testing.T) {
	t.Parallel()
	cf := cftest.Binary(t, "../..")
	bin := filepath.Join(t.TempDir(), "xsprov")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	sim := cfsim.MustNew()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	home, work := t.TempDir(), t.TempDir()
	run := func(want string, args ...string) string {
		t.Helper()
		cmd := exec.Command(cf, args...)
		cmd.Dir = work
		// no CF_API, CF_ORG, credentials: the plugin gets them from cf
		cmd.Env = []string{"HOME=" + home, "CF_HOME=" + home, "CF_COLOR=false", "PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cf %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if !strings.Contains(string(out), want) {
			t.Fatalf("cf %s: output lacks %q:\n%s", strings.Join(args, " "), want, out)
		}
		return string(out)
	}
	run("Plugin xsprov", "install-plugin", "-f", bin)
	run("xsprov", "plugins")
	run("OK", "api", srv.URL)
	run("OK", "auth", cfsim.AdminUser, cfsim.AdminPassword)
	run("space:", "target", "-o", "acme", "-s", "dev")
	out := run("credentials file:  plug-a-credentials.json (created)", "xsprov", "up", "plug-a", "--xsappname", "plug-a")
	if !strings.Contains(out, "in org acme / space dev as admin") {
		t.Errorf("cf xsprov up did not act as the cf session's user in its target:\n%s", out)
	}
	fi, err := os.Stat(filepath.Join(work, "plug-a-credentials.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", err, fi)
	}
	if n := len(sim.Snapshot().Instances); n != 1 {
		t.Errorf("%d instances, want 1", n)
	}
	run("create succeeded", "xsprov", "status", "plug-a")
	run("xsprov version", "xsprov", "version")
	run("OK", "uninstall-plugin", "xsprov")
}
