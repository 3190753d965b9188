// Package usage tells a command line that cannot be run as given from a
// command that ran and failed, for the project's CLIs (pki, metersim,
// febill), which exit 2 on the first and 1 on the second.
package usage

import (
	"errors"
	"fmt"
)

// Exit codes of the project's CLIs.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Error is a command line that cannot be run as given. Its message is the
// wrapped error's.
type Error struct{ Err error }

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf makes a usage error from a format, as fmt.Errorf does (%w wraps).
func Errorf(format string, args ...any) error {
	return &Error{fmt.Errorf(format, args...)}
}

// Wrap marks err as a usage error; nil stays nil.
func Wrap(err error) error {
	if err == nil {
		return nil
	}
	return &Error{err}
}

// Is reports whether err, or an error it wraps, is a usage error.
func Is(err error) bool {
	var u *Error
	return errors.As(err, &u)
}

// ExitCode is the exit status for err: ExitOK for nil, ExitUsage for a
// usage error, ExitFailure for any other.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case Is(err):
		return ExitUsage
	}
	return ExitFailure
}
