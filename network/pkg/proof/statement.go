package proof

import (
	"fmt"
	"strings"
	"time"
)

// Statement is what a verified bundle proves: the meter's record as the
// endorsing NMIs read it, in the block the orderers signed.
type Statement struct {
	// MeterID is the meter attested.
	MeterID string `json:"meterId"`
	// Channel is the channel of the ledger.
	Channel string `json:"channel"`
	// Block is the block that holds the attestation transaction.
	Block uint64 `json:"block"`
	// TxID is the attestation transaction.
	TxID string `json:"txId"`
	// Time is the transaction's timestamp: the submitting client's clock,
	// within 5 minutes of each endorsing peer's (docs/endorsement.md).
	Time time.Time `json:"time"`
	// Fingerprint is the hex SHA-256 of the meter key's SubjectPublicKeyInfo.
	Fingerprint string `json:"fingerprint"`
	// Curve is the meter key's curve.
	Curve string `json:"curve"`
	// KeyVersion is the meter key's version: 1 at registration, one more
	// at each rotation.
	KeyVersion int `json:"keyVersion"`
	// PublicKey is the meter's public key (PEM).
	PublicKey string `json:"publicKey"`
	// Status is active or revoked.
	Status string `json:"status"`
	// Revocation says why and when the key was revoked, if it is.
	Revocation *Revocation `json:"revocation,omitempty"`
	// Owner is the MSP ID of the NMI that owns the meter.
	Owner string `json:"owner"`
	// Record is the version of the meter's record the endorsers read: the
	// transaction that last wrote it.
	Record RecordVersion `json:"record"`
	// AttestedBy are the MSP IDs of the NMIs whose peers endorsed the
	// attestation, sorted.
	AttestedBy []string `json:"attestedBy"`
	// Ordering is who ordered and signed the block.
	Ordering Ordering `json:"ordering"`
	// GenesisHash is the pinned genesis block's header hash (hex) that the
	// verification started from.
	GenesisHash string `json:"genesisHash"`
}

// Revocation is a revoked key's revocation as the record has it.
type Revocation struct {
	// Reason is the RFC 5280 reason (keyCompromise, certificateHold, ...).
	Reason string `json:"reason"`
	// RevokedAt is the revoking transaction's time (RFC 3339).
	RevokedAt string `json:"revokedAt"`
	// InvalidityDate is when the key is known or suspected to have become
	// invalid, if the NMI stated it.
	InvalidityDate string `json:"invalidityDate,omitempty"`
	// DecidedBy are the NMIs whose votes revoked the key, for a
	// revocation the consortium decided rather than the owner.
	DecidedBy []string `json:"decidedBy,omitempty"`
}

// RecordVersion locates the write that produced the record read.
type RecordVersion struct {
	Block uint64 `json:"block"`
	Tx    uint64 `json:"tx"`
}

// Ordering is the orderers' signatures on the attestation's block.
type Ordering struct {
	// Signed is the number of distinct consenters whose signatures verified.
	Signed int `json:"signed"`
	// Consenters is the size of the consenter set in force.
	Consenters int `json:"consenters"`
	// Signers are the consenters that signed, in the block's order.
	Signers []Consenter `json:"signers"`
}

// Consenter is an ordering node that signed the block.
type Consenter struct {
	ID    uint32 `json:"id"`
	MSPID string `json:"mspId"`
}

// String renders the statement as a sentence.
func (s *Statement) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "As of block %d (time %s), meter %s is bound to key fingerprint %s (curve %s, key version %d), status %s",
		s.Block, s.Time.UTC().Format(time.RFC3339), s.MeterID, s.Fingerprint, s.Curve, s.KeyVersion, s.Status)
	if r := s.Revocation; r != nil {
		fmt.Fprintf(&b, " (revoked: %s at %s", r.Reason, r.RevokedAt)
		if r.InvalidityDate != "" {
			fmt.Fprintf(&b, ", invalid since %s", r.InvalidityDate)
		}
		if len(r.DecidedBy) > 0 {
			fmt.Fprintf(&b, ", decided by NMIs %s", list(r.DecidedBy))
		}
		b.WriteString(")")
	}
	fmt.Fprintf(&b, ", owned by NMI %s; attested by NMIs %s; ordered by %d of %d consenters.",
		s.Owner, list(s.AttestedBy), s.Ordering.Signed, s.Ordering.Consenters)
	return b.String()
}

// list writes "A", "A and B", "A, B and C".
func list(items []string) string {
	switch len(items) {
	case 0:
		return "none"
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
