package api

import (
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// Meter types and legally relevant software: the NMI that examined a type
// records it with the software versions approved for it; meters name
// their type and report their own software updates in statements they
// sign (package meter defines the records and the statement).

// TypeRecordRequest records a meter type under this NMI: the type ID lies
// in its namespace, and its certifying NMI is the registry's own.
type TypeRecordRequest = meter.TypeRecord

// ApproveRequest approves another software version for a type, from
// ApprovedFrom (RFC 3339; empty: at once).
type ApproveRequest = meter.VersionApproval

// WithdrawRequest withdraws a software version of a type from From
// (RFC 3339; empty: at once), for a reason.
type WithdrawRequest struct {
	SoftwareID string `json:"softwareId"`
	Reason     string `json:"reason"`
	From       string `json:"from,omitempty"`
}

// AssignTypeRequest names the type of a meter registered without one.
type AssignTypeRequest struct {
	TypeID string `json:"typeId"`
}

// TypeReceipt answers a write of a meter type with the type's record after
// it, and the transaction.
type TypeReceipt struct {
	Type *meter.MeterType `json:"type"`
	Tx
	// Duplicate: a repeated request; the ledger held exactly this already,
	// nothing was written, and Tx is the transaction that wrote it.
	Duplicate bool `json:"duplicate,omitempty"`
}

// TypeList is one page of meter types; Next continues it.
type TypeList struct {
	Types []*meter.MeterType `json:"types"`
	Next  string             `json:"next,omitempty"`
}

// TypeVersion is one state of a meter type's record, as the chaincode's
// GetMeterTypeHistory answers it.
type TypeVersion = wire.TypeVersion

// SoftwareUpdate is a meter's update statement as a data concentrator
// delivers it: the exact bytes the meter signed and its DER signature
// (both base64), and the meter they speak for.
type SoftwareUpdate = meter.SignedUpdate

// SoftwareUpdateReceipt answers an update statement the ledger recorded.
type SoftwareUpdateReceipt struct {
	MeterID string `json:"meterId"`
	// Report is the entry of the meter's software log: the accepted
	// statement, or for a duplicate the entry recorded before.
	Report *meter.UpdateReport `json:"report"`
	Tx
	// Duplicate: exactly these signed bytes were recorded before (a
	// re-delivery); nothing was written, and Tx is the transaction that
	// recorded them.
	Duplicate bool `json:"duplicate,omitempty"`
}

// MeterSoftware is a meter's legally relevant software: its type, what it
// runs now, what its record remembers it ran (newest last), and its
// software log (the update statements recorded, oldest first).
type MeterSoftware struct {
	MeterID   string                `json:"meterId"`
	TypeID    string                `json:"typeId,omitempty"`
	Current   meter.Software        `json:"current"`
	Installed []meter.Installed     `json:"installed"`
	Log       []*meter.UpdateReport `json:"log"`
}
