package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/xsprov/xsprov/provision"
	"github.com/xsprov/xsprov/provision/remedy"
)

// Main runs xsprov with args and returns the exit code. One root context,
// cancelled by Ctrl-C or SIGTERM, reaches every request and wait.
func Main(args []string, ios *IOStreams, getenv func(string) string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, &Factory{IO: ios, Getenv: getenv})
}

func run(ctx context.Context, args []string, f *Factory) (code int) {
	defer f.close()
	defer func() {
		// A panic is a bug. Exit 1, not Go's 2, which would claim "bad input,
		// nothing sent"; print the whole chain so it can be reported.
		if v := recover(); v != nil {
			fmt.Fprintf(f.IO.ErrOut, "xsprov: internal error (please report it): %v\n%s", v, debug.Stack())
			code = exitFailure
		}
	}()
	out := &countingWriter{w: f.IO.Out}
	streams := *f.IO
	streams.Out = out
	f.IO = &streams
	root := newRootCmd(f)
	root.SetArgs(args)
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	cmd, err := root.ExecuteContextC(ctx)
	code = planExitCode(cmd, err, exitCode(err))
	if err != nil {
		state, doing := "", ""
		if f.rep != nil {
			state, doing = f.rep.interrupted(), f.rep.doing()
			f.rep.Fail()
		}
		printError(f.IO.ErrOut, err, state, doing)
		if out.n == 0 && wantsJSON(cmd) {
			writeJSONError(out, err, code)
		}
	}
	return code
}

// countingWriter counts what went to stdout.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func wantsJSON(cmd *cobra.Command) bool {
	if cmd == nil || cmd.Flags().Lookup("json") == nil {
		return false
	}
	v, err := cmd.Flags().GetBool("json")
	return err == nil && v
}

// writeJSONError is a --json command's failure on stdout, so that a jq step
// never reads empty input; the message is the one on stderr (no secrets).
func writeJSONError(w io.Writer, err error, code int) {
	var se *silentError
	if errors.As(err, &se) || errors.As(err, new(changesPending)) {
		return
	}
	e := map[string]any{"message": err.Error(), "exit_code": code}
	if r, ok := remedy.Of(err); ok {
		if h := hintText(r); h != "" {
			e["hint"] = h
		}
	}
	_ = writeJSONDoc(w, map[string]any{"format_version": provision.FormatVersion, "error": e})
}

func writeJSONDoc(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
