package consortium

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/inter-nmi/pki/network/pkg/topology"
)

// realTopology is the consortium's topology.yaml: what is derived from it is
// checked against its own values, not against copies of its ports.
func realTopology(t *testing.T) *topology.Topology {
	t.Helper()
	top, err := topology.Load(filepath.Join("..", "..", "topology.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func nmi(t *testing.T, top *topology.Topology, name string) *topology.NMI {
	t.Helper()
	n, err := top.NMI(name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Everything of one NMI lives under nmi/<name>; what it shares, under
// exchange/<name>; the run's shared files at the top.
func TestLayoutPaths(t *testing.T) {
	top := realTopology(t)
	l := Layout{Root: "/run", Bin: "/bin/fabric"}
	ptb := nmi(t, top, "PTB")
	for _, c := range []struct{ got, want string }{
		{l.CryptoDir(ptb), "/run/nmi/ptb/crypto"},
		{l.peerDir(ptb), "/run/nmi/ptb/peer"},
		{l.ordererDir(ptb), "/run/nmi/ptb/orderer"},
		{l.chaincodeDir(ptb), "/run/nmi/ptb/chaincode"},
		{l.registryDir(ptb), "/run/nmi/ptb/registry"},
		{l.CredentialsDir(ptb), "/run/credentials/ptb"},
		{l.SurveillanceCredentialsDir(), "/run/credentials/surveillance"},
		{l.exchangeDir(ptb), "/run/exchange/ptb"},
		{l.OrgDefinitionFile(ptb), "/run/exchange/ptb/org.json"},
		{l.GenesisBlock("metrology"), "/run/channel/metrology.block"},
		{l.ProfileFile(), "/run/network.json"},
		{l.LogFile("ptb-peer"), "/run/logs/ptb-peer.log"},
		{l.peerNode(ptb), "/run/nmi/ptb/crypto/peers/peer0"},
		{l.ordererNode(ptb), "/run/nmi/ptb/crypto/orderers/orderer0"},
		{l.user(ptb, UserAdmin), "/run/nmi/ptb/crypto/users/Admin"},
		{l.TLSCACert(ptb), "/run/nmi/ptb/crypto/tlsca/cert.pem"},
		{l.TLSClientCACert(ptb), "/run/nmi/ptb/crypto/tlsclientca/cert.pem"},
		{l.exchangedTLSCA(ptb), "/run/exchange/ptb/msp/tlscacerts/tlsca.pem"},
		{l.bin("peer"), "/bin/fabric/peer"},
		{l.sampleConfig("core.yaml"), "/bin/fabric/sampleconfig/core.yaml"},
		{l.topologyFile(), "/run/topology.yaml"},
		{l.recordFile(), "/run/run.json"},
		{l.explorerDir(), "/run/explorer"},
		{l.ExplorerIndex(), "/run/explorer/explorer.db"},
		{l.PeerDataDir(ptb), "/run/nmi/ptb/peer/data"},
		{l.OrdererDataDir(ptb), "/run/nmi/ptb/orderer/data"},
		{l.RegistryDatabase(ptb), "/run/nmi/ptb/registry/registry.db"},
		{l.RegistryIndex(ptb), "/run/nmi/ptb/registry/readings.db"},
	} {
		if c.got != c.want {
			t.Errorf("got %s, want %s", c.got, c.want)
		}
	}
}

// Process names are what Signal, Start, Down and Status agree on: the
// NMI's name in lower case and the node.
func TestProcessNames(t *testing.T) {
	top := realTopology(t)
	var names []string
	for i := range top.NMIs {
		n := &top.NMIs[i]
		for _, p := range []string{peerProc(n), ordererProc(n), chaincodeProc(n), registryProc(n)} {
			if p != strings.ToLower(p) || !strings.HasPrefix(p, strings.ToLower(n.Name)+"-") {
				t.Errorf("process name %q of %s", p, n.Name)
			}
			names = append(names, p)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(names)))) != len(names) {
		t.Fatalf("process names clash: %v", names)
	}
	if got := ProcessName("NMIM", NodeRegistry); got != "nmim-registry" {
		t.Errorf("ProcessName(NMIM, registry) = %q", got)
	}
	for name, want := range map[string]string{"ptb-peer": NodePeer, "cmi-orderer": NodeOrderer, "nmim-chaincode": NodeChaincode, "ptb-registry": NodeRegistry, explorerProc: "explorer"} {
		if got := suffix(name); got != want {
			t.Errorf("suffix(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestNamespaces(t *testing.T) {
	top := realTopology(t)
	ptb := nmi(t, top, "PTB")
	if ns := (Layout{}).namespace(ptb); ns != "" {
		t.Fatalf("namespace without Namespaces = %q", ns)
	}
	if ns := (Layout{Namespaces: true}).namespace(ptb); ns != "pki-ptb" {
		t.Fatalf("namespace = %q", ns)
	}

	multi, err := topology.Load(filepath.Join("..", "..", "topology-multihost.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	nw := &Network{Layout: Layout{Namespaces: true}, Topology: multi}
	hosts := nw.hostNetwork()
	if len(hosts.Hosts) != len(multi.NMIs) {
		t.Fatalf("%d hosts for %d NMIs", len(hosts.Hosts), len(multi.NMIs))
	}
	for i, h := range hosts.Hosts {
		n := &multi.NMIs[i]
		if h.Namespace != "pki-"+strings.ToLower(n.Name) || h.IP != n.Host {
			t.Errorf("host %+v for %s at %s", h, n.Name, n.Host)
		}
	}
	if !strings.HasPrefix(hosts.Bridge, "pkibr") {
		t.Fatalf("bridge %q", hosts.Bridge)
	}
}

// The peer CLI acts as the NMI's admin against its own peer; an NMI
// without an orderer sends transactions to the first one.
func TestCLIArguments(t *testing.T) {
	top := realTopology(t)
	l := Layout{Root: "/run", Bin: "/bin/fabric"}
	ptb := nmi(t, top, "PTB")
	env := l.adminEnv(ptb)
	for _, want := range []string{
		"FABRIC_CFG_PATH=/bin/fabric/sampleconfig",
		"CORE_PEER_LOCALMSPID=" + ptb.MSPID,
		"CORE_PEER_MSPCONFIGPATH=/run/nmi/ptb/crypto/users/Admin/msp",
		"CORE_PEER_ADDRESS=" + ptb.PeerAddress(),
		"CORE_PEER_TLS_ROOTCERT_FILE=/run/nmi/ptb/crypto/tlsca/cert.pem",
	} {
		if !slices.Contains(env, want) {
			t.Errorf("admin environment lacks %s: %v", want, env)
		}
	}
	if got := l.ordererArgs(top, ptb); !slices.Equal(got, []string{"-o", ptb.OrdererAddress(), "--tls", "--cafile", l.exchangedTLSCA(ptb)}) {
		t.Errorf("PTB's orderer arguments %v", got)
	}
	var without *topology.NMI
	for i := range top.NMIs {
		if top.NMIs[i].Orderer == nil {
			without = &top.NMIs[i]
		}
	}
	if without == nil {
		t.Fatal("the topology has no NMI without an orderer")
	}
	first := top.Orderers()[0]
	if got := l.ordererArgs(top, without); got[1] != first.OrdererAddress() || got[4] != l.exchangedTLSCA(first) {
		t.Errorf("%s's orderer arguments %v, want %s's orderer", without.Name, got, first.Name)
	}
}

// metric reads a series of a Prometheus exposition by its exact name, not
// one whose name it prefixes.
func TestMetric(t *testing.T) {
	body := []byte(`# HELP consortium_view_number_total not this one
consensus_smartbft_view_number_total{channel="metrology"} 9
consensus_smartbft_view_number{channel="metrology"} 3
consensus_BFT_leader_id{channel="metrology"} 2
registry_index_next_block 1.234e+06
`)
	for name, want := range map[string]float64{"consensus_smartbft_view_number": 3, "consensus_BFT_leader_id": 2, "registry_index_next_block": 1234000} {
		if got, ok := metric(body, name); !ok || got != want {
			t.Errorf("%s = %v %v, want %v", name, got, ok, want)
		}
	}
	if _, ok := metric(body, "consensus_smartbft_view"); ok {
		t.Error("a prefix of a name found as a metric")
	}
}
