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
	"github.com/inter-nmi/pki/network/pkg/supervise"
	"github.com/inter-nmi/pki/network/pkg/topology"
	"github.com/inter-nmi/pki/network/pkg/wan"
)

// runRecord is what a run directory remembers of how it was made, so tests
// and later commands can act on the same network without repeating flags.
type runRecord struct {
	Bin        string `json:"bin"`
	Builder    string `json:"builder"`
	Namespaces bool   `json:"namespaces"`
	Latency    string `json:"latency,omitempty"`
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
	rec, _ := json.Marshal(runRecord{Bin: nw.Bin, Builder: nw.Builder, Namespaces: nw.Namespaces, Latency: nw.Latency})
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
	l.Bin, l.Builder, l.Namespaces, l.Latency = rec.Bin, rec.Builder, rec.Namespaces, rec.Latency
	return &Network{Layout: l, Topology: t}, nil
}

// hosts prepares where the nodes run: with Namespaces, a network namespace
// per NMI on a private bridge, the links between them delayed when Latency
// is set; otherwise this host, whose ports must be free.
func (nw *Network) hosts(ctx context.Context) error {
	if !nw.Namespaces {
		if nw.Latency != "" {
			return errors.New("link latencies need a host per NMI (-netns)")
		}
		return nw.checkPorts()
	}
	if err := netns.Available(); err != nil {
		return err
	}
	if err := nw.hostNetwork().Setup(); err != nil {
		return err
	}
	if nw.Latency != "" {
		return nw.delayLinks(ctx)
	}
	return nil
}

// wanFirstPort is where the link proxies' ports begin, on the bridge's
// address (which no node listens on).
const wanFirstPort = 19000

// wanLinksFile records the links of a run with latencies, for the proxy
// process (consortium wan).
func (l Layout) wanLinksFile() string { return filepath.Join(l.Root, "wan-links.json") }

// delayLinks starts the proxy process that delays the links between the
// NMIs' hosts and routes each host's connections to the others through it.
func (nw *Network) delayLinks(ctx context.Context) error {
	if err := wan.Available(); err != nil {
		return err
	}
	table, err := wan.Load(nw.Latency)
	if err != nil {
		return err
	}
	gateway, err := nw.hostNetwork().Gateway()
	if err != nil {
		return err
	}
	links, err := wan.Plan(nw.Topology, table, nw.namespace, gateway, wanFirstPort)
	if err != nil {
		return fmt.Errorf("%s: %w", nw.Latency, err)
	}
	b, err := json.MarshalIndent(links, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(nw.wanLinksFile(), b, 0o644); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if _, err := nw.procs().Start(supervise.Process{Name: wanProc, Bin: self, Args: []string{"-run", nw.Root, "wan"}, Dir: nw.Root}); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, nodeStartTimeout)
	defer cancel()
	if err := wan.AwaitListening(wctx, links); err != nil {
		return err
	}
	return wan.Route(links)
}

// wanProc is the process of the link proxies.
const wanProc = "wan"

// ServeLinks runs the link proxies of the run (the wan process) until ctx
// ends.
func (nw *Network) ServeLinks(ctx context.Context) error {
	b, err := os.ReadFile(nw.wanLinksFile())
	if err != nil {
		return err
	}
	var links []wan.Link
	if err := json.Unmarshal(b, &links); err != nil {
		return fmt.Errorf("%s: %w", nw.wanLinksFile(), err)
	}
	return wan.Serve(ctx, links)
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
