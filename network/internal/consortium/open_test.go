package consortium

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inter-nmi/pki/network/pkg/supervise"
)

// A run directory remembers its layout and topology, so later commands
// open the same network without repeating flags.
func TestPrepareOpen(t *testing.T) {
	top := realTopology(t)
	root := filepath.Join(t.TempDir(), "run")
	nw := &Network{Layout: Layout{Root: root, Bin: "/opt/fabric/bin", Builder: "/src/network/builder", Namespaces: true}, Topology: top}
	if err := nw.Prepare(); err != nil {
		t.Fatal(err)
	}
	opened, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if opened.Layout != nw.Layout {
		t.Fatalf("opened layout %+v, want %+v", opened.Layout, nw.Layout)
	}
	if len(opened.Topology.NMIs) != len(top.NMIs) || opened.Topology.Channel != top.Channel || opened.Topology.NMIs[0].Peer.Port != top.NMIs[0].Peer.Port {
		t.Fatalf("opened topology %+v", opened.Topology)
	}
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "is not a consortium run directory") {
		t.Fatalf("Open of an empty directory: %v", err)
	}
}

// Down stops what the run started, registries and the explorer first and
// orderers last, and with clean deletes only a run directory.
func TestDown(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip(err)
	}
	if sleep, err = filepath.Abs(sleep); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "run")
	l := Layout{Root: root}
	if err := l.claimRoot(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ptb-orderer", "ptb-peer", "explorer", "ptb-chaincode", "ptb-registry"} {
		t.Cleanup(func() { _, _ = l.procs().Stop(context.Background(), name, time.Second) })
		if _, err := l.procs().Start(supervise.Process{Name: name, Bin: sleep, Args: []string{"300"}}); err != nil {
			t.Fatal(err)
		}
	}
	stopped, err := l.Down(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"explorer", "ptb-registry", "ptb-chaincode", "ptb-peer", "ptb-orderer"}; !slices.Equal(stopped, want) {
		t.Fatalf("stopped %v, want %v", stopped, want)
	}
	if got := l.Processes(); len(got) != 0 {
		t.Fatalf("still running: %v", got)
	}
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("Down without clean removed the run directory: %v", err)
	}
	if _, err := l.Down(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Down with clean left the run directory: %v", err)
	}
	if _, err := l.Down(context.Background(), true); err != nil {
		t.Fatalf("Down of a removed run directory: %v", err)
	}

	other := Layout{Root: t.TempDir()}
	if err := os.WriteFile(filepath.Join(other.Root, "thesis.tex"), []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Down(context.Background(), true); err == nil || !strings.Contains(err.Error(), "not a consortium run directory") {
		t.Fatalf("Down with clean of another directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(other.Root, "thesis.tex")); err != nil {
		t.Fatal("Down with clean deleted another directory's file")
	}
}
