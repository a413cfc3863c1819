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

// dryRunFlags are --dry-run and --detailed-exitcode of up, down and rotate.
type dryRunFlags struct {
	DryRun, DetailedExitCode bool
}

func (d *dryRunFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&d.DryRun, "dry-run", false, "show what would be done; send no change to Cloud Foundry and write no file")
	cmd.Flags().BoolVar(&d.DetailedExitCode, "detailed-exitcode", false, "with --dry-run: exit 0 without changes, 2 with changes, 1 on error")
}

func (d *dryRunFlags) validate() error {
	if d.DetailedExitCode && !d.DryRun {
		return flagErrorf("--detailed-exitcode needs --dry-run")
	}
	return nil
}

// done is the end of a command: with --detailed-exitcode, changes exit 2.
func (d *dryRunFlags) done(f *Factory, changed bool) error {
	if d.DryRun {
		fmt.Fprintln(f.IO.ErrOut, "Dry run: nothing was changed.")
	}
	if d.DetailedExitCode && changed {
		return changesPending{}
	}
	return nil
}
