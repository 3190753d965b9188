package consortium

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/inter-nmi/pki/network/topology"
)

// writePeerConfig adapts the release's core.yaml to an NMI's peer.
func (l Layout) writePeerConfig(t *topology.Topology, n *topology.NMI) error {
	doc, err := loadYAML(l.sampleConfig("core.yaml"))
	if err != nil {
		return err
	}
	node, dir := l.peerNode(n), l.peerDir(n)
	tlsca := l.tlsCA(n)
	err = doc.setAll([]setting{
		{"peer.id", n.PeerHost()},
		{"peer.networkId", t.Channel},
		{"peer.listenAddress", n.PeerAddress()},
		{"peer.address", n.PeerAddress()},
		{"peer.chaincodeListenAddress", n.PeerChaincodeAddress()},
		{"peer.chaincodeAddress", n.PeerChaincodeAddress()},
		{"peer.gossip.bootstrap", n.PeerAddress()},
		{"peer.gossip.externalEndpoint", n.PeerAddress()},
		// The first probe of another NMI's anchor peer fails while that
		// peer is still joining; retry quickly instead of after 25 s.
		{"peer.gossip.reconnectInterval", "2s"},
		{"peer.tls.enabled", true},
		{"peer.tls.cert.file", filepath.Join(node, "tls", "cert.pem")},
		{"peer.tls.key.file", filepath.Join(node, "tls", "key.pem")},
		{"peer.tls.rootcert.file", tlsca},
		{"peer.tls.clientRootCAs.files", []string{tlsca}},
		{"peer.fileSystemPath", filepath.Join(dir, "data")},
		{"peer.mspConfigPath", filepath.Join(node, "msp")},
		{"peer.localMspId", n.MSPID},
		// Load: many registry clients and concentrators share one gateway.
		{"peer.limits.concurrency.gatewayService", 5000},
		{"ledger.snapshots.rootDir", filepath.Join(dir, "data", "snapshots")},
		// No Docker: chaincode runs as a service, through the external builder.
		{"vm.endpoint", ""},
		{"chaincode.externalBuilders", []map[string]any{{"name": "ccaas", "path": l.Builder}}},
		{"operations.listenAddress", n.PeerOperationsAddress()},
		{"operations.tls.enabled", true},
		{"operations.tls.cert.file", filepath.Join(node, "tls", "cert.pem")},
		{"operations.tls.key.file", filepath.Join(node, "tls", "key.pem")},
		// /healthz stays open; /metrics and /logspec want a client
		// certificate from the NMI's TLS client CA (its admin's).
		{"operations.tls.clientRootCAs.files", []string{l.tlsClientCA(n)}},
		{"metrics.provider", "prometheus"},
	})
	if err == nil && profiling() {
		err = doc.setAll([]setting{{"peer.profile.enabled", true}, {"peer.profile.listenAddress", profileAddress(n, n.Peer.OperationsPort)}})
	}
	if err != nil {
		return fmt.Errorf("%s peer config: %w", n.Name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return doc.write(filepath.Join(dir, "core.yaml"))
}

// writeOrdererConfig adapts the release's orderer.yaml to an NMI's orderer.
func (l Layout) writeOrdererConfig(n *topology.NMI) error {
	doc, err := loadYAML(l.sampleConfig("orderer.yaml"))
	if err != nil {
		return err
	}
	node, dir := l.ordererNode(n), l.ordererDir(n)
	cert, key, tlsca := filepath.Join(node, "tls", "cert.pem"), filepath.Join(node, "tls", "key.pem"), l.tlsCA(n)
	err = doc.setAll([]setting{
		{"General.ListenAddress", n.Host},
		{"General.ListenPort", n.Orderer.Port},
		{"General.TLS.Enabled", true},
		{"General.TLS.PrivateKey", key},
		{"General.TLS.Certificate", cert},
		{"General.TLS.RootCAs", []string{tlsca}},
		// BFT cluster traffic shares the main listener; these are the
		// orderer's client credentials towards the other consenters.
		{"General.Cluster.ClientCertificate", cert},
		{"General.Cluster.ClientPrivateKey", key},
		{"General.LocalMSPDir", filepath.Join(node, "msp")},
		{"General.LocalMSPID", n.MSPID},
		{"FileLedger.Location", filepath.Join(dir, "data", "ledger")},
		{"Consensus.WALDir", filepath.Join(dir, "data", "smartbft", "wal")},
		{"Consensus.SnapDir", filepath.Join(dir, "data", "smartbft", "snapshot")},
		{"Operations.ListenAddress", n.OrdererOperationsAddress()},
		{"Operations.TLS.Enabled", true},
		{"Operations.TLS.Certificate", cert},
		{"Operations.TLS.PrivateKey", key},
		{"Operations.TLS.ClientRootCAs", []string{l.tlsClientCA(n)}},
		{"Metrics.Provider", "prometheus"},
		// The channel participation API: mutual TLS, only clients of this
		// NMI's TLS client CA (its admin) may call it; the servers'
		// certificates from its TLS CA are refused.
		{"Admin.ListenAddress", n.OrdererAdminAddress()},
		{"Admin.TLS.Enabled", true},
		{"Admin.TLS.Certificate", cert},
		{"Admin.TLS.PrivateKey", key},
		{"Admin.TLS.ClientAuthRequired", true},
		{"Admin.TLS.ClientRootCAs", []string{l.tlsClientCA(n)}},
		{"ChannelParticipation.Enabled", true},
	})
	if err == nil && profiling() {
		err = doc.setAll([]setting{{"General.Profile.Enabled", true}, {"General.Profile.Address", profileAddress(n, n.Orderer.OperationsPort)}})
	}
	if err != nil {
		return fmt.Errorf("%s orderer config: %w", n.Name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return doc.write(filepath.Join(dir, "orderer.yaml"))
}

// The channel configuration, as configtxgen reads it.
type (
	policy struct {
		Type string `yaml:"Type"`
		Rule string `yaml:"Rule"`
	}
	anchor struct {
		Host string `yaml:"Host"`
		Port int    `yaml:"Port"`
	}
	organization struct {
		Name             string            `yaml:"Name"`
		ID               string            `yaml:"ID"`
		MSPDir           string            `yaml:"MSPDir"`
		Policies         map[string]policy `yaml:"Policies"`
		OrdererEndpoints []string          `yaml:"OrdererEndpoints,omitempty"`
		AnchorPeers      []anchor          `yaml:"AnchorPeers,omitempty"`
	}
	consenter struct {
		ID            int    `yaml:"ID"`
		Host          string `yaml:"Host"`
		Port          int    `yaml:"Port"`
		MSPID         string `yaml:"MSPID"`
		Identity      string `yaml:"Identity"`
		ClientTLSCert string `yaml:"ClientTLSCert"`
		ServerTLSCert string `yaml:"ServerTLSCert"`
	}
)

func implicit(rule string) policy { return policy{Type: "ImplicitMeta", Rule: rule} }

func signature(rule string) policy { return policy{Type: "Signature", Rule: rule} }

// orgDefinition is an NMI as the channel configuration knows it, built from
// what the NMI exported.
func (l Layout) orgDefinition(n *topology.NMI) organization {
	id := n.MSPID
	roles := func(rs ...string) string {
		parts := make([]string, len(rs))
		for i, r := range rs {
			parts[i] = fmt.Sprintf("'%s.%s'", id, r)
		}
		return "OR(" + strings.Join(parts, ", ") + ")"
	}
	org := organization{
		Name:   n.Name,
		ID:     id,
		MSPDir: filepath.Join(l.exchangeDir(n), "msp"),
		Policies: map[string]policy{
			"Readers":     signature(roles("admin", "peer", "client", "orderer")),
			"Writers":     signature(roles("admin", "client", "orderer")),
			"Admins":      signature(roles("admin")),
			"Endorsement": signature(roles("peer")),
		},
		AnchorPeers: []anchor{{Host: n.Host, Port: n.Peer.Port}},
	}
	if n.Orderer != nil {
		org.OrdererEndpoints = []string{n.OrdererAddress()}
	}
	return org
}

// writeConfigTx writes configtx.yaml for the channel's genesis block.
func (l Layout) writeConfigTx(t *topology.Topology) (string, error) {
	var orgs, ordererOrgs []organization
	var consenters []consenter
	for i := range t.NMIs {
		orgs = append(orgs, l.orgDefinition(&t.NMIs[i]))
	}
	for i, n := range t.Orderers() {
		ordererOrgs = append(ordererOrgs, l.orgDefinition(n))
		ex := l.exchangeDir(n)
		consenters = append(consenters, consenter{
			ID: i + 1, Host: n.Host, Port: n.Orderer.Port, MSPID: n.MSPID,
			Identity:      filepath.Join(ex, "orderer", "identity.pem"),
			ClientTLSCert: filepath.Join(ex, "orderer", "tls.pem"),
			ServerTLSCert: filepath.Join(ex, "orderer", "tls.pem"),
		})
	}
	standard := map[string]policy{
		"Readers": implicit("ANY Readers"),
		"Writers": implicit("ANY Writers"),
		"Admins":  implicit("MAJORITY Admins"),
	}
	with := func(extra map[string]policy) map[string]policy {
		out := map[string]policy{}
		for k, v := range standard {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	o := t.Ordering
	profile := map[string]any{
		"Policies":     standard,
		"Capabilities": map[string]bool{"V3_0": true},
		"Orderer": map[string]any{
			"OrdererType":  "BFT",
			"BatchTimeout": o.BatchInterval.String(),
			"BatchSize": map[string]any{
				"MaxMessageCount":   o.MaxMessageCount,
				"AbsoluteMaxBytes":  "64 MB",
				"PreferredMaxBytes": "4 MB",
			},
			"SmartBFT": map[string]any{
				"RequestBatchMaxCount":      o.MaxMessageCount,
				"RequestBatchMaxBytes":      64 << 20,
				"RequestBatchMaxInterval":   o.BatchInterval.String(),
				"IncomingMessageBufferSize": 200,
				"RequestPoolSize":           100000,
				"RequestForwardTimeout":     "2s",
				"RequestComplainTimeout":    "10s",
				"RequestAutoRemoveTimeout":  "3m",
				"ViewChangeResendInterval":  "5s",
				"ViewChangeTimeout":         "20s",
				"LeaderHeartbeatTimeout":    "10s",
				"LeaderHeartbeatCount":      10,
				"CollectTimeout":            "1s",
			},
			"ConsenterMapping": consenters,
			"Organizations":    ordererOrgs,
			"Policies":         with(map[string]policy{"BlockValidation": implicit("ANY Writers")}),
			"Capabilities":     map[string]bool{"V2_0": true},
		},
		"Application": map[string]any{
			"Organizations": orgs,
			"Policies": with(map[string]policy{
				"LifecycleEndorsement": implicit("MAJORITY Endorsement"),
				"Endorsement":          implicit("MAJORITY Endorsement"),
			}),
			"Capabilities": map[string]bool{"V2_5": true},
		},
	}
	b, err := yaml.Marshal(map[string]any{"Profiles": map[string]any{"Metrology": profile}})
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
