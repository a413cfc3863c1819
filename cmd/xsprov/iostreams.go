package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// IOStreams are the process's streams, replaceable in tests.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdinTTY  bool
	stderrTTY bool
}

// System returns the real streams.
func System() *IOStreams {
	return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		stdinTTY: isTerminal(os.Stdin), stderrTTY: isTerminal(os.Stderr)}
}

// TestStreams returns buffers for tests: stdin, stdout, stderr.
func TestStreams() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// isTerminal asks the terminal driver (golang.org/x/term): a character
// device such as /dev/null is not a terminal, so `xsprov down </dev/null`
// does not wait for an answer.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// CanPrompt tells whether a person can answer a question.
func (s *IOStreams) CanPrompt() bool { return s.stdinTTY && s.stderrTTY }

// Confirm asks a yes/no question on stderr.
func (s *IOStreams) Confirm(question string) bool {
	fmt.Fprintf(s.ErrOut, "%s [yN]: ", question)
	line, _ := bufio.NewReader(s.In).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}

// reporter prints progress cf-style on stderr: the action with "...", then
// "OK". On a terminal it adds the elapsed time.
type reporter struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	open    bool
	last    string
	started time.Time
	now     func() time.Time
	mask    func(string) string
	warned  map[string]bool
}

func newReporter(s *IOStreams) *reporter {
	return &reporter{w: s.ErrOut, tty: s.stderrTTY, now: time.Now, mask: func(x string) string { return x }}
}

func (r *reporter) Step(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open {
		fmt.Fprintln(r.w)
	}
	fmt.Fprintf(r.w, "%s...\n", r.mask(msg))
	r.open, r.last, r.started = true, msg, r.now()
}

func (r *reporter) Done() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.open {
		return
	}
	if r.tty {
		fmt.Fprintf(r.w, "OK (%s)\n\n", r.now().Sub(r.started).Round(10*time.Millisecond))
	} else {
		fmt.Fprint(r.w, "OK\n\n")
	}
	r.open = false
}

func (r *reporter) Info(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintln(r.w, r.mask(msg))
}

// Warn prints a warning once: the same text may come from a response
// header and from a job.
func (r *reporter) Warn(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.warned == nil {
		r.warned = map[string]bool{}
	}
	if r.warned[msg] {
		return
	}
	r.warned[msg] = true
	fmt.Fprintln(r.w, "Warning: "+r.mask(msg))
}

// Fail closes an open step with FAILED.
func (r *reporter) Fail() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open {
		fmt.Fprintln(r.w, "FAILED")
		r.open = false
	}
}

// interrupted describes the step that was running when the command stopped.
// doing is the step in progress, if any ("creating service instance x").
func (r *reporter) doing() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.open {
		return ""
	}
	if r.last == "" {
		return ""
	}
	return strings.ToLower(r.last[:1]) + r.last[1:]
}

func (r *reporter) interrupted() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.open {
		return ""
	}
	return "Stopped during: " + r.last + ". Cloud Foundry may still complete that operation."
}
