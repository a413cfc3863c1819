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
	stdoutTTY bool
}

// System returns the real streams.
func System() *IOStreams {
	return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		stdinTTY: isTerminal(os.Stdin), stderrTTY: isTerminal(os.Stderr), stdoutTTY: isTerminal(os.Stdout)}
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
//
// While a step runs longer than a second, a terminal shows a live line with
// the time waited ("Waiting for the operation to complete... 12s"), as the
// cf CLI does; off a terminal (CI) a line every 30 s says it is still
// waiting, so a log never looks stuck.
type reporter struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	color   bool
	open    bool
	last    string
	started time.Time
	now     func() time.Time
	mask    func(string) string
	warned  map[string]bool

	live      bool          // a live line is on the terminal
	stopWait  chan struct{} // ends the waiting ticker of the open step
	heartbeat time.Duration // off a terminal
}

func newReporter(s *IOStreams, getenv func(string) string) *reporter {
	return &reporter{w: s.ErrOut, tty: s.stderrTTY, color: colorOn(s.stderrTTY, getenv), now: time.Now,
		mask: func(x string) string { return x }, heartbeat: 30 * time.Second}
}

// colorOn: colours on a terminal, unless NO_COLOR is set or CF_COLOR=false
// (the cf CLI's switch).
func colorOn(tty bool, getenv func(string) string) bool {
	return tty && getenv("NO_COLOR") == "" && !strings.EqualFold(getenv("CF_COLOR"), "false")
}

func paint(on bool, code, s string) string {
	if !on {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (r *reporter) Step(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endWaitLocked()
	if r.open {
		fmt.Fprintln(r.w)
	}
	fmt.Fprintf(r.w, "%s...\n", r.mask(msg))
	r.open, r.last, r.started = true, msg, r.now()
	r.startWaitLocked()
}

// startWaitLocked starts the ticker that shows the step is still running.
func (r *reporter) startWaitLocked() {
	stop := make(chan struct{})
	r.stopWait = stop
	every := r.heartbeat
	if r.tty {
		every = time.Second
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			r.mu.Lock()
			if r.stopWait != stop {
				r.mu.Unlock()
				return
			}
			waited := r.now().Sub(r.started).Round(time.Second)
			if r.tty {
				fmt.Fprintf(r.w, "\r\x1b[KWaiting for the operation to complete... %s", waited)
				r.live = true
			} else {
				fmt.Fprintf(r.w, "Still waiting: %s (%s)\n", r.mask(r.last), waited)
			}
			r.mu.Unlock()
		}
	}()
}

func (r *reporter) endWaitLocked() {
	if r.stopWait != nil {
		close(r.stopWait)
		r.stopWait = nil
	}
	if r.live {
		fmt.Fprint(r.w, "\r\x1b[K")
		r.live = false
	}
}

func (r *reporter) Done() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endWaitLocked()
	if !r.open {
		return
	}
	if r.tty {
		fmt.Fprintf(r.w, "%s (%s)\n\n", paint(r.color, "32;1", "OK"), r.now().Sub(r.started).Round(10*time.Millisecond))
	} else {
		fmt.Fprint(r.w, "OK\n\n")
	}
	r.open = false
}

func (r *reporter) Info(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live {
		fmt.Fprint(r.w, "\r\x1b[K")
		r.live = false
	}
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
	if r.live {
		fmt.Fprint(r.w, "\r\x1b[K")
		r.live = false
	}
	fmt.Fprintln(r.w, paint(r.color, "33", "Warning:")+" "+r.mask(msg))
}

// Fail closes an open step with FAILED.
func (r *reporter) Fail() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endWaitLocked()
	if r.open {
		fmt.Fprintln(r.w, paint(r.color, "31;1", "FAILED"))
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
