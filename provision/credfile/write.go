package credfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// WriteFileAtomic writes data to path with mode 0600 (creating its directory
// with 0700): a temp file in the same directory, fsync, rename, fsync of the
// directory. Readers see the old file
// or the new one, never a part.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Tighten sets an existing file's mode to 0600 when it is wider, and returns
// the mode it had and whether it changed it.
func Tighten(path string) (os.FileMode, bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, false, nil
		}
		return 0, false, err
	}
	old := fi.Mode().Perm()
	if old&^0o600 == 0 {
		return old, false, nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return old, false, fmt.Errorf("tighten the mode of %s: %w", path, err)
	}
	return old, true, nil
}

// staleAfter is how old a temp file of WriteFileAtomic must be to count as
// left behind by a killed write (a write takes milliseconds; a concurrent
// writer's temp file is never that old).
const staleAfter = time.Minute

// RemoveStaleTemps removes the temp files that writes of path killed midway
// left beside it, and returns them.
func RemoveStaleTemps(path string, now time.Time) []string {
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*"))
	var removed []string
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil && fi.Mode().IsRegular() && now.Sub(fi.ModTime()) > staleAfter && os.Remove(m) == nil {
			removed = append(removed, m)
		}
	}
	return removed
}
