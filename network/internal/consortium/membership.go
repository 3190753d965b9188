package consortium

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"gopkg.in/yaml.v3"

	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/network/pkg/fabricconfig"
	"github.com/inter-nmi/pki/network/pkg/governance"
	"github.com/inter-nmi/pki/network/pkg/topology"
)

// The consortium changes its membership by signed channel-configuration
// updates (package governance): a newcomer defines itself on its own side,
// a member proposes the update, a majority of the members' admins sign it,
// one submits it; then the newcomer's nodes join, and every NMI approves a
// chaincode definition whose endorsement policy counts the newcomer's peers.
// Leaving is the same in reverse.

// OrgDefinitionFile is where an NMI exports its organisation definition:
// the JSON of `configtxgen -printOrg`, what it sends the consortium.
func (l Layout) OrgDefinitionFile(n *topology.NMI) string {
	return filepath.Join(l.exchangeDir(n), "org.json")
}

// DefineNMI is the newcomer's first step, on its own side: it generates its
// crypto material (its private keys never leave its directory), exports its
// public MSP and writes its organisation definition. The run's topology
// learns its nodes' addresses. On the newcomer's own server the run
// directory is new: it then holds the consortium's topology, the
// newcomer's own crypto material and what it sends the others.
func (nw *Network) DefineNMI(ctx context.Context, n topology.NMI) (string, error) {
	if _, err := os.Stat(nw.recordFile()); errors.Is(err, os.ErrNotExist) {
		if err := nw.Prepare(); err != nil {
			return "", err
		}
	}
	if _, err := nw.Topology.NMI(n.Name); err == nil {
		return "", fmt.Errorf("NMI %s is already in the topology", n.Name)
	}
	if _, err := nw.Topology.NMI(n.MSPID); err == nil {
		return "", fmt.Errorf("MSP ID %s is already in the topology", n.MSPID)
	}
	t := *nw.Topology
	t.NMIs = append(slices.Clone(nw.Topology.NMIs), n)
	if err := t.Validate(); err != nil {
		return "", fmt.Errorf("newcomer %s: %w", n.Name, err)
	}
	nw.Topology = &t
	if err := nw.saveTopology(); err != nil {
		return "", err
	}
	me, _ := nw.Topology.NMI(n.Name)
	if err := nw.GenerateCrypto(me); err != nil {
		return "", err
	}
	return nw.writeOrgDefinition(ctx, me)
}

func (nw *Network) writeOrgDefinition(ctx context.Context, n *topology.NMI) (string, error) {
	dir := filepath.Join(nw.nmiDir(n), "orgdef")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := fabricconfig.OrgConfigTx(nw.orgDefinition(n))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "configtx.yaml"), b, 0o644); err != nil {
		return "", err
	}
	out, err := nw.run(ctx, "", []string{"FABRIC_CFG_PATH=" + dir}, "configtxgen", "-printOrg", n.Name)
	if err != nil {
		return "", err
	}
	path := nw.OrgDefinitionFile(n)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return "", err
	}
	return path, nil
}

func (nw *Network) saveTopology() error {
	b, err := yaml.Marshal(nw.Topology)
	if err != nil {
		return err
	}
	return os.WriteFile(nw.topologyFile(), b, 0o644)
}

// Config reads the channel's current configuration through an NMI's peer.
func (nw *Network) Config(ctx context.Context, via string) (*common.Config, error) {
	n, err := nw.Topology.NMI(via)
	if err != nil {
		return nil, err
	}
	np, err := nw.profile(nw.Topology).NMI(n.Name)
	if err != nil {
		return nil, err
	}
	conn, err := np.Dial(UserAdmin)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return channel.QueryRaw(ctx, conn.GetNetwork(nw.Topology.Channel))
}

// Admin is an NMI admin's signing identity, for configuration updates.
func (nw *Network) Admin(name string) (governance.Signer, error) {
	n, err := nw.Topology.NMI(name)
	if err != nil {
		return governance.Signer{}, err
	}
	return governance.SignerFromMSPDir(n.MSPID, filepath.Join(nw.user(n, UserAdmin), "msp"))
}

// Submit sends a signed update to an orderer as an NMI's admin and waits
// until every member's peer has the new configuration.
func (nw *Network) Submit(ctx context.Context, p *governance.Proposal, as string) error {
	n, err := nw.Topology.NMI(as)
	if err != nil {
		return err
	}
	admin, err := nw.Admin(as)
	if err != nil {
		return err
	}
	before, err := nw.Config(ctx, as)
	if err != nil {
		return err
	}
	env, err := p.Envelope(admin)
	if err != nil {
		return err
	}
	o := n
	if o.Orderer == nil {
		o = nw.Topology.Orderers()[0]
	}
	if err := governance.Broadcast(ctx, o.OrdererAddress(), nw.exchangedTLSCA(o), env); err != nil {
		return err
	}
	sequence := before.GetSequence() + 1
	if err := nw.waitConfig(ctx, n, sequence); err != nil {
		return err
	}
	after, err := nw.Config(ctx, as)
	if err != nil {
		return err
	}
	parsed, err := channel.Parse(after)
	if err != nil {
		return err
	}
	// Then every member of the new configuration whose peer runs: an NMI the
	// update removed can no longer read the channel.
	var errs []error
	for _, m := range parsed.Members {
		other, err := nw.Topology.NMI(m.MSPID)
		if err != nil || other.Name == n.Name {
			continue
		}
		if _, running := nw.procs().Running(peerProc(other)); running {
			errs = append(errs, nw.waitConfig(ctx, other, sequence))
		}
	}
	return errors.Join(errs...)
}

// waitConfig polls an NMI's peer until it reports the configuration
// sequence: the update is committed there.
func (nw *Network) waitConfig(ctx context.Context, n *topology.NMI, sequence uint64) error {
	return nw.waitFor(ctx, peerProc(n), time.Minute, func(ctx context.Context) error {
		cfg, err := nw.Config(ctx, n.Name)
		if err != nil {
			return err
		}
		if cfg.GetSequence() < sequence {
			return fmt.Errorf("%s's peer is at configuration %d, waiting for %d", n.Name, cfg.GetSequence(), sequence)
		}
		return nil
	})
}

// JoinNMI brings a newcomer's nodes into the channel once the update adding
// it is committed: its peer joins and catches up to the configuration that
// admits it, its chaincode server starts, every member approves the chaincode
// definition whose endorsement policy counts the newcomer's peer, and its
// registry starts; the explorer learns its nodes. Each step waits for what
// the next depends on and skips what is done, so after a failure at any
// step the same command finishes the join.
func (nw *Network) JoinNMI(ctx context.Context, name string) error {
	n, err := nw.Topology.NMI(name)
	if err != nil {
		return err
	}
	var admitted uint64
	steps := []step{
		{"the channel counts " + n.Name + " as a member", func() error {
			cfg, _, err := nw.channelView(ctx)
			if err != nil {
				return err
			}
			if !isMember(cfg, n.MSPID) {
				return fmt.Errorf("the update adding %s (%s) is not committed on %s: propose, sign and submit it first (update propose add-org)", n.Name, n.MSPID, nw.Topology.Channel)
			}
			admitted = cfg.Sequence
			return nil
		}},
		{n.Name + " peer started and healthy", func() error {
			if err := nw.writePeerConfig(nw.Topology, n); err != nil {
				return err
			}
			return nw.startPeer(ctx, n)
		}},
		{n.Name + " peer joined to " + nw.Topology.Channel, func() error { return nw.joinPeer(ctx, n) }},
		{n.Name + " peer at the configuration admitting it", func() error { return nw.waitConfig(ctx, n, admitted) }},
		{n.Name + " chaincode server started and installed", func() error {
			if err := nw.StartChaincode(ctx, n.Name); err != nil {
				return err
			}
			return nw.install(ctx, n)
		}},
		{"chaincode definition counting " + n.Name, func() error { return nw.deployDefinition(ctx) }},
		{n.Name + " registry started", func() error { return nw.startRegistry(ctx, n) }},
		{"explorer restarted with " + n.Name + "'s nodes", func() error { return nw.restartExplorer(ctx) }},
	}
	if err := nw.steps(steps); err != nil {
		return err
	}
	return nw.writeProfile(nw.Topology)
}

// LeaveNMI takes a former member's nodes out once the update removing it is
// committed: the chaincode definition stops counting its peer, its
// registry, chaincode server and peer stop, and the run's topology forgets
// it. Its meters stay on the ledger. Like JoinNMI, it can be run again after
// a failure at any step.
func (nw *Network) LeaveNMI(ctx context.Context, name string) error {
	n, err := nw.Topology.NMI(name)
	if err != nil {
		return fmt.Errorf("%w (an NMI that has left is no longer in the run's topology)", err)
	}
	if n.Orderer != nil {
		return fmt.Errorf("%s runs an orderer: remove it from the consenter set first", n.Name)
	}
	gone := *n
	steps := []step{
		{"the channel no longer counts " + gone.Name, func() error {
			cfg, _, err := nw.channelView(ctx)
			if err != nil {
				return err
			}
			if isMember(cfg, gone.MSPID) {
				return fmt.Errorf("%s (%s) is still a member of %s: submit the update removing it first (update propose remove-org)", gone.Name, gone.MSPID, nw.Topology.Channel)
			}
			return nil
		}},
		{"chaincode definition without " + gone.Name, func() error { return nw.deployDefinition(ctx) }},
		{gone.Name + "'s nodes stopped", func() error {
			for _, proc := range []string{registryProc(&gone), chaincodeProc(&gone), peerProc(&gone)} {
				if _, err := nw.procs().Stop(ctx, proc, stopGrace); err != nil {
					return err
				}
			}
			t := *nw.Topology
			t.NMIs = slices.DeleteFunc(slices.Clone(nw.Topology.NMIs), func(m topology.NMI) bool { return m.Name == gone.Name })
			nw.Topology = &t
			if err := nw.saveTopology(); err != nil {
				return err
			}
			return nw.writeProfile(nw.Topology)
		}},
		{"explorer restarted without " + gone.Name, func() error { return nw.restartExplorer(ctx) }},
	}
	return nw.steps(steps)
}

func isMember(cfg *channel.Config, mspID string) bool {
	return slices.ContainsFunc(cfg.Members, func(m channel.Member) bool { return m.MSPID == mspID })
}

func (nw *Network) restartExplorer(ctx context.Context) error {
	if _, err := nw.procs().Stop(ctx, explorerProc, stopGrace); err != nil {
		return err
	}
	return nw.startExplorer(ctx)
}
