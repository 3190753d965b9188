package usage_test

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/inter-nmi/pki/registry-api/usage"
)

func TestErrorf(t *testing.T) {
	err := usage.Errorf("--%s is required", "meter")
	if err.Error() != "--meter is required" {
		t.Errorf("message %q", err)
	}
	if !usage.Is(err) {
		t.Error("Errorf did not make a usage error")
	}
	wrapped := usage.Errorf("read token file: %w", fs.ErrNotExist)
	if !errors.Is(wrapped, fs.ErrNotExist) {
		t.Error("%w in Errorf does not wrap")
	}
}

func TestWrap(t *testing.T) {
	if usage.Wrap(nil) != nil {
		t.Error("Wrap(nil) is not nil")
	}
	base := errors.New("unknown flag: --bogus")
	err := usage.Wrap(base)
	if err.Error() != base.Error() || !errors.Is(err, base) || !usage.Is(err) {
		t.Errorf("Wrap: %q, is base %v, is usage %v", err, errors.Is(err, base), usage.Is(err))
	}
	var u *usage.Error
	if !errors.As(err, &u) || u.Err != base {
		t.Errorf("errors.As: %v", u)
	}
}

func TestIs(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("registry unreachable"), false},
		{"usage", usage.Errorf("bad flag"), true},
		{"wrapped usage", fmt.Errorf("register: %w", usage.Errorf("bad flag")), true},
		{"joined", errors.Join(errors.New("x"), usage.Errorf("y")), true},
	} {
		if got := usage.Is(tc.err); got != tc.want {
			t.Errorf("%s: Is = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, 0},
		{"failure", errors.New("registry unreachable"), 1},
		{"usage", usage.Errorf("bad flag"), 2},
		{"wrapped usage", fmt.Errorf("register: %w", usage.Wrap(errors.New("bad flag"))), 2},
	} {
		if got := usage.ExitCode(tc.err); got != tc.want {
			t.Errorf("%s: ExitCode = %d, want %d", tc.name, got, tc.want)
		}
	}
}
