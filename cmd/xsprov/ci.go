package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/xsprov/xsprov/provision/cfapi"
)

// ciFlags are --github-output.
type ciFlags struct {
	GitHubOutput bool
}

func (c *ciFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&c.GitHubOutput, "github-output", false, "append non-secret outputs (credentials-file, client-id, url) to $GITHUB_OUTPUT")
}

// githubOutput appends name=value lines to $GITHUB_OUTPUT. Only non-secret
// values are passed here.
func (c *ciFlags) githubOutput(f *Factory, values map[string]string) error {
	if !c.GitHubOutput {
		return nil
	}
	path := f.getenv("GITHUB_OUTPUT")
	if path == "" {
		return cfapi.Usagef("--github-output: GITHUB_OUTPUT is not set (it is in GitHub Actions)")
	}
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("--github-output: %w", err)
	}
	defer fh.Close()
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v := values[k]; v != "" && !strings.ContainsAny(v, "\r\n") {
			if _, err := fmt.Fprintf(fh, "%s=%s\n", k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// mask tells GitHub Actions to hide secret values from the log, before any
// of them could be printed. The runner reads workflow commands from stderr
// as well as stdout (actions/runner ScriptHandler.cs), so they go to stderr:
// stdout stays exactly the result asked for (TOKEN=$(xsprov token …)).
// Masks match exact strings, so values come in every form xsprov prints
// them (credfile.SecretValues: raw, escaped, line by line).
func (f *Factory) mask(values []string) {
	if f.getenv("GITHUB_ACTIONS") != "true" {
		return
	}
	for _, v := range values {
		if v != "" && !strings.ContainsAny(v, "\r\n") {
			fmt.Fprintf(f.IO.ErrOut, "::add-mask::%s\n", v)
		}
	}
}

// validate refuses --github-output where it cannot work, before any
// request.
func (c *ciFlags) validate(f *Factory) error {
	if c.GitHubOutput && f.getenv("GITHUB_OUTPUT") == "" {
		return cfapi.Usagef("--github-output: GITHUB_OUTPUT is not set (it is in GitHub Actions)")
	}
	return nil
}
