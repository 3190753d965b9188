package contract

import (
	"encoding/json"
	"slices"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/state"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// The consortium on the ledger: which NMIs are members, and the decisions a
// majority of them may take about any NMI's meters.
//
// Every record an NMI owns (its meters, their key versions, its
// pre-enrolments, its votes) carries the key-level endorsement policy
// "a peer of the owner, or peers of a majority of the members": the owner
// alone keeps full control of its records, no minority of other NMIs can
// change them even together, and when the owner has left the consortium
// (or squats a meter ID) a majority can still act on them. Which NMIs are
// members is recorded on the ledger (SetMembers) by the consortium's
// tooling whenever the channel's membership changes; the record itself can
// only be changed by a majority of the members it names.

func loadMembers(ctx contractapi.TransactionContextInterface) (*wire.Members, bool, error) {
	m, found, err := state.Get[wire.Members](ctx, wire.MembersKey)
	return &m, found, err
}

// SetMembers records the consortium's member NMIs (a JSON array of MSP
// IDs), as the channel configuration has them. Only an NMI admin of a
// member may submit it; the first record is endorsed under the chaincode's
// policy, every later one needs peers of a majority of the members
// recorded before, so no minority can add or remove NMIs here.
func (r *Registry) SetMembers(ctx contractapi.TransactionContextInterface, mspIDs string) (*wire.Members, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	if !isAdmin(ctx) {
		return nil, meter.Errorf(meter.CodeForbidden, "only an NMI admin may record the consortium's members; the submitter of %s is not one", c.nmi)
	}
	var ids []string
	if err := decodeStrict(mspIDs, &ids); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, malformed("the consortium needs at least one member")
	}
	for _, id := range ids {
		if !mspIDRE.MatchString(id) {
			return nil, malformed("%q is not an MSP ID", id)
		}
	}
	slices.Sort(ids)
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		return nil, malformed("an MSP ID appears twice in %v", ids)
	}
	if !slices.Contains(ids, c.nmi) {
		return nil, meter.Errorf(meter.CodeForbidden, "%s records a consortium it is not a member of", c.nmi)
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	current, found, err := loadMembers(ctx)
	if err != nil {
		return nil, err
	}
	if found && slices.Equal(current.MSPIDs, ids) {
		return current, nil
	}
	m := &wire.Members{MSPIDs: ids, TxID: t.id, At: t.stamp()}
	if err := state.Put(ctx, wire.MembersKey, m); err != nil {
		return nil, err
	}
	policy, err := majorityPolicy(ids)
	if err != nil {
		return nil, err
	}
	if err := ctx.GetStub().SetStateValidationParameter(wire.MembersKey, policy); err != nil {
		return nil, state.Internal("set key-level policy on "+wire.MembersKey, err)
	}
	return m, state.Emit(ctx, wire.EventMembersRecorded, m)
}

// GetMembers returns the recorded members.
func (r *Registry) GetMembers(ctx contractapi.TransactionContextInterface) (*wire.Members, error) {
	m, found, err := loadMembers(ctx)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, meter.Errorf(meter.CodeNotMember, "no consortium membership is recorded on the ledger yet")
	}
	return m, nil
}

// isAdmin reports whether the submitter's certificate is an NMI admin's
// (Fabric node OU "admin").
func isAdmin(ctx contractapi.TransactionContextInterface) bool {
	cert, err := ctx.GetClientIdentity().GetX509Certificate()
	return err == nil && cert != nil && slices.Contains(cert.Subject.OrganizationalUnit, "admin")
}

// VoteConsortium casts the submitting NMI's vote for a consortium action
// on a meter ID: "revoke" (reason: an RFC 5280 revocation reason) revokes
// the meter whoever owns it, "release" (reason: why, in words) removes its
// pre-enrolment. Only registrars of member NMIs vote, one vote per NMI;
// the vote that makes a majority of the members takes the action in the
// same transaction (whose endorsement then needs peers of a majority, the
// owner's records' policy) and clears the votes. Repeating a vote changes
// nothing and answers the tally.
func (r *Registry) VoteConsortium(ctx contractapi.TransactionContextInterface, action, meterID, reason string) (*wire.Tally, error) {
	c, err := registrar(ctx, "vote on consortium decisions")
	if err != nil {
		return nil, err
	}
	if action != wire.ActionRevoke && action != wire.ActionRelease {
		return nil, malformed("action %q is unknown: use %s or %s", action, wire.ActionRevoke, wire.ActionRelease)
	}
	if err := meter.ValidateMeterID(meterID); err != nil {
		return nil, err
	}
	members, found, err := loadMembers(ctx)
	if err != nil {
		return nil, err
	}
	if !found || !members.Has(c.nmi) {
		return nil, meter.Errorf(meter.CodeNotMember, "%s is not a recorded member of the consortium and may not vote", c.nmi)
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	var target *meter.Meter
	var pre *meter.PreEnrolment
	switch action {
	case wire.ActionRevoke:
		why, err := meter.ParseReason(reason)
		if err != nil {
			return nil, err
		}
		reason = string(why)
		if target, err = loadMeter(ctx, meterID); err != nil {
			return nil, err
		}
		if target.Status == meter.StatusRevoked {
			return nil, meter.Errorf(meter.CodeMeterRevoked, "meter %s is already revoked (%s since %s)", target.ID, target.Revocation.Reason, target.Revocation.RevokedAt)
		}
	case wire.ActionRelease:
		if reason == "" {
			return nil, malformed("a release needs a reason")
		}
		if len(reason) > wire.MaxVoteReason {
			return nil, meter.Errorf(meter.CodeTooLarge, "reason is %d bytes, at most %d allowed", len(reason), wire.MaxVoteReason)
		}
		if err := meter.CheckText("reason", reason); err != nil {
			return nil, err
		}
		if pre, err = r.GetPreEnrolment(ctx, meterID); err != nil {
			return nil, err
		}
	}
	votes, err := t.votes(action, meterID, members)
	if err != nil {
		return nil, err
	}
	tally := &wire.Tally{Action: action, MeterID: meterID, Needed: members.Majority()}
	for _, v := range votes {
		tally.Voters = append(tally.Voters, v.Voter)
	}
	if slices.Contains(tally.Voters, c.nmi) {
		return tally, nil
	}
	tally.Voters = append(tally.Voters, c.nmi)
	slices.Sort(tally.Voters)
	if len(tally.Voters) < tally.Needed {
		v := &wire.Vote{Action: action, MeterID: meterID, Voter: c.nmi, Reason: reason, TxID: t.id, At: t.stamp()}
		if err := t.putOwned(wire.VoteKey(action, meterID, c.nmi), v, c.nmi); err != nil {
			return nil, err
		}
		return tally, state.Emit(ctx, wire.EventVoteCast, v)
	}
	// The majority: take the action, clear the votes.
	for _, v := range votes {
		if err := ctx.GetStub().DelState(wire.VoteKey(action, meterID, v.Voter)); err != nil {
			return nil, state.Internal("clear votes", err)
		}
	}
	tally.Applied = true
	switch action {
	case wire.ActionRevoke:
		target.Status = meter.StatusRevoked
		target.Revocation = &meter.Revocation{Reason: meter.Reason(reason), RevokedAt: t.stamp(), TxID: t.id, DecidedBy: tally.Voters}
		target.UpdatedTx, target.UpdatedAt = t.id, t.stamp()
		if err := t.writeMeter(target, meter.StatusActive); err != nil {
			return nil, err
		}
		tally.Meter = target
		return tally, state.Emit(ctx, wire.EventMeterRevoked, wire.MeterEvent{NMI: target.NMI, MeterID: target.ID, KeyVersion: target.KeyVersion, Reason: reason})
	default:
		if err := ctx.GetStub().DelState(wire.PreEnrolmentKey(meterID)); err != nil {
			return nil, state.Internal("release pre-enrolment", err)
		}
		tally.PreEnrolment = pre
		return tally, state.Emit(ctx, wire.EventPreEnrolmentReleased, wire.MeterEvent{NMI: pre.NMI, MeterID: meterID, Reason: reason})
	}
}

// GetVotes returns the votes cast so far for an action on a meter ID.
func (r *Registry) GetVotes(ctx contractapi.TransactionContextInterface, action, meterID string) ([]*wire.Vote, error) {
	if action != wire.ActionRevoke && action != wire.ActionRelease {
		return nil, malformed("action %q is unknown: use %s or %s", action, wire.ActionRevoke, wire.ActionRelease)
	}
	if err := meter.ValidateMeterID(meterID); err != nil {
		return nil, err
	}
	return readVotes(ctx, action, meterID)
}

// votes are the recorded votes of current members for the action; a vote
// of an NMI that has left counts no more.
func (t tx) votes(action, meterID string, members *wire.Members) ([]*wire.Vote, error) {
	all, err := readVotes(t.ctx, action, meterID)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(v *wire.Vote) bool { return !members.Has(v.Voter) }), nil
}

func readVotes(ctx contractapi.TransactionContextInterface, action, meterID string) ([]*wire.Vote, error) {
	prefix := wire.VotePrefix(action, meterID)
	it, err := ctx.GetStub().GetStateByRange(prefix, prefix+wire.RangeEnd)
	if err != nil {
		return nil, state.Internal("read votes", err)
	}
	defer it.Close()
	out := []*wire.Vote{}
	for it.HasNext() {
		kv, err := it.Next()
		if err != nil {
			return nil, state.Internal("read votes", err)
		}
		v := new(wire.Vote)
		if err := json.Unmarshal(kv.Value, v); err != nil {
			return nil, state.Internal("decode "+kv.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// ownerPolicy is the key-level endorsement policy of an owner's records:
// a peer of the owner, or peers of a majority of the recorded members.
// Before any membership is recorded it is the owner's peer alone.
func ownerPolicy(ctx contractapi.TransactionContextInterface, owner string) ([]byte, error) {
	members, found, err := loadMembers(ctx)
	if err != nil {
		return nil, err
	}
	if !found {
		return signaturePolicy([]string{owner}, nOutOf(1, signedBy(0)))
	}
	principals := append([]string{owner}, members.MSPIDs...)
	majority := make([]*common.SignaturePolicy, len(members.MSPIDs))
	for i := range members.MSPIDs {
		majority[i] = signedBy(i + 1)
	}
	return signaturePolicy(principals, nOutOf(1, signedBy(0), nOutOf(members.Majority(), majority...)))
}

// majorityPolicy needs peers of a majority of the members.
func majorityPolicy(members []string) ([]byte, error) {
	rules := make([]*common.SignaturePolicy, len(members))
	for i := range members {
		rules[i] = signedBy(i)
	}
	return signaturePolicy(members, nOutOf(len(members)/2+1, rules...))
}

// signaturePolicy is a policy over the peers of the given MSPs, encoded
// deterministically, since every endorser must write the same bytes.
func signaturePolicy(peersOf []string, rule *common.SignaturePolicy) ([]byte, error) {
	env := &common.SignaturePolicyEnvelope{Version: 0, Rule: rule}
	for _, id := range peersOf {
		role, err := proto.MarshalOptions{Deterministic: true}.Marshal(&msp.MSPRole{MspIdentifier: id, Role: msp.MSPRole_PEER})
		if err != nil {
			return nil, state.Internal("key-level policy", err)
		}
		env.Identities = append(env.Identities, &msp.MSPPrincipal{PrincipalClassification: msp.MSPPrincipal_ROLE, Principal: role})
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(env)
	if err != nil {
		return nil, state.Internal("key-level policy", err)
	}
	return b, nil
}

func signedBy(i int) *common.SignaturePolicy {
	return &common.SignaturePolicy{Type: &common.SignaturePolicy_SignedBy{SignedBy: int32(i)}}
}

func nOutOf(n int, rules ...*common.SignaturePolicy) *common.SignaturePolicy {
	return &common.SignaturePolicy{Type: &common.SignaturePolicy_NOutOf_{NOutOf: &common.SignaturePolicy_NOutOf{N: int32(n), Rules: rules}}}
}
