package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
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
	root := newRootCmd(f)
	root.SetArgs(args)
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil {
		state, doing := "", ""
		if f.rep != nil {
			state, doing = f.rep.interrupted(), f.rep.doing()
			f.rep.Fail()
		}
		printError(f.IO.ErrOut, err, state, doing)
	}
	return planExitCode(cmd, err, exitCode(err))
}

func writeJSONDoc(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
