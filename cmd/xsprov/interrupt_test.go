package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
// pkgDir is this package's folder, read before any test changes directory.
var pkgDir, _ = os.Getwd()

func xsprovBinary(t *testing.T) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "xsprov-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "xsprov")
		build := exec.Command("go", "build", "-o", binPath, ".")
		build.Dir = pkgDir // tests may have changed the working directory
		out, err := build.CombinedOutput()
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
	t.Parallel()
	bin := xsprovBinary(t)
	rounds := 12
	if testing.Short() {
		rounds = 4
	}
	// Rounds are independent (a simulator and a folder each) and mostly
	// wait, so four run at a time; each has its own seeded randomness.
	var killed, duplicates, orphans, partial atomic.Int64
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for round := 0; round < rounds; round++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			rng := rand.New(rand.NewSource(42 + int64(round)))
			sim := cfsim.MustNew(cfsim.WithBrokerDelay(150 * time.Millisecond))
			srv := httptest.NewServer(sim)
			defer srv.Close()
			dir := t.TempDir()
			file := filepath.Join(dir, "k9-credentials.json")
			run := func(kill bool, args ...string) {
				cmd := exec.Command(bin, args...)
				cmd.Dir, cmd.Env = dir, procEnv(srv.URL)
				if err := cmd.Start(); err != nil {
					t.Error(err)
					return
				}
				if kill {
					time.Sleep(time.Duration(rng.Intn(400)) * time.Millisecond)
					if cmd.Process.Signal(syscall.SIGKILL) == nil {
						killed.Add(1)
					}
				}
				_ = cmd.Wait()
				if b, err := os.ReadFile(file); err == nil {
					var m map[string]any
					if json.Unmarshal(b, &m) != nil || m["clientsecret"] == nil {
						partial.Add(1)
					}
				}
			}
			up := []string{"up", "k9", "--xsappname", "k9"}
			run(true, up...)
			run(false, up...)
			run(true, "down", "k9", "--yes")
			run(false, up...) // converges whatever the kill left
			run(true, up...)  // a re-run killed midway changes nothing
			run(true, "rotate", "k9")
			run(false, "rotate", "k9") // retires whatever the killed rotation left
			run(false, up...)
			st := sim.Snapshot()
			if len(st.Instances) > 1 {
				duplicates.Add(1)
			}
			if len(st.Instances) != 1 || len(st.Keys) != 1 {
				orphans.Add(1)
				t.Errorf("round %d: %d instances and %d keys, want 1 and 1", round, len(st.Instances), len(st.Keys))
			}
			if _, err := os.Stat(file); err != nil {
				t.Errorf("round %d: no credentials file after the final up: %v", round, err)
			}
		}()
	}
	wg.Wait()
	t.Logf("kill -9 scenarios: %d rounds, %d runs killed, %d duplicates, %d orphaned keys, %d partial credentials files",
		rounds, killed.Load(), duplicates.Load(), orphans.Load(), partial.Load())
	if duplicates.Load()+orphans.Load()+partial.Load() > 0 {
		t.Errorf("duplicates %d, orphans %d, partial files %d; all must be 0", duplicates.Load(), orphans.Load(), partial.Load())
	}
}

// TestKillNineApply kills apply at random moments; the re-run converges to
// exactly the spec: one instance and one key per item, complete files.
func TestKillNineApply(t *testing.T) {
	t.Parallel()
	bin := xsprovBinary(t)
	rng := rand.New(rand.NewSource(7))
	var spec strings.Builder
	spec.WriteString("apiVersion: xsprov/v1\nmetadata: {name: k9}\ninstances:\n")
	for i := 0; i < 6; i++ {
		fmt.Fprintf(&spec, "  - {name: a%d, space: dev, parameters: {xsappname: a%d}, keys: [{name: a%d-key, out: out/a%d.json}]}\n", i, i, i, i)
	}
	rounds := 6
	if testing.Short() {
		rounds = 2
	}
	killed, dups, orphans, partial := 0, 0, 0, 0
	for round := 0; round < rounds; round++ {
		sim := cfsim.MustNew(cfsim.WithBrokerDelay(100 * time.Millisecond))
		srv := httptest.NewServer(sim)
		dir := t.TempDir()
		_ = os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte(spec.String()), 0o600)
		for kill := 0; kill < 2; kill++ {
			killed++
			cmd := exec.Command(bin, "apply", "-f", "spec.yaml", "--parallel", "3")
			cmd.Dir, cmd.Env = dir, procEnv(srv.URL)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(rng.Intn(500)) * time.Millisecond)
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
		}
		cmd := exec.Command(bin, "apply", "-f", "spec.yaml")
		cmd.Dir, cmd.Env = dir, procEnv(srv.URL)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("round %d: the re-run failed: %v\n%s", round, err, out)
		}
		st := sim.Snapshot()
		if len(st.Instances) > 6 {
			dups++
		}
		if len(st.Keys) != len(st.Instances) {
			orphans++
		}
		if len(st.Instances) != 6 || len(st.Keys) != 6 {
			t.Errorf("round %d: %d instances, %d keys; want 6 and 6", round, len(st.Instances), len(st.Keys))
		}
		for i := 0; i < 6; i++ {
			b, err := os.ReadFile(filepath.Join(dir, "out", fmt.Sprintf("a%d.json", i)))
			var m map[string]any
			if err != nil || json.Unmarshal(b, &m) != nil || m["clientsecret"] == nil {
				partial++
				t.Errorf("round %d: out/a%d.json incomplete: %v", round, i, err)
			}
		}
		srv.Close()
	}
	t.Logf("kill -9 during apply: %d rounds, %d runs killed, %d duplicates, %d orphaned keys, %d partial files", rounds, killed, dups, orphans, partial)
}

// TestConcurrentOverlappingApplies runs two specs that share instances at
// the same time: both succeed, and each instance and key exists once.
func TestConcurrentOverlappingApplies(t *testing.T) {
	bin := xsprovBinary(t)
	sim := cfsim.MustNew(cfsim.WithBrokerDelay(50 * time.Millisecond))
	srv := httptest.NewServer(sim)
	defer srv.Close()
	dir := t.TempDir()
	mk := func(name string, from, to int) {
		var b strings.Builder
		fmt.Fprintf(&b, "apiVersion: xsprov/v1\nmetadata: {name: shared}\ninstances:\n")
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, "  - {name: o%d, space: dev, parameters: {xsappname: o%d}, keys: [{name: o%d-key}]}\n", i, i, i)
		}
		_ = os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o600)
	}
	mk("a.yaml", 0, 6)
	mk("b.yaml", 3, 9)
	var wg sync.WaitGroup
	outs := make([][]byte, 2)
	errs := make([]error, 2)
	for i, f := range []string{"a.yaml", "b.yaml"} {
		wg.Add(1)
		go func(i int, f string) {
			defer wg.Done()
			cmd := exec.Command(bin, "apply", "-f", f, "--parallel", "4")
			cmd.Dir, cmd.Env = dir, procEnv(srv.URL)
			outs[i], errs[i] = cmd.CombinedOutput()
		}(i, f)
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil {
			t.Errorf("apply %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	st := sim.Snapshot()
	if len(st.Instances) != 9 || len(st.Keys) != 9 {
		t.Errorf("%d instances, %d keys; want 9 and 9", len(st.Instances), len(st.Keys))
	}
}
