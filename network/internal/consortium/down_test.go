package consortium

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A run directory is wiped by `down -clean`, so the tool never claims a
// directory that holds anything else.
func TestClaimRoot(t *testing.T) {
	t.Run("new directory", func(t *testing.T) {
		l := Layout{Root: filepath.Join(t.TempDir(), "run")}
		if err := l.claimRoot(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(l.Root, marker)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(l.Root, "topology.yaml"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := l.claimRoot(); err != nil {
			t.Fatalf("claiming its own run directory again: %v", err)
		}
	})
	t.Run("directory of other files", func(t *testing.T) {
		l := Layout{Root: t.TempDir()}
		if err := os.WriteFile(filepath.Join(l.Root, "thesis.tex"), []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := l.claimRoot()
		if err == nil || !strings.Contains(err.Error(), "not a consortium run directory") {
			t.Fatalf("claimed a directory of other files: %v", err)
		}
		if _, err := os.Stat(filepath.Join(l.Root, marker)); err == nil {
			t.Fatal("marked a directory of other files as a run directory")
		}
	})
}
