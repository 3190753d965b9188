// Package readings is the registry's off-chain index of measurements: it
// follows its NMI's peer's blocks from a checkpoint and keeps every
// measurement valid transactions accepted, by meter and meter time, and
// every refused batch item, by meter, in an embedded database (bbolt). The
// ledger's world state keeps only what consensus needs; the evidence is the
// transactions in the blocks, and this index is how the registry answers
// GET .../measurements and .../rejections, finds the transaction that
// accepted a re-delivered reading, and serves billing its ciphertexts.
//
// Nothing here is trusted more than the peer it reads: the index is derived
// data, rebuilt from block 0 if its file is deleted.
package readings

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"

	"github.com/inter-nmi/pki/network/pkg/audit"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
)

var (
	bMeta     = []byte("meta")     // checkpoint
	bReadings = []byte("readings") // meter, 0, meter time, seq → MeasurementRecord
	bSeqs     = []byte("seqs")     // meter, 0, seq[, 0, key version] → accepted: hash, block, tx ID
	bRefused  = []byte("refused")  // meter (or "-"), 0, block, tx, item → Rejection
	bMeters   = []byte("meters")   // meter → its record (meter.Meter), as the checks of package audit applied it
	bKeys     = []byte("keys")     // meter, 0, key version → meter.KeyVersion
	bFindings = []byte("findings") // block, tx, n → audit.Finding with where it was found
	bConfigs  = []byte("configs")  // block → "" for each configuration block
	bAttests  = []byte("attests")  // meter → Attested, its latest attestation
	kNext     = []byte("next")
	kVersion  = []byte("version")
)

// version is the index's layout; an index of an older layout is rebuilt
// from block 0 when opened, since it may lack what a newer one keeps.
const version = 3

// Attested is a meter's latest valid attestation transaction.
type Attested struct {
	Block uint64 `json:"block"`
	TxID  string `json:"txId"`
}

// Unattributed files refused items whose meter ID is not even well formed.
const Unattributed = "-"

// Index is the store.
type Index struct {
	db        *bolt.DB
	chaincode string
	log       *slog.Logger

	mu      sync.Mutex
	next    uint64
	changed chan struct{} // closed and replaced when next moves
	full    atomic.Int64
}

// Open opens (or creates) the index of a chaincode's measurements at path.
func Open(path, chaincode string) (*Index, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open readings index %s: %w", path, err)
	}
	x := &Index{db: db, chaincode: chaincode, log: slog.Default(), changed: make(chan struct{})}
	buckets := [][]byte{bMeta, bReadings, bSeqs, bRefused, bMeters, bKeys, bFindings, bConfigs, bAttests}
	// Buckets of older layouts, dropped when an index is rebuilt.
	buckets = append(buckets, []byte("fprints"))
	err = db.Update(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bMeta); meta != nil {
			if v := meta.Get(kVersion); len(v) != 8 || binary.BigEndian.Uint64(v) != version {
				// An older layout: start again from block 0.
				for _, b := range buckets {
					if tx.Bucket(b) != nil {
						if err := tx.DeleteBucket(b); err != nil {
							return err
						}
					}
				}
			}
		}
		for _, b := range buckets[:len(buckets)-1] {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bMeta).Put(kVersion, u64(version)); err != nil {
			return err
		}
		if v := tx.Bucket(bMeta).Get(kNext); v != nil {
			x.next = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return x, nil
}

// Close closes the store.
func (x *Index) Close() error { return x.db.Close() }

// Next is the number of the next block to index: every block below it is.
func (x *Index) Next() uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.next
}

// Await returns once block is indexed, or when ctx ends.
func (x *Index) Await(ctx context.Context, block uint64) error {
	for {
		x.mu.Lock()
		next, changed := x.next, x.changed
		x.mu.Unlock()
		if next > block {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the index has not reached block %d (it is at %d): %w", block, next, ctx.Err())
		case <-changed:
		}
	}
}

// Add indexes a block, which must be the next one. What its valid
// transactions wrote of meters and keys, their accepted measurements and
// refusals, and the integrity findings about them are written with the new
// checkpoint in one database transaction.
func (x *Index) Add(b *chain.Block) error {
	if b.Number != x.Next() {
		return fmt.Errorf("block %d given, the index expects %d", b.Number, x.Next())
	}
	err := x.db.Update(func(tx *bolt.Tx) error {
		if b.Config {
			if err := tx.Bucket(bConfigs).Put(u64(b.Number), nil); err != nil {
				return err
			}
		}
		for i := range b.Txs {
			t := &b.Txs[i]
			if !t.Valid() || t.Chaincode != x.chaincode {
				continue
			}
			if err := x.tx(tx, b, t); err != nil {
				return err
			}
		}
		next := make([]byte, 8)
		binary.BigEndian.PutUint64(next, b.Number+1)
		return tx.Bucket(bMeta).Put(kNext, next)
	})
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			x.full.Add(1)
		}
		return err
	}
	x.mu.Lock()
	x.next = b.Number + 1
	close(x.changed)
	x.changed = make(chan struct{})
	x.mu.Unlock()
	return nil
}

// FullWrites counts the blocks the index failed to store for lack of
// space since Open (each attempt).
func (x *Index) FullWrites() int64 { return x.full.Load() }

// Attestation returns the meter's latest valid attestation indexed.
func (x *Index) Attestation(meterID string) (a Attested, found bool, err error) {
	err = x.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bAttests).Get([]byte(meterID))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &a)
	})
	return a, found, err
}

// ConfigBlocks returns the numbers of the configuration blocks up to and
// including block, ascending, block 0 first.
func (x *Index) ConfigBlocks(block uint64) ([]uint64, error) {
	var out []uint64
	err := x.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bConfigs).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			n := binary.BigEndian.Uint64(k)
			if n > block {
				break
			}
			out = append(out, n)
		}
		return nil
	})
	return out, err
}

// tx indexes one valid transaction of the chaincode, after the checks of
// package audit: what fails one is a finding, and is not indexed.
func (x *Index) tx(tx *bolt.Tx, b *chain.Block, t *chain.Tx) error {
	if f := audit.Function(t.Function); f != nil {
		return x.find(tx, b, t, f)
	}
	if err := x.writes(tx, b, t); err != nil {
		return err
	}
	if t.Function == wire.TxAttestMeter {
		if len(t.Args) == 1 && meter.ValidateMeterID(t.Args[0]) == nil {
			v, _ := json.Marshal(Attested{Block: b.Number, TxID: t.ID})
			return tx.Bucket(bAttests).Put([]byte(t.Args[0]), v)
		}
		return nil
	}
	items, err := wire.Decode(t.Function, t.Args, t.ResponsePayload)
	switch {
	case errors.Is(err, wire.ErrNotMeasurements):
		return nil
	case err != nil:
		return x.find(tx, b, t, &audit.Finding{Kind: audit.KindMeasurements,
			Problem: "the measurement transaction cannot be decoded, its measurements are not indexed: " + err.Error()})
	}
	for _, it := range items {
		if err := x.item(tx, b, t, it); err != nil {
			return err
		}
	}
	return nil
}

// writes applies the meter records and key versions a transaction wrote,
// as far as the checks of package audit vouch for them: the index needs
// each meter's status and the key of each version to check the readings
// marked accepted.
func (x *Index) writes(tx *bolt.Tx, b *chain.Block, t *chain.Tx) error {
	written := map[string]meter.Meter{}
	var keyVersions []chain.Write
	meters := tx.Bucket(bMeters)
	for _, w := range t.Writes {
		if w.Namespace != x.chaincode || w.Delete {
			continue
		}
		kind, rest := wire.KeyKind(w.Key)
		switch kind {
		case wire.KindMeter:
			prev, err := meterOf(meters, rest)
			if err != nil {
				return err
			}
			m, f := audit.Record(w.Key, rest, w.Value, prev, t.CreatorMSP)
			if f != nil {
				if err := x.find(tx, b, t, f); err != nil {
					return err
				}
				continue
			}
			written[m.ID] = *m
			v, err := json.Marshal(m)
			if err != nil {
				return err
			}
			if err := meters.Put([]byte(m.ID), v); err != nil {
				return err
			}
		case wire.KindKeyVersion:
			keyVersions = append(keyVersions, w)
		}
	}
	for _, w := range keyVersions {
		_, rest := wire.KeyKind(w.Key)
		kv, f := audit.KeyVersion(w.Key, rest, w.Value, written)
		if f != nil {
			if err := x.find(tx, b, t, f); err != nil {
				return err
			}
			continue
		}
		v, err := json.Marshal(kv)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bKeys).Put(join([]byte(kv.MeterID), u64(uint64(kv.Version))), v); err != nil {
			return err
		}
	}
	return nil
}

// meterOf is a meter's record as indexed, nil if it has none.
func meterOf(meters *bolt.Bucket, id string) (*meter.Meter, error) {
	v := meters.Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	m := new(meter.Meter)
	return m, json.Unmarshal(v, m)
}

// keyOf is a meter's key version as indexed, the zero value if it has none.
func keyOf(keys *bolt.Bucket, id string, version int) (meter.KeyVersion, error) {
	var kv meter.KeyVersion
	v := keys.Get(join([]byte(id), u64(uint64(version))))
	if v == nil {
		return kv, nil
	}
	return kv, json.Unmarshal(v, &kv)
}

// find records a finding about a transaction, and logs it: an NMI's
// operator must hear of it without asking.
func (x *Index) find(tx *bolt.Tx, b *chain.Block, t *chain.Tx, f *audit.Finding) error {
	x.log.Error("integrity finding", "block", b.Number, "tx", t.ID, "kind", f.Kind, "problem", f.Problem, "endorsers", t.Endorsers)
	findings := tx.Bucket(bFindings)
	n, err := findings.NextSequence()
	if err != nil {
		return err
	}
	v, err := json.Marshal(api.Finding{Kind: f.Kind, Problem: f.Problem, Block: b.Number, TxID: t.ID, Function: t.Function,
		Endorsers: append([]string{}, t.Endorsers...), Time: t.Time})
	if err != nil {
		return err
	}
	return findings.Put(join(u64(b.Number), u32(uint32(t.Index)), u64(n)), v)
}

// Findings lists the integrity findings, oldest first, a page at a time;
// next is empty on the last page.
func (x *Index) Findings(limit int, cursor []byte) (out []api.Finding, next []byte, err error) {
	out = []api.Finding{}
	next, err = x.page(bFindings, nil, []byte{0xff}, Query{Limit: limit, Cursor: cursor}, func(v []byte) error {
		var f api.Finding
		if err := json.Unmarshal(v, &f); err != nil {
			return err
		}
		out = append(out, f)
		return nil
	})
	return out, next, err
}

// accepted is what the index keeps of an accepted seq, to recognise a
// re-delivery and name its transaction: the hash of the payload, and of
// the payload with its signature (the exact evidence).
type accepted struct {
	Payload  string `json:"p"`
	Evidence string `json:"e"`
	Block    uint64 `json:"b"`
	TxID     string `json:"t"`
}

func evidenceHash(payload, signature []byte) string {
	h := sha256.New()
	h.Write(payload)
	h.Write(signature)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (x *Index) item(tx *bolt.Tx, b *chain.Block, t *chain.Tx, it wire.Item) error {
	r := it.Result
	switch r.Outcome {
	case meter.OutcomeAccepted:
		mtr, err := meterOf(tx.Bucket(bMeters), it.Signed.MeterID)
		if err != nil {
			return err
		}
		var kv meter.KeyVersion
		if mtr != nil {
			if kv, err = keyOf(tx.Bucket(bKeys), mtr.ID, mtr.KeyVersion); err != nil {
				return err
			}
		}
		if f := audit.Accepted(it, mtr, kv.PublicKey); f != nil {
			return x.find(tx, b, t, f)
		}
		m := it.Measurement
		fp := kv.Fingerprint
		rec := meter.MeasurementRecord{MeterID: m.MeterID, Seq: m.Seq, Time: m.Time, Value: m.Value, Unit: m.Unit,
			Ciphertext: m.Ciphertext, Payload: base64.StdEncoding.EncodeToString(it.Signed.Payload),
			Signature: base64.StdEncoding.EncodeToString(it.Signed.Signature), KeyVersion: r.KeyVersion,
			Fingerprint: string(fp), TxID: t.ID, AcceptedAt: t.Time.UTC().Format(time.RFC3339Nano)}
		v, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bReadings).Put(readingKey(m.MeterID, m.MeasuredAt(), m.Seq), v); err != nil {
			return err
		}
		h := wire.HashOf(it.Signed.Payload)
		a, _ := json.Marshal(accepted{Payload: hex.EncodeToString(h[:]), Evidence: evidenceHash(it.Signed.Payload, it.Signed.Signature),
			Block: b.Number, TxID: t.ID})
		// Each key version has its own sequence space: a rotated meter's
		// seq 1 must not hide the old key's.
		return tx.Bucket(bSeqs).Put(join([]byte(m.MeterID), u64(m.Seq), u32(uint32(r.KeyVersion))), a)
	case meter.OutcomeRejected:
		filed := r.MeterID
		if meter.ValidateMeterID(filed) != nil {
			filed = Unattributed
		}
		sum := sha256.Sum256(it.Signed.Payload)
		rej := meter.Rejection{MeterID: r.MeterID, Seq: r.Seq, Code: r.Code, Reason: r.Reason,
			PayloadHash: hex.EncodeToString(sum[:]), TxID: t.ID, Index: it.Index, RejectedAt: t.Time.UTC().Format(time.RFC3339Nano),
			SubmittedBy: t.CreatorMSP}
		v, err := json.Marshal(rej)
		if err != nil {
			return err
		}
		return tx.Bucket(bRefused).Put(join([]byte(filed), u64(b.Number), u32(uint32(t.Index)), u32(uint32(it.Index))), v)
	}
	return nil
}

// Accepted looks up the transaction that accepted exactly this payload as
// the meter's seq; with a signature, also exactly this signature (the very
// evidence on the ledger, which needs no verifying again). found is false
// if the index holds no such reading.
func (x *Index) Accepted(sm meter.SignedMeasurement, seq uint64) (txID string, block uint64, found bool, err error) {
	h := wire.HashOf(sm.Payload)
	payload := hex.EncodeToString(h[:])
	var evidence string
	if sm.Signature != nil {
		evidence = evidenceHash(sm.Payload, sm.Signature)
	}
	err = x.db.View(func(tx *bolt.Tx) error {
		// The seq in every key version's sequence space; an index of
		// layout 3 kept no key version in the key.
		prefix := join([]byte(sm.MeterID), u64(seq))
		c := tx.Bucket(bSeqs).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var a accepted
			if err := json.Unmarshal(v, &a); err != nil {
				return err
			}
			if a.Payload == payload && (evidence == "" || a.Evidence == evidence) {
				txID, block, found = a.TxID, a.Block, true
				return nil
			}
		}
		return nil
	})
	return txID, block, found, err
}

// Query selects a page of a meter's readings or refusals.
type Query struct {
	MeterID string
	// From and To bound the meter time of readings, both included; zero
	// means open.
	From, To time.Time
	Limit    int
	// Cursor continues a previous page (its Next).
	Cursor []byte
}

// Measurements lists a meter's accepted measurements in meter-time order,
// a page at a time; next is empty on the last page.
func (x *Index) Measurements(q Query) (out []*meter.MeasurementRecord, next []byte, err error) {
	prefix := append([]byte(q.MeterID), 0)
	start, end := prefix, append(bytes.Clone(prefix), 0xff)
	if !q.From.IsZero() {
		start = join([]byte(q.MeterID), []byte(timeKey(q.From)))
	}
	if !q.To.IsZero() {
		end = join([]byte(q.MeterID), []byte(timeKey(q.To)), []byte{0xff})
	}
	out = []*meter.MeasurementRecord{}
	next, err = x.page(bReadings, start, end, q, func(v []byte) error {
		rec := new(meter.MeasurementRecord)
		out = append(out, rec)
		return json.Unmarshal(v, rec)
	})
	return out, next, err
}

// Rejections lists a meter's refused batch items (Unattributed: those whose
// meter ID was malformed) in ledger order.
func (x *Index) Rejections(q Query) (out []*meter.Rejection, next []byte, err error) {
	prefix := append([]byte(q.MeterID), 0)
	out = []*meter.Rejection{}
	next, err = x.page(bRefused, prefix, append(bytes.Clone(prefix), 0xff), q, func(v []byte) error {
		rej := new(meter.Rejection)
		out = append(out, rej)
		return json.Unmarshal(v, rej)
	})
	return out, next, err
}

// ErrCursor is a cursor that does not belong to the listing.
var ErrCursor = errors.New("the cursor does not belong to this listing")

func (x *Index) page(bucket, start, end []byte, q Query, each func([]byte) error) ([]byte, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.Cursor != nil {
		if bytes.Compare(q.Cursor, start) < 0 || bytes.Compare(q.Cursor, end) >= 0 {
			return nil, ErrCursor
		}
		start = q.Cursor
	}
	var next []byte
	err := x.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		n := 0
		for k, v := c.Seek(start); k != nil && bytes.Compare(k, end) < 0; k, v = c.Next() {
			if n == q.Limit {
				next = bytes.Clone(k)
				return nil
			}
			if err := each(v); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return next, err
}

func readingKey(meterID string, at time.Time, seq uint64) []byte {
	return join([]byte(meterID), []byte(timeKey(at)), u64(seq))
}

// timeKey renders a time in fixed width, so keys sort chronologically.
func timeKey(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

// join separates parts by a zero byte, which no meter ID or time holds.
func join(parts ...[]byte) []byte {
	var out []byte
	for i, p := range parts {
		if i > 0 {
			out = append(out, 0)
		}
		out = append(out, p...)
	}
	return out
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
func u32(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

// Blocks opens a stream of the channel's blocks from a block number on; a
// gateway network's BlockEvents is one.
type Blocks func(ctx context.Context, from uint64) (<-chan *common.Block, error)

// Follow indexes the channel's blocks from the checkpoint on until ctx
// ends, reconnecting when the stream breaks. A block the index cannot
// store (its disk is full, say) is tried again, from a new stream, until
// it can: the index falls behind, it never stops. Only a block that cannot
// be parsed stops it.
func (x *Index) Follow(ctx context.Context, blocks Blocks, log *slog.Logger) error {
	x.log = log
	backoff := 200 * time.Millisecond
	for {
		err := x.follow(ctx, blocks, func() { backoff = 200 * time.Millisecond })
		var bad *badBlockError
		if errors.As(err, &bad) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("the index stopped following the blocks; resuming", "next", x.Next(), "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// badBlockError is a block the index cannot parse.
type badBlockError struct {
	number uint64
	err    error
}

func (e *badBlockError) Error() string { return fmt.Sprintf("block %d: %v", e.number, e.err) }

// follow indexes one stream of blocks until it ends or a block fails;
// progress is called after each block indexed.
func (x *Index) follow(ctx context.Context, blocks Blocks, progress func()) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := blocks(sctx, x.Next())
	if err != nil {
		return err
	}
	for raw := range stream {
		b, err := chain.Parse(raw)
		if err != nil {
			return &badBlockError{raw.GetHeader().GetNumber(), err}
		}
		if err := x.Add(b); err != nil {
			return err
		}
		progress()
	}
	return errors.New("block stream ended")
}
