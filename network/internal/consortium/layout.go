// Package consortium brings the Inter-NMI Fabric network up on native
// processes and takes it down again: each NMI's crypto material generated on
// its own side, a BFT ordering service, the metrology channel made through
// the channel participation API, and the meter-PKI chaincode deployed as a
// service through the Fabric lifecycle.
//
// Every step first looks at what exists and does only what is missing, so a
// second Up reuses the running network.
package consortium

import (
	"path/filepath"
	"strings"

	"github.com/inter-nmi/pki/network/pkg/msp"
	"github.com/inter-nmi/pki/network/pkg/topology"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// Layout places everything a consortium run writes.
type Layout struct {
	// Root is the run directory: crypto, configuration, ledgers, logs, PIDs.
	Root string
	// Bin holds peer, orderer, configtxgen, osnadmin, pki-chaincode and the
	// sampleconfig/ of the Fabric release they were built from.
	Bin string
	// Builder is the external chaincode builder (its bin/ holds detect,
	// build and release).
	Builder string
	// Namespaces runs each NMI on a host of its own: a network namespace
	// with the NMI's address from the topology (see package netns).
	Namespaces bool
	// Latency, with Namespaces, is a table of round trips between the NMIs'
	// sites (network/latency.yaml) that the links between their hosts are
	// given (see package wan).
	Latency string
}

// namespace is the network namespace an NMI's processes and commands run
// in, or "" when every NMI shares this host.
func (l Layout) namespace(n *topology.NMI) string {
	if !l.Namespaces {
		return ""
	}
	return "pki-" + strings.ToLower(n.Name)
}

// Users every NMI enrols: its admin, and one user per role the chaincode
// knows, named after the role its certificate carries.
const (
	UserAdmin     = "Admin"
	UserRegistrar = wire.RoleRegistrar
	UserAuditor   = wire.RoleAuditor
	UserIngest    = wire.RoleIngest
)

func (l Layout) nmiDir(n *topology.NMI) string {
	return filepath.Join(l.Root, "nmi", strings.ToLower(n.Name))
}

// CryptoDir is the NMI's private organisation directory (see package msp).
func (l Layout) CryptoDir(n *topology.NMI) string { return filepath.Join(l.nmiDir(n), "crypto") }

func (l Layout) peerDir(n *topology.NMI) string      { return filepath.Join(l.nmiDir(n), "peer") }
func (l Layout) ordererDir(n *topology.NMI) string   { return filepath.Join(l.nmiDir(n), "orderer") }
func (l Layout) chaincodeDir(n *topology.NMI) string { return filepath.Join(l.nmiDir(n), "chaincode") }
func (l Layout) registryDir(n *topology.NMI) string  { return filepath.Join(l.nmiDir(n), "registry") }

// PeerDataDir is the peer's fileSystemPath: its ledgers (ledgersData/), its
// snapshots and the chaincode installed on it.
func (l Layout) PeerDataDir(n *topology.NMI) string { return filepath.Join(l.peerDir(n), "data") }

// OrdererDataDir holds the orderer's block ledger (ledger/) and its SmartBFT
// write-ahead log and snapshots (smartbft/wal, smartbft/snapshot).
func (l Layout) OrdererDataDir(n *topology.NMI) string { return filepath.Join(l.ordererDir(n), "data") }

// RegistryDatabase is the registry's own database: the answers it keeps to
// recognise a re-delivered request (idempotency records).
func (l Layout) RegistryDatabase(n *topology.NMI) string {
	return filepath.Join(l.registryDir(n), "registry.db")
}

// RegistryIndex is the registry's index of its peer's blocks (readings and
// refusals), which it rebuilds from block 0 when the file is missing.
func (l Layout) RegistryIndex(n *topology.NMI) string {
	return filepath.Join(l.registryDir(n), "readings.db")
}

// CredentialsDir holds the NMI's registry tokens made for local use, one file
// per role (operator.token, ingest.token, auditor.token), readable only by
// their owner.
func (l Layout) CredentialsDir(n *topology.NMI) string {
	return filepath.Join(l.Root, "credentials", strings.ToLower(n.Name))
}

// exchangeDir holds what an NMI shares with the consortium: its public MSP and
// its orderer's public certificates. Nothing private is ever copied here.
func (l Layout) exchangeDir(n *topology.NMI) string {
	return filepath.Join(l.Root, "exchange", strings.ToLower(n.Name))
}

func (l Layout) channelDir() string { return filepath.Join(l.Root, "channel") }

// GenesisBlock is the channel's configuration block 0.
func (l Layout) GenesisBlock(channel string) string {
	return filepath.Join(l.channelDir(), channel+".block")
}

// ProfileFile is the connection profile clients and tests read.
func (l Layout) ProfileFile() string { return filepath.Join(l.Root, "network.json") }

func (l Layout) bin(name string) string { return filepath.Join(l.Bin, name) }

func (l Layout) sampleConfig(file string) string { return filepath.Join(l.Bin, "sampleconfig", file) }

// Paths of an NMI's identities and nodes inside its crypto directory.
func (l Layout) peerNode(n *topology.NMI) string {
	return filepath.Join(l.CryptoDir(n), "peers", "peer0")
}

func (l Layout) ordererNode(n *topology.NMI) string {
	return filepath.Join(l.CryptoDir(n), "orderers", "orderer0")
}

func (l Layout) user(n *topology.NMI, name string) string {
	return filepath.Join(l.CryptoDir(n), "users", name)
}

func (l Layout) tlsCA(n *topology.NMI) string {
	return filepath.Join(l.CryptoDir(n), "tlsca", "cert.pem")
}

// tlsClientCA is the root of the admin's TLS client certificate, which the
// orderer's channel participation API and the operations endpoints accept
// (the chaincode service accepts its peer's only, from CryptoDir/chaincodeca).
func (l Layout) tlsClientCA(n *topology.NMI) string {
	return filepath.Join(l.CryptoDir(n), "tlsclientca", "cert.pem")
}

// TLSClientCACert is the NMI's TLS client root (see tlsClientCA).
func (l Layout) TLSClientCACert(n *topology.NMI) string { return l.tlsClientCA(n) }

// TLSCACert is the NMI's TLS root: its peer, orderer, operations endpoints
// and registry present certificates from it.
func (l Layout) TLSCACert(n *topology.NMI) string { return l.tlsCA(n) }

// exchanged TLS root of another NMI, as every NMI can read it.
func (l Layout) exchangedTLSCA(n *topology.NMI) string {
	return filepath.Join(l.exchangeDir(n), "msp", "tlscacerts", "tlsca.pem")
}

// ProcessName is the name of one of an NMI's nodes (NodePeer, ...) among
// Processes: the NMI's name in lower case and the node.
func ProcessName(nmi, node string) string { return strings.ToLower(nmi) + "-" + node }

func peerProc(n *topology.NMI) string      { return ProcessName(n.Name, NodePeer) }
func ordererProc(n *topology.NMI) string   { return ProcessName(n.Name, NodeOrderer) }
func chaincodeProc(n *topology.NMI) string { return ProcessName(n.Name, NodeChaincode) }
func registryProc(n *topology.NMI) string  { return ProcessName(n.Name, NodeRegistry) }

// identities each NMI enrols besides its nodes.
var users = []msp.Identity{
	{Name: UserAdmin, OU: msp.OUAdmin},
	{Name: UserRegistrar, OU: msp.OUClient, Attributes: map[string]string{wire.RoleAttribute: wire.RoleRegistrar}},
	{Name: UserAuditor, OU: msp.OUClient, Attributes: map[string]string{wire.RoleAttribute: wire.RoleAuditor}},
	{Name: UserIngest, OU: msp.OUClient, Attributes: map[string]string{wire.RoleAttribute: wire.RoleIngest}},
}
