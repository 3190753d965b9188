package contract

import (
	"encoding/json"
	"slices"
	"time"

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
	if found && slices.Equal(current.MSPIDs, ids) && hasBallots(current) {
		return current, nil
	}
	// Every member gets a ballot, made here, in the transaction that
	// records the members (which a majority of them endorses once members
	// are recorded): its key names this transaction, which no one could
	// know before, so no minority can have made it first.
	m := &wire.Members{MSPIDs: ids, Ballots: map[string]string{}, TxID: t.id, At: t.stamp()}
	for _, id := range ids {
		if key, ok := current.Ballots[id]; found && ok {
			m.Ballots[id] = key
			continue
		}
		key := wire.BallotKey(id, t.id)
		if err := state.Put(ctx, key, &wire.Ballot{Voter: id, Votes: map[string]*wire.Vote{}}); err != nil {
			return nil, err
		}
		policy, err := signaturePolicy([]string{id}, nOutOf(1, signedBy(0)))
		if err != nil {
			return nil, err
		}
		if err := ctx.GetStub().SetStateValidationParameter(key, policy); err != nil {
			return nil, state.Internal("set key-level policy on "+key, err)
		}
		m.Ballots[id] = key
	}
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

// RefreshPolicies sets the key-level policy of a page of the submitting
// NMI's meter records and key versions to the one of the members recorded
// now: a peer of the owner, or peers of a majority of the current members.
// A record written before members were recorded names the owner alone, and
// one written before a membership change names a majority of the members
// then; refreshed, a majority of today's members can act on it, on a
// departed NMI's meters too. Only the owner can refresh (its peer endorses
// the change of its records' policy): the consortium's tooling does it for
// every member whenever it records the members. It answers how many meters
// it refreshed and the bookmark of the next page, empty on the last.
func (r *Registry) RefreshPolicies(ctx contractapi.TransactionContextInterface, pageSize int32, bookmark string) (*wire.Refresh, error) {
	c, err := registrar(ctx, "refresh its records' policies")
	if err != nil {
		return nil, err
	}
	size, err := page(pageSize)
	if err != nil {
		return nil, err
	}
	policy, err := ownerPolicy(ctx, c.nmi)
	if err != nil {
		return nil, err
	}
	stub := ctx.GetStub()
	set := func(key string) error {
		if err := stub.SetStateValidationParameter(key, policy); err != nil {
			return state.Internal("set key-level policy on "+key, err)
		}
		return nil
	}
	out := &wire.Refresh{NMI: c.nmi}
	start, end := wire.NMIIndexPrefix(c.nmi), wire.NMIIndexPrefix(c.nmi)+wire.RangeEnd
	if bookmark != "" {
		if bookmark < start || bookmark >= end {
			return nil, malformed("bookmark %q does not belong to this NMI's meters", bookmark)
		}
		start = bookmark
	}
	// A paginated query is for read-only transactions only: the page is
	// counted here.
	ids, err := stub.GetStateByRange(start, end)
	if err != nil {
		return nil, state.Internal("read the NMI's meters", err)
	}
	defer ids.Close()
	for ids.HasNext() {
		kv, err := ids.Next()
		if err != nil {
			return nil, state.Internal("read the NMI's meters", err)
		}
		if out.Meters == int(size) {
			out.Bookmark = kv.Key
			break
		}
		var id string
		if err := json.Unmarshal(kv.Value, &id); err != nil {
			return nil, state.Internal("decode "+kv.Key, err)
		}
		if err := set(wire.MeterKey(id)); err != nil {
			return nil, err
		}
		versions, err := stub.GetStateByRange(wire.KeyVersionPrefix(id), wire.KeyVersionPrefix(id)+wire.RangeEnd)
		if err != nil {
			return nil, state.Internal("read key versions", err)
		}
		for versions.HasNext() {
			v, err := versions.Next()
			if err == nil {
				err = set(v.Key)
			}
			if err != nil {
				versions.Close()
				return nil, err
			}
		}
		versions.Close()
		out.Meters++
	}
	return out, nil
}

// hasBallots reports whether every member has a ballot.
func hasBallots(m *wire.Members) bool {
	for _, id := range m.MSPIDs {
		if m.Ballots[id] == "" {
			return false
		}
	}
	return true
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
	ballotKey := members.Ballots[c.nmi]
	if ballotKey == "" {
		return nil, meter.Errorf(meter.CodeNotMember, "%s has no ballot yet: the consortium's members must be recorded again (consortium tool) before it votes", c.nmi)
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	var target *meter.Meter
	var pre *meter.PreEnrolment
	var targetTx string
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
		targetTx = target.UpdatedTx
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
		targetTx = pre.TxID
	}
	ballots, err := t.ballots(members)
	if err != nil {
		return nil, err
	}
	entry := wire.BallotEntry(action, meterID)
	tally := &wire.Tally{Action: action, MeterID: meterID, Needed: members.Majority()}
	for _, id := range members.MSPIDs {
		if v := ballots[id].Votes[entry]; t.counts(v, targetTx) {
			tally.Voters = append(tally.Voters, id)
		}
	}
	if slices.Contains(tally.Voters, c.nmi) {
		return tally, nil
	}
	tally.Voters = append(tally.Voters, c.nmi)
	slices.Sort(tally.Voters)
	own := ballots[c.nmi]
	t.prune(own)
	if len(tally.Voters) < tally.Needed {
		if len(own.Votes) >= wire.MaxBallotVotes {
			return nil, meter.Errorf(meter.CodeTooLarge, "%s has %d open votes, at most %d", c.nmi, len(own.Votes), wire.MaxBallotVotes)
		}
		v := &wire.Vote{Action: action, MeterID: meterID, Voter: c.nmi, Reason: reason, Target: targetTx, TxID: t.id, At: t.stamp()}
		own.Votes[entry] = v
		if err := state.Put(ctx, ballotKey, own); err != nil {
			return nil, err
		}
		return tally, state.Emit(ctx, wire.EventVoteCast, v)
	}
	// The majority: take the action. The other members' votes need no
	// clearing: their target changes with the action, so they count no
	// more (and their owners drop them when they next vote).
	delete(own.Votes, entry)
	if err := state.Put(ctx, ballotKey, own); err != nil {
		return nil, err
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

// counts reports whether a vote still counts: cast for the target as it
// is now, and within wire.VoteValidity.
func (t tx) counts(v *wire.Vote, targetTx string) bool {
	if v == nil || v.Target != targetTx {
		return false
	}
	at, err := time.Parse(time.RFC3339Nano, v.At)
	return err == nil && t.time.Sub(at) <= wire.VoteValidity
}

// prune drops a ballot's votes older than wire.VoteValidity.
func (t tx) prune(b *wire.Ballot) {
	for k, v := range b.Votes {
		if at, err := time.Parse(time.RFC3339Nano, v.At); err != nil || t.time.Sub(at) > wire.VoteValidity {
			delete(b.Votes, k)
		}
	}
}

// ballots reads the current members' ballots, as the members record names
// them: only votes there count, whatever else a minority wrote elsewhere.
func (t tx) ballots(members *wire.Members) (map[string]*wire.Ballot, error) {
	out := map[string]*wire.Ballot{}
	for _, id := range members.MSPIDs {
		b := &wire.Ballot{Voter: id, Votes: map[string]*wire.Vote{}}
		if key := members.Ballots[id]; key != "" {
			got, found, err := state.Get[wire.Ballot](t.ctx, key)
			if err != nil {
				return nil, err
			}
			if found && got.Voter == id && got.Votes != nil {
				b = &got
			}
		}
		out[id] = b
	}
	return out, nil
}

// GetVotes returns the votes that count so far for an action on a meter
// ID: the current members', cast for the target as it is now, within
// wire.VoteValidity.
func (r *Registry) GetVotes(ctx contractapi.TransactionContextInterface, action, meterID string) ([]*wire.Vote, error) {
	if action != wire.ActionRevoke && action != wire.ActionRelease {
		return nil, malformed("action %q is unknown: use %s or %s", action, wire.ActionRevoke, wire.ActionRelease)
	}
	if err := meter.ValidateMeterID(meterID); err != nil {
		return nil, err
	}
	members, found, err := loadMembers(ctx)
	if err != nil || !found {
		return []*wire.Vote{}, err
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	targetTx := ""
	switch action {
	case wire.ActionRevoke:
		if m, found, err := state.Get[meter.Meter](ctx, wire.MeterKey(meterID)); err != nil {
			return nil, err
		} else if found {
			targetTx = m.UpdatedTx
		}
	case wire.ActionRelease:
		if p, found, err := state.Get[meter.PreEnrolment](ctx, wire.PreEnrolmentKey(meterID)); err != nil {
			return nil, err
		} else if found {
			targetTx = p.TxID
		}
	}
	ballots, err := t.ballots(members)
	if err != nil {
		return nil, err
	}
	out := []*wire.Vote{}
	for _, id := range members.MSPIDs {
		if v := ballots[id].Votes[wire.BallotEntry(action, meterID)]; t.counts(v, targetTx) {
			out = append(out, v)
		}
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
