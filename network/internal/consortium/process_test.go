package consortium

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inter-nmi/pki/network/pkg/supervise"
)

// Stop and StopExplorer end the node they name and nothing else, and
// stopping a node that is not running is no error.
func TestStop(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip(err)
	}
	if sleep, err = filepath.Abs(sleep); err != nil {
		t.Fatal(err)
	}
	nw := &Network{Layout: Layout{Root: t.TempDir()}, Topology: realTopology(t)}
	for _, name := range []string{"ptb-registry", "ptb-peer", "explorer"} {
		t.Cleanup(func() { _, _ = nw.procs().Stop(context.Background(), name, time.Second) })
		if _, err := nw.procs().Start(supervise.Process{Name: name, Bin: sleep, Args: []string{"300"}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := nw.Stop(ctx, "PTB", NodeRegistry); err != nil {
		t.Fatal(err)
	}
	if err := nw.StopExplorer(ctx); err != nil {
		t.Fatal(err)
	}
	running := nw.Processes()
	if _, ok := running["ptb-peer"]; !ok || len(running) != 1 {
		t.Fatalf("running after stopping PTB's registry and the explorer: %v", running)
	}
	if err := nw.Stop(ctx, "PTB", NodeRegistry); err != nil {
		t.Fatalf("stopping a stopped registry: %v", err)
	}
	if err := nw.StopExplorer(ctx); err != nil {
		t.Fatalf("stopping a stopped explorer: %v", err)
	}
	for _, c := range []struct{ nmi, node, want string }{
		{"PTB", "explorer", `no node "explorer"`},
		{"PTB", "ptb-peer", `no node "ptb-peer"`},
		{"NOWHERE", NodePeer, "NOWHERE"},
	} {
		if err := nw.Stop(ctx, c.nmi, c.node); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Stop(%s, %s) = %v, want an error naming %s", c.nmi, c.node, err, c.want)
		}
		if _, err := nw.Signal(c.nmi, c.node, 0); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Signal(%s, %s) = %v, want an error naming %s", c.nmi, c.node, err, c.want)
		}
	}
}
