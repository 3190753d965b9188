// Package api defines the registry's HTTP interface: the JSON bodies its
// endpoints take and return, the problem details of a refusal, and the
// roles. The server, the Go client, the operator CLI and the simulator share
// it; the meter records and the signed measurement format themselves come from
// package meter.
package api

import (
	"time"

	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/network/pkg/credentials"
	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// Prefix is the versioned root of every API route.
const Prefix = "/api/v1"

// Role is what a credential allows (package network/pkg/credentials, which
// maps each to the Fabric identity the registry acts with).
type Role = credentials.Role

// Roles of the registry's clients.
const (
	RoleOperator = credentials.RoleOperator
	RoleIngest   = credentials.RoleIngest
	RoleAuditor  = credentials.RoleAuditor
	RoleCustomer = credentials.RoleCustomer
	RoleUtility  = credentials.RoleUtility
)

// Roles lists every role.
var Roles = credentials.Roles

// Limits of the API.
const (
	MaxRegistrationBatch = 10000
	MaxMeasurementBatch  = meter.MaxBatch
)

// Tx identifies the committed transaction a write answered with.
type Tx struct {
	TxID  string `json:"txId"`
	Block uint64 `json:"block"`
}

// MeterReceipt answers a registration, rotation, revocation or reinstatement.
type MeterReceipt struct {
	Meter *meter.Meter `json:"meter"`
	Tx
	// Duplicate: a repeated registration; the ledger held exactly this
	// already, and Tx is the transaction that registered it.
	Duplicate bool `json:"duplicate,omitempty"`
}

// BatchTx is one transaction of a batch registration.
type BatchTx struct {
	Tx
	Meters int `json:"meters"`
}

// Enrolment answers a batch registration.
type Enrolment struct {
	Registered   int       `json:"registered"`
	MeterIDs     []string  `json:"meterIds"`
	Transactions []BatchTx `json:"transactions"`
	// Existing are meters of the request registered before with exactly
	// this key and metadata (a repeated request): nothing was written.
	Existing []string `json:"existing,omitempty"`
}

// PreEnrolmentRequest announces a meter by the SHA-256 of its identity.
type PreEnrolmentRequest struct {
	MeterID      string `json:"meterId"`
	IdentityHash string `json:"identityHash"`
}

// PreEnrolmentReceipt answers a pre-enrolment.
type PreEnrolmentReceipt struct {
	PreEnrolment *meter.PreEnrolment `json:"preEnrolment"`
	Tx
}

// RotateRequest replaces a meter's key. Proof is the current key's DER
// signature (base64) over meter.RotationStatement for the new key.
type RotateRequest struct {
	PublicKey string `json:"publicKey"`
	Proof     string `json:"proof"`
}

// RevokeRequest revokes a meter's key.
type RevokeRequest struct {
	Reason meter.Reason `json:"reason"`
	// InvalidityDate (RFC 3339, optional) is since when the key is known or
	// suspected to be invalid.
	InvalidityDate string `json:"invalidityDate,omitempty"`
}

// MeterList is one page of meters; Next continues it.
type MeterList struct {
	Meters []*meter.Meter `json:"meters"`
	Next   string         `json:"next,omitempty"`
}

// MeterVersion is one state of a meter record, as the chaincode's
// GetMeterHistory answers it.
type MeterVersion = wire.MeterVersion

// MeasurementReceipt answers one accepted measurement.
type MeasurementReceipt struct {
	MeterID    string `json:"meterId"`
	Seq        uint64 `json:"seq"`
	KeyVersion int    `json:"keyVersion,omitempty"`
	Tx
	// Duplicate: exactly these signed bytes were accepted before (a
	// re-delivery); Tx is the transaction that accepted them.
	Duplicate bool `json:"duplicate,omitempty"`
}

// MeasurementBatch is a data concentrator's delivery.
type MeasurementBatch struct {
	Measurements []meter.SignedMeasurement `json:"measurements"`
}

// BatchReceipt answers a concentrator batch with every item's outcome. When
// every item is a duplicate nothing is written: Tx is empty and each item
// names the transaction that accepted it.
type BatchReceipt struct {
	Tx
	Accepted   int                `json:"accepted"`
	Rejected   int                `json:"rejected"`
	Duplicates int                `json:"duplicates"`
	Items      []meter.ItemResult `json:"items"`
}

// TransactionStatus is what this NMI's peer knows of a transaction: any
// client can settle a write whose answer said OUTCOME_UNKNOWN.
type TransactionStatus struct {
	TxID string `json:"txId"`
	// Status is "valid" or "invalid" once committed, "unknown" while this
	// NMI's peer has no record of it (not ordered yet, or never).
	Status string `json:"status"`
	// ValidationCode is Fabric's code for a committed transaction (VALID,
	// MVCC_READ_CONFLICT, ...).
	ValidationCode string `json:"validationCode,omitempty"`
	Block          uint64 `json:"block,omitempty"`
}

// Transaction statuses.
const (
	TxValid   = "valid"
	TxInvalid = "invalid"
	TxUnknown = "unknown"
)

// MeasurementList is one page of a meter's measurements.
type MeasurementList struct {
	Measurements []*meter.MeasurementRecord `json:"measurements"`
	Next         string                     `json:"next,omitempty"`
}

// Finding is an integrity finding of the registry's index: a valid
// transaction of the chaincode it did not believe (package
// network/pkg/audit), which honest chaincode never commits.
type Finding struct {
	// Kind is what is wrong: function, signature, measurements, key, value,
	// mismatch, unbound or owner.
	Kind     string `json:"kind"`
	Problem  string `json:"problem"`
	Block    uint64 `json:"block"`
	TxID     string `json:"txId"`
	Function string `json:"function"`
	// Endorsers are the NMIs whose peers endorsed the transaction.
	Endorsers []string  `json:"endorsers"`
	Time      time.Time `json:"time"`
}

// FindingList is one page of integrity findings, oldest first.
type FindingList struct {
	Findings []Finding `json:"findings"`
	Next     string    `json:"next,omitempty"`
}

// RejectionList is one page of a meter's refused batch items.
type RejectionList struct {
	Rejections []*meter.Rejection `json:"rejections"`
	Next       string             `json:"next,omitempty"`
}

// Consortium is what the channel says about the consortium.
type Consortium struct {
	Channel       string              `json:"channel"`
	Height        uint64              `json:"height"`
	Members       []channel.Member    `json:"members"`
	ConsensusType string              `json:"consensusType"`
	Orderers      []channel.Consenter `json:"orderers"`
	ConfigSeq     uint64              `json:"configSequence"`
	Chaincode     Chaincode           `json:"chaincode"`
	// NMI is the member this registry speaks for.
	NMI string `json:"nmi"`
}

// Chaincode is the committed chaincode definition and the contract's own version.
type Chaincode struct {
	Name            string `json:"name"`
	Version         string `json:"version"`
	Sequence        int64  `json:"sequence"`
	ContractVersion string `json:"contractVersion"`
}

// Problem is an RFC 9457 problem details body (application/problem+json).
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// Code is the stable machine-readable reason.
	Code     string `json:"code"`
	Instance string `json:"instance,omitempty"`
	// TxID names the transaction, when a refusal came from the ledger.
	TxID string `json:"txId,omitempty"`
	// Errors lists per-entry problems of a batch, when there are several.
	Errors []string `json:"errors,omitempty"`
}

// Error lets a Problem travel as an error on the client side.
func (p *Problem) Error() string {
	return p.Code + ": " + p.Detail
}

// ProblemType is the type URI of a problem code.
func ProblemType(code string) string { return "urn:inter-nmi:pki:problem:" + code }

// API-level problem codes, beside the ledger's meter codes.
const (
	CodeUnauthenticated     = "UNAUTHENTICATED"
	CodeRoleForbidden       = "FORBIDDEN" // same spelling as meter.CodeForbidden
	CodeNotFound            = "NOT_FOUND"
	CodeMethodNotAllowed    = "METHOD_NOT_ALLOWED"
	CodeUnsupportedMedia    = "UNSUPPORTED_MEDIA_TYPE"
	CodeIdempotencyConflict = "IDEMPOTENCY_CONFLICT"
	CodeUnavailable         = "NETWORK_UNAVAILABLE"
	CodeTimeout             = "TIMEOUT"
	CodeConflict            = "CONFLICT"
	// CodeStorageFull: the registry's own disk is full; nothing was sent
	// to the ledger. Retry later, with the same Idempotency-Key.
	CodeStorageFull = "STORAGE_FULL"
	// CodeOutcomeUnknown: the write's transaction was sent and may still
	// commit; the problem's txId names it. Retry with the same
	// Idempotency-Key, or ask GET /transactions/{txId}.
	CodeOutcomeUnknown = "OUTCOME_UNKNOWN"
	// CodeTxInvalid: the transaction was ordered and committed as invalid
	// for a reason a new attempt would not change; nothing was written.
	CodeTxInvalid = "TRANSACTION_INVALID"
)

// The billing bodies are the billing contract's requests (package
// agreement): the registry checks a body and passes it on as it came.
type (
	// BillingPeriodRequest binds a customer's functional public key to a
	// meter and billing period, with the meter's consent.
	BillingPeriodRequest = agreement.PeriodRequest
	// TariffAgreementRequest records the tariff both parties signed.
	TariffAgreementRequest = agreement.TariffRequest
	// KeyIssuedRequest records that the customer issued the functional key.
	KeyIssuedRequest = agreement.KeyRequest
	// BillRequest records the utility's bill.
	BillRequest = agreement.BillRequest
)

// BillingReceipt answers a billing write with the period's whole record.
type BillingReceipt struct {
	Record *agreement.Record `json:"record"`
	Tx
}
