package consortium

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"

	"github.com/inter-nmi/pki/network/pkg/fabricconfig"
	"github.com/inter-nmi/pki/network/pkg/supervise"
	"github.com/inter-nmi/pki/network/pkg/topology"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
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

// step is one stage of a command: Up, a join, a leave.
type step struct {
	name string
	f    func() error
}

// steps runs stages in order until one fails.
func (nw *Network) steps(steps []step) error {
	for _, s := range steps {
		if err := nw.step(s.name, s.f); err != nil {
			return err
		}
	}
	return nil
}

// step runs one stage and reports how long it took.
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
	steps := []step{
		{"run directory " + nw.Root, nw.Prepare},
		{"hosts and ports", func() error { return nw.hosts(ctx) }},
		{"crypto material, each NMI on its own side", nw.crypto},
		{"channel genesis block (configtxgen)", func() error { return nw.genesis(ctx) }},
		{"node configuration", nw.configure},
		{"orderers started and healthy", func() error { return nw.startOrderers(ctx) }},
		{"orderers joined to " + t.Channel + " (osnadmin)", func() error { return nw.joinOrderers(ctx) }},
		{"peers started and healthy", func() error { return nw.startPeers(ctx) }},
		{"peers joined to " + t.Channel, func() error { return nw.joinPeers(ctx) }},
		{"chaincode servers started", func() error { return nw.startChaincode(ctx) }},
		{"chaincode installed on every peer", func() error { return nw.forEach(ctx, nw.install) }},
		{"chaincode definition approved and committed", func() error { return nw.deployDefinition(ctx) }},
		{"registries started and ready", func() error { return nw.startRegistries(ctx) }},
		{"explorer started", func() error { return nw.startExplorer(ctx) }},
	}
	return nw.steps(steps)
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
		"-profile", fabricconfig.Profile, "-channelID", nw.Topology.Channel, "-outputBlock", block)
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
	if _, err := nw.procs().Start(supervise.Process{Name: proc, Bin: nw.bin("orderer"), Dir: nw.ordererDir(n), Netns: nw.namespace(n),
		Env: []string{"FABRIC_CFG_PATH=" + nw.ordererDir(n), "FABRIC_LOGGING_SPEC=info"}}); err != nil {
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
	_, err = nw.procs().Stop(ctx, ordererProc(n), stopGrace)
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
	_, err := nw.procs().Start(supervise.Process{Name: peerProc(n), Bin: nw.bin("peer"), Args: []string{"node", "start"}, Dir: nw.peerDir(n), Netns: nw.namespace(n),
		Env: []string{"FABRIC_CFG_PATH=" + nw.peerDir(n), "FABRIC_LOGGING_SPEC=info"}})
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

// forEach runs f for every NMI of the topology concurrently and joins
// their errors.
func (nw *Network) forEach(ctx context.Context, f func(context.Context, *topology.NMI) error) error {
	nmis := make([]*topology.NMI, len(nw.Topology.NMIs))
	for i := range nw.Topology.NMIs {
		nmis[i] = &nw.Topology.NMIs[i]
	}
	return forEach(ctx, nmis, f)
}

// forEach runs f for each of the NMIs concurrently and joins their errors.
func forEach(ctx context.Context, nmis []*topology.NMI, f func(context.Context, *topology.NMI) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(nmis))
	for i, n := range nmis {
		wg.Go(func() {
			if err := f(ctx, n); err != nil {
				errs[i] = fmt.Errorf("%s: %w", n.Name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

const readyTimeout = 2 * time.Minute

// ready waits until every NMI's gateway can get a proposal endorsed by the
// chaincode on enough NMIs' peers: discovery has found the other NMIs and
// their chaincode servers answer. The proposal must succeed: a chaincode
// refusal from the local peer would end endorsement before any other NMI
// was asked.
func (nw *Network) ready(ctx context.Context, nmis []*topology.NMI) error {
	p := nw.profile(nw.Topology)
	return forEach(ctx, nmis, func(ctx context.Context, n *topology.NMI) error {
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
			proposal, err := contract.NewProposal(wire.TxListMeters, client.WithArguments("", "", "1", ""))
			if err != nil {
				return err
			}
			_, err = proposal.Endorse()
			return err
		})
	})
}
