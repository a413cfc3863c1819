// Package cftest finds the real cf CLI for the tests that drive it (the
// interoperability test and the cf plugin test).
package cftest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Binary finds the cf CLI: $XSPROV_CF_BIN, the one scripts/build-cf makes in
// repoRoot/.bin, or cf on the PATH. Without one the test is skipped, saying
// why.
func Binary(t testing.TB, repoRoot string) string {
	t.Helper()
	if p := os.Getenv("XSPROV_CF_BIN"); p != "" {
		return p
	}
	if p, err := filepath.Abs(filepath.Join(repoRoot, ".bin", "cf")); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("cf"); err == nil {
		return p
	}
	t.Skip("cf CLI not available: scripts/build-cf builds it into .bin/cf (it needs the Go module proxy); skipping")
	return ""
}
