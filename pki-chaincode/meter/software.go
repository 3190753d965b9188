package meter

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
	"time"
)

// Legally relevant software (MID Annex I 7.6 and 8.3, WELMEC Guide 7.2):
// the NMI that examined a meter type records which software versions are
// approved for it; every meter of the type runs one of them, reports each
// update itself in a statement signed with its key, and names its software
// in the readings it signs. docs/software.md describes the model.

// Software identifies one legally relevant software: its identification
// (WELMEC 7.2 P2, the string the instrument displays) and its checksum
// ("<algorithm>:<hex>").
type Software struct {
	ID       string `json:"softwareId"`
	Checksum string `json:"softwareChecksum"`
}

// Validate checks both fields as meter metadata checks them.
func (s Software) Validate(what string) error {
	if err := checkField(what+"softwareId", s.ID); err != nil {
		return err
	}
	if err := checkField(what+"softwareChecksum", s.Checksum); err != nil {
		return err
	}
	if !checksumRE.MatchString(s.Checksum) {
		return Errorf(CodeMalformed, "%ssoftwareChecksum %q must be <algorithm>:<hex>, for example sha256:9f86d081...", what, truncate(s.Checksum))
	}
	return nil
}

func (s Software) String() string { return s.ID + " (" + s.Checksum + ")" }

// checkField refuses an empty, oversized or unreadable text field.
func checkField(name, value string) error {
	if value == "" {
		return Errorf(CodeMalformed, "%s is required", name)
	}
	if len(value) > MaxMetadataLen {
		return Errorf(CodeTooLarge, "%s is %d bytes, at most %d allowed", name, len(value), MaxMetadataLen)
	}
	return CheckText(name, value)
}

// ApprovedSoftware is one software version approved for a meter type, from
// a date on, until it is withdrawn.
type ApprovedSoftware struct {
	Software
	// ApprovedFrom is when the approval takes effect (RFC 3339).
	ApprovedFrom string `json:"approvedFrom"`
	ApprovedTx   string `json:"approvedTx"`
	ApprovedAt   string `json:"approvedAt"`
	// Withdrawal is set once the certifying NMI withdrew the version.
	Withdrawal *Withdrawal `json:"withdrawal,omitempty" metadata:",optional"`
}

// Withdrawal records why and from when a version is no longer approved.
type Withdrawal struct {
	Reason string `json:"reason"`
	// From is when the withdrawal takes effect (RFC 3339): readings a meter
	// signed from then on, naming the version, are refused. It may lie
	// before the withdrawal's transaction (a fault found after the fact).
	From string `json:"from"`
	TxID string `json:"txId"`
	At   string `json:"at"`
}

// ApprovedAtTime reports whether the version is approved at t: approved from
// a time at or before t and not withdrawn from a time at or before t.
func (v *ApprovedSoftware) ApprovedAtTime(t time.Time) bool {
	from, err := ParseTime(v.ApprovedFrom)
	if err != nil || t.Before(from) {
		return false
	}
	if v.Withdrawal != nil {
		w, err := ParseTime(v.Withdrawal.From)
		if err != nil || !t.Before(w) {
			return false
		}
	}
	return true
}

// MeterType is a meter type as the NMI that examined it recorded it: its
// type-examination certificate and the software approved for it.
type MeterType struct {
	ID string `json:"typeId"`
	// NMI is the certifying NMI (MSP ID), the only one that may change the
	// type.
	NMI          string `json:"nmi"`
	Manufacturer string `json:"manufacturer"`
	Model        string `json:"model"`
	// Certificate is the type-examination certificate's reference.
	Certificate string             `json:"certificate"`
	Versions    []ApprovedSoftware `json:"versions"`
	RecordedTx  string             `json:"recordedTx"`
	RecordedAt  string             `json:"recordedAt"`
	UpdatedTx   string             `json:"updatedTx"`
	UpdatedAt   string             `json:"updatedAt"`
}

// Version returns the type's version with the identification id, nil if
// there is none.
func (mt *MeterType) Version(id string) *ApprovedSoftware {
	for i := range mt.Versions {
		if mt.Versions[i].ID == id {
			return &mt.Versions[i]
		}
	}
	return nil
}

// CheckApproved refuses software that is not a version of the type
// approved at t (the same identification and checksum).
func (mt *MeterType) CheckApproved(s Software, t time.Time) error {
	v := mt.Version(s.ID)
	switch {
	case v == nil:
		return Errorf(CodeSoftwareNotApproved, "software %s is not a version of type %s", truncate(s.ID), mt.ID)
	case v.Checksum != s.Checksum:
		return Errorf(CodeSoftwareNotApproved, "software %s of type %s has the checksum %s, not %s", truncate(s.ID), mt.ID, v.Checksum, truncate(s.Checksum))
	case v.ApprovedAtTime(t):
		return nil
	case v.Withdrawal != nil:
		return Errorf(CodeSoftwareNotApproved, "software %s of type %s is withdrawn from %s (%s)", s.ID, mt.ID, v.Withdrawal.From, v.Withdrawal.Reason)
	}
	return Errorf(CodeSoftwareNotApproved, "software %s of type %s is approved only from %s, not at %s", s.ID, mt.ID, v.ApprovedFrom, t.UTC().Format(time.RFC3339))
}

// Limits of a meter type.
const (
	// MaxTypeVersions bounds the versions of one type: every batch whose
	// readings name their software reads the type's record.
	MaxTypeVersions = 64
	// MaxWithdrawalReason bounds a withdrawal's stated reason.
	MaxWithdrawalReason = 256
)

// TypeRecord is the request that records a meter type: its certifying NMI
// is the submitter's organisation, never a field.
type TypeRecord struct {
	TypeID       string            `json:"typeId"`
	Manufacturer string            `json:"manufacturer"`
	Model        string            `json:"model"`
	Certificate  string            `json:"certificate"`
	Versions     []VersionApproval `json:"versions"`
}

// VersionApproval approves one software version for a type from a time on.
type VersionApproval struct {
	Software
	// ApprovedFrom (RFC 3339) is when the approval takes effect; empty
	// means at once (the transaction's time).
	ApprovedFrom string `json:"approvedFrom,omitempty"`
}

// Validate checks the request for the NMI mspID.
func (r TypeRecord) Validate(mspID string) error {
	if err := ValidateTypeID(r.TypeID); err != nil {
		return err
	}
	if err := CheckNamespace(r.TypeID, mspID); err != nil {
		return Errorf(CodeNotOwner, "type ID %s is not in %s's namespace: its type IDs start with %q", truncate(r.TypeID), mspID, Namespace(mspID))
	}
	for _, f := range []struct{ name, value string }{{"manufacturer", r.Manufacturer}, {"model", r.Model}, {"certificate", r.Certificate}} {
		if err := checkField(f.name, f.value); err != nil {
			return err
		}
	}
	if len(r.Versions) == 0 {
		return Errorf(CodeMalformed, "a meter type needs at least one approved software version")
	}
	if len(r.Versions) > MaxTypeVersions {
		return Errorf(CodeTooLarge, "the type lists %d software versions, at most %d", len(r.Versions), MaxTypeVersions)
	}
	seen := map[string]bool{}
	for i, v := range r.Versions {
		if err := v.Validate(""); err != nil {
			return Errorf(CodeOf(err), "version %d: %s", i, messageOf(err))
		}
		if seen[v.ID] {
			return Errorf(CodeVersionExists, "version %d: software %s is listed twice", i, truncate(v.ID))
		}
		seen[v.ID] = true
		if v.ApprovedFrom != "" {
			if _, err := ParseTime(v.ApprovedFrom); err != nil {
				return Errorf(CodeMalformed, "version %d: approvedFrom: %s", i, messageOf(err))
			}
		}
	}
	return nil
}

var typeIDRE = meterIDRE

// ValidateTypeID accepts what a meter ID accepts: 1 to 64 characters of
// letters, digits and . _ : -, starting with a letter or digit. A type ID
// lies in its certifying NMI's namespace (PTB-…), as meter IDs do.
func ValidateTypeID(id string) error {
	if !typeIDRE.MatchString(id) {
		return Errorf(CodeMalformed, "type ID %q is invalid: 1 to 64 characters of letters, digits and . _ : -, starting with a letter or digit", truncate(id))
	}
	return nil
}

// Installed is a software a meter runs from a time on: the one registered,
// or the new one of a successful update it reported.
type Installed struct {
	Software
	// Since is when the meter started running it: its registration's
	// time, or the time its update statement states (the meter's clock,
	// the clock its readings carry).
	Since string `json:"since"`
	TxID  string `json:"txId"`
}

// MaxInstalled bounds the software a meter record remembers (newest
// last): readings are judged against the software their meter ran at
// their time, and a reading may arrive up to MaxAge late.
const MaxInstalled = 8

// SoftwareAt is the software the meter ran at t by its record: the newest
// installed from a time at or before t, or its oldest remembered if t lies
// before all of them. A meter registered before software was tracked ran
// its registration's.
func (m *Meter) SoftwareAt(t time.Time) Software {
	if len(m.Software) == 0 {
		return Software{ID: m.Metadata.SoftwareID, Checksum: m.Metadata.SoftwareChecksum}
	}
	for i := len(m.Software) - 1; i > 0; i-- {
		if since, err := ParseTime(m.Software[i].Since); err == nil && !t.Before(since) {
			return m.Software[i].Software
		}
	}
	return m.Software[0].Software
}

// CurrentSoftware is the software the meter runs now: its last successful
// update's, or its registration's.
func (m *Meter) CurrentSoftware() Software {
	if n := len(m.Software); n > 0 {
		return m.Software[n-1].Software
	}
	return Software{ID: m.Metadata.SoftwareID, Checksum: m.Metadata.SoftwareChecksum}
}

// Install records that the meter runs s from since on.
func (m *Meter) Install(s Software, since, txID string) {
	if len(m.Software) == 0 {
		// The registration's software, from the registration on.
		m.Software = append(m.Software, Installed{Software: m.CurrentSoftware(), Since: m.RegisteredAt, TxID: m.RegisteredTx})
	}
	m.Software = append(m.Software, Installed{Software: s, Since: since, TxID: txID})
	if len(m.Software) > MaxInstalled {
		m.Software = m.Software[len(m.Software)-MaxInstalled:]
	}
}

// Update results a meter reports.
const (
	UpdateSuccess = "success"
	UpdateFailure = "failure"
)

// UpdateStatement is what a meter signs when it has loaded software
// (WELMEC 7.2 Extension D's audit trail: the old and new software
// identification, the time and the result). The meter signs the exact JSON
// bytes, ECDSA over SHA-256, DER, as its readings:
//
//	{"type":"softwareUpdate","meterId":"PTB-0001","time":"2026-12-07T10:00:00Z",
//	 "fromSoftwareId":"1.0.0","fromSoftwareChecksum":"sha256:…",
//	 "toSoftwareId":"1.1.0","toSoftwareChecksum":"sha256:…","result":"success"}
type UpdateStatement struct {
	Type    string `json:"type"`
	MeterID string `json:"meterId"`
	// Time is the meter's clock when the update ended, RFC 3339.
	Time   string   `json:"time"`
	From   Software `json:"-"`
	To     Software `json:"-"`
	Result string   `json:"result"`
	// Detail is the meter's optional word on a failure.
	Detail string `json:"detail,omitempty"`
}

// StatementType is the type field of an update statement.
const StatementType = "softwareUpdate"

// MaxStatementBytes bounds a signed update statement.
const MaxStatementBytes = 2 << 10

// Statement returns the bytes a meter signs for s.
func (s UpdateStatement) Statement() ([]byte, error) {
	s.Type = StatementType
	if err := s.validate(); err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		Type                 string `json:"type"`
		MeterID              string `json:"meterId"`
		Time                 string `json:"time"`
		FromSoftwareID       string `json:"fromSoftwareId"`
		FromSoftwareChecksum string `json:"fromSoftwareChecksum"`
		ToSoftwareID         string `json:"toSoftwareId"`
		ToSoftwareChecksum   string `json:"toSoftwareChecksum"`
		Result               string `json:"result"`
		Detail               string `json:"detail,omitempty"`
	}{s.Type, s.MeterID, s.Time, s.From.ID, s.From.Checksum, s.To.ID, s.To.Checksum, s.Result, s.Detail})
}

var statementFields = map[string]bool{"type": true, "meterId": true, "time": true, "fromSoftwareId": true,
	"fromSoftwareChecksum": true, "toSoftwareId": true, "toSoftwareChecksum": true, "result": true, "detail": true}

// ParseStatement reads a signed update statement strictly: one JSON object
// of string fields, none unknown or repeated, every one valid.
func ParseStatement(b []byte) (UpdateStatement, error) {
	var s UpdateStatement
	if len(b) == 0 {
		return s, Errorf(CodeMalformed, "the update statement is empty")
	}
	if len(b) > MaxStatementBytes {
		return s, Errorf(CodeTooLarge, "the update statement is %d bytes, at most %d allowed", len(b), MaxStatementBytes)
	}
	fields, err := objectFieldsOf(b, statementFields, "update statement")
	if err != nil {
		return s, err
	}
	targets := map[string]*string{"type": &s.Type, "meterId": &s.MeterID, "time": &s.Time,
		"fromSoftwareId": &s.From.ID, "fromSoftwareChecksum": &s.From.Checksum, "toSoftwareId": &s.To.ID,
		"toSoftwareChecksum": &s.To.Checksum, "result": &s.Result, "detail": &s.Detail}
	for name, raw := range fields {
		if err := json.Unmarshal(raw, targets[name]); err != nil {
			return s, Errorf(CodeMalformed, "update statement: %s must be a string", name)
		}
	}
	return s, s.validate()
}

var resultRE = regexp.MustCompile(`^(success|failure)$`)

func (s UpdateStatement) validate() error {
	if s.Type != StatementType {
		return Errorf(CodeMalformed, "update statement: type must be %q", StatementType)
	}
	if err := ValidateMeterID(s.MeterID); err != nil {
		return err
	}
	if _, err := ParseTime(s.Time); err != nil {
		return err
	}
	if err := s.From.Validate("from"); err != nil {
		return err
	}
	if err := s.To.Validate("to"); err != nil {
		return err
	}
	if !resultRE.MatchString(s.Result) {
		return Errorf(CodeMalformed, "update statement: result %q must be success or failure", truncate(s.Result))
	}
	if len(s.Detail) > MaxWithdrawalReason {
		return Errorf(CodeTooLarge, "update statement: detail is %d bytes, at most %d allowed", len(s.Detail), MaxWithdrawalReason)
	}
	return CheckText("detail", s.Detail)
}

// At is the statement's time.
func (s UpdateStatement) At() time.Time {
	t, _ := ParseTime(s.Time)
	return t
}

// SignUpdate builds a signed update statement with the meter's key.
func SignUpdate(key *PrivateKey, s UpdateStatement) (SignedUpdate, error) {
	b, err := s.Statement()
	if err != nil {
		return SignedUpdate{}, err
	}
	sig, err := key.Sign(b)
	if err != nil {
		return SignedUpdate{}, err
	}
	return SignedUpdate{MeterID: s.MeterID, Statement: b, Signature: sig}, nil
}

// SignedUpdate is a delivered update statement: the meter it speaks for,
// the exact bytes and the meter's DER signature (base64 in JSON).
type SignedUpdate struct {
	MeterID   string `json:"meterId"`
	Statement []byte `json:"statement"`
	Signature []byte `json:"signature"`
}

// Open checks the statement's form, that it names the meter it was
// delivered for, and that key signed it.
func (u SignedUpdate) Open(key *PublicKey) (UpdateStatement, error) {
	if err := ValidateMeterID(u.MeterID); err != nil {
		return UpdateStatement{}, err
	}
	s, err := ParseStatement(u.Statement)
	if err != nil {
		return s, err
	}
	if s.MeterID != u.MeterID {
		return s, Errorf(CodeMeterMismatch, "the update statement is signed for meter %q but was submitted for meter %q", truncate(s.MeterID), u.MeterID)
	}
	if err := checkSignatureForm(u.Signature); err != nil {
		return s, err
	}
	return s, key.Verify(u.Statement, u.Signature)
}

// SignedUpdateFromBase64 reads a delivered statement as
// SubmitSoftwareUpdate takes it: statement and signature in base64.
func SignedUpdateFromBase64(meterID, statement, signature string) (SignedUpdate, error) {
	if len(statement) > MaxStatementBytes*4/3+4 {
		return SignedUpdate{}, Errorf(CodeTooLarge, "the update statement exceeds %d bytes", MaxStatementBytes)
	}
	st, err := base64.StdEncoding.DecodeString(statement)
	if err != nil {
		return SignedUpdate{}, Errorf(CodeMalformed, "statement is not standard base64: %v", err)
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return SignedUpdate{}, Errorf(CodeMalformed, "signature is not standard base64: %v", err)
	}
	return SignedUpdate{MeterID: meterID, Statement: st, Signature: sig}, nil
}

// Update outcomes.
const (
	// UpdateAccepted: the statement is recorded in the meter's software
	// log; on success the meter runs the new software from its time on.
	UpdateAccepted = "accepted"
	// UpdateRefused: the chaincode refused the statement (Code, Reason);
	// the transaction that carried it is the evidence, nothing is written.
	UpdateRefused = "refused"
	// UpdateDuplicate: exactly these bytes were recorded before.
	UpdateDuplicate = "duplicate"
)

// UpdateReport is an update statement the ledger recorded, one entry of a
// meter's software log.
type UpdateReport struct {
	MeterID string `json:"meterId"`
	// Number counts the meter's recorded statements from 1.
	Number int      `json:"number"`
	Time   string   `json:"time"`
	From   Software `json:"from"`
	To     Software `json:"to"`
	Result string   `json:"result"`
	Detail string   `json:"detail,omitempty" metadata:",optional"`
	// Statement and Signature are the signed bytes and the DER signature
	// (base64), verifiable offline with the meter's key version.
	Statement  string `json:"statement"`
	Signature  string `json:"signature"`
	KeyVersion int    `json:"keyVersion"`
	// SubmittedBy is the MSP ID of the client that delivered it.
	SubmittedBy string `json:"submittedBy"`
	TxID        string `json:"txId"`
	RecordedAt  string `json:"recordedAt"`
}

// UpdateOutcome answers SubmitSoftwareUpdate.
type UpdateOutcome struct {
	MeterID string `json:"meterId"`
	Outcome string `json:"outcome"`
	Code    Code   `json:"code,omitempty" metadata:",optional"`
	Reason  string `json:"reason,omitempty" metadata:",optional"`
	// Report is the recorded entry (accepted, or the earlier entry of a
	// duplicate).
	Report *UpdateReport `json:"report,omitempty" metadata:",optional"`
	TxID   string        `json:"txId"`
}
