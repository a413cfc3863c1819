package provision

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Formats of a credentials file.
const (
	FormatJSON = "json"
	FormatEnv  = "env"
	FormatYAML = "yaml"
)

// Formats lists the supported formats.
var Formats = []string{FormatJSON, FormatEnv, FormatYAML}

// DefaultOutPath is the default credentials file of an instance for a format.
func DefaultOutPath(instance, format string) string {
	ext := map[string]string{FormatJSON: ".json", FormatEnv: ".env", FormatYAML: ".yaml"}[format]
	return instance + "-credentials" + ext
}

// Output says where and how credentials are written.
type Output struct {
	Path      string
	Format    string
	EnvPrefix string // default XSUAA_
}

// Render encodes credentials in a format. JSON keeps them as the broker
// returned them.
func Render(creds map[string]any, o Output) ([]byte, error) {
	switch o.Format {
	case FormatJSON, "":
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(creds); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	case FormatYAML:
		return yaml.Marshal(creds)
	case FormatEnv:
		prefix := o.EnvPrefix
		if prefix == "" {
			prefix = "XSUAA_"
		}
		keys := make([]string, 0, len(creds))
		for k := range creds {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b bytes.Buffer
		for _, k := range keys {
			fmt.Fprintf(&b, "%s%s=%s\n", prefix, envName(k), envQuote(scalar(creds[k])))
		}
		return b.Bytes(), nil
	}
	return nil, Usagef("unknown format %q (use one of %s)", o.Format, strings.Join(Formats, ", "))
}

var reNonEnv = regexp.MustCompile(`[^A-Za-z0-9]+`)

func envName(k string) string {
	return strings.ToUpper(strings.Trim(reNonEnv.ReplaceAllString(k, "_"), "_"))
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// envQuote writes a dotenv value: double quoted, with \n for newlines and
// escapes for quotes, backslashes and $, so that dotenv parsers and
// `set -a; . file` read back the same string.
func envQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, `$`, `\$`, "`", "\\`")
	return `"` + r.Replace(s) + `"`
}

// WriteFileAtomic writes data to path with mode 0600: a temp file in the same
// directory, fsync, rename, fsync of the directory. Readers see the old file
// or the new one, never a part.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
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
