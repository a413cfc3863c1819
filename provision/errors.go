// Package provision is xsprov's core: it converges XSUAA service instances and
// keys on Cloud Foundry through the v3 API and writes credentials files.
//
// It holds no terminal code: progress goes through a Reporter, results are
// returned as values, and failures as typed errors that the command layer
// maps to exit codes.
package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
)

// UsageError is bad input: a flag, a file or an environment variable. Nothing
// was sent to Cloud Foundry. Exit code 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a *UsageError.
func Usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

// AuthError is a failed login or a rejected token. Exit code 4.
type AuthError struct {
	Msg  string
	Hint string
	Err  error
}

func (e *AuthError) Error() string { return e.Msg }
func (e *AuthError) Unwrap() error { return e.Err }

// JobFailedError is an asynchronous operation that Cloud Foundry reported as
// FAILED, with the CF errors of the job.
type JobFailedError struct {
	What   string // "create service instance \"x\""
	Errors []resource.CloudFoundryError
}

func (e *JobFailedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s failed", e.What)
	for _, ce := range e.Errors {
		fmt.Fprintf(&b, ": %s (CF error %d %s)", ce.Detail, ce.Code, ce.Title)
	}
	return b.String()
}

// TimeoutError is a wait that ran out of --timeout. Exit code 3.
type TimeoutError struct {
	What string
	Left string // what state was left behind
}

func (e *TimeoutError) Error() string {
	msg := "timed out waiting for " + e.What
	if e.Left != "" {
		msg += "; " + e.Left
	}
	return msg + "; re-run the same command to resume"
}

// Hinted is an error with a hint on what to do.
type Hinted struct {
	Err  error
	Hint string
}

func (e *Hinted) Error() string { return e.Err.Error() }
func (e *Hinted) Unwrap() error { return e.Err }

// HintOf returns the hint attached to err, if any.
func HintOf(err error) string {
	var h *Hinted
	if errors.As(err, &h) {
		return h.Hint
	}
	var a *AuthError
	if errors.As(err, &a) {
		return a.Hint
	}
	return ""
}

// CF error codes xsprov acts on (see the CF v3 error table).
const (
	codeInvalidAuthToken   = 1000
	codeNotAuthenticated   = 10002
	codeNotAuthorized      = 10003
	codeUnprocessable      = 10008
	codeResourceNotFound   = 10010
	codeNotFound           = 10000
	codeOperationInProgres = 60016
)

// cfError returns the CF error inside err.
func cfError(err error) (resource.CloudFoundryError, bool) {
	var ce resource.CloudFoundryError
	if errors.As(err, &ce) {
		return ce, true
	}
	var ces resource.CloudFoundryErrors
	if errors.As(err, &ces) && len(ces.Errors) > 0 {
		return ces.Errors[0], true
	}
	return resource.CloudFoundryError{}, false
}

func isCode(err error, code int) bool {
	ce, ok := cfError(err)
	return ok && ce.Code == code
}

// isNameTaken tells a 422 "name is taken" / "already has a key binding" from
// other 422s. v3 uses 10008 for all of them, so the detail's fixed prefix is
// the only discriminator the API offers.
func isNameTaken(err error) bool {
	ce, ok := cfError(err)
	return ok && ce.Code == codeUnprocessable &&
		(strings.HasPrefix(ce.Detail, "The service instance name is taken") ||
			strings.HasPrefix(ce.Detail, "The binding name is invalid. Key binding names must be unique"))
}

func isInProgress(err error) bool {
	ce, ok := cfError(err)
	if !ok {
		return false
	}
	return ce.Code == codeOperationInProgres ||
		(ce.Code == codeUnprocessable && strings.Contains(ce.Detail, "operation in progress"))
}

// classify turns API errors into errors that say what to do.
func classify(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ae *AuthError
	if errors.As(err, &ae) {
		return err
	}
	if ra := retrieveError(err); ra != nil {
		return ra
	}
	ce, ok := cfError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	msg := fmt.Sprintf("%s: %s (CF error %d %s)", what, ce.Detail, ce.Code, ce.Title)
	switch ce.Code {
	case codeInvalidAuthToken, codeNotAuthenticated:
		return &AuthError{Msg: msg, Hint: "log in again: set CF_USERNAME/CF_PASSWORD or CF_CLIENT_ID/CF_CLIENT_SECRET, or run 'cf login'", Err: err}
	case codeNotAuthorized:
		return &Hinted{Err: &apiErr{msg: msg, err: err}, Hint: "your user or client lacks the role for this; ask for SpaceDeveloper in the target space"}
	}
	return &apiErr{msg: msg, err: err}
}

// apiErr keeps the CF error reachable with errors.As while printing the
// operation and detail once.
type apiErr struct {
	msg string
	err error
}

func (e *apiErr) Error() string { return e.msg }
func (e *apiErr) Unwrap() error { return e.err }
