package fabricconfig

import "path/filepath"

// Peer is what a peer's core.yaml says about the peer.
type Peer struct {
	// ID is the peer's name (peer.id): its host name.
	ID string
	// NetworkID is peer.networkId: the channel's name.
	NetworkID string
	// Address (host:port) is where the peer listens, the address it
	// announces, and its gossip bootstrap and external endpoint.
	Address string
	// ChaincodeAddress is where the peer listens for chaincode.
	ChaincodeAddress string
	// OperationsAddress serves /healthz, /metrics and /logspec.
	OperationsAddress string
	MSPID             string
	// MSPDir is the peer's local MSP.
	MSPDir string
	// TLSCert and TLSKey are the peer's TLS pair, which its operations
	// endpoint presents too.
	TLSCert, TLSKey string
	// TLSRootCert is the NMI's TLS CA: the peer's root and the roots of the
	// clients it accepts.
	TLSRootCert string
	// OperationsClientCA is the CA whose client certificates /metrics and
	// /logspec accept (the NMI's TLS client CA); /healthz stays open.
	OperationsClientCA string
	// DataDir holds the ledger (peer.fileSystemPath) and, under snapshots/,
	// its snapshots.
	DataDir string
	// ExternalBuilder is the directory of the chaincode-as-a-service
	// builder (its bin/ holds detect, build and release).
	ExternalBuilder string
	// ProfileAddress, if set, has the peer serve Go's pprof there.
	ProfileAddress string
}

// Settings are the values of core.yaml the peer decides, in the order they
// are applied.
func (p Peer) Settings() []Setting {
	s := []Setting{
		{"peer.id", p.ID},
		{"peer.networkId", p.NetworkID},
		{"peer.listenAddress", p.Address},
		{"peer.address", p.Address},
		{"peer.chaincodeListenAddress", p.ChaincodeAddress},
		{"peer.chaincodeAddress", p.ChaincodeAddress},
		{"peer.gossip.bootstrap", p.Address},
		{"peer.gossip.externalEndpoint", p.Address},
		// The first probe of another NMI's anchor peer fails while that
		// peer is still joining; retry quickly instead of after 25 s.
		{"peer.gossip.reconnectInterval", "2s"},
		{"peer.tls.enabled", true},
		{"peer.tls.cert.file", p.TLSCert},
		{"peer.tls.key.file", p.TLSKey},
		{"peer.tls.rootcert.file", p.TLSRootCert},
		{"peer.tls.clientRootCAs.files", []string{p.TLSRootCert}},
		{"peer.fileSystemPath", p.DataDir},
		{"peer.mspConfigPath", p.MSPDir},
		{"peer.localMspId", p.MSPID},
		// Load: many registry clients and concentrators share one gateway.
		{"peer.limits.concurrency.gatewayService", 5000},
		{"ledger.snapshots.rootDir", filepath.Join(p.DataDir, "snapshots")},
		// No Docker: chaincode runs as a service, through the external builder.
		{"vm.endpoint", ""},
		{"chaincode.externalBuilders", []map[string]any{{"name": "ccaas", "path": p.ExternalBuilder}}},
		{"operations.listenAddress", p.OperationsAddress},
		{"operations.tls.enabled", true},
		{"operations.tls.cert.file", p.TLSCert},
		{"operations.tls.key.file", p.TLSKey},
		// /healthz stays open; /metrics and /logspec want a client
		// certificate from the NMI's TLS client CA (its admin's).
		{"operations.tls.clientRootCAs.files", []string{p.OperationsClientCA}},
		{"metrics.provider", "prometheus"},
	}
	if p.ProfileAddress != "" {
		s = append(s, Setting{"peer.profile.enabled", true}, Setting{"peer.profile.listenAddress", p.ProfileAddress})
	}
	return s
}

// PeerConfig is core.yaml for the peer: the sample with the peer's settings.
func PeerConfig(sample *Sample, p Peer) ([]byte, error) { return sample.Render(p.Settings()) }

// Orderer is what an orderer's orderer.yaml says about the orderer.
type Orderer struct {
	// ListenHost and Port are where the orderer serves clients and, for
	// BFT, the other consenters.
	ListenHost string
	Port       int
	// TLSCert and TLSKey are the orderer's TLS pair: its server
	// certificate, its client certificate towards the other consenters,
	// and what its operations and admin endpoints present.
	TLSCert, TLSKey string
	// TLSRootCert is the NMI's TLS CA.
	TLSRootCert string
	MSPID       string
	// MSPDir is the orderer's local MSP.
	MSPDir string
	// DataDir holds the block ledger (ledger/) and the SmartBFT write-ahead
	// log and snapshots (smartbft/wal, smartbft/snapshot).
	DataDir string
	// OperationsAddress serves /healthz and /metrics.
	OperationsAddress string
	// AdminAddress serves the channel participation API.
	AdminAddress string
	// ClientCA is the CA whose client certificates the admin endpoint
	// (always) and the operations endpoint's /metrics accept: the NMI's TLS
	// client CA.
	ClientCA string
	// ProfileAddress, if set, has the orderer serve Go's pprof there.
	ProfileAddress string
}

// Settings are the values of orderer.yaml the orderer decides, in the
// order they are applied.
func (o Orderer) Settings() []Setting {
	s := []Setting{
		{"General.ListenAddress", o.ListenHost},
		{"General.ListenPort", o.Port},
		{"General.TLS.Enabled", true},
		{"General.TLS.PrivateKey", o.TLSKey},
		{"General.TLS.Certificate", o.TLSCert},
		{"General.TLS.RootCAs", []string{o.TLSRootCert}},
		// BFT cluster traffic shares the main listener; these are the
		// orderer's client credentials towards the other consenters.
		{"General.Cluster.ClientCertificate", o.TLSCert},
		{"General.Cluster.ClientPrivateKey", o.TLSKey},
		{"General.LocalMSPDir", o.MSPDir},
		{"General.LocalMSPID", o.MSPID},
		{"FileLedger.Location", filepath.Join(o.DataDir, "ledger")},
		{"Consensus.WALDir", filepath.Join(o.DataDir, "smartbft", "wal")},
		{"Consensus.SnapDir", filepath.Join(o.DataDir, "smartbft", "snapshot")},
		{"Operations.ListenAddress", o.OperationsAddress},
		{"Operations.TLS.Enabled", true},
		{"Operations.TLS.Certificate", o.TLSCert},
		{"Operations.TLS.PrivateKey", o.TLSKey},
		{"Operations.TLS.ClientRootCAs", []string{o.ClientCA}},
		{"Metrics.Provider", "prometheus"},
		// The channel participation API: mutual TLS, only clients of this
		// NMI's TLS client CA (its admin) may call it; the servers'
		// certificates from its TLS CA are refused.
		{"Admin.ListenAddress", o.AdminAddress},
		{"Admin.TLS.Enabled", true},
		{"Admin.TLS.Certificate", o.TLSCert},
		{"Admin.TLS.PrivateKey", o.TLSKey},
		{"Admin.TLS.ClientAuthRequired", true},
		{"Admin.TLS.ClientRootCAs", []string{o.ClientCA}},
		{"ChannelParticipation.Enabled", true},
	}
	if o.ProfileAddress != "" {
		s = append(s, Setting{"General.Profile.Enabled", true}, Setting{"General.Profile.Address", o.ProfileAddress})
	}
	return s
}

// OrdererConfig is orderer.yaml for the orderer: the sample with the
// orderer's settings.
func OrdererConfig(sample *Sample, o Orderer) ([]byte, error) { return sample.Render(o.Settings()) }
