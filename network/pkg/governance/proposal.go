package governance

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/hyperledger/fabric-config/configtx"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"
)

// Proposal is a channel configuration update on its way through the
// consortium: the update itself and the admins' signatures over it.
type Proposal struct {
	// ChannelID is the channel the update applies to.
	ChannelID string
	// Description says in words what the update does.
	Description string
	// Update is the marshaled common.ConfigUpdate: exactly the bytes every
	// signature covers, so it is never re-marshaled.
	Update []byte
	// Signatures are the collected ConfigSignatures, in signing order.
	Signatures []*common.ConfigSignature
}

// DescriptionFile is where Save keeps the description of the proposal saved
// at path.
func DescriptionFile(path string) string { return path + ".description" }

// newProposal computes the update between the configuration tx started
// from and what the caller made of it.
func newProposal(tx configtx.ConfigTx, channel, description string) (*Proposal, error) {
	if channel == "" {
		return nil, errors.New("no channel ID")
	}
	update, err := tx.ComputeMarshaledUpdate(channel)
	if err != nil {
		return nil, err
	}
	return &Proposal{ChannelID: channel, Description: description, Update: update}, nil
}

// startTx begins an edit of a copy of cfg, so that the caller's
// configuration stays as it was.
func startTx(cfg *common.Config) (configtx.ConfigTx, error) {
	if cfg.GetChannelGroup() == nil {
		return configtx.ConfigTx{}, errors.New("channel configuration has no channel group")
	}
	return configtx.New(proto.Clone(cfg).(*common.Config)), nil
}

// ConfigUpdate decodes the update.
func (p *Proposal) ConfigUpdate() (*common.ConfigUpdate, error) {
	var u common.ConfigUpdate
	if err := proto.Unmarshal(p.Update, &u); err != nil {
		return nil, fmt.Errorf("%w: config update: %w", ErrMalformedProposal, err)
	}
	return &u, nil
}

// Marshal encodes the proposal as the file Fabric's tools read: an unsigned
// Envelope of type CONFIG_UPDATE carrying the ConfigUpdateEnvelope.
func (p *Proposal) Marshal() ([]byte, error) {
	env, err := configtx.NewEnvelope(p.Update, p.Signatures...)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(env)
}

// UnmarshalProposal decodes a CONFIG_UPDATE envelope, signed or not (as
// `peer channel signconfigtx` leaves it). The description is derived from
// the update.
func UnmarshalProposal(data []byte) (*Proposal, error) {
	var env common.Envelope
	if err := proto.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: not an envelope: %w", ErrMalformedProposal, err)
	}
	var payload common.Payload
	if err := proto.Unmarshal(env.GetPayload(), &payload); err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrMalformedProposal, err)
	}
	if payload.GetHeader() == nil {
		return nil, fmt.Errorf("%w: no header", ErrMalformedProposal)
	}
	var ch common.ChannelHeader
	if err := proto.Unmarshal(payload.GetHeader().GetChannelHeader(), &ch); err != nil {
		return nil, fmt.Errorf("%w: channel header: %w", ErrMalformedProposal, err)
	}
	if t := common.HeaderType(ch.GetType()); t != common.HeaderType_CONFIG_UPDATE {
		return nil, fmt.Errorf("%w: an envelope of type %s, not CONFIG_UPDATE", ErrMalformedProposal, t)
	}
	var cue common.ConfigUpdateEnvelope
	if err := proto.Unmarshal(payload.GetData(), &cue); err != nil {
		return nil, fmt.Errorf("%w: config update envelope: %w", ErrMalformedProposal, err)
	}
	p := &Proposal{ChannelID: ch.GetChannelId(), Update: cue.GetConfigUpdate(), Signatures: cue.GetSignatures()}
	u, err := p.ConfigUpdate()
	if err != nil {
		return nil, err
	}
	if u.GetChannelId() != p.ChannelID {
		return nil, fmt.Errorf("%w: update for channel %q in an envelope for channel %q", ErrMalformedProposal, u.GetChannelId(), p.ChannelID)
	}
	if u.GetWriteSet() == nil {
		return nil, fmt.Errorf("%w: the update has no write set", ErrMalformedProposal)
	}
	p.Description = Describe(u)
	return p, nil
}

// Save writes the proposal to path and its description to
// DescriptionFile(path).
func (p *Proposal) Save(path string) error {
	b, err := p.Marshal()
	if err != nil {
		return fmt.Errorf("save proposal: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("save proposal: %w", err)
	}
	if err := os.WriteFile(DescriptionFile(path), []byte(p.Description+"\n"), 0o644); err != nil {
		return fmt.Errorf("save proposal description: %w", err)
	}
	return nil
}

// Load reads a proposal file, whichever tool last signed it, with its
// description if DescriptionFile(path) exists.
func Load(path string) (*Proposal, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load proposal: %w", err)
	}
	p, err := UnmarshalProposal(b)
	if err != nil {
		return nil, fmt.Errorf("load proposal %s: %w", path, err)
	}
	d, err := os.ReadFile(DescriptionFile(path))
	switch {
	case err == nil:
		p.Description = strings.TrimSpace(string(d))
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("load proposal description: %w", err)
	}
	return p, nil
}

// Describe summarises an update from its read and write sets alone: the
// elements it adds and changes. An update does not name what it removes,
// so for a group whose membership changed it lists the members it keeps.
func Describe(u *common.ConfigUpdate) string {
	var parts []string
	var walk func(path string, r, w *common.ConfigGroup)
	walk = func(path string, r, w *common.ConfigGroup) {
		var added, changed []string
		for _, k := range slices.Sorted(maps.Keys(w.GetGroups())) {
			rg, ok := r.GetGroups()[k]
			if !ok {
				added = append(added, k)
				continue
			}
			walk(path+"/"+k, rg, w.GetGroups()[k])
		}
		for _, k := range slices.Sorted(maps.Keys(w.GetValues())) {
			if rv, ok := r.GetValues()[k]; !ok || rv.GetVersion() != w.GetValues()[k].GetVersion() {
				changed = append(changed, k)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(w.GetPolicies())) {
			if rp, ok := r.GetPolicies()[k]; !ok || rp.GetVersion() != w.GetPolicies()[k].GetVersion() {
				changed = append(changed, "policy "+k)
			}
		}
		var s []string
		if len(added) > 0 {
			s = append(s, "adds "+strings.Join(added, ", "))
		}
		if len(changed) > 0 {
			s = append(s, "sets "+strings.Join(changed, ", "))
		}
		if len(added) == 0 && r != nil && w.GetVersion() != r.GetVersion() && len(r.GetGroups()) == len(w.GetGroups()) {
			s = append(s, "members now "+strings.Join(slices.Sorted(maps.Keys(w.GetGroups())), ", "))
		}
		if len(s) > 0 {
			parts = append(parts, path+": "+strings.Join(s, "; "))
		}
	}
	walk(channelGroup, u.GetReadSet(), u.GetWriteSet())
	if len(parts) == 0 {
		return fmt.Sprintf("Update of channel %s", u.GetChannelId())
	}
	return fmt.Sprintf("Update of channel %s: %s", u.GetChannelId(), strings.Join(parts, ". "))
}
