package consortium

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/hyperledger/fabric-gateway/pkg/client"

	"github.com/inter-nmi/pki/network/pkg/gateway"
	"github.com/inter-nmi/pki/network/pkg/topology"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// recordMembers writes the channel's members (nmis) to the ledger's
// membership record, which the chaincode counts majorities against
// (contract.SetMembers), unless it holds them already. via's admin submits
// it, endorsed by every member's peer: a change of the record needs a
// majority of the members recorded before.
func (nw *Network) recordMembers(ctx context.Context, via *topology.NMI, nmis []*topology.NMI) error {
	want := make([]string, len(nmis))
	for i, n := range nmis {
		want[i] = n.MSPID
	}
	slices.Sort(want)
	np, err := nw.profile(nw.Topology).NMI(via.Name)
	if err != nil {
		return err
	}
	conn, err := np.Dial(UserAdmin)
	if err != nil {
		return err
	}
	defer conn.Close()
	c := conn.GetNetwork(nw.Topology.Channel).GetContract(nw.Topology.Chaincode.Name)
	current, err := c.EvaluateTransaction(wire.TxGetMembers)
	switch {
	case err == nil:
		var m wire.Members
		if err := json.Unmarshal(current, &m); err != nil {
			return fmt.Errorf("recorded members: %w", err)
		}
		if slices.Equal(m.MSPIDs, want) && len(m.Ballots) == len(want) {
			nw.say("    members recorded already: %v", want)
			return nil
		}
	default:
		if r, ok := meter.ParseError(err.Error()); !ok || r.Code != meter.CodeNotMember {
			return fmt.Errorf("read the recorded members: %w", err)
		}
	}
	arg, _ := json.Marshal(want)
	proposal, err := c.NewProposal(wire.TxSetMembers, client.WithArguments(string(arg)))
	if err != nil {
		return err
	}
	// The gateway gathers the endorsements the record's policy asks for
	// (a majority of the members recorded before); until gossip has told
	// via's peer about every member's peer it may find too few: endorsing
	// writes nothing, so it is tried again.
	var tx *client.Transaction
	var refused error
	if err := nw.waitFor(ctx, peerProc(via), lifecycleTimeout, func(context.Context) error {
		tx, err = proposal.Endorse()
		if r, ok := meter.ParseError(fmt.Sprint(err)); err != nil && ok {
			refused = r // the chaincode's answer: trying again changes nothing
			return nil
		}
		return err
	}); err != nil {
		return fmt.Errorf("record the members %v: %w", want, err)
	}
	if refused != nil {
		return fmt.Errorf("record the members %v: %w", want, refused)
	}
	sctx, cancel := context.WithTimeout(ctx, lifecycleTimeout)
	defer cancel()
	status, err := gateway.Submit(sctx, conn.Gateway, nw.Topology.Channel, tx, gateway.DefaultBackoff, gateway.Hooks{})
	if err != nil {
		return fmt.Errorf("record the members %v: %w", want, err)
	}
	if !status.Successful {
		return fmt.Errorf("record the members %v: transaction %s committed as %s", want, status.TransactionID, status.Code)
	}
	nw.say("    members recorded: %v", want)
	return nw.refreshPolicies(ctx, nmis)
}

// refreshPolicies has every member's registrar bring its records under the
// key-level policy of the members just recorded (contract.RefreshPolicies):
// its peer, or a majority of today's members.
func (nw *Network) refreshPolicies(ctx context.Context, nmis []*topology.NMI) error {
	for _, n := range nmis {
		np, err := nw.profile(nw.Topology).NMI(n.Name)
		if err != nil {
			return err
		}
		conn, err := np.Dial(UserRegistrar)
		if err != nil {
			return err
		}
		c := conn.GetNetwork(nw.Topology.Channel).GetContract(nw.Topology.Chaincode.Name)
		bookmark, meters := "", 0
		for {
			out, err := submit(ctx, conn, c, nw.Topology.Channel, wire.TxRefreshPolicies, "1000", bookmark)
			if err != nil {
				conn.Close()
				return fmt.Errorf("%s refreshes its records' policies: %w", n.Name, err)
			}
			var r wire.Refresh
			if err := json.Unmarshal(out, &r); err != nil {
				conn.Close()
				return err
			}
			meters += r.Meters
			if bookmark = r.Bookmark; bookmark == "" {
				break
			}
		}
		conn.Close()
		if meters > 0 {
			nw.say("    %s's %d meters under the members' policy", n.Name, meters)
		}
	}
	return ctx.Err()
}

// submit endorses a transaction and hands it to the ordering service as
// gateway.Submit does, and returns its result once it is committed valid.
func submit(ctx context.Context, conn *gateway.Conn, c *client.Contract, channel, fn string, args ...string) ([]byte, error) {
	tx, err := c.NewProposal(fn, client.WithArguments(args...))
	if err != nil {
		return nil, err
	}
	endorsed, err := tx.Endorse()
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, lifecycleTimeout)
	defer cancel()
	st, err := gateway.Submit(sctx, conn.Gateway, channel, endorsed, gateway.DefaultBackoff, gateway.Hooks{})
	if err != nil {
		return nil, err
	}
	if !st.Successful {
		return nil, fmt.Errorf("transaction %s committed as %s", st.TransactionID, st.Code)
	}
	return endorsed.Result(), nil
}
