package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/xsprov/xsprov/provision/remedy"
)

// Exit codes, documented in `xsprov --help` and the README.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitTimeout     = 3
	exitAuth        = 4
	exitInterrupted = 130
)

const exitCodesHelp = `Exit status:
  0    success
  1    failure (Cloud Foundry or the broker refused or failed an operation)
  2    usage or bad input (flags, files, environment); nothing was sent
  3    timeout (--timeout ran out); re-run to resume
  4    authentication failed
  130  interrupted (Ctrl-C or SIGTERM); re-run to resume`

// flagError is a command-line error: it prints usage and exits 2.
type flagError struct{ err error }

func (e *flagError) Error() string { return e.err.Error() }
func (e *flagError) Unwrap() error { return e.err }

func flagErrorf(format string, args ...any) error {
	return &flagError{err: fmt.Errorf(format, args...)}
}

// silentError has been reported already; only its code matters.
type silentError struct{ code int }

func (e *silentError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// exitCode maps an error to the process exit code. It is the only place
// that does, and it asks the error what it is (Usage, Auth, Timeout) rather
// than knowing every package's types.
func exitCode(err error) int {
	var se *silentError
	var fe *flagError
	var usage interface{ Usage() bool }
	var auth interface{ Auth() bool }
	var timeout interface{ Timeout() bool }
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &se):
		return se.code
	case errors.As(err, new(changesPending)):
		return 2
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &fe), errors.As(err, &usage) && usage.Usage():
		return exitUsage
	case errors.As(err, &auth) && auth.Auth():
		return exitAuth
	case errors.As(err, &timeout) && timeout.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return exitTimeout
	}
	return exitFailure
}

// printError prints an error once, with its hint, cf-style. doing is the
// step in progress when it failed, for a timeout outside a wait.
func printError(w io.Writer, err error, interruptedState, doing string) {
	var se *silentError
	if errors.As(err, &se) || errors.As(err, new(changesPending)) {
		return
	}
	var waited interface{ Waited() bool }
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(w, "Interrupted.")
		if interruptedState != "" {
			fmt.Fprintln(w, interruptedState)
		}
		fmt.Fprintln(w, "Nothing is lost: re-running the same command resumes where this one stopped.")
		return
	case errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &waited):
		if doing != "" {
			fmt.Fprintf(w, "Error: timed out (--timeout) while %s; re-run the same command to resume\n", doing)
		} else {
			fmt.Fprintln(w, "Error: timed out (--timeout); re-run the same command to resume")
		}
		return
	}
	fmt.Fprintf(w, "Error: %v\n", err)
	if r, ok := remedy.Of(err); ok {
		if h := hintText(r); h != "" {
			fmt.Fprintf(w, "Hint: %s\n", h)
		}
	}
	var fe *flagError
	if errors.As(err, &fe) {
		fmt.Fprintln(w, "Run with --help for usage.")
	}
}

// changesPending is plan --detailed-exitcode's "there are changes" (exit 2).
type changesPending struct{}

func (changesPending) Error() string { return "the plan has changes" }

// planExitCode keeps --detailed-exitcode's promise (plan, and the dry runs
// of up, down and rotate): 0 no changes, 2 changes, and 1 for every error (a
// spec, usage or login error would be 2 or 4 otherwise, which a pipeline
// would read as "changes").
func planExitCode(cmd *cobra.Command, err error, code int) int {
	if cmd == nil || code == exitOK || cmd.Flags().Lookup("detailed-exitcode") == nil {
		return code
	}
	if d, ferr := cmd.Flags().GetBool("detailed-exitcode"); ferr != nil || !d {
		return code
	}
	var changes changesPending
	if errors.As(err, &changes) {
		return 2
	}
	return exitFailure
}

// unknownSubcommand is the Args of commands that only group others: an
// unknown word is a usage error (exit 2), with suggestions, not help and 0.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, ", ") + "?"
	}
	return &flagError{err: errors.New(msg)}
}

// groupHelp is the RunE of a command that only groups others.
func groupHelp(cmd *cobra.Command, _ []string) error { return cmd.Help() }
