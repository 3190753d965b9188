// Package chain reads the channel's blocks the way an auditor must: it
// parses every transaction (creator, endorsers, validation code, function,
// arguments, events, read/write set) and checks the chain's integrity
// itself — each block's header and data hashes, the hash chain, and the
// signatures of a BFT quorum of the orderers — so that the explorer trusts
// no single NMI, not even the one whose peer it reads from. Only the
// validation codes, which no signature covers, remain the word of that
// peer (see Block.CommitHash).
package chain

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Block is a block as the explorer keeps it.
type Block struct {
	Number       uint64 `json:"number"`
	HeaderHash   []byte `json:"headerHash"`
	PreviousHash []byte `json:"previousHash"`
	DataHash     []byte `json:"dataHash"`
	// Time is the timestamp of its first transaction (blocks carry none):
	// the submitting client's clock, so not necessarily increasing.
	Time time.Time `json:"time"`
	// Config is set for a configuration block.
	Config bool `json:"config"`
	Txs    []Tx `json:"txs"`
	// Signatures are the orderers' signatures over the block header.
	Signatures []Signature `json:"signatures"`
	// Size is the block's encoded size in bytes.
	Size int `json:"size"`
	// CommitHash is the committing peer's hash of the block's validation
	// codes and state updates, chained with the previous block's (metadata
	// COMMIT_HASH; none on the genesis block). Neither it nor the
	// validation codes (Tx.Code) are covered by the hash chain or the
	// orderers' signatures: they are the peer's word. Compare it across
	// peers of different NMIs to find one that misreports them.
	CommitHash []byte `json:"commitHash,omitempty"`
}

// Signature is one orderer's signature on a block.
type Signature struct {
	// ConsenterID identifies the orderer in the BFT consenter set. A
	// signature that carries a full signature header instead has 0 until
	// Verifier.Verify matches its creator to a consenter.
	ConsenterID uint32 `json:"consenterId"`
	// MSPID is the orderer's organisation. For a signature that names its
	// consenter by ID, Verifier.Verify fills it (and Subject) in from the
	// consenter set when the signature verifies.
	MSPID string `json:"mspId"`
	// Subject names the signing certificate, when known.
	Subject string `json:"subject"`
	// Valid reports whether the signature verified (set by Verifier.Verify).
	Valid bool `json:"valid"`
}

// Tx is one transaction of a block.
type Tx struct {
	ID    string    `json:"id"`
	Index int       `json:"index"`
	Type  string    `json:"type"` // ENDORSER_TRANSACTION, CONFIG, ...
	Time  time.Time `json:"time"`
	// Creator is the submitting client: its NMI (MSP ID) and certificate subject.
	CreatorMSP     string `json:"creatorMsp"`
	CreatorSubject string `json:"creatorSubject"`
	// CreatorRole is the pki.role attribute of the creator's certificate.
	CreatorRole string `json:"creatorRole,omitempty"`
	// Endorsers are the MSP IDs of the peers that endorsed it.
	Endorsers []string `json:"endorsers"`
	// Code is the peer's validation code (VALID, MVCC_READ_CONFLICT, ...).
	Code      string `json:"code"`
	Chaincode string `json:"chaincode,omitempty"`
	// Function is the invocation's first argument; Args are the others.
	// Binary arguments (the protobuf messages of _lifecycle) do not survive
	// JSON encoding intact; ArgsForDisplay shows them as hexadecimal.
	Function string   `json:"function,omitempty"`
	Args     []string `json:"args,omitempty"`
	// Response is the chaincode's answer as the endorsers agreed on it.
	ResponseStatus  int32   `json:"responseStatus,omitempty"`
	ResponsePayload []byte  `json:"responsePayload,omitempty"`
	Events          []Event `json:"events,omitempty"`
	Reads           []Read  `json:"reads,omitempty"`
	Writes          []Write `json:"writes,omitempty"`
	// MetadataWrites set key metadata: the pki chaincode sets each meter's
	// key-level endorsement policy (entry VALIDATION_PARAMETER) this way.
	MetadataWrites []MetadataWrite `json:"metadataWrites,omitempty"`
	// Problem says why the transaction could not be read completely. Only a
	// transaction the peers refused (Code not VALID) can have one.
	Problem string `json:"problem,omitempty"`
}

// Valid reports whether the peers committed the transaction's writes.
func (t *Tx) Valid() bool { return t.Code == "VALID" }

// MaxDisplayArg is the length in bytes beyond which ArgsForDisplay shortens
// an argument.
const MaxDisplayArg = 256

// ArgsForDisplay returns the arguments as a page may show them: text longer
// than MaxDisplayArg bytes is cut to a prefix followed by "… (N bytes)", and
// binary arguments (the protobuf messages of _lifecycle, say) are shown as
// hexadecimal, likewise cut.
func (t *Tx) ArgsForDisplay() []string {
	out := make([]string, len(t.Args))
	for i, a := range t.Args {
		out[i] = DisplayArg(a, len(a))
	}
	return out
}

// DisplayArg shows one argument as ArgsForDisplay does; size is its full
// length, which may exceed len(a) when a is already a stored prefix.
func DisplayArg(a string, size int) string {
	if !isText(a) {
		const maxBytes = MaxDisplayArg / 2
		if len(a) <= maxBytes && size == len(a) {
			return "0x" + hex.EncodeToString([]byte(a))
		}
		return fmt.Sprintf("0x%s… (%d bytes)", hex.EncodeToString([]byte(a[:min(maxBytes, len(a))])), size)
	}
	if len(a) <= MaxDisplayArg && size == len(a) {
		return a
	}
	if len(a) > MaxDisplayArg {
		a = a[:MaxDisplayArg+1]
	}
	cut := min(MaxDisplayArg, len(a))
	for cut > 0 && cut < len(a) && !utf8.RuneStart(a[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", a[:cut], size)
}

// isText reports whether s is printable UTF-8 (line breaks and tabs allowed).
func isText(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool {
		return !unicode.IsPrint(r) && r != '\n' && r != '\r' && r != '\t'
	}) < 0
}

// Event is a chaincode event.
type Event struct {
	Name    string `json:"name"`
	Payload []byte `json:"payload"`
}

// Read is a key the transaction read, at the version it read.
type Read struct {
	Namespace string `json:"namespace"`
	Key       string `json:"key"`
	// Block and Tx locate the write that produced the version read.
	Block uint64 `json:"block"`
	Tx    uint64 `json:"tx"`
	// Absent is set when the key did not exist (Block and Tx are then 0).
	Absent bool `json:"absent,omitempty"`
}

// Write is a key the transaction wrote or deleted.
type Write struct {
	Namespace string `json:"namespace"`
	Key       string `json:"key"`
	Value     []byte `json:"value,omitempty"`
	Delete    bool   `json:"delete,omitempty"`
}

// MetadataWrite sets the metadata of a key.
type MetadataWrite struct {
	Namespace string          `json:"namespace"`
	Key       string          `json:"key"`
	Entries   []MetadataEntry `json:"entries"`
}

// MetadataEntry is one named metadata value of a key.
type MetadataEntry struct {
	Name  string `json:"name"`
	Value []byte `json:"value"`
}
