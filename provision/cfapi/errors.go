// Package cfapi is xsprov's connection to the Cloud Foundry v3 API: login and
// the cf CLI's saved session, the HTTP transport (retry, trace, warnings),
// target resolution, lookups, job waiting and the classification of CF
// errors by code.
package cfapi

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
	"golang.org/x/oauth2"

	"github.com/xsprov/xsprov/provision/remedy"
)

// UsageError is bad input: a flag, a file or an environment variable. Nothing
// was sent to Cloud Foundry.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usage marks the error as bad input (exit code 2).
func (e *UsageError) Usage() bool { return true }

// Usagef returns a *UsageError.
func Usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

// AuthError is a failed login or a rejected token.
type AuthError struct {
	Msg    string
	Remedy remedy.Remedy
	Err    error
}

func (e *AuthError) Error() string { return e.Msg }
func (e *AuthError) Unwrap() error { return e.Err }

// Auth marks the error as an authentication failure (exit code 4).
func (e *AuthError) Auth() bool { return true }

// Hint is what to do about it.
func (e *AuthError) Hint() remedy.Remedy { return e.Remedy }

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

// TimeoutError is a wait that ran out of the deadline.
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

// Timeout marks the error as a timeout (exit code 3).
func (e *TimeoutError) Timeout() bool { return true }

// Waited says the deadline ran out in a wait, and the message says for
// what (unlike a request that timed out).
func (e *TimeoutError) Waited() bool { return true }

// TimeoutOr turns a deadline that ran out while waiting for what into a
// *TimeoutError that says what was left; other errors pass.
func TimeoutOr(err error, what, left string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &TimeoutError{What: what, Left: left}
	}
	return err
}

// CF error codes xsprov acts on (see the CF v3 error table).
const (
	CodeInvalidAuthToken     = 1000
	CodeNotAuthenticated     = 10002
	CodeNotAuthorized        = 10003
	CodeUnprocessable        = 10008
	CodeResourceNotFound     = 10010
	CodeNotFound             = 10000
	CodeOperationInProgress  = 60016
	CodeParamsNotRetrievable = 120004
)

// CFError returns the CF error inside err.
func CFError(err error) (resource.CloudFoundryError, bool) {
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

// IsCode tells whether err is the CF error code.
func IsCode(err error, code int) bool {
	ce, ok := CFError(err)
	return ok && ce.Code == code
}

// Unprocessable returns the detail of a 422 (10008). CF v3 answers every
// kind of conflict (name taken, already has a role, not unique, operation in
// progress) with this one code, so a fixed prefix of the detail is the only
// discriminator the API offers; the callers match those prefixes.
func Unprocessable(err error) (string, bool) {
	ce, ok := CFError(err)
	if !ok || ce.Code != CodeUnprocessable {
		return "", false
	}
	return ce.Detail, true
}

// IsNameTaken tells a 422 "name is taken" / "already has a key binding" from
// other 422s.
func IsNameTaken(err error) bool {
	d, ok := Unprocessable(err)
	return ok && (strings.HasPrefix(d, "The service instance name is taken") ||
		strings.HasPrefix(d, "The binding name is invalid. Key binding names must be unique"))
}

// IsInProgress tells that another operation on the resource runs: 409 60016
// (PATCH), or a 422 whose detail says so (DELETE, key create: see
// Unprocessable for why the text).
func IsInProgress(err error) bool {
	if IsCode(err, CodeOperationInProgress) {
		return true
	}
	d, ok := Unprocessable(err)
	return ok && strings.Contains(d, "operation in progress")
}

// Classify turns API errors into errors that say what to do.
func Classify(what string, err error) error {
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
	ce, ok := CFError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	msg := fmt.Sprintf("%s: %s (CF error %d %s)", what, ce.Detail, ce.Code, ce.Title)
	switch ce.Code {
	case CodeInvalidAuthToken, CodeNotAuthenticated:
		return &AuthError{Msg: msg, Remedy: remedy.Remedy{Action: remedy.Login}, Err: err}
	case CodeNotAuthorized:
		return remedy.With(&apiErr{msg: msg, err: err}, remedy.Remedy{Action: remedy.RequestRole})
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

// retrieveError turns an OAuth error from UAA into an *AuthError.
func retrieveError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return nil
	}
	code, desc := re.ErrorCode, re.ErrorDescription
	if code == "" && re.Response != nil {
		code = re.Response.Status
	}
	msg := "authentication failed: " + code
	if desc != "" {
		msg += ": " + desc
	}
	return &AuthError{Msg: msg, Remedy: remedy.Remedy{Action: remedy.CheckLogin}, Err: err}
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
