package consortium

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/hyperledger/fabric-gateway/pkg/client"

	"github.com/inter-nmi/pki/network/topology"
	"github.com/inter-nmi/pki/pki-chaincode/contract"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
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
	current, err := c.EvaluateTransaction("GetMembers")
	switch {
	case err == nil:
		var m contract.Members
		if err := json.Unmarshal(current, &m); err != nil {
			return fmt.Errorf("recorded members: %w", err)
		}
		if slices.Equal(m.MSPIDs, want) {
			nw.say("    members recorded already: %v", want)
			return nil
		}
	default:
		if r, ok := meter.ParseError(err.Error()); !ok || r.Code != meter.CodeNotMember {
			return fmt.Errorf("read the recorded members: %w", err)
		}
	}
	arg, _ := json.Marshal(want)
	if _, err := c.Submit("SetMembers", client.WithArguments(string(arg)), client.WithEndorsingOrganizations(want...)); err != nil {
		return fmt.Errorf("record the members %v: %w", want, err)
	}
	nw.say("    members recorded: %v", want)
	return nil
}
