package main

import (
	"errors"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

// Exit codes: the one place errors become them. Documented in --help and the README.
const (
	exitOK       = 0 // everything checked passed
	exitFailed   = 1 // a verification or compliance check failed
	exitUsage    = 2 // usage or configuration error
	exitEnvError = 3 // environment or infrastructure error: could not check
)

const exitCodesHelp = `Exit codes:
  0  all passed
  1  a verification or compliance check failed
  2  usage or configuration error
  3  environment or infrastructure error (could not check)`

// errChecksFailed is returned by commands whose checks ran and found a failure.
var errChecksFailed = errors.New("checks failed")

// errCouldNotCheck is returned by commands whose results say a check could not run.
var errCouldNotCheck = errors.New("could not check")

// usageError marks errors in how the command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errChecksFailed):
		return exitFailed
	case errors.As(err, &ue), errors.Is(err, policy.ErrInvalid), errors.Is(err, drill.ErrUsage), errors.Is(err, take.ErrMismatch), errors.Is(err, take.ErrUnsupported), errors.Is(err, take.ErrMalformedDSN):
		return exitUsage
	default:
		return exitEnvError
	}
}
