// Package infile reads the files a user hands xsprov (descriptors, specs,
// variables, secrets, credentials) with a size limit, so that a wrong path
// (/dev/zero, a log file) is a clear error, not an out-of-memory kill.
package infile

import (
	"fmt"
	"io"
	"os"
)

// Limits by kind of input.
const (
	// Document is a descriptor, a spec, a template or a credentials file.
	Document = 4 << 20
	// Small is a secret, key parameters or a variables file.
	Small = 256 << 10
)

// TooLargeError is an input over its limit.
type TooLargeError struct {
	Path  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is larger than %s, the limit for this input; is it the right file?", e.Path, size(e.Limit))
}

// Usage marks the error as bad input (exit code 2).
func (e *TooLargeError) Usage() bool { return true }

// Read reads at most limit bytes of path; more is a *TooLargeError.
func Read(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &TooLargeError{Path: path, Limit: limit}
	}
	return b, nil
}

func size(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
