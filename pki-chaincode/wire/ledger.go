package wire

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// The ledger's vocabulary beside the measurement path: the chaincode's
// name, the roles its clients carry, its limits, event names, the answers
// of its meter and consortium transactions, and the world-state key layout.
// The chaincode defines its transactions with these; the registry, the
// clients, the explorer's index and the network's tooling read them from
// here, so none of them links the contract itself.

// RoleAttribute is the certificate attribute (Fabric CA's attribute
// extension) that carries a client's role.
const RoleAttribute = "pki.role"

// Roles a client certificate may carry in RoleAttribute. The registry's API
// roles map onto them (docs/registry.md): operator signs as registrar;
// ingest, customer and utility as ingest; auditor as auditor.
const (
	RoleRegistrar = "registrar" // registers, rotates and revokes its own NMI's meters
	RoleIngest    = "ingest"    // delivers signed measurements (data concentrators)
	RoleAuditor   = "auditor"   // reads everything, writes nothing
)

// MaxBulkRegistration bounds RegisterMeters: larger enrolments are split by
// the client, so that one transaction stays well under the block size limit.
const MaxBulkRegistration = 1000

// Event names of the meter lifecycle.
const (
	EventMeterRegistered  = "MeterRegistered"
	EventMeterPreEnrolled = "MeterPreEnrolled"
	EventKeyRotated       = "KeyRotated"
	EventMeterRevoked     = "MeterRevoked"
	EventMeterReinstated  = "MeterReinstated"
	// EventPreEnrolmentWithdrawn: its NMI withdrew a pre-enrolment.
	EventPreEnrolmentWithdrawn = "PreEnrolmentWithdrawn"
)

// Event names of meter types and software (TypeEvent).
const (
	EventMeterTypeRecorded = "MeterTypeRecorded"
	EventSoftwareApproved  = "SoftwareApproved"
	EventSoftwareWithdrawn = "SoftwareWithdrawn"
	EventMeterTypeAssigned = "MeterTypeAssigned"
	// EventSoftwareUpdate: an update statement was delivered; its payload
	// is the meter.UpdateOutcome without the report.
	EventSoftwareUpdate = "SoftwareUpdate"
)

// TypeEvent is the payload of the meter type events.
type TypeEvent struct {
	NMI        string `json:"nmi"`
	TypeID     string `json:"typeId"`
	SoftwareID string `json:"softwareId,omitempty"`
	MeterID    string `json:"meterId,omitempty"`
}

// TypePage is one page of ListMeterTypes.
type TypePage struct {
	Types    []*meter.MeterType `json:"types"`
	Bookmark string             `json:"bookmark"`
}

// TypeVersion is one state of a meter type's record in the ledger's
// history (GetMeterTypeHistory).
type TypeVersion struct {
	TxID string           `json:"txId"`
	Time string           `json:"time"`
	Type *meter.MeterType `json:"type"`
}

// Event names of the measurement path.
const (
	EventMeasurementAccepted   = "MeasurementAccepted"
	EventMeasurementsSubmitted = "MeasurementsSubmitted"
)

// Event names of the consortium's decisions.
const (
	EventMembersRecorded = "MembersRecorded"
	EventVoteCast        = "ConsortiumVoteCast"
	// EventPreEnrolmentReleased: a majority released a pre-enrolment.
	EventPreEnrolmentReleased = "PreEnrolmentReleased"
)

// Consortium actions a majority of the members may take by voting.
const (
	// ActionRevoke revokes any meter (its owner may have left the
	// consortium, or registered a meter ID that is not its own).
	ActionRevoke = "revoke"
	// ActionRelease removes a pre-enrolment before it expires.
	ActionRelease = "release"
)

// MaxVoteReason bounds a release vote's stated reason.
const MaxVoteReason = 256

// Enrolment is the answer to a registration and the payload of
// EventMeterRegistered: which meters an NMI registered.
type Enrolment struct {
	NMI      string   `json:"nmi"`
	MeterIDs []string `json:"meterIds"`
	// Existing are meters of the request this NMI had registered already
	// with exactly this key and metadata (a repeated request): nothing is
	// written for them.
	Existing []string `json:"existing,omitempty" metadata:",optional"`
}

// MeterEvent is the payload of the single-meter lifecycle events.
type MeterEvent struct {
	NMI        string `json:"nmi"`
	MeterID    string `json:"meterId"`
	KeyVersion int    `json:"keyVersion"`
	Reason     string `json:"reason,omitempty"`
}

// MeterPage is one page of ListMeters.
type MeterPage struct {
	Meters []*meter.Meter `json:"meters"`
	// Bookmark continues the listing; empty on the last page.
	Bookmark string `json:"bookmark"`
}

// MeterVersion is one state of a meter record in the ledger's history
// (GetMeterHistory), with the transaction that wrote it.
type MeterVersion struct {
	TxID  string       `json:"txId"`
	Time  string       `json:"time"`
	Meter *meter.Meter `json:"meter"`
}

// Members is the ledger's record of the consortium's member NMIs.
type Members struct {
	MSPIDs []string `json:"mspIds"`
	// Ballots names each member's ballot key (BallotKey), made by the
	// majority-endorsed transaction that recorded the member: only votes
	// in these count.
	Ballots map[string]string `json:"ballots,omitempty" metadata:",optional"`
	TxID    string            `json:"txId"`
	At      string            `json:"at"`
}

// Majority is how many of the members make a majority.
func (m *Members) Majority() int { return len(m.MSPIDs)/2 + 1 }

// Has reports whether the NMI of mspID is a member.
func (m *Members) Has(mspID string) bool { return slices.Contains(m.MSPIDs, mspID) }

// Refresh answers RefreshPolicies: how many of the NMI's meters had their
// records' key-level policy set to the current members', and where the next
// page starts (empty on the last).
type Refresh struct {
	NMI      string `json:"nmi"`
	Meters   int    `json:"meters"`
	Bookmark string `json:"bookmark"`
}

// Vote is one member's vote for a consortium action on a meter ID.
type Vote struct {
	Action  string `json:"action"`
	MeterID string `json:"meterId"`
	Voter   string `json:"voter"`
	// Reason: for a revocation, the RFC 5280 reason; for a release, why.
	Reason string `json:"reason"`
	// Target is the transaction that last wrote what the vote is about
	// (the meter's record, the pre-enrolment): a vote counts only while
	// its target is unchanged, so a pre-enrolment withdrawn and made again
	// inherits no votes.
	Target string `json:"target,omitempty" metadata:",optional"`
	TxID   string `json:"txId"`
	At     string `json:"at"`
}

// Ballot is a member's open votes, by action and meter ID (BallotEntry),
// under its ballot key, whose key-level policy is that member's peer
// alone: no one but the member can cast, change or forge its votes.
type Ballot struct {
	Voter string           `json:"voter"`
	Votes map[string]*Vote `json:"votes"`
}

// BallotEntry names a vote within a ballot.
func BallotEntry(action, meterID string) string { return action + "/" + meterID }

// MaxBallotVotes bounds a member's open votes; votes older than
// VoteValidity are dropped when the member votes again.
const MaxBallotVotes = 256

// VoteValidity is how long a vote counts.
const VoteValidity = 30 * 24 * time.Hour

// Tally is the state of a consortium action after a vote.
type Tally struct {
	Action  string `json:"action"`
	MeterID string `json:"meterId"`
	// Voters are the members that voted for it, this vote included.
	Voters []string `json:"voters"`
	// Needed is the majority of the members.
	Needed int `json:"needed"`
	// Applied: this vote made the majority and the action was taken.
	Applied bool `json:"applied"`
	// Meter is the revoked meter's record, once a revocation is applied.
	Meter *meter.Meter `json:"meter,omitempty" metadata:",optional"`
	// PreEnrolment is the released pre-enrolment, once a release is applied.
	PreEnrolment *meter.PreEnrolment `json:"preEnrolment,omitempty" metadata:",optional"`
}

// The world-state layout. Keys are plain strings (so range queries work on
// LevelDB) with a prefix per kind; meter IDs cannot contain '/' or '~', so a
// prefix never captures another meter's keys and RangeEnd closes every
// range.
//
//	meter/<id>                     the meter record (key-level policy: owner or majority)
//	keyver/<id>/<version>          every key the meter has held (owner or majority)
//	fp/<fingerprint>               which meter a key is bound to, for ever
//	pre/<id>                       pre-enrolment: hash of the meter identity (owner or majority)
//	last/<id>                      the replay guard (Guard): last accepted seq
//	                               and the hashes of the latest accepted readings
//	ix/nmi/<nmi>/<status>/<id>     listing index by owner and status
//	ix/status/<status>/<id>        listing index by status
//	att/<id>                       the latest attestation's transaction (AttestMeter)
//	type/<type id>                 a meter type and its approved software (certifying NMI or majority)
//	swlog/<id>/<number>            a meter's recorded update statements (owner or majority)
//	ix/type/<type id>/<id>         listing index of a type's meters
//	consortium/members             the member NMIs (key-level policy: a majority of them)
//	vote/<action>/<id>/<nmi>       a member's vote for a consortium action (owner: the voter)
const RangeEnd = "~"

// The kinds of key: the first segment of every world-state key.
const (
	KindMeter       = "meter"
	KindKeyVersion  = "keyver"
	KindFingerprint = "fp"
	KindPreEnrolled = "pre"
	KindGuard       = "last"
	KindIndex       = "ix"
	KindAttestation = "att"
	KindConsortium  = "consortium"
	KindVote        = "vote"
	KindBallot      = "ballot"
	KindType        = "type"
	KindSoftwareLog = "swlog"
)

// KeyKind splits a world-state key into its kind and the rest.
func KeyKind(key string) (kind, rest string) {
	kind, rest, _ = strings.Cut(key, "/")
	return kind, rest
}

// MembersKey holds the consortium's Members.
const MembersKey = KindConsortium + "/members"

// MeterKey is the key of a meter's record.
func MeterKey(id string) string { return KindMeter + "/" + id }

// KeyVersionKey is the key of one of a meter's key versions; the version
// has at least 6 digits, so the keys sort by version.
func KeyVersionKey(id string, version int) string {
	return fmt.Sprintf("%s/%s/%06d", KindKeyVersion, id, version)
}

// KeyVersionPrefix starts the range of a meter's key versions.
func KeyVersionPrefix(id string) string { return KindKeyVersion + "/" + id + "/" }

// FingerprintKey binds a key's fingerprint to its meter.
func FingerprintKey(fp string) string { return KindFingerprint + "/" + fp }

// PreEnrolmentKey is the key of a meter ID's pre-enrolment.
func PreEnrolmentKey(id string) string { return KindPreEnrolled + "/" + id }

// NMIIndexKey indexes a meter by its owner and status; with an empty id it
// is the prefix of the owner's meters of that status.
func NMIIndexKey(nmi, status, id string) string { return NMIIndexPrefix(nmi) + status + "/" + id }

// NMIIndexPrefix starts the range of an NMI's meters, of every status.
func NMIIndexPrefix(nmi string) string { return KindIndex + "/nmi/" + nmi + "/" }

// StatusIndexKey indexes a meter by its status; with an empty id it is the
// prefix of the meters of that status.
func StatusIndexKey(status, id string) string { return KindIndex + "/status/" + status + "/" + id }

// TypeKey is the key of a meter type's record.
func TypeKey(id string) string { return KindType + "/" + id }

// SoftwareLogKey is the key of a meter's number-th recorded update
// statement; the number has at least 6 digits, so the keys sort by it.
func SoftwareLogKey(id string, number int) string {
	return fmt.Sprintf("%s/%s/%06d", KindSoftwareLog, id, number)
}

// SoftwareLogPrefix starts the range of a meter's software log.
func SoftwareLogPrefix(id string) string { return KindSoftwareLog + "/" + id + "/" }

// TypeIndexKey indexes a meter by its type; with an empty id it is the
// prefix of the type's meters.
func TypeIndexKey(typeID, id string) string { return KindIndex + "/type/" + typeID + "/" + id }

// AttestKey records a meter's latest attestation transaction.
func AttestKey(id string) string { return KindAttestation + "/" + id }

// BallotKey is the key of a member's ballot, named by the transaction that
// made it: no one can make the key before the majority-endorsed
// transaction that records the member does, since no one knows its ID.
func BallotKey(mspID, txID string) string { return KindBallot + "/" + mspID + "/" + txID }
