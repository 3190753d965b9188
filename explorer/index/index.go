// Package index is the explorer's embedded store (bbolt): what it needs to
// answer without re-reading the chain and to resume where it stopped — each
// block's header, orderers' signatures and the ID, validation code,
// function and creator of its transactions; where each transaction and
// each meter's readings are (meter, seq, meter time and their block,
// transaction and item); the meter registry and the meter types as they
// stood after each transaction, each type's meters by the software they
// run, and the software update statements meters made; refusals of
// readings and statements, transactions the peers marked invalid (apart,
// with the transaction that carried their request again), findings,
// running totals and hourly and per-minute counts. It keeps no copy of what the blocks hold: a
// transaction's contents and what a reading measured are read from the
// peer's blocks when a page asks for them (Evidence), checked against the
// index.
package index

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/network/pkg/follow"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// ErrNotFound means the store has no such block, transaction or meter.
var ErrNotFound = errors.New("not found")

// Buckets. A meter is known by its number in the index (meternums) in the
// keys of its records, keys and readings; numbers and block, transaction
// and item positions are fixed-width big-endian in keys, varints in values.
var (
	bMeta      = []byte("meta")      // checkpoint, integrity, config, totals, verifier state, layout
	bStrs      = []byte("strs")      // the dictionary of strings values repeat (encode.go)
	bBlocks    = []byte("blocks")    // number → block summary (putBlock)
	bBlockHash = []byte("blockhash") // header hash's first 8 bytes → the numbers of the blocks whose hash begins so (uvarints)
	bTxIDs     = []byte("txids")     // transaction ID's first 8 bytes → block and index of each transaction whose ID begins so (uvarints)
	bMeterNums = []byte("meternums") // meter ID → its number (4 bytes)
	bMeterHist = []byte("meterhist") // number, block, tx → a version of the meter's record (putVersion); the last is the current one
	bKeys      = []byte("keys")      // number, version → KeyVersion (putKey)
	bTails     = []byte("tails")     // number → the meter's newest chunk of readings, accepted and refused (readings.go)
	bReadings  = []byte("readings")  // block, number → a chunk of the meter's readings that block closed (readings.go)
	bRefusals  = []byte("refusals")  // block, tx, item → Refusal (putRefusal): refused readings and update statements
	bInvalid   = []byte("invalid")   // block, tx → InvalidTx (putInvalid): transactions the peers marked invalid
	bPending   = []byte("pending")   // request hash → block and tx (uvarints) of each invalid transaction no valid one carried yet (invalid.go)
	bCarriers  = []byte("carriers")  // block, tx of a valid transaction → the block and tx keys of the invalid ones whose request it carried
	bHours     = []byte("hours")     // unix hour → its counts (putHour)
	bMinutes   = []byte("minutes")   // unix minute → its counts (putMinute)
	bFindings  = []byte("findings")  // block, tx, n → Finding (JSON)
	bAttests   = []byte("attests")   // meter ID → Attested, its latest attestation (follow.Attestations)
	bConfigs   = []byte("configs")   // block → "" for each configuration block (follow.Attestations)
	// Meter types and software (types.go, updates.go).
	bTypeHist     = []byte("typehist")   // type ID, 0, block, tx → a version of the type's record (putTypeVersion)
	bTypeMeters   = []byte("typemeters") // type ID, 0, meter ID → "" for each meter of the type
	bTypeSoftware = []byte("typesw")     // type ID, 0, software tag, meter ID → "" for each meter of the type in service, by the software it runs
	bTypeCounts   = []byte("typecounts") // type ID, 0, software tag → the software and how many meters of the type run it (putCount)
	bUpdates      = []byte("updates")    // number, block, tx → a software update statement, accepted or refused (putUpdate)
	allBuckets    = [][]byte{bMeta, bStrs, bBlocks, bBlockHash, bTxIDs, bMeterNums, bMeterHist, bKeys, bTails, bReadings, bRefusals,
		bInvalid, bPending, bCarriers, bHours, bMinutes, bFindings, bAttests, bConfigs, bTypeHist, bTypeMeters, bTypeSoftware, bTypeCounts, bUpdates}
)

// attestations keeps what an attestation bundle needs, as the registry's
// index does.
var attestations = follow.Attestations{Chaincode: wire.Namespace, Meters: bAttests, Configs: bConfigs}

// Meta keys.
var (
	kCheckpoint = []byte("checkpoint") // next block number to index
	kIntegrity  = []byte("integrity")
	kConfig     = []byte("config")
	kTotals     = []byte("totals")
	kVerifier   = []byte("verifier")
	kLayout     = []byte("layout")
)

// layout is the version of the index's layout. An index of another version
// is deleted when opened, and the explorer reads the chain again from block
// 0 into a new file: version 2 added the attestations and configuration
// blocks, version 3 keeps where transactions and readings are instead of
// copies of them (about a seventh of the size), version 4 adds meter types,
// the meters of each type by the software they run, software update
// statements and a dictionary for the records' new fields, version 5 keeps
// invalid transactions apart from refusals, linked to the transaction that
// carried their request, and counts each minute's measurements.
const layout = 5

// Store is the explorer's index.
type Store struct {
	db    *bolt.DB
	known *knownMeters
	// Reset says that Open found an index of an older layout and deleted
	// it, so that the chain is read again.
	Reset bool
}

// Open opens (or creates) the index at path. An index of another layout
// is deleted and a new one made in its place: a new file, since bbolt
// keeps the pages a file once had, and the old layout's size would stay.
func Open(path string) (*Store, error) {
	s, stale, err := open(path)
	if err != nil || !stale {
		return s, err
	}
	if err := s.db.Close(); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil {
		return nil, fmt.Errorf("remove the index of an older layout: %w", err)
	}
	if s, _, err = open(path); err != nil {
		return nil, err
	}
	s.Reset = true
	return s, nil
}

// open opens the index at path; stale says it is of another layout and
// was left as it is.
func open(path string) (s *Store, stale bool, err error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, false, fmt.Errorf("open index %s: %w", path, err)
	}
	s = &Store{db: db, known: newKnownMeters(recentMeters)}
	err = db.Update(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bMeta); meta != nil && decodeU64(meta.Get(kLayout)) != layout {
			stale = true
			return nil
		}
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bMeta).Put(kLayout, u64(layout))
	})
	if err != nil {
		db.Close()
		return nil, false, err
	}
	return s, stale, nil
}

// SetNoSync skips the fsync of each block's commit: for bulk loads whose
// loss on a crash does not matter (tests, benchmarks), never for the
// explorer's own index.
func (s *Store) SetNoSync(on bool) { s.db.NoSync = on }

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Checkpoint is the number of the next block to index (0 for an empty store)
// and the verifier's saved state (nil for an empty store).
func (s *Store) Checkpoint() (next uint64, verifier []byte, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		next = decodeU64(meta.Get(kCheckpoint))
		if b := meta.Get(kVerifier); b != nil {
			verifier = append([]byte(nil), b...)
		}
		return nil
	})
	return next, verifier, err
}

// Integrity is the explorer's verdict on the chain.
type Integrity struct {
	// CheckedThrough is the last block checked.
	CheckedThrough uint64 `json:"checkedThrough"`
	Checked        bool   `json:"checked"`
	// Broken is set at the first block that failed a check.
	Broken *Break `json:"broken,omitempty"`
}

// Break locates the first integrity failure.
type Break struct {
	Block  uint64 `json:"block"`
	Reason string `json:"reason"`
}

// Intact reports whether every block checked so far passed.
func (i Integrity) Intact() bool { return i.Checked && i.Broken == nil }

// Totals are the running counts the dashboard shows.
type Totals struct {
	Blocks       uint64 `json:"blocks"`
	Transactions uint64 `json:"transactions"`
	// Invalid counts the transactions the peers marked invalid,
	// InvalidByCode by validation code, and InvalidCarried those whose
	// request a later valid transaction carried (InvalidTx).
	Invalid        uint64            `json:"invalid"`
	InvalidByCode  map[string]uint64 `json:"invalidByCode,omitempty"`
	InvalidCarried uint64            `json:"invalidCarried"`
	Accepted       uint64            `json:"accepted"`
	Refused        uint64            `json:"refused"`
	// Findings counts the integrity findings (see Finding).
	Findings uint64 `json:"findings"`
	// UpdatesAccepted and UpdatesRefused count the software update
	// statements recorded in meters' software logs and those the chaincode
	// refused.
	UpdatesAccepted uint64            `json:"updatesAccepted"`
	UpdatesRefused  uint64            `json:"updatesRefused"`
	ByNMI           map[string]*Count `json:"byNmi"`
	LastBlock       time.Time         `json:"lastBlock"`
}

// Count is one NMI's meters.
type Count struct {
	Registered uint64 `json:"registered"`
	Revoked    uint64 `json:"revoked"`
}

// Totals returns the running counts.
func (s *Store) Totals() (Totals, error) {
	var t Totals
	err := s.db.View(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bMeta), kTotals, &t) })
	if t.ByNMI == nil {
		t.ByNMI = map[string]*Count{}
	}
	return t, err
}

// Integrity returns the verdict on the chain.
func (s *Store) Integrity() (Integrity, error) {
	var i Integrity
	err := s.db.View(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bMeta), kIntegrity, &i) })
	return i, err
}

// Config returns the channel configuration of the newest config block.
func (s *Store) Config() (*channel.Config, error) {
	c := new(channel.Config)
	err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bMeta).Get(kConfig) == nil {
			return ErrNotFound
		}
		return getJSON(tx.Bucket(bMeta), kConfig, c)
	})
	return c, err
}

func getJSON(b *bolt.Bucket, key []byte, v any) error {
	raw := b.Get(key)
	if raw == nil {
		return nil
	}
	return json.Unmarshal(raw, v)
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, raw)
}

// Keys are encoded by package follow, as in the registry's index.
var (
	u64       = follow.Uint64
	u32       = follow.Uint32
	decodeU64 = follow.ReadUint64
)

// key concatenates fixed-width key parts.
func key(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
