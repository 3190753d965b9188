package consortium

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/network/pkg/governance"
	"github.com/inter-nmi/pki/network/pkg/topology"
)

// An orderer joins or leaves the BFT consenter set by the same signed-update
// flow as an organisation: its NMI enrols the node and publishes its
// certificates, a member proposes the consenter change, a majority of the
// ordering organisations' admins sign, one submits; then the new node
// starts and joins the channel with the configuration block that made it a
// consenter.

// DefineOrderer is the NMI's side: it places an orderer in the topology,
// enrols its identity and TLS certificates and exports the public ones, and
// returns the consenter the proposal needs (ID 0: the next free one).
func (nw *Network) DefineOrderer(name string, o topology.Orderer) (governance.Consenter, error) {
	i := slices.IndexFunc(nw.Topology.NMIs, func(n topology.NMI) bool { return n.Name == name || n.MSPID == name })
	if i < 0 {
		return governance.Consenter{}, fmt.Errorf("no NMI %q in the topology", name)
	}
	if nw.Topology.NMIs[i].Orderer != nil {
		return governance.Consenter{}, fmt.Errorf("%s runs an orderer already", name)
	}
	t := *nw.Topology
	t.NMIs = slices.Clone(nw.Topology.NMIs)
	t.NMIs[i].Orderer = &o
	if err := t.Validate(); err != nil {
		return governance.Consenter{}, err
	}
	nw.Topology = &t
	if err := nw.saveTopology(); err != nil {
		return governance.Consenter{}, err
	}
	n := &nw.Topology.NMIs[i]
	if err := nw.GenerateCrypto(n); err != nil {
		return governance.Consenter{}, err
	}
	return nw.Consenter(n.Name)
}

// Consenter is an NMI's orderer as a consenter-set proposal needs it: its
// address from the topology and the public certificates the NMI exported
// (its enrolment certificate, which signs blocks, and its TLS certificate).
func (nw *Network) Consenter(name string) (governance.Consenter, error) {
	n, err := nw.Topology.NMI(name)
	if err != nil {
		return governance.Consenter{}, err
	}
	if n.Orderer == nil {
		return governance.Consenter{}, fmt.Errorf("%s has no orderer in the topology: define it first", n.Name)
	}
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(nw.exchangeDir(n), "orderer", name))
		if err != nil {
			return nil, fmt.Errorf("%s's exported orderer certificate: %w", n.Name, err)
		}
		return b, nil
	}
	c := governance.Consenter{Host: n.Host, Port: uint32(n.Orderer.Port), MSPID: n.MSPID}
	if c.Identity, err = read("identity.pem"); err != nil {
		return c, err
	}
	if c.ClientTLSCert, err = read("tls.pem"); err != nil {
		return c, err
	}
	c.ServerTLSCert = c.ClientTLSCert
	return c, nil
}

// ConsenterID is the ID of an NMI's orderer in the channel's consenter set.
func (nw *Network) ConsenterID(ctx context.Context, name, via string) (uint32, error) {
	n, err := nw.Topology.NMI(name)
	if err != nil {
		return 0, err
	}
	cfg, err := nw.Config(ctx, via)
	if err != nil {
		return 0, err
	}
	parsed, err := channel.Parse(cfg)
	if err != nil {
		return 0, err
	}
	var ids []uint32
	for _, c := range parsed.Consenters {
		if c.MSPID == n.MSPID {
			ids = append(ids, c.ID)
		}
	}
	switch len(ids) {
	case 0:
		return 0, fmt.Errorf("%s (%s) runs no consenter of channel %s", n.Name, n.MSPID, nw.Topology.Channel)
	case 1:
		return ids[0], nil
	default:
		return 0, fmt.Errorf("%s runs consenters %v: name one by its ID", n.Name, ids)
	}
}

// JoinOrderer starts an NMI's new orderer once the update adding it to the
// consenter set is committed, and joins it to the channel with the latest
// configuration block; it catches up on the blocks before from the others.
// It returns once the orderer is an active consenter; run again after a
// failure, it skips what is done.
func (nw *Network) JoinOrderer(ctx context.Context, name string) error {
	n, err := nw.Topology.NMI(name)
	if err != nil {
		return err
	}
	if n.Orderer == nil {
		return fmt.Errorf("%s has no orderer in the topology", name)
	}
	steps := []step{
		{"the channel counts " + n.Name + "'s orderer as a consenter", func() error {
			cfg, _, err := nw.channelView(ctx)
			if err != nil {
				return err
			}
			if !isConsenter(cfg, n) {
				return fmt.Errorf("the update adding %s's orderer (%s) to the consenter set is not committed: propose, sign and submit it first (update propose add-orderer)", n.Name, n.OrdererAddress())
			}
			return nil
		}},
		{n.Name + " orderer started and healthy", func() error {
			if err := nw.writeOrdererConfig(n); err != nil {
				return err
			}
			return nw.StartOrderer(ctx, n.Name)
		}},
		{n.Name + " orderer joined to " + nw.Topology.Channel, func() error {
			if status, _, err := nw.osnadmin(ctx, n, "channel", "list", "--channelID", nw.Topology.Channel); err != nil {
				return err
			} else if status == 200 {
				return nil
			}
			block := filepath.Join(nw.ordererDir(n), "join.block")
			if _, err := nw.peerCLI(ctx, n, append([]string{"channel", "fetch", "config", block, "-c", nw.Topology.Channel},
				nw.ordererArgs(nw.Topology, nw.Topology.Orderers()[0])...)...); err != nil {
				return fmt.Errorf("fetch the latest configuration block: %w", err)
			}
			status, body, err := nw.osnadmin(ctx, n, "channel", "join", "--channelID", nw.Topology.Channel, "--config-block", block)
			if err != nil {
				return err
			}
			if status != 201 {
				return fmt.Errorf("%s orderer refused to join: status %d: %s", n.Name, status, body)
			}
			return nil
		}},
		{n.Name + " orderer an active consenter", func() error {
			return nw.waitFor(ctx, ordererProc(n), lifecycleTimeout, func(ctx context.Context) error {
				_, body, err := nw.osnadmin(ctx, n, "channel", "list", "--channelID", nw.Topology.Channel)
				if err != nil {
					return err
				}
				var info struct {
					Status            string `json:"status"`
					ConsensusRelation string `json:"consensusRelation"`
				}
				if err := json.Unmarshal([]byte(body), &info); err != nil {
					return fmt.Errorf("osnadmin channel list: %w", err)
				}
				if info.Status != "active" || info.ConsensusRelation != "consenter" {
					return fmt.Errorf("%s orderer is %s %s", n.Name, info.Status, info.ConsensusRelation)
				}
				return nil
			})
		}},
		{"explorer restarted with " + n.Name + "'s orderer", func() error { return nw.restartExplorer(ctx) }},
	}
	if err := nw.steps(steps); err != nil {
		return err
	}
	return nw.writeProfile(nw.Topology)
}

// RetireOrderer stops an NMI's orderer once the update removing it from the
// consenter set is committed, and takes it out of the topology.
func (nw *Network) RetireOrderer(ctx context.Context, name string) error {
	i := slices.IndexFunc(nw.Topology.NMIs, func(n topology.NMI) bool { return n.Name == name || n.MSPID == name })
	if i < 0 {
		return fmt.Errorf("no NMI %q in the topology", name)
	}
	if nw.Topology.NMIs[i].Orderer == nil {
		return fmt.Errorf("%s runs no orderer (a retired orderer leaves the topology)", name)
	}
	n := nw.Topology.NMIs[i]
	steps := []step{
		{"the channel no longer counts " + n.Name + "'s orderer", func() error {
			cfg, _, err := nw.channelView(ctx)
			if err != nil {
				return err
			}
			if isConsenter(cfg, &n) {
				return fmt.Errorf("%s's orderer (%s) is still a consenter: submit the update removing it first (update propose remove-orderer)", n.Name, n.OrdererAddress())
			}
			return nil
		}},
		{n.Name + " orderer stopped", func() error {
			if _, err := nw.procs().Stop(ctx, ordererProc(&n), stopGrace); err != nil {
				return err
			}
			t := *nw.Topology
			t.NMIs = slices.Clone(nw.Topology.NMIs)
			t.NMIs[i].Orderer = nil
			nw.Topology = &t
			if err := nw.saveTopology(); err != nil {
				return err
			}
			return nw.writeProfile(nw.Topology)
		}},
		{"explorer restarted without " + n.Name + "'s orderer", func() error { return nw.restartExplorer(ctx) }},
	}
	return nw.steps(steps)
}

// isConsenter reports whether the channel's consenter set has n's orderer.
func isConsenter(cfg *channel.Config, n *topology.NMI) bool {
	return slices.ContainsFunc(cfg.Consenters, func(c channel.Consenter) bool {
		return c.MSPID == n.MSPID && c.Host == n.Host && int(c.Port) == n.Orderer.Port
	})
}
