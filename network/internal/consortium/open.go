package consortium

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/inter-nmi/pki/network/pkg/netns"
	"github.com/inter-nmi/pki/network/pkg/topology"
)

// runRecord is what a run directory remembers of how it was made, so tests
// and later commands can act on the same network without repeating flags.
type runRecord struct {
	Bin        string `json:"bin"`
	Builder    string `json:"builder"`
	Namespaces bool   `json:"namespaces"`
}

func (l Layout) topologyFile() string { return filepath.Join(l.Root, "topology.yaml") }
func (l Layout) recordFile() string   { return filepath.Join(l.Root, "run.json") }

// Prepare claims the run directory and records the effective topology (ports
// already shifted) and layout in it.
func (nw *Network) Prepare() error {
	if err := nw.claimRoot(); err != nil {
		return err
	}
	b, err := yaml.Marshal(nw.Topology)
	if err != nil {
		return err
	}
	if err := os.WriteFile(nw.topologyFile(), b, 0o644); err != nil {
		return err
	}
	rec, _ := json.Marshal(runRecord{Bin: nw.Bin, Builder: nw.Builder, Namespaces: nw.Namespaces})
	return os.WriteFile(nw.recordFile(), rec, 0o644)
}

// Open returns the network recorded in a run directory by a previous Up.
func Open(root string) (*Network, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	l := Layout{Root: root}
	b, err := os.ReadFile(l.recordFile())
	if err != nil {
		return nil, fmt.Errorf("%s is not a consortium run directory: %w", root, err)
	}
	var rec runRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", l.recordFile(), err)
	}
	t, err := topology.Load(l.topologyFile())
	if err != nil {
		return nil, err
	}
	l.Bin, l.Builder, l.Namespaces = rec.Bin, rec.Builder, rec.Namespaces
	return &Network{Layout: l, Topology: t}, nil
}

// hosts prepares where the nodes run: with Namespaces, a network namespace
// per NMI on a private bridge; otherwise this host, whose ports must be free.
func (nw *Network) hosts() error {
	if nw.Namespaces {
		if err := netns.Available(); err != nil {
			return err
		}
		return nw.hostNetwork().Setup()
	}
	return nw.checkPorts()
}

// hostNetwork is the namespaces of the topology's NMIs on one bridge, named
// after their /24.
func (nw *Network) hostNetwork() netns.Network {
	var n netns.Network
	for i := range nw.Topology.NMIs {
		nmi := &nw.Topology.NMIs[i]
		n.Hosts = append(n.Hosts, netns.Host{Namespace: nw.namespace(nmi), IP: nmi.Host})
		if n.Bridge == "" {
			if ip := net.ParseIP(nmi.Host).To4(); ip != nil {
				n.Bridge = fmt.Sprintf("pkibr%d", ip[2])
			}
		}
	}
	return n
}

// checkPorts refuses to start when a port of a node that is not running is
// taken by some other program: better a clear message than a node that dies.
func (nw *Network) checkPorts() error {
	var busy []string
	try := func(proc, what, addr string) {
		if _, running := nw.procs().Running(proc); running {
			return
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			busy = append(busy, fmt.Sprintf("%s (%s)", addr, what))
			return
		}
		ln.Close()
	}
	for i := range nw.Topology.NMIs {
		n := &nw.Topology.NMIs[i]
		try(peerProc(n), n.Name+" peer", n.PeerAddress())
		try(peerProc(n), n.Name+" peer chaincode listener", n.PeerChaincodeAddress())
		try(peerProc(n), n.Name+" peer operations", n.PeerOperationsAddress())
		try(chaincodeProc(n), n.Name+" chaincode server", n.ChaincodeAddress())
		if n.Orderer != nil {
			try(ordererProc(n), n.Name+" orderer", n.OrdererAddress())
			try(ordererProc(n), n.Name+" orderer admin", n.OrdererAdminAddress())
			try(ordererProc(n), n.Name+" orderer operations", n.OrdererOperationsAddress())
		}
	}
	if len(busy) > 0 {
		return fmt.Errorf("ports in use by another program (another consortium? use --port-offset): %s", strings.Join(busy, ", "))
	}
	return nil
}

// Down stops the consortium's processes (see Layout.Down) and removes the
// hosts' namespaces if the run made them.
func (nw *Network) Down(ctx context.Context, clean bool) ([]string, error) {
	namespaces := nw.Namespaces
	if b, err := os.ReadFile(nw.recordFile()); err == nil {
		var rec runRecord
		if json.Unmarshal(b, &rec) == nil && rec.Namespaces {
			namespaces = true
		}
	}
	if !namespaces {
		return nw.Layout.Down(ctx, clean)
	}
	// The namespaces' names come from the topology; Layout.Down may delete
	// the run directory, so name them first.
	l := nw.Layout
	l.Namespaces = true
	hosts := (&Network{Layout: l, Topology: nw.Topology}).hostNetwork()
	stopped, err := nw.Layout.Down(ctx, clean)
	return stopped, errors.Join(err, hosts.Teardown())
}
