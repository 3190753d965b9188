package api

import "github.com/inter-nmi/pki/pki-chaincode/meter"

// Consortium decisions (docs/endorsement.md): a majority of the member
// NMIs may revoke any meter or release a pre-enrolment, each by voting.
const (
	ActionRevoke  = "revoke"
	ActionRelease = "release"
)

// VoteRequest casts the operator's NMI's vote for a consortium action.
type VoteRequest struct {
	// Action is "revoke" or "release".
	Action  string `json:"action"`
	MeterID string `json:"meterId"`
	// Reason: for a revocation, an RFC 5280 reason; for a release, why.
	Reason string `json:"reason"`
}

// Tally is where a consortium action stands after a vote.
type Tally struct {
	Action  string `json:"action"`
	MeterID string `json:"meterId"`
	// Voters are the member NMIs (MSP IDs) that voted for it.
	Voters []string `json:"voters"`
	// Needed is the majority of the members.
	Needed int `json:"needed"`
	// Applied: the majority is reached and the action was taken.
	Applied      bool                `json:"applied"`
	Meter        *meter.Meter        `json:"meter,omitempty"`
	PreEnrolment *meter.PreEnrolment `json:"preEnrolment,omitempty"`
}

// VoteReceipt answers a vote. Tx is empty when the NMI had voted already
// (nothing was written).
type VoteReceipt struct {
	Tally *Tally `json:"tally"`
	Tx
}

// Vote is one recorded vote.
type Vote struct {
	Action  string `json:"action"`
	MeterID string `json:"meterId"`
	Voter   string `json:"voter"`
	Reason  string `json:"reason"`
	TxID    string `json:"txId"`
	At      string `json:"at"`
}

// VoteList lists the votes cast so far for an action on a meter ID.
type VoteList struct {
	Votes []Vote `json:"votes"`
}
