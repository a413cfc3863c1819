package main

import (
	"os"
	"os/exec"
	"path/filepath"
)

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

// warnExposed warns when a credentials file just written could be committed
// to git, and records the warning in the result's warnings.
func (f *Factory) warnExposed(path string, warnings *[]string) {
	if path == "" || !GitExposure(path) {
		return
	}
	w := path + " is inside a git work tree and not ignored; add it to .gitignore so the credentials are never committed"
	f.reporter().Warn(w)
	if warnings != nil {
		*warnings = append(*warnings, w)
	}
}
