package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xsprov/xsprov/provision/cfsim"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// xsprovBinary builds the command once for tests that need a real process
// (signals, kill -9).
func xsprovBinary(t *testing.T) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "xsprov-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "xsprov")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build xsprov: %v", buildErr)
	}
	return binPath
}

func procEnv(api string) []string {
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CF_") {
			env = append(env, kv)
		}
	}
	return append(env, "CF_API="+api, "CF_CLIENT_ID="+cfsim.CIClientID, "CF_CLIENT_SECRET="+cfsim.CIClientSecret,
		"CF_ORG=acme", "CF_SPACE=dev", "HOME="+os.TempDir())
}

// TestInterruptExits130 sends SIGINT while up waits for a slow broker: exit
// 130, a message saying what was left and that a re-run resumes.
func TestInterruptExits130(t *testing.T) {
	bin := xsprovBinary(t)
	sim := cfsim.MustNew(cfsim.WithBrokerDelay(20 * time.Second))
	srv := httptest.NewServer(sim)
	defer srv.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "up", "slow", "--xsappname", "slow")
	cmd.Dir, cmd.Env = dir, procEnv(srv.URL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for sim.Counts().ByCall["GET /v3/jobs/:guid"] == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want 130; stderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{"Interrupted.", "Stopped during: Creating service instance slow", "re-running the same command resumes"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "slow-credentials.json")); !os.IsNotExist(err) {
		t.Error("a credentials file exists after an interrupted first run")
	}
}

// TestKillNineAnywhere kills `up`, `down` and `up` again with SIGKILL at
// random moments, then re-runs without interruption: no duplicate instance,
// no orphaned key, and a credentials file that is complete or absent.
func TestKillNineAnywhere(t *testing.T) {
	bin := xsprovBinary(t)
	rng := rand.New(rand.NewSource(42))
	rounds := 12
	if testing.Short() {
		rounds = 4
	}
	var killed, duplicates, orphans, partial int
	for round := 0; round < rounds; round++ {
		sim := cfsim.MustNew(cfsim.WithBrokerDelay(150 * time.Millisecond))
		srv := httptest.NewServer(sim)
		dir := t.TempDir()
		file := filepath.Join(dir, "k9-credentials.json")
		run := func(kill bool, args ...string) {
			cmd := exec.Command(bin, args...)
			cmd.Dir, cmd.Env = dir, procEnv(srv.URL)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if kill {
				time.Sleep(time.Duration(rng.Intn(400)) * time.Millisecond)
				if cmd.Process.Signal(syscall.SIGKILL) == nil {
					killed++
				}
			}
			_ = cmd.Wait()
			if b, err := os.ReadFile(file); err == nil {
				var m map[string]any
				if json.Unmarshal(b, &m) != nil || m["clientsecret"] == nil {
					partial++
				}
			}
		}
		up := []string{"up", "k9", "--xsappname", "k9"}
		run(true, up...)
		run(false, up...)
		run(true, "down", "k9", "--yes")
		run(false, up...) // converges whatever the kill left
		run(true, up...)  // a re-run killed midway changes nothing
		st := sim.Snapshot()
		if len(st.Instances) > 1 {
			duplicates++
		}
		if len(st.Instances) != 1 || len(st.Keys) != 1 {
			orphans++
			t.Errorf("round %d: %d instances and %d keys, want 1 and 1", round, len(st.Instances), len(st.Keys))
		}
		if _, err := os.Stat(file); err != nil {
			t.Errorf("round %d: no credentials file after the final up: %v", round, err)
		}
		srv.Close()
	}
	t.Logf("kill -9 scenarios: %d rounds, %d runs killed, %d duplicates, %d orphaned keys, %d partial credentials files",
		rounds, killed, duplicates, orphans, partial)
	if duplicates+orphans+partial > 0 {
		t.Errorf("duplicates %d, orphans %d, partial files %d; all must be 0", duplicates, orphans, partial)
	}
}
