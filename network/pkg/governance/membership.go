package governance

import (
	"fmt"
	"maps"
	"slices"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"
)

// AddOrg proposes that the organisation defined by org join the channel's
// Application group under name. It refuses a name or MSP ID already there.
// An orderer organisation's definition (from an NMI that runs an orderer)
// joins without its Endpoints, which only the Orderer group may carry; such
// a definition has no anchor peers, which the NMI then sets itself.
func AddOrg(cfg *common.Config, channel, name string, org *common.ConfigGroup) (*Proposal, error) {
	if err := validateName(name); err != nil {
		return nil, fmt.Errorf("add organisation: %w", err)
	}
	if err := ValidateOrgDefinition(org); err != nil {
		return nil, fmt.Errorf("add organisation %s: %w", name, err)
	}
	id := mspID(org)
	tx, err := startTx(cfg)
	if err != nil {
		return nil, err
	}
	updated := tx.UpdatedConfig()
	app, err := subGroup(updated, applicationGroup)
	if err != nil {
		return nil, err
	}
	if other := app.GetGroups()[name]; other != nil {
		return nil, fmt.Errorf("add organisation %s: %w: %s is MSP %s", name, ErrOrgPresent, name, mspID(other))
	}
	if other, _ := orgByMSPID(app, id); other != "" {
		return nil, fmt.Errorf("add organisation %s: %w: %s is organisation %s", name, ErrMSPIDPresent, id, other)
	}
	if err := checkMSPUnique(updated, org); err != nil {
		return nil, fmt.Errorf("add organisation %s: %w", name, err)
	}
	member := proto.Clone(org).(*common.ConfigGroup)
	delete(member.Values, endpointsKey)
	if app.Groups == nil {
		app.Groups = map[string]*common.ConfigGroup{}
	}
	app.Groups[name] = member
	return newProposal(tx, channel, fmt.Sprintf("Add organisation %s (MSP %s) to the Application group of channel %s", name, id, channel))
}

// RemoveOrg proposes that the organisation name leave the channel's
// Application group, and the Orderer group too if it is still listed there
// without consenters. It refuses while the organisation runs a consenter:
// that must leave the consenter set first (RemoveConsenter), in its own
// update.
func RemoveOrg(cfg *common.Config, channel, name string) (*Proposal, error) {
	tx, err := startTx(cfg)
	if err != nil {
		return nil, err
	}
	updated := tx.UpdatedConfig()
	app, err := subGroup(updated, applicationGroup)
	if err != nil {
		return nil, err
	}
	org := app.GetGroups()[name]
	if org == nil {
		return nil, fmt.Errorf("remove organisation %s: %w in the Application group (members: %v)", name, ErrUnknownOrg, slices.Sorted(maps.Keys(app.GetGroups())))
	}
	if len(app.GetGroups()) == 1 {
		return nil, fmt.Errorf("remove organisation %s: it is the channel's last member", name)
	}
	id := mspID(org)
	description := fmt.Sprintf("Remove organisation %s (MSP %s) from the Application group of channel %s", name, id, channel)
	if ord := updated.GetChannelGroup().GetGroups()[ordererGroup]; ord != nil {
		if set, err := consenters(ord); err == nil {
			for _, c := range set.GetConsenterMapping() {
				if c.GetMspId() == id {
					return nil, fmt.Errorf("remove organisation %s: %w: consenter %d (%s:%d); remove it from the consenter set first",
						name, ErrRunsConsenter, c.GetId(), c.GetHost(), c.GetPort())
				}
			}
		}
		if oname, _ := orgByMSPID(ord, id); oname != "" {
			delete(ord.Groups, oname)
			description += " and from its Orderer group"
		}
	}
	delete(app.Groups, name)
	return newProposal(tx, channel, description)
}
