package consortium

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"

	"github.com/inter-nmi/pki/network/topology"
)

// Network is a consortium run: a topology placed in a layout.
type Network struct {
	Layout
	Topology *topology.Topology
	// Progress receives one line per step; nil discards.
	Progress io.Writer
}

func (nw *Network) say(format string, args ...any) {
	if nw.Progress != nil {
		fmt.Fprintf(nw.Progress, format+"\n", args...)
	}
}

// step runs one stage of Up and reports how long it took.
func (nw *Network) step(name string, f func() error) error {
	start := time.Now()
	nw.say("  %-44s ...", name)
	if err := f(); err != nil {
		nw.say("  %-44s FAILED", name)
		return fmt.Errorf("%s: %w", name, err)
	}
	nw.say("  %-44s done (%.1fs)", name, time.Since(start).Seconds())
	return nil
}

// Up brings the consortium to a live channel with the chaincode committed and
// answering on every NMI's gateway. Each stage does only what is missing.
func (nw *Network) Up(ctx context.Context) error {
	t := nw.Topology
	for _, tool := range []string{"peer", "orderer", "configtxgen", "osnadmin", "pki-chaincode", "registry-api", "explorer", "sampleconfig/core.yaml"} {
		if _, err := os.Stat(nw.bin(tool)); err != nil {
			return fmt.Errorf("%s is missing in %s: build it first (make bin)", tool, nw.Bin)
		}
	}
	for _, script := range []string{"detect", "build", "release"} {
		if info, err := os.Stat(filepath.Join(nw.Builder, "bin", script)); err != nil || info.Mode()&0o111 == 0 {
			return fmt.Errorf("external builder %s/bin/%s is missing or not executable", nw.Builder, script)
		}
	}
	steps := []struct {
		name string
		f    func() error
	}{
		{"run directory " + nw.Root, nw.Prepare},
		{"hosts and ports", nw.hosts},
		{"crypto material, each NMI on its own side", nw.crypto},
		{"channel genesis block (configtxgen)", func() error { return nw.genesis(ctx) }},
		{"node configuration", nw.configure},
		{"orderers started and healthy", func() error { return nw.startOrderers(ctx) }},
		{"orderers joined to " + t.Channel + " (osnadmin)", func() error { return nw.joinOrderers(ctx) }},
		{"peers started and healthy", func() error { return nw.startPeers(ctx) }},
		{"peers joined to " + t.Channel, func() error { return nw.joinPeers(ctx) }},
		{"chaincode servers started", func() error { return nw.startChaincode(ctx) }},
		{"chaincode installed on every peer", func() error { return nw.forEach(ctx, nw.install) }},
		{"chaincode approved by every NMI", func() error { return nw.forEach(ctx, nw.approve) }},
		{"chaincode committed", func() error { return nw.commit(ctx) }},
		{"gateways ready on every NMI", func() error { return nw.ready(ctx) }},
		{"registries started and ready", func() error { return nw.startRegistries(ctx) }},
		{"explorer started", func() error { return nw.startExplorer(ctx) }},
	}
	for _, s := range steps {
		if err := nw.step(s.name, s.f); err != nil {
			return err
		}
	}
	return nil
}

func (nw *Network) crypto() error {
	for i := range nw.Topology.NMIs {
		if err := nw.GenerateCrypto(&nw.Topology.NMIs[i]); err != nil {
			return err
		}
	}
	return nw.writeProfile(nw.Topology)
}

func (nw *Network) genesis(ctx context.Context) error {
	block := nw.GenesisBlock(nw.Topology.Channel)
	if _, err := os.Stat(block); err == nil {
		return nil
	}
	dir, err := nw.writeConfigTx(nw.Topology)
	if err != nil {
		return err
	}
	_, err = nw.run(ctx, "", []string{"FABRIC_CFG_PATH=" + dir}, "configtxgen",
		"-profile", "Metrology", "-channelID", nw.Topology.Channel, "-outputBlock", block)
	return err
}

func (nw *Network) configure() error {
	for i := range nw.Topology.NMIs {
		n := &nw.Topology.NMIs[i]
		if err := nw.writePeerConfig(nw.Topology, n); err != nil {
			return err
		}
		if n.Orderer != nil {
			if err := nw.writeOrdererConfig(n); err != nil {
				return err
			}
		}
	}
	return nil
}

const nodeStartTimeout = 60 * time.Second

func (nw *Network) startOrderers(ctx context.Context) error {
	for _, n := range nw.Topology.Orderers() {
		if err := nw.StartOrderer(ctx, n.Name); err != nil {
			return err
		}
	}
	return nil
}

// StartOrderer starts one NMI's orderer (if it is not running) and waits
// until it reports healthy.
func (nw *Network) StartOrderer(ctx context.Context, name string) error {
	n, err := nw.Topology.NMI(name)
	if err != nil {
		return err
	}
	if n.Orderer == nil {
		return fmt.Errorf("%s runs no orderer", n.Name)
	}
	proc := ordererProc(n)
	if _, err := nw.start(process{name: proc, bin: nw.bin("orderer"), dir: nw.ordererDir(n), netns: nw.namespace(n),
		env: []string{"FABRIC_CFG_PATH=" + nw.ordererDir(n), "FABRIC_LOGGING_SPEC=info"}}); err != nil {
		return err
	}
	return nw.waitFor(ctx, proc, nodeStartTimeout, func(ctx context.Context) error {
		return nw.ordererHealthy(ctx, n)
	})
}

// StopOrderer stops one NMI's orderer, as a crash would.
func (nw *Network) StopOrderer(ctx context.Context, name string) error {
	n, err := nw.Topology.NMI(name)
	if err != nil {
		return err
	}
	_, err = nw.stop(ctx, ordererProc(n), 10*time.Second)
	return err
}

func (nw *Network) joinOrderers(ctx context.Context) error {
	block := nw.GenesisBlock(nw.Topology.Channel)
	for _, n := range nw.Topology.Orderers() {
		if status, _, err := nw.osnadmin(ctx, n, "channel", "list", "--channelID", nw.Topology.Channel); err != nil {
			return fmt.Errorf("%s orderer: %w", n.Name, err)
		} else if status == 200 {
			continue
		}
		status, body, err := nw.osnadmin(ctx, n, "channel", "join", "--channelID", nw.Topology.Channel, "--config-block", block)
		if err != nil {
			return fmt.Errorf("%s orderer: %w", n.Name, err)
		}
		if status != 201 {
			return fmt.Errorf("%s orderer refused to join: status %d: %s", n.Name, status, body)
		}
	}
	return nil
}

func (nw *Network) startPeers(ctx context.Context) error {
	for i := range nw.Topology.NMIs {
		if err := nw.launchPeer(&nw.Topology.NMIs[i]); err != nil {
			return err
		}
	}
	return nw.forEach(ctx, nw.awaitPeer)
}

// startPeer starts one NMI's peer (if not running) and waits for it.
func (nw *Network) startPeer(ctx context.Context, n *topology.NMI) error {
	if err := nw.launchPeer(n); err != nil {
		return err
	}
	return nw.awaitPeer(ctx, n)
}

func (nw *Network) launchPeer(n *topology.NMI) error {
	_, err := nw.start(process{name: peerProc(n), bin: nw.bin("peer"), args: []string{"node", "start"}, dir: nw.peerDir(n), netns: nw.namespace(n),
		env: []string{"FABRIC_CFG_PATH=" + nw.peerDir(n), "FABRIC_LOGGING_SPEC=info"}})
	return err
}

func (nw *Network) awaitPeer(ctx context.Context, n *topology.NMI) error {
	return nw.waitFor(ctx, peerProc(n), nodeStartTimeout, func(ctx context.Context) error {
		return nw.peerHealthy(ctx, n)
	})
}

func (nw *Network) joinPeers(ctx context.Context) error {
	return nw.forEach(ctx, nw.joinPeer)
}

// joinPeer joins an NMI's peer to the channel with the genesis block, unless
// it has joined; the peer then pulls every later block from the orderers.
func (nw *Network) joinPeer(ctx context.Context, n *topology.NMI) error {
	out, err := nw.peerCLI(ctx, n, "channel", "list")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == nw.Topology.Channel {
			return nil
		}
	}
	_, err = nw.peerCLI(ctx, n, "channel", "join", "-b", nw.GenesisBlock(nw.Topology.Channel))
	return err
}

// forEach runs f for every NMI concurrently and joins their errors.
func (nw *Network) forEach(ctx context.Context, f func(context.Context, *topology.NMI) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(nw.Topology.NMIs))
	for i := range nw.Topology.NMIs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			n := &nw.Topology.NMIs[i]
			if err := f(ctx, n); err != nil {
				errs[i] = fmt.Errorf("%s: %w", n.Name, err)
			}
		}(i)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// chaincodeLabel is the package label; every NMI packages its own connection
// details, so package IDs differ per NMI while the label is shared.
func (nw *Network) chaincodeLabel() string {
	c := nw.Topology.Chaincode
	return c.Name + "_" + c.Version
}

// chaincodePackage writes (once) the NMI's chaincode-as-a-service package and
// returns its path and package ID (label:SHA-256 of the package file, as
// peer lifecycle chaincode calculatepackageid computes it).
func (nw *Network) chaincodePackage(n *topology.NMI) (string, string, error) {
	path := filepath.Join(nw.chaincodeDir(n), "package.tar.gz")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := nw.writeChaincodePackage(n, path); err != nil {
			return "", "", err
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	sum := sha256.Sum256(b)
	return path, nw.chaincodeLabel() + ":" + hex.EncodeToString(sum[:]), nil
}

func (nw *Network) writeChaincodePackage(n *topology.NMI, path string) error {
	read := func(p string) (string, error) {
		b, err := os.ReadFile(p)
		return string(b), err
	}
	client := filepath.Join(nw.chaincodeDir(n), "client")
	key, err := read(filepath.Join(client, "key.pem"))
	if err != nil {
		return err
	}
	cert, err := read(filepath.Join(client, "cert.pem"))
	if err != nil {
		return err
	}
	root, err := read(nw.tlsCA(n))
	if err != nil {
		return err
	}
	connection, _ := json.MarshalIndent(map[string]any{
		"address":              n.ChaincodeAddress(),
		"dial_timeout":         "10s",
		"tls_required":         true,
		"client_auth_required": true,
		"client_key":           key,
		"client_cert":          cert,
		"root_cert":            root,
	}, "", "  ")
	code, err := targz(map[string][]byte{"connection.json": connection})
	if err != nil {
		return err
	}
	metadata, _ := json.Marshal(map[string]string{"type": "ccaas", "label": nw.chaincodeLabel()})
	pkg, err := targz(map[string][]byte{"metadata.json": metadata, "code.tar.gz": code})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// The package holds the peer's client key for the chaincode service.
	return os.WriteFile(path, pkg, 0o600)
}

// targz writes files in name order, with fixed metadata, so a package's
// bytes (and so its ID) depend only on its content.
func targz(files map[string][]byte) ([]byte, error) {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range names {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (nw *Network) startChaincode(ctx context.Context) error {
	for i := range nw.Topology.NMIs {
		if err := nw.launchChaincode(&nw.Topology.NMIs[i]); err != nil {
			return err
		}
	}
	return nw.forEach(ctx, nw.awaitChaincode)
}

// StartChaincode starts an NMI's chaincode server (if not running) and waits
// until it accepts TLS connections.
func (nw *Network) StartChaincode(ctx context.Context, name string) error {
	n, err := nw.Topology.NMI(name)
	if err != nil {
		return err
	}
	if err := nw.launchChaincode(n); err != nil {
		return err
	}
	return nw.awaitChaincode(ctx, n)
}

func (nw *Network) launchChaincode(n *topology.NMI) error {
	_, id, err := nw.chaincodePackage(n)
	if err != nil {
		return err
	}
	server := filepath.Join(nw.chaincodeDir(n), "server")
	_, err = nw.start(process{name: chaincodeProc(n), bin: nw.bin("pki-chaincode"), dir: nw.chaincodeDir(n), netns: nw.namespace(n), env: []string{
		"CHAINCODE_ID=" + id,
		"CHAINCODE_SERVER_ADDRESS=" + n.ChaincodeAddress(),
		"CHAINCODE_TLS_CERT=" + filepath.Join(server, "cert.pem"),
		"CHAINCODE_TLS_KEY=" + filepath.Join(server, "key.pem"),
		"CHAINCODE_CLIENT_CA_CERT=" + nw.tlsCA(n),
	}})
	return err
}

func (nw *Network) awaitChaincode(ctx context.Context, n *topology.NMI) error {
	return nw.waitFor(ctx, chaincodeProc(n), nodeStartTimeout, func(ctx context.Context) error {
		return nw.chaincodeReachable(ctx, n)
	})
}

func (nw *Network) install(ctx context.Context, n *topology.NMI) error {
	path, id, err := nw.chaincodePackage(n)
	if err != nil {
		return err
	}
	out, err := nw.peerCLI(ctx, n, "lifecycle", "chaincode", "queryinstalled", "-O", "json")
	if err != nil {
		return err
	}
	if strings.Contains(string(out), `"`+id+`"`) {
		return nil
	}
	_, err = nw.peerCLI(ctx, n, "lifecycle", "chaincode", "install", path)
	return err
}

func (nw *Network) definitionArgs() []string {
	c := nw.Topology.Chaincode
	return []string{"--channelID", nw.Topology.Channel, "--name", c.Name, "--version", c.Version,
		"--sequence", strconv.Itoa(c.Sequence), "--signature-policy", endorsementPolicy(nw.Topology)}
}

func (nw *Network) approve(ctx context.Context, n *topology.NMI) error {
	if nw.committed(ctx, n) {
		return nil
	}
	c := nw.Topology.Chaincode
	if _, err := nw.peerCLI(ctx, n, "lifecycle", "chaincode", "queryapproved",
		"--channelID", nw.Topology.Channel, "--name", c.Name, "--sequence", strconv.Itoa(c.Sequence)); err == nil {
		return nil
	}
	_, id, err := nw.chaincodePackage(n)
	if err != nil {
		return err
	}
	args := append([]string{"lifecycle", "chaincode", "approveformyorg", "--package-id", id}, nw.definitionArgs()...)
	_, err = nw.peerCLI(ctx, n, append(args, nw.ordererArgs(nw.Topology, n)...)...)
	return err
}

// committed reports whether the chaincode definition of this sequence is
// committed on the channel, as seen from n's peer.
func (nw *Network) committed(ctx context.Context, n *topology.NMI) bool {
	out, err := nw.peerCLI(ctx, n, "lifecycle", "chaincode", "querycommitted",
		"--channelID", nw.Topology.Channel, "--name", nw.Topology.Chaincode.Name, "-O", "json")
	if err != nil {
		return false
	}
	var def struct {
		Sequence int `json:"sequence"`
	}
	return json.Unmarshal(out, &def) == nil && def.Sequence >= nw.Topology.Chaincode.Sequence
}

func (nw *Network) commit(ctx context.Context) error {
	first := &nw.Topology.NMIs[0]
	if nw.committed(ctx, first) {
		return nil
	}
	args := append([]string{"lifecycle", "chaincode", "commit"}, nw.definitionArgs()...)
	args = append(args, nw.ordererArgs(nw.Topology, first)...)
	for i := range nw.Topology.NMIs {
		n := &nw.Topology.NMIs[i]
		args = append(args, "--peerAddresses", n.PeerAddress(), "--tlsRootCertFiles", nw.exchangedTLSCA(n))
	}
	_, err := nw.peerCLI(ctx, first, args...)
	return err
}

const readyTimeout = 2 * time.Minute

// ready waits until every NMI's gateway can get a proposal endorsed by the
// chaincode on enough NMIs' peers: discovery has found the other NMIs and
// their chaincode servers answer. The proposal must succeed: a chaincode
// refusal from the local peer would end endorsement before any other NMI
// was asked.
func (nw *Network) ready(ctx context.Context) error {
	p := nw.profile(nw.Topology)
	return nw.forEach(ctx, func(ctx context.Context, n *topology.NMI) error {
		np, err := p.NMI(n.Name)
		if err != nil {
			return err
		}
		conn, err := np.Dial(UserAuditor)
		if err != nil {
			return err
		}
		defer conn.Close()
		contract := conn.GetNetwork(p.Channel).GetContract(p.Chaincode)
		return nw.waitFor(ctx, peerProc(n), readyTimeout, func(ctx context.Context) error {
			proposal, err := contract.NewProposal("ListMeters", client.WithArguments("", "", "1", ""))
			if err != nil {
				return err
			}
			_, err = proposal.Endorse()
			return err
		})
	})
}
