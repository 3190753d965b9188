package consortium

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/inter-nmi/pki/network/pkg/fabricconfig"
	"github.com/inter-nmi/pki/network/pkg/topology"
)

// The nodes' and the channel's Fabric configuration: what the topology and
// the layout decide, rendered by package fabricconfig and written where the
// nodes and configtxgen read it.

// sample reads and parses a sample configuration of the Fabric release in
// Bin.
func (l Layout) sample(file string) (*fabricconfig.Sample, error) {
	path := l.sampleConfig(file)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := fabricconfig.ParseSample(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// peerConfig is an NMI's peer as its core.yaml describes it.
func (l Layout) peerConfig(t *topology.Topology, n *topology.NMI) fabricconfig.Peer {
	node := l.peerNode(n)
	p := fabricconfig.Peer{
		ID:                 n.PeerHost(),
		NetworkID:          t.Channel,
		Address:            n.PeerAddress(),
		ChaincodeAddress:   n.PeerChaincodeAddress(),
		OperationsAddress:  n.PeerOperationsAddress(),
		MSPID:              n.MSPID,
		MSPDir:             filepath.Join(node, "msp"),
		TLSCert:            filepath.Join(node, "tls", "cert.pem"),
		TLSKey:             filepath.Join(node, "tls", "key.pem"),
		TLSRootCert:        l.tlsCA(n),
		OperationsClientCA: l.tlsClientCA(n),
		DataDir:            l.PeerDataDir(n),
		ExternalBuilder:    l.Builder,
	}
	if profiling() {
		p.ProfileAddress = profileAddress(n, n.Peer.OperationsPort)
	}
	return p
}

// writePeerConfig adapts the release's core.yaml to an NMI's peer.
func (l Layout) writePeerConfig(t *topology.Topology, n *topology.NMI) error {
	sample, err := l.sample("core.yaml")
	if err != nil {
		return err
	}
	b, err := fabricconfig.PeerConfig(sample, l.peerConfig(t, n))
	if err != nil {
		return fmt.Errorf("%s peer config: %w", n.Name, err)
	}
	dir := l.peerDir(n)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "core.yaml"), b, 0o644)
}

// ordererConfig is an NMI's orderer as its orderer.yaml describes it.
func (l Layout) ordererConfig(n *topology.NMI) fabricconfig.Orderer {
	node := l.ordererNode(n)
	o := fabricconfig.Orderer{
		ListenHost:        n.Host,
		Port:              n.Orderer.Port,
		TLSCert:           filepath.Join(node, "tls", "cert.pem"),
		TLSKey:            filepath.Join(node, "tls", "key.pem"),
		TLSRootCert:       l.tlsCA(n),
		MSPID:             n.MSPID,
		MSPDir:            filepath.Join(node, "msp"),
		DataDir:           l.OrdererDataDir(n),
		OperationsAddress: n.OrdererOperationsAddress(),
		AdminAddress:      n.OrdererAdminAddress(),
		ClientCA:          l.tlsClientCA(n),
	}
	if profiling() {
		o.ProfileAddress = profileAddress(n, n.Orderer.OperationsPort)
	}
	return o
}

// writeOrdererConfig adapts the release's orderer.yaml to an NMI's orderer.
func (l Layout) writeOrdererConfig(n *topology.NMI) error {
	sample, err := l.sample("orderer.yaml")
	if err != nil {
		return err
	}
	b, err := fabricconfig.OrdererConfig(sample, l.ordererConfig(n))
	if err != nil {
		return fmt.Errorf("%s orderer config: %w", n.Name, err)
	}
	dir := l.ordererDir(n)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "orderer.yaml"), b, 0o644)
}

// orgDefinition is an NMI as the channel configuration knows it, built from
// what the NMI exported.
func (l Layout) orgDefinition(n *topology.NMI) fabricconfig.Organization {
	var orderer string
	if n.Orderer != nil {
		orderer = n.OrdererAddress()
	}
	return fabricconfig.NewOrganization(n.Name, n.MSPID, filepath.Join(l.exchangeDir(n), "msp"),
		fabricconfig.AnchorPeer{Host: n.Host, Port: n.Peer.Port}, orderer)
}

// channelConfig is the channel's genesis configuration for the topology:
// every NMI a member, every orderer a consenter (IDs in topology order).
func (l Layout) channelConfig(t *topology.Topology) fabricconfig.Channel {
	d := t.Ordering.Detection
	c := fabricconfig.Channel{BatchInterval: t.Ordering.BatchInterval, MaxMessageCount: t.Ordering.MaxMessageCount,
		Detection: fabricconfig.Detection{LeaderHeartbeatTimeout: d.LeaderHeartbeatTimeout, LeaderHeartbeatCount: d.LeaderHeartbeatCount,
			RequestForwardTimeout: d.RequestForwardTimeout, RequestComplainTimeout: d.RequestComplainTimeout,
			ViewChangeResendInterval: d.ViewChangeResendInterval, ViewChangeTimeout: d.ViewChangeTimeout, SpeedUpViewChange: d.SpeedUpViewChange}}
	for i := range t.NMIs {
		c.Organizations = append(c.Organizations, l.orgDefinition(&t.NMIs[i]))
	}
	for i, n := range t.Orderers() {
		c.OrdererOrganizations = append(c.OrdererOrganizations, l.orgDefinition(n))
		ex := l.exchangeDir(n)
		c.Consenters = append(c.Consenters, fabricconfig.Consenter{
			ID: i + 1, Host: n.Host, Port: n.Orderer.Port, MSPID: n.MSPID,
			Identity:      filepath.Join(ex, "orderer", "identity.pem"),
			ClientTLSCert: filepath.Join(ex, "orderer", "tls.pem"),
			ServerTLSCert: filepath.Join(ex, "orderer", "tls.pem"),
		})
	}
	return c
}

// writeConfigTx writes configtx.yaml for the channel's genesis block and
// returns its directory.
func (l Layout) writeConfigTx(t *topology.Topology) (string, error) {
	b, err := fabricconfig.ConfigTx(l.channelConfig(t))
	if err != nil {
		return "", err
	}
	dir := l.channelDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "configtx.yaml"), b, 0o644)
}

// EnvProfile, set to 1 when the consortium is brought up, has every peer,
// orderer and chaincode server serve Go's pprof, on its operations port + 40
// (chaincode server: its port + 40), for finding where CPU goes under load.
const EnvProfile = "PKI_PROFILE"

func profiling() bool { return os.Getenv(EnvProfile) == "1" }

func profileAddress(n *topology.NMI, port int) string {
	return net.JoinHostPort(n.Host, strconv.Itoa(port+40))
}
