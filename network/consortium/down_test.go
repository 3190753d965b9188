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

// A PID record names one process: the running test process matches its own
// record, and the same PID with another start time (a recycled PID) does not.
func TestPIDRecord(t *testing.T) {
	_, start, err := procStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	self := pidRecord{pid: os.Getpid(), bin: "/not/this/binary", start: start}
	if !self.alive() {
		t.Fatal("the running process does not match its own record")
	}
	recycled := self
	recycled.start = start + "0"
	if recycled.alive() {
		t.Fatal("a record with another start time matches")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !(pidRecord{pid: os.Getpid(), bin: exe}).alive() {
		t.Fatal("a record without start time does not match by binary")
	}
	if (pidRecord{pid: os.Getpid(), bin: "/not/this/binary"}).alive() {
		t.Fatal("a record without start time matches another binary")
	}
}
