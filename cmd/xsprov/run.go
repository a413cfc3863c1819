package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Main runs xsprov with args and returns the exit code. One root context,
// cancelled by Ctrl-C or SIGTERM, reaches every request and wait.
func Main(args []string, ios *IOStreams, getenv func(string) string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, &Factory{IO: ios, Getenv: getenv})
}

func run(ctx context.Context, args []string, f *Factory) int {
	defer f.close()
	root := newRootCmd(f)
	root.SetArgs(args)
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	err := root.ExecuteContext(ctx)
	if err != nil {
		state := ""
		if f.rep != nil {
			state = f.rep.interrupted()
			f.rep.Fail()
		}
		printError(f.IO.ErrOut, err, state)
	}
	return exitCode(err)
}

func writeJSONDoc(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
