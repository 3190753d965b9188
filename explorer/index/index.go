// Package index is the explorer's embedded store: every block the explorer
// has read, its transactions, the meter registry as it stood after each
// transaction, measurements and refusals, and running totals, kept in bbolt
// so the explorer answers without re-reading the chain and resumes where it
// stopped.
package index

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/network/pkg/follow"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// ErrNotFound means the store has no such block, transaction or meter.
var ErrNotFound = errors.New("not found")

// Buckets.
var (
	bMeta      = []byte("meta")      // checkpoint, integrity, config, totals, verifier state
	bBlocks    = []byte("blocks")    // number → BlockSummary
	bBlockHash = []byte("blockhash") // header hash → number
	bTxs       = []byte("txs")       // tx ID → TxDetail
	bMeters    = []byte("meters")    // meter ID → MeterState (current)
	bMeterHist = []byte("meterhist") // meter ID, 0, block, tx → MeterVersion
	bKeys      = []byte("keys")      // meter ID, 0, version → KeyVersion
	bReadings  = []byte("readings")  // meter ID, 0, block, tx, item → Reading (accepted and refused)
	bRefusals  = []byte("refusals")  // block, tx, item → Refusal
	bHours     = []byte("hours")     // unix hour → HourStat
	bMinutes   = []byte("minutes")   // unix minute → transactions
	bFindings  = []byte("findings")  // block, tx, n → Finding
	bAttests   = []byte("attests")   // meter ID → Attested, its latest attestation (follow.Attestations)
	bConfigs   = []byte("configs")   // block → "" for each configuration block (follow.Attestations)
	allBuckets = [][]byte{bMeta, bBlocks, bBlockHash, bTxs, bMeters, bMeterHist, bKeys, bReadings, bRefusals, bHours, bMinutes, bFindings, bAttests, bConfigs}
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
// is emptied when opened, and the explorer reads the chain again from block
// 0: version 2 added the attestations and configuration blocks (bAttests,
// bConfigs), which an older index lacks for the blocks it read.
const layout = 2

// Store is the explorer's index.
type Store struct {
	db *bolt.DB
	// Reset says that Open found an index of an older layout and emptied
	// it, so that the chain is read again.
	Reset bool
}

// Open opens (or creates) the index at path.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	s := &Store{db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bMeta)
		if decodeU64(meta.Get(kLayout)) == layout {
			return nil
		}
		if meta.Get(kCheckpoint) != nil {
			s.Reset = true
			for _, b := range allBuckets {
				if err := tx.DeleteBucket(b); err != nil {
					return err
				}
				if _, err := tx.CreateBucket(b); err != nil {
					return err
				}
			}
			meta = tx.Bucket(bMeta)
		}
		return meta.Put(kLayout, u64(layout))
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
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
	Invalid      uint64 `json:"invalid"`
	Accepted     uint64 `json:"accepted"`
	Refused      uint64 `json:"refused"`
	// Findings counts the integrity findings (see Finding).
	Findings  uint64            `json:"findings"`
	ByNMI     map[string]*Count `json:"byNmi"`
	LastBlock time.Time         `json:"lastBlock"`
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
	join      = follow.Key
	u64       = follow.Uint64
	u32       = follow.Uint32
	decodeU64 = follow.ReadUint64
)
