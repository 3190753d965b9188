package meter

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Status is a meter's key status.
type Status string

// Meter statuses. A meter on certificateHold is revoked until reinstated.
const (
	StatusActive  Status = "active"
	StatusRevoked Status = "revoked"
)

// ParseStatus accepts "" (any), "active" or "revoked".
func ParseStatus(s string) (Status, error) {
	switch Status(s) {
	case "", StatusActive, StatusRevoked:
		return Status(s), nil
	}
	return "", Errorf(CodeMalformed, "status %q is unknown: use active or revoked", truncate(s))
}

// Reason is an RFC 5280 CRLReason name.
type Reason string

// Revocation reasons (RFC 5280 section 5.3.1) that apply to a meter key.
const (
	ReasonUnspecified          Reason = "unspecified"
	ReasonKeyCompromise        Reason = "keyCompromise"
	ReasonAffiliationChanged   Reason = "affiliationChanged"
	ReasonSuperseded           Reason = "superseded"
	ReasonCessationOfOperation Reason = "cessationOfOperation"
	ReasonCertificateHold      Reason = "certificateHold"
)

// Reasons lists the accepted revocation reasons.
var Reasons = []Reason{ReasonUnspecified, ReasonKeyCompromise, ReasonAffiliationChanged,
	ReasonSuperseded, ReasonCessationOfOperation, ReasonCertificateHold}

// ParseReason accepts one of Reasons.
func ParseReason(s string) (Reason, error) {
	for _, r := range Reasons {
		if string(r) == s {
			return r, nil
		}
	}
	return "", Errorf(CodeMalformed, "revocation reason %q is unknown: use one of unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold", truncate(s))
}

// Metadata identifies the instrument and its legally relevant software
// (WELMEC 7.2 / OIML D31: software identifier and checksum).
type Metadata struct {
	Manufacturer     string `json:"manufacturer"`
	Model            string `json:"model"`
	SerialNumber     string `json:"serialNumber"`
	SoftwareID       string `json:"softwareId"`
	SoftwareChecksum string `json:"softwareChecksum"`
}

// MaxMetadataLen bounds each metadata field.
const MaxMetadataLen = 128

var checksumRE = regexp.MustCompile(`^[a-z0-9-]{2,16}:[0-9a-fA-F]{8,128}$`)

// Validate checks that every field is present, printable and bounded, and that
// the checksum names its algorithm ("sha256:<hex>", "crc32:<hex>").
func (md Metadata) Validate() error {
	fields := []struct{ name, value string }{
		{"manufacturer", md.Manufacturer}, {"model", md.Model}, {"serialNumber", md.SerialNumber},
		{"softwareId", md.SoftwareID}, {"softwareChecksum", md.SoftwareChecksum},
	}
	for _, f := range fields {
		if f.value == "" {
			return Errorf(CodeMalformed, "%s is required", f.name)
		}
		if len(f.value) > MaxMetadataLen {
			return Errorf(CodeTooLarge, "%s is %d bytes, at most %d allowed", f.name, len(f.value), MaxMetadataLen)
		}
		if err := CheckText(f.name, f.value); err != nil {
			return err
		}
	}
	if !checksumRE.MatchString(md.SoftwareChecksum) {
		return Errorf(CodeMalformed, "softwareChecksum %q must be <algorithm>:<hex>, for example sha256:9f86d081...", truncate(md.SoftwareChecksum))
	}
	return nil
}

// CheckText refuses what a reader of the text would not see as written:
// invalid UTF-8, control characters (C0, DEL and C1: Unicode category Cc),
// format characters (Cf: the bidirectional embeddings, overrides and
// isolates U+202A-202E and U+2066-2069, the marks U+200E/U+200F/U+061C,
// zero-width characters), line and paragraph separators and surrogates. A
// bidirectional override can make a serial number or a checksum display
// as another in the explorer, an export or a certificate while the ledger
// holds something else; metadata is printed on certificates and compared
// by people, so it must read as it is stored.
func CheckText(name, s string) error {
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			return Errorf(CodeMalformed, "%s is not valid UTF-8 (at byte %d)", name, i)
		case unicode.In(r, unicode.Cc, unicode.Zl, unicode.Zp, unicode.Cs):
			return Errorf(CodeMalformed, "%s contains the control character %U at byte %d", name, r, i)
		case unicode.Is(unicode.Cf, r):
			return Errorf(CodeMalformed, "%s contains the invisible formatting character %U at byte %d (bidirectional controls and zero-width characters are refused: the text would display as something other than it is)", name, r, i)
		}
	}
	return nil
}

var meterIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// ValidateMeterID accepts 1 to 64 characters of letters, digits and . _ : -,
// starting with a letter or digit.
func ValidateMeterID(id string) error {
	if !meterIDRE.MatchString(id) {
		return Errorf(CodeMalformed, "meter ID %q is invalid: 1 to 64 characters of letters, digits and . _ : -, starting with a letter or digit", truncate(id))
	}
	return nil
}

// Namespace is the prefix of the meter IDs an NMI registers and
// pre-enrols: its MSP ID without a trailing "MSP", and a hyphen (PTBMSP's
// meters are PTB-…, METASMSP's METAS-…). An ID names its NMI, so no NMI
// can take an ID another will need.
func Namespace(mspID string) string { return strings.TrimSuffix(mspID, "MSP") + "-" }

// CheckNamespace refuses a meter ID outside the NMI's namespace.
func CheckNamespace(id, mspID string) error {
	ns := Namespace(mspID)
	if !strings.HasPrefix(id, ns) || len(id) == len(ns) {
		return Errorf(CodeNotOwner, "meter ID %s is not in %s's namespace: its meter IDs start with %q", truncate(id), mspID, ns)
	}
	return nil
}

// Registration is an NMI's request to bind a public key to a meter. The owning
// NMI is the submitter's organisation, never a field.
type Registration struct {
	MeterID   string `json:"meterId"`
	PublicKey string `json:"publicKey"`
	Metadata
	// Identity is the meter identity whose SHA-256 was pre-enrolled, if any.
	Identity string `json:"identity,omitempty"`
	// TypeID names the meter's type (RecordMeterType); its software
	// (Metadata) must be a version approved for the type. Optional: a
	// meter without one is listed as of unknown type until its NMI
	// assigns one (AssignMeterType).
	TypeID string `json:"typeId,omitempty"`
	// Proof is the meter's DER signature (base64), with the key being
	// registered, over RegistrationStatement for this meter ID and the
	// registering NMI: proof that the key is the meter's and that the
	// meter is meant for that NMI. Whoever merely knows a public key (a
	// delivery list, a certificate) cannot bind it to any meter.
	Proof string `json:"proof"`
}

// RegistrationStatement is what a meter signs with its key so that the NMI
// (MSP ID) may register that key as the meter's: the meter signs it at
// manufacture or installation, for the NMI it is delivered to.
func RegistrationStatement(meterID, nmi string, key *PublicKey) []byte {
	b, _ := json.Marshal(struct {
		Type        string `json:"type"`
		MeterID     string `json:"meterId"`
		NMI         string `json:"nmi"`
		Fingerprint string `json:"publicKeySha256"`
	}{"meterRegistration", meterID, nmi, key.Fingerprint()})
	return b
}

// Prove sets r.Proof: the meter's signature with priv, whose public key is
// r.PublicKey, over the registration statement for nmi.
func (r *Registration) Prove(priv *PrivateKey, nmi string) error {
	sig, err := priv.Sign(RegistrationStatement(r.MeterID, nmi, priv.Public()))
	if err != nil {
		return err
	}
	r.Proof = base64.StdEncoding.EncodeToString(sig)
	return nil
}

// VerifyProof checks r.Proof against key (r's parsed key) for the
// registering NMI.
func (r Registration) VerifyProof(key *PublicKey, nmi string) error {
	if r.Proof == "" {
		return Errorf(CodeBadSignature, "meter %s: the registration carries no proof of possession (proof: the meter's signature over its registration statement for %s)", r.MeterID, nmi)
	}
	sig, err := base64.StdEncoding.DecodeString(r.Proof)
	if err != nil {
		return Errorf(CodeMalformed, "meter %s: proof is not standard base64: %v", r.MeterID, err)
	}
	if err := key.Verify(RegistrationStatement(r.MeterID, nmi, key), sig); err != nil {
		return Errorf(CodeBadSignature, "meter %s: the proof of possession does not verify against the key being registered for %s (a proof made for another NMI or meter ID does not count): %v", r.MeterID, nmi, messageOf(err))
	}
	return nil
}

// MaxIdentityLen bounds a pre-enrolment identity.
const MaxIdentityLen = 256

// Validate checks the request and returns its parsed key.
func (r Registration) Validate() (*PublicKey, error) {
	if err := ValidateMeterID(r.MeterID); err != nil {
		return nil, err
	}
	if err := r.Metadata.Validate(); err != nil {
		return nil, err
	}
	if len(r.Identity) > MaxIdentityLen {
		return nil, Errorf(CodeTooLarge, "identity is %d bytes, at most %d allowed", len(r.Identity), MaxIdentityLen)
	}
	if r.TypeID != "" {
		if err := ValidateTypeID(r.TypeID); err != nil {
			return nil, err
		}
	}
	return ParsePublicKeyPEM(r.PublicKey)
}

// IdentityHash is the hex SHA-256 of a meter identity, the value an NMI may
// pre-enrol before the meter is registered (BC-AMI hashed identity).
func IdentityHash(identity string) string {
	sum := sha256.Sum256([]byte(identity))
	return hex.EncodeToString(sum[:])
}

var hashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidateHash accepts a lowercase hex SHA-256.
func ValidateHash(h string) error {
	if !hashRE.MatchString(h) {
		return Errorf(CodeMalformed, "identity hash must be 64 lowercase hex characters (SHA-256)")
	}
	return nil
}

// Revocation records why and when a meter's key stopped being trusted.
type Revocation struct {
	Reason Reason `json:"reason"`
	// RevokedAt is the transaction time of the revocation.
	RevokedAt string `json:"revokedAt"`
	// InvalidityDate is when the key is known or suspected to have become
	// invalid (RFC 5280 invalidityDate), if the NMI stated it.
	InvalidityDate string `json:"invalidityDate,omitempty" metadata:",optional"`
	TxID           string `json:"txId"`
	// DecidedBy lists the NMIs (MSP IDs) whose votes made a consortium
	// revocation, one not made by the meter's owner; absent otherwise.
	DecidedBy []string `json:"decidedBy,omitempty" metadata:",optional"`
}

// Meter is the ledger's record of a meter: the key that is its certificate,
// who owns it and its status.
type Meter struct {
	ID          string      `json:"meterId"`
	NMI         string      `json:"nmi"`
	PublicKey   string      `json:"publicKey"`
	Curve       Curve       `json:"curve"`
	Fingerprint string      `json:"fingerprint"`
	KeyVersion  int         `json:"keyVersion"`
	Status      Status      `json:"status"`
	Metadata    Metadata    `json:"metadata"`
	Revocation  *Revocation `json:"revocation,omitempty" metadata:",optional"`
	// IdentityHash is set when the meter was pre-enrolled.
	IdentityHash string `json:"identityHash,omitempty" metadata:",optional"`
	RegisteredTx string `json:"registeredTx"`
	RegisteredAt string `json:"registeredAt"`
	UpdatedTx    string `json:"updatedTx"`
	UpdatedAt    string `json:"updatedAt"`
	// TypeID is the meter's type; empty: unknown (registered before types
	// were recorded, and no type assigned since).
	TypeID string `json:"typeId,omitempty" metadata:",optional"`
	// Software is what the meter has run, newest last (at most
	// MaxInstalled): empty until its first successful update, when the
	// registration's software (Metadata) is the first entry.
	Software []Installed `json:"software,omitempty" metadata:",optional"`
	// Updates counts the update statements recorded in the meter's
	// software log, and remembers the last one's time and hash: a later
	// statement must be newer, and the same bytes again are a duplicate.
	Updates *UpdateMark `json:"updates,omitempty" metadata:",optional"`
}

// UpdateMark is where a meter's software log stands.
type UpdateMark struct {
	Count    int    `json:"count"`
	LastTime string `json:"lastTime"`
	// LastHash is the hex SHA-256 of the last recorded statement.
	LastHash string `json:"lastHash"`
	LastTx   string `json:"lastTx"`
}

// KeyVersion is one key a meter has held. Versions are never overwritten: a
// rotation adds one, and the previous version stops verifying new
// measurements from the rotation's time on.
type KeyVersion struct {
	MeterID     string `json:"meterId"`
	Version     int    `json:"version"`
	PublicKey   string `json:"publicKey"`
	Curve       Curve  `json:"curve"`
	Fingerprint string `json:"fingerprint"`
	ValidFrom   string `json:"validFrom"`
	TxID        string `json:"txId"`
	// ProofSignature is the previous key's signature over the rotation
	// statement (base64), absent for the first version.
	ProofSignature string `json:"proofSignature,omitempty" metadata:",optional"`
}

// RotationStatement is what the meter signs with its current key to prove
// possession when its key is rotated to newKey as version newVersion.
func RotationStatement(meterID string, newVersion int, newKey *PublicKey) []byte {
	b, _ := json.Marshal(struct {
		Type        string `json:"type"`
		MeterID     string `json:"meterId"`
		KeyVersion  int    `json:"keyVersion"`
		Fingerprint string `json:"publicKeySha256"`
	}{"keyRotation", meterID, newVersion, newKey.Fingerprint()})
	return b
}

// PreEnrolment is an NMI's advance notice of a meter: the hash of its identity.
type PreEnrolment struct {
	MeterID      string `json:"meterId"`
	NMI          string `json:"nmi"`
	IdentityHash string `json:"identityHash"`
	TxID         string `json:"txId"`
	At           string `json:"at"`
	// ExpiresAt is At + PreEnrolmentValidity: after it the pre-enrolment
	// binds nobody, and any NMI may pre-enrol or register the meter ID.
	ExpiresAt string `json:"expiresAt"`
}

// Expiry is when the pre-enrolment stops reserving its meter ID. A record
// written before pre-enrolments expired carries no ExpiresAt; it expires
// PreEnrolmentValidity after it was made.
func (p *PreEnrolment) Expiry() string {
	if p.ExpiresAt != "" {
		return p.ExpiresAt
	}
	at, err := ParseTime(p.At)
	if err != nil {
		return p.At
	}
	return at.Add(PreEnrolmentValidity).UTC().Format(time.RFC3339Nano)
}

// PreEnrolmentValidity is how long a pre-enrolment reserves its meter ID
// for its NMI: long enough for meters to wait in a warehouse, short enough
// that an ID reserved by mistake or in bad faith comes free on its own.
const PreEnrolmentValidity = 180 * 24 * time.Hour

// MeasurementRecord is an accepted measurement as kept on the ledger: the
// exact signed bytes, the signature and the key version that verified them.
type MeasurementRecord struct {
	MeterID     string `json:"meterId"`
	Seq         uint64 `json:"seq"`
	Time        string `json:"time"`
	Value       string `json:"value"`
	Unit        string `json:"unit"`
	Ciphertext  string `json:"ciphertext,omitempty" metadata:",optional"`
	Payload     string `json:"payload"`   // base64 of the signed bytes
	Signature   string `json:"signature"` // base64 DER
	KeyVersion  int    `json:"keyVersion"`
	Fingerprint string `json:"fingerprint"`
	TxID        string `json:"txId"`
	AcceptedAt  string `json:"acceptedAt"`
}

// Rejection is a refused measurement from a concentrator batch, kept as
// evidence.
type Rejection struct {
	MeterID     string `json:"meterId"`
	Seq         uint64 `json:"seq,omitempty" metadata:",optional"`
	Code        Code   `json:"code"`
	Reason      string `json:"reason"`
	PayloadHash string `json:"payloadSha256"`
	TxID        string `json:"txId"`
	Index       int    `json:"index"`
	RejectedAt  string `json:"rejectedAt"`
	// SubmittedBy is the MSP ID of the client that submitted the batch.
	// Anyone allowed to submit measurements can send bytes naming any
	// meter, so a rejection says who sent them, not that the meter did.
	SubmittedBy string `json:"submittedBy"`
}

// Outcome of one item of a concentrator batch.
const (
	OutcomeAccepted = "accepted"
	OutcomeRejected = "rejected"
	// OutcomeDuplicate: exactly these signed bytes were accepted before
	// (a re-delivery after a lost answer). Nothing is written; TxID names
	// the transaction that accepted them.
	OutcomeDuplicate = "duplicate"
)

// ItemResult is the outcome of one item of a batch.
type ItemResult struct {
	Index   int    `json:"index"`
	MeterID string `json:"meterId"`
	Seq     uint64 `json:"seq,omitempty" metadata:",optional"`
	Outcome string `json:"outcome"`
	// KeyVersion is the key version that verified an accepted item.
	KeyVersion int    `json:"keyVersion,omitempty" metadata:",optional"`
	Code       Code   `json:"code,omitempty" metadata:",optional"`
	Reason     string `json:"reason,omitempty" metadata:",optional"`
	// TxID is, for a duplicate, the transaction that accepted the item,
	// when the ledger's answer names it (the chaincode knows it only for a
	// duplicate within one batch; the registry fills it in from its index).
	TxID string `json:"txId,omitempty" metadata:",optional"`
}

// BatchResult lists every item's outcome.
type BatchResult struct {
	TxID       string       `json:"txId"`
	Accepted   int          `json:"accepted"`
	Rejected   int          `json:"rejected"`
	Duplicates int          `json:"duplicates,omitempty" metadata:",optional"`
	Items      []ItemResult `json:"items"`
}

// Verification answers whether a signed measurement would be accepted now.
type Verification struct {
	Valid      bool   `json:"valid"`
	MeterID    string `json:"meterId"`
	Seq        uint64 `json:"seq,omitempty" metadata:",optional"`
	KeyVersion int    `json:"keyVersion,omitempty" metadata:",optional"`
	Code       Code   `json:"code,omitempty" metadata:",optional"`
	Reason     string `json:"reason,omitempty" metadata:",optional"`
	// Duplicate: exactly these signed bytes were accepted already (a
	// delivery would be answered as a duplicate); TxID is then the
	// transaction that accepted them, when the verifier knows it.
	Duplicate bool   `json:"duplicate,omitempty" metadata:",optional"`
	TxID      string `json:"txId,omitempty" metadata:",optional"`
}

// messageOf is a refusal's text without its code.
func messageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}
