package api

import "github.com/inter-nmi/pki/pki-chaincode/wire"

// Consortium decisions (docs/endorsement.md): a majority of the member
// NMIs may revoke any meter or release a pre-enrolment, each by voting.
const (
	ActionRevoke  = wire.ActionRevoke
	ActionRelease = wire.ActionRelease
)

// VoteRequest casts the operator's NMI's vote for a consortium action.
type VoteRequest struct {
	// Action is "revoke" or "release".
	Action  string `json:"action"`
	MeterID string `json:"meterId"`
	// Reason: for a revocation, an RFC 5280 reason; for a release, why.
	Reason string `json:"reason"`
}

// Tally is where a consortium action stands after a vote, as the
// chaincode answers it.
type Tally = wire.Tally

// VoteReceipt answers a vote. Tx is empty when the NMI had voted already
// (nothing was written).
type VoteReceipt struct {
	Tally *Tally `json:"tally"`
	Tx
}

// Vote is one recorded vote.
type Vote = wire.Vote

// VoteList lists the votes cast so far for an action on a meter ID.
type VoteList struct {
	Votes []Vote `json:"votes"`
}
