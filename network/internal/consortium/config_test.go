package consortium

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"
)

// The nodes' configuration comes from the topology: every address is the
// NMI's, every file is in the NMI's own directories, and pprof listens on
// the operations port + 40 only when asked for.
func TestNodeConfig(t *testing.T) {
	top := realTopology(t)
	l := Layout{Root: "/run", Bin: "/bin/fabric", Builder: "/src/network/builder"}
	ptb := nmi(t, top, "PTB")

	t.Setenv(EnvProfile, "")
	p := l.peerConfig(top, ptb)
	if p.ID != ptb.PeerHost() || p.NetworkID != top.Channel || p.Address != ptb.PeerAddress() ||
		p.ChaincodeAddress != ptb.PeerChaincodeAddress() || p.OperationsAddress != ptb.PeerOperationsAddress() || p.MSPID != ptb.MSPID {
		t.Errorf("peer config %+v", p)
	}
	if p.DataDir != "/run/nmi/ptb/peer/data" || p.TLSRootCert != l.tlsCA(ptb) || p.OperationsClientCA != l.tlsClientCA(ptb) ||
		p.ExternalBuilder != l.Builder || p.TLSCert != filepath.Join(l.peerNode(ptb), "tls", "cert.pem") {
		t.Errorf("peer config files %+v", p)
	}
	o := l.ordererConfig(ptb)
	if o.ListenHost != ptb.Host || o.Port != ptb.Orderer.Port || o.AdminAddress != ptb.OrdererAdminAddress() ||
		o.OperationsAddress != ptb.OrdererOperationsAddress() || o.DataDir != "/run/nmi/ptb/orderer/data" || o.ClientCA != l.tlsClientCA(ptb) {
		t.Errorf("orderer config %+v", o)
	}
	if p.ProfileAddress != "" || o.ProfileAddress != "" {
		t.Fatalf("pprof without %s=1: %q, %q", EnvProfile, p.ProfileAddress, o.ProfileAddress)
	}

	t.Setenv(EnvProfile, "1")
	plus40 := func(port int) string { return net.JoinHostPort(ptb.Host, strconv.Itoa(port+40)) }
	if got := l.peerConfig(top, ptb).ProfileAddress; got != plus40(ptb.Peer.OperationsPort) {
		t.Errorf("peer pprof at %s", got)
	}
	if got := l.ordererConfig(ptb).ProfileAddress; got != plus40(ptb.Orderer.OperationsPort) {
		t.Errorf("orderer pprof at %s", got)
	}
}

// The genesis configuration: every NMI a member, every orderer a consenter
// numbered from 1 in topology order, certificates from the exchange.
func TestChannelConfig(t *testing.T) {
	top := realTopology(t)
	l := Layout{Root: "/run"}
	c := l.channelConfig(top)
	if len(c.Organizations) != len(top.NMIs) {
		t.Fatalf("%d member organisations for %d NMIs", len(c.Organizations), len(top.NMIs))
	}
	orderers := top.Orderers()
	if len(c.OrdererOrganizations) != len(orderers) || len(c.Consenters) != len(orderers) {
		t.Fatalf("%d orderer organisations and %d consenters for %d orderers", len(c.OrdererOrganizations), len(c.Consenters), len(orderers))
	}
	for i, n := range orderers {
		cs := c.Consenters[i]
		if cs.ID != i+1 || cs.MSPID != n.MSPID || cs.Host != n.Host || cs.Port != n.Orderer.Port ||
			cs.Identity != filepath.Join(l.exchangeDir(n), "orderer", "identity.pem") || cs.ServerTLSCert != cs.ClientTLSCert {
			t.Errorf("consenter %d: %+v", i, cs)
		}
	}
	for i := range top.NMIs {
		n := &top.NMIs[i]
		org := c.Organizations[i]
		if org.Name != n.Name || org.ID != n.MSPID || org.MSPDir != filepath.Join(l.exchangeDir(n), "msp") ||
			len(org.AnchorPeers) != 1 || org.AnchorPeers[0].Port != n.Peer.Port {
			t.Errorf("%s organisation %+v", n.Name, org)
		}
		if (n.Orderer != nil) != (len(org.OrdererEndpoints) == 1) {
			t.Errorf("%s orderer endpoints %v", n.Name, org.OrdererEndpoints)
		}
	}
	if c.BatchInterval != top.Ordering.BatchInterval || c.MaxMessageCount != top.Ordering.MaxMessageCount {
		t.Errorf("batching %s/%d", c.BatchInterval, c.MaxMessageCount)
	}
}
