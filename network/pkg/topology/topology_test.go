package topology_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inter-nmi/pki/network/pkg/topology"
)

func TestProjectTopology(t *testing.T) {
	top, err := topology.Load("../../topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(top.NMIs) != 5 || len(top.Orderers()) != 4 || top.Channel != "metrology" {
		t.Fatalf("%d NMIs, %d orderers, channel %q", len(top.NMIs), len(top.Orderers()), top.Channel)
	}
	shifted, err := top.WithPortOffset(10000)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range shifted.NMIs {
		if n.Peer.Port != top.NMIs[i].Peer.Port+10000 || n.Registry.Port != top.NMIs[i].Registry.Port+10000 {
			t.Errorf("%s ports not shifted", n.Name)
		}
		if n.Orderer != nil && n.Orderer == top.NMIs[i].Orderer {
			t.Errorf("%s orderer shares its ports with the original", n.Name)
		}
	}
	if top.NMIs[0].Orderer.Port != 7150 {
		t.Error("WithPortOffset changed the original")
	}
}

// TestBadTopologies loads testdata/*.bad.yaml; each must be refused with a
// message naming the problem, given in the file's first line ("# want: ...").
func TestBadTopologies(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad topologies: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(b), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			if !ok {
				t.Fatal("first line must be # want: <part of the error>")
			}
			_, err = topology.Parse(b)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("got %v, want an error containing %q", err, want)
			}
		})
	}
}
