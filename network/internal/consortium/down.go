package consortium

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// marker identifies a directory as a consortium run directory, so that a
// clean never removes anything else.
const marker = ".consortium-run"

// claimRoot makes the run directory, or takes an existing one only if it
// is empty or a run directory already: never a directory of other files.
func (l Layout) claimRoot() error {
	if err := os.MkdirAll(l.Root, 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(l.Root, marker)); err != nil {
		entries, err := os.ReadDir(l.Root)
		if err != nil {
			return err
		}
		if len(entries) > 0 {
			return fmt.Errorf("%s holds other files and is not a consortium run directory: choose another -run", l.Root)
		}
	}
	return os.WriteFile(filepath.Join(l.Root, marker), []byte("created by the consortium tool; safe to delete with make down CLEAN=1\n"), 0o644)
}

// Down stops every process this run directory recorded, registries first
// and orderers last, and with clean also deletes the run directory:
// crypto material, ledgers and logs.
func (l Layout) Down(ctx context.Context, clean bool) ([]string, error) {
	order := map[string]int{"explorer": 0, "registry": 0, "chaincode": 1, "peer": 2, "orderer": 3}
	stopped, err := l.procs().StopAll(ctx, stopGrace, func(name string) int { return order[suffix(name)] })
	if err != nil || !clean {
		return stopped, err
	}
	if _, err := os.Stat(filepath.Join(l.Root, marker)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if _, statErr := os.Stat(l.Root); errors.Is(statErr, os.ErrNotExist) {
				return stopped, nil
			}
			return stopped, fmt.Errorf("%s is not a consortium run directory (no %s); not deleting it", l.Root, marker)
		}
		return stopped, err
	}
	// A fault test may have left a file system mounted in the run (a
	// registry's limited disk): removing the run removes it too.
	if err := unmountUnder(l.Root); err != nil {
		return stopped, err
	}
	return stopped, os.RemoveAll(l.Root)
}

// unmountUnder unmounts every file system mounted below dir, deepest first.
func unmountUnder(dir string) error {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil // not Linux: nothing this tool mounts
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 1 && strings.HasPrefix(fields[1], root+string(filepath.Separator)) {
			points = append(points, fields[1])
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		if err := command("umount", p); err != nil {
			return err
		}
	}
	return nil
}

func suffix(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '-' {
			return name[i+1:]
		}
	}
	return name
}
