package consortium

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/explorer/config"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/credentials"
	"github.com/inter-nmi/pki/network/pkg/gateway"
	"github.com/inter-nmi/pki/network/pkg/health"
	"github.com/inter-nmi/pki/network/pkg/msp"
	"github.com/inter-nmi/pki/network/pkg/supervise"
	"github.com/inter-nmi/pki/network/pkg/topology"
	"github.com/inter-nmi/pki/registry-api/api"
)

// The explorer runs beside the first NMI of the topology, reads the channel
// from its peer with its auditor identity (read-only), and trusts that peer
// for nothing it can check itself: block 0 must be the genesis block the
// consortium made (its hash is pinned in the configuration), and it
// verifies the hash chain and the orderers' BFT signatures on every block.
const explorerProc = "explorer"

// ExplorerProcess is the explorer's name among Processes.
const ExplorerProcess = explorerProc

func (l Layout) explorerDir() string { return filepath.Join(l.Root, "explorer") }

// ExplorerIndex is the explorer's index of the channel, which it rebuilds
// from block 0 when the file is missing.
func (l Layout) ExplorerIndex() string { return filepath.Join(l.explorerDir(), "explorer.db") }

// SurveillanceCredentialsDir holds the token of market surveillance, an
// auditor that belongs to no NMI.
func (l Layout) SurveillanceCredentialsDir() string {
	return filepath.Join(l.Root, "credentials", "surveillance")
}

// ExplorerURL is where the explorer answers.
func ExplorerURL(t *topology.Topology) string { return "https://" + t.ExplorerAddress() }

// ExplorerHost is the NMI that hosts the explorer.
func ExplorerHost(t *topology.Topology) *topology.NMI { return &t.NMIs[0] }

func (nw *Network) prepareExplorer() (string, error) {
	t := nw.Topology
	host := ExplorerHost(t)
	org, err := msp.Open(nw.CryptoDir(host), host.MSPID, host.Domain, host.Country)
	if err != nil {
		return "", err
	}
	dir := nw.explorerDir()
	name := "explorer." + host.Domain
	if err := org.ServerTLSPair(filepath.Join(dir, "tls"), name, uniq(name, host.Host, "localhost", "127.0.0.1")); err != nil {
		return "", fmt.Errorf("explorer TLS: %w", err)
	}
	surveillance := filepath.Join(dir, "surveillance-credentials.json")
	if err := credentials.ProvisionRoles("surveillance", surveillance, nw.SurveillanceCredentialsDir(), api.RoleAuditor); err != nil {
		return "", fmt.Errorf("explorer credentials: %w", err)
	}
	genesis, err := nw.genesisHash(t.Channel)
	if err != nil {
		return "", fmt.Errorf("explorer: %w", err)
	}
	identity := filepath.Join(nw.user(host, UserAuditor), "msp")
	cfg := &config.Config{
		Listen: t.ExplorerAddress(), Channel: t.Channel, GenesisBlockHash: genesis,
		Peer:        gateway.Peer{Address: host.PeerAddress(), HostName: host.PeerHost(), TLSRootCert: nw.tlsCA(host)},
		Identity:    gateway.Identity{MSPID: host.MSPID, Cert: filepath.Join(identity, "signcerts", "cert.pem"), Key: filepath.Join(identity, "keystore", "priv_sk")},
		Credentials: []string{surveillance},
		Data:        nw.ExplorerIndex(),
		LogLevel:    "info",
	}
	cfg.TLS.Cert, cfg.TLS.Key = filepath.Join(dir, "tls", "cert.pem"), filepath.Join(dir, "tls", "key.pem")
	for i := range t.NMIs {
		n := &t.NMIs[i]
		// Every NMI's auditors sign in with their registry credentials.
		cfg.Credentials = append(cfg.Credentials, filepath.Join(nw.registryDir(n), "credentials.json"))
		cfg.Nodes = append(cfg.Nodes, health.Node{Name: n.PeerHost(), Role: "peer", NMI: n.Name,
			Address: n.PeerOperationsAddress(), TLSRootCert: nw.exchangedTLSCA(n)})
		if n.Orderer != nil {
			cfg.Nodes = append(cfg.Nodes, health.Node{Name: n.OrdererHost(), Role: "orderer", NMI: n.Name,
				Address: n.OrdererOperationsAddress(), TLSRootCert: nw.exchangedTLSCA(n)})
		}
	}
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "explorer.yaml")
	return path, cfg.Save(path)
}

// genesisHash is the header hash of the channel's genesis block as the
// consortium made it (configtxgen), which the explorer pins: it then takes
// block 0, and so the orderers it checks every signature against, from
// this file rather than from the peer it reads.
func (l Layout) genesisHash(channel string) (string, error) {
	path := l.GenesisBlock(channel)
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("genesis block: %w", err)
	}
	var b common.Block
	if err := proto.Unmarshal(raw, &b); err != nil {
		return "", fmt.Errorf("genesis block %s: %w", path, err)
	}
	h, err := chain.GenesisHash(&b)
	if err != nil {
		return "", fmt.Errorf("genesis block %s: %w", path, err)
	}
	return hex.EncodeToString(h), nil
}

func (nw *Network) startExplorer(ctx context.Context) error {
	path, err := nw.prepareExplorer()
	if err != nil {
		return err
	}
	if _, err := nw.procs().Start(supervise.Process{Name: explorerProc, Bin: nw.bin("explorer"), Dir: nw.explorerDir(), Args: []string{"-config", path},
		Netns: nw.namespace(ExplorerHost(nw.Topology))}); err != nil {
		return err
	}
	return nw.waitFor(ctx, explorerProc, nodeStartTimeout, func(ctx context.Context) error {
		return nw.explorerHealthy(ctx, nw.Topology)
	})
}

// StartExplorer starts the explorer if it is not running and waits until
// it answers its health check; it resumes its index from its checkpoint.
func (nw *Network) StartExplorer(ctx context.Context) error { return nw.startExplorer(ctx) }

// StopExplorer stops the explorer: SIGTERM, then SIGKILL if it has not
// exited within the grace every node has. Stopping it when it is not
// running is no error.
func (nw *Network) StopExplorer(ctx context.Context) error {
	_, err := nw.procs().Stop(ctx, explorerProc, stopGrace)
	return err
}

func (l Layout) explorerHealthy(ctx context.Context, t *topology.Topology) error {
	return healthz(ctx, t.ExplorerAddress(), l.tlsCA(ExplorerHost(t)))
}
