// Package readings is the registry's off-chain index of measurements: it
// follows its NMI's peer's blocks from a checkpoint and keeps where every
// measurement valid transactions accepted is, by meter and meter time and
// by meter and seq, and every refused batch item, by meter, in an embedded
// database (bbolt). The ledger's world state keeps only what consensus
// needs; the evidence is the transactions in the blocks, and this index is
// how the registry answers GET .../measurements and .../rejections, finds
// the transaction that accepted a re-delivered reading, and serves billing
// its ciphertexts.
//
// An accepted reading costs the index two small binary entries (about 100
// bytes on disk), not a copy of its evidence: its payload, signature and
// ciphertext are read from the peer's copy of its transaction when a
// listing asks for them (Evidence), and checked against the hash the index
// kept.
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
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/inter-nmi/pki/network/pkg/audit"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/follow"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
)

var (
	bMeta     = []byte("meta")     // checkpoint
	bIDs      = []byte("ids")      // meter → its number in the index (4 bytes), which the reading keys carry
	bReadings = []byte("readings") // number, hour of meter time → its readings (a time chunk: chunks.go)
	bSeqs     = []byte("seqs")     // number, seq/64 → those accepted seqs and where they are (a seq chunk: chunks.go)
	bTxs      = []byte("txs")      // block, transaction → its ID, for the transactions whose readings are indexed
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
// Layout 4 keeps where each reading's evidence is instead of a copy of it.
const version = 4

// Attested is a meter's latest valid attestation transaction.
type Attested = follow.Attested

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

	evidence     Evidence
	cache        *txCache
	attestations follow.Attestations
}

// Evidence reads a committed transaction from the peer by its ID (a
// gateway's qscc GetTransactionByID, parsed: gateway.TransactionByID).
type Evidence func(ctx context.Context, txID string) (*chain.Tx, error)

// SetEvidence sets where listings read the readings' evidence from; without
// it, Measurements fails.
func (x *Index) SetEvidence(e Evidence) { x.evidence = e }

// Open opens (or creates) the index of a chaincode's measurements at path.
// An index of an older layout is deleted and rebuilt from block 0 in a new
// file (bbolt keeps a file's freed pages, so the old layout's size would
// stay).
func Open(path, chaincode string) (*Index, error) {
	x, stale, err := open(path, chaincode)
	if err != nil || !stale {
		return x, err
	}
	if err := os.Remove(path); err != nil {
		return nil, fmt.Errorf("remove the readings index of an older layout: %w", err)
	}
	x, _, err = open(path, chaincode)
	return x, err
}

func open(path, chaincode string) (x *Index, stale bool, err error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, false, fmt.Errorf("open readings index %s: %w", path, err)
	}
	x = &Index{db: db, chaincode: chaincode, log: slog.Default(), changed: make(chan struct{}), cache: newTxCache(txCacheSize),
		attestations: follow.Attestations{Chaincode: chaincode, Meters: bAttests, Configs: bConfigs}}
	err = db.Update(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bMeta); meta != nil {
			if v := meta.Get(kVersion); len(v) != 8 || binary.BigEndian.Uint64(v) != version {
				stale = true
				return nil
			}
		}
		for _, b := range [][]byte{bMeta, bIDs, bReadings, bSeqs, bTxs, bRefused, bMeters, bKeys, bFindings, bConfigs, bAttests} {
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
	if err != nil || stale {
		db.Close()
		return nil, stale, err
	}
	return x, false, nil
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
	pre, err := x.check(b)
	if err != nil {
		return err
	}
	err = x.db.Update(func(tx *bolt.Tx) error {
		if err := x.attestations.Add(tx, b); err != nil {
			return err
		}
		// Transactions are appended at the end: their pages split full.
		tx.Bucket(bTxs).FillPercent = 0.95
		for i := range b.Txs {
			t := &b.Txs[i]
			if !t.Valid() || t.Chaincode != x.chaincode {
				continue
			}
			if err := x.tx(tx, b, i, t, pre); err != nil {
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
		a, found, err = x.attestations.Latest(tx, meterID)
		return err
	})
	return a, found, err
}

// ConfigBlocks returns the numbers of the configuration blocks up to and
// including block, ascending, block 0 first.
func (x *Index) ConfigBlocks(block uint64) (out []uint64, err error) {
	err = x.db.View(func(tx *bolt.Tx) error {
		out, err = x.attestations.ConfigBlocks(tx, block)
		return err
	})
	return out, err
}

// tx indexes one valid transaction of the chaincode, after the checks of
// package audit: what fails one is a finding, and is not indexed.
func (x *Index) tx(tx *bolt.Tx, b *chain.Block, pos int, t *chain.Tx, pre *checks) error {
	if f := audit.Function(t.Function); f != nil {
		return x.find(tx, b, t, f)
	}
	if err := x.writes(tx, b, t); err != nil {
		return err
	}
	if t.Function == wire.TxAttestMeter {
		return nil // see Attestations
	}
	items, ok := pre.items[pos]
	if !ok {
		var err error
		items, err = wire.Decode(t.Function, t.Args, t.ResponsePayload)
		switch {
		case errors.Is(err, wire.ErrNotMeasurements):
			return nil
		case err != nil:
			return x.find(tx, b, t, &audit.Finding{Kind: audit.KindMeasurements,
				Problem: "the measurement transaction cannot be decoded, its measurements are not indexed: " + err.Error()})
		}
	}
	accepted := false
	for i, it := range items {
		ok, err := x.item(tx, b, t, uint32(pos), uint32(i), it, pre)
		if err != nil {
			return err
		}
		accepted = accepted || ok
	}
	if accepted {
		return tx.Bucket(bTxs).Put(txKey(b.Number, uint32(pos)), txIDBytes(t.ID))
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
	next, err = x.page(bFindings, nil, []byte{0xff}, Query{Limit: limit, Cursor: cursor}, func(_, v []byte) error {
		var f api.Finding
		if err := json.Unmarshal(v, &f); err != nil {
			return err
		}
		out = append(out, f)
		return nil
	})
	return out, next, err
}

func payloadHash(payload []byte) (h [16]byte) {
	sum := wire.HashOf(payload)
	copy(h[:], sum[:])
	return h
}

func evidenceHash(payload, signature []byte) (h [8]byte) {
	d := sha256.New()
	d.Write(payload)
	d.Write(signature)
	copy(h[:], d.Sum(nil))
	return h
}

// item indexes one item of a valid transaction; accepted reports whether
// it indexed an accepted reading (whose transaction's ID must be kept).
func (x *Index) item(tx *bolt.Tx, b *chain.Block, t *chain.Tx, pos, index uint32, it wire.Item, pre *checks) (bool, error) {
	r := it.Result
	switch r.Outcome {
	case meter.OutcomeAccepted:
		f, checked := pre.verdicts[[2]int{int(pos), int(index)}]
		if !checked {
			mtr, err := meterOf(tx.Bucket(bMeters), it.Signed.MeterID)
			if err != nil {
				return false, err
			}
			var kv meter.KeyVersion
			if mtr != nil {
				if kv, err = keyOf(tx.Bucket(bKeys), mtr.ID, mtr.KeyVersion); err != nil {
					return false, err
				}
			}
			f = audit.Accepted(it, mtr, kv.PublicKey)
		}
		if f != nil {
			return false, x.find(tx, b, t, f)
		}
		m := it.Measurement
		num, err := x.number(tx, m.MeterID)
		if err != nil {
			return false, err
		}
		version := uint32(r.KeyVersion)
		hour, nanos := splitTime(m.MeasuredAt())
		times := tx.Bucket(bReadings)
		tk := timeChunkKey(num, hour)
		entries, err := decodeTimeChunk(times.Get(tk))
		if err != nil {
			return false, err
		}
		if err := times.Put(tk, encodeTimeChunk(insertTime(entries, timeEntry{Nanos: nanos, Seq: m.Seq, Version: version}))); err != nil {
			return false, err
		}
		// Each key version has its own sequence space: a rotated meter's
		// seq 1 must not hide the old key's.
		e := seqEntry{Version: version, Low: uint8(m.Seq % seqsPerChunk), Payload: payloadHash(it.Signed.Payload),
			Evidence: evidenceHash(it.Signed.Payload, it.Signed.Signature), Block: b.Number, Tx: pos, Item: index}
		seqs := tx.Bucket(bSeqs)
		sk := seqChunkKey(num, m.Seq)
		return true, seqs.Put(sk, e.append(bytes.Clone(seqs.Get(sk))))
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
			return false, err
		}
		return false, tx.Bucket(bRefused).Put(join([]byte(filed), u64(b.Number), u32(uint32(t.Index)), u32(uint32(it.Index))), v)
	}
	return false, nil
}

// number is the meter's number in the index, given on its first accepted
// reading.
func (x *Index) number(tx *bolt.Tx, meterID string) ([]byte, error) {
	ids := tx.Bucket(bIDs)
	if v := ids.Get([]byte(meterID)); v != nil {
		return bytes.Clone(v), nil
	}
	n, err := ids.NextSequence()
	if err != nil {
		return nil, err
	}
	if n > 1<<32-1 {
		return nil, errors.New("the index numbers at most 2^32-1 meters")
	}
	num := u32(uint32(n))
	return num, ids.Put([]byte(meterID), num)
}

// numberOf is a meter's number in the index, nil if it has no reading.
func numberOf(tx *bolt.Tx, meterID string) []byte { return tx.Bucket(bIDs).Get([]byte(meterID)) }

// txID is the ID of the transaction at a block's position, as indexed.
func txID(tx *bolt.Tx, block uint64, pos uint32) (string, error) {
	v := tx.Bucket(bTxs).Get(txKey(block, pos))
	if v == nil {
		return "", fmt.Errorf("no transaction indexed at block %d position %d", block, pos)
	}
	return txIDString(v), nil
}

// Accepted looks up the transaction that accepted exactly this payload as
// the meter's seq; with a signature, also exactly this signature (the very
// evidence on the ledger, which needs no verifying again). found is false
// if the index holds no such reading.
func (x *Index) Accepted(sm meter.SignedMeasurement, seq uint64) (id string, block uint64, found bool, err error) {
	payload := payloadHash(sm.Payload)
	var evidence *[8]byte
	if sm.Signature != nil {
		e := evidenceHash(sm.Payload, sm.Signature)
		evidence = &e
	}
	err = x.db.View(func(tx *bolt.Tx) error {
		num := numberOf(tx, sm.MeterID)
		if num == nil {
			return nil
		}
		// The seq in every key version's sequence space.
		entries, err := decodeSeqChunk(tx.Bucket(bSeqs).Get(seqChunkKey(num, seq)))
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Low == uint8(seq%seqsPerChunk) && e.Payload == payload && (evidence == nil || e.Evidence == *evidence) {
				if id, err = txID(tx, e.Block, e.Tx); err != nil {
					return err
				}
				block, found = e.Block, true
				return nil
			}
		}
		return nil
	})
	return id, block, found, err
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

// ErrNoEvidence means the index has no way to read its readings' evidence
// (SetEvidence was not called).
var ErrNoEvidence = errors.New("the readings index has no evidence source")

// Measurements lists a meter's accepted measurements in meter-time order,
// a page at a time; next is empty on the last page. Each reading's
// evidence is read from its transaction on the peer (a page's readings
// often share transactions, and recent transactions are cached) and
// checked against the hash the index kept of its payload.
func (x *Index) Measurements(ctx context.Context, q Query) (out []*meter.MeasurementRecord, next []byte, err error) {
	out = []*meter.MeasurementRecord{}
	if q.Limit <= 0 {
		q.Limit = 100
	}
	type found struct {
		seq     uint64
		version uint32
		entry   seqEntry
	}
	var page []found
	err = x.db.View(func(tx *bolt.Tx) error {
		num := numberOf(tx, q.MeterID)
		if num == nil {
			if q.Cursor != nil {
				return ErrCursor
			}
			return nil
		}
		// Positions are 20-byte keys: number, meter time, seq.
		start, end := readingKey(num, minTime, 0), readingKey(num, maxTime, 1<<64-1)
		if !q.From.IsZero() {
			start = readingKey(num, q.From, 0)
		}
		if !q.To.IsZero() {
			end = readingKey(num, q.To, 1<<64-1)
		}
		if q.Cursor != nil {
			if bytes.Compare(q.Cursor, start) < 0 || bytes.Compare(q.Cursor, end) > 0 || len(q.Cursor) != len(start) {
				return ErrCursor
			}
			start = q.Cursor
		}
		from := timeChunkKey(num, hourOf(keyTime(start)))
		until := timeChunkKey(num, hourOf(keyTime(end)))
		c := tx.Bucket(bReadings).Cursor()
		for k, v := c.Seek(from); k != nil && bytes.Compare(k, until) <= 0; k, v = c.Next() {
			entries, err := decodeTimeChunk(v)
			if err != nil {
				return err
			}
			hour := hourStart(binary.BigEndian.Uint32(k[4:8]))
			for _, e := range entries {
				at := readingKey(num, hour.Add(time.Duration(e.Nanos)), e.Seq)
				if bytes.Compare(at, start) < 0 {
					continue
				}
				if bytes.Compare(at, end) > 0 {
					return nil
				}
				if len(page) == q.Limit {
					next = at
					return nil
				}
				se, ok, err := seqOf(tx, num, e.Seq, e.Version)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("meter %s seq %d: the index lost where it is", q.MeterID, e.Seq)
				}
				page = append(page, found{e.Seq, e.Version, se})
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(page) > 0 && x.evidence == nil {
		return nil, nil, ErrNoEvidence
	}
	for _, p := range page {
		rec, err := x.record(ctx, q.MeterID, p.seq, p.entry)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, rec)
	}
	return out, next, nil
}

// The meter times a listing can cover (timeKey's range).
var (
	minTime = time.Unix(0, -1<<63).UTC()
	maxTime = time.Unix(0, 1<<63-1).UTC()
)

// seqOf is an accepted seq's entry in its key version.
func seqOf(tx *bolt.Tx, num []byte, seq uint64, version uint32) (seqEntry, bool, error) {
	entries, err := decodeSeqChunk(tx.Bucket(bSeqs).Get(seqChunkKey(num, seq)))
	if err != nil {
		return seqEntry{}, false, err
	}
	for _, e := range entries {
		if e.Low == uint8(seq%seqsPerChunk) && e.Version == version {
			return e, true, nil
		}
	}
	return seqEntry{}, false, nil
}

// record reads one reading's evidence and checks it is the reading the
// index kept.
func (x *Index) record(ctx context.Context, meterID string, seq uint64, e seqEntry) (*meter.MeasurementRecord, error) {
	var (
		id string
		kv meter.KeyVersion
	)
	err := x.db.View(func(tx *bolt.Tx) error {
		var err error
		if id, err = txID(tx, e.Block, e.Tx); err != nil {
			return err
		}
		kv, err = keyOf(tx.Bucket(bKeys), meterID, int(e.Version))
		return err
	})
	if err != nil {
		return nil, err
	}
	t, items, err := x.transaction(ctx, id)
	if err != nil {
		return nil, err
	}
	if int(e.Item) >= len(items) {
		return nil, fmt.Errorf("transaction %s has %d items, the index names item %d", id, len(items), e.Item)
	}
	it := items[e.Item]
	if it.Signed.MeterID != meterID || it.Measurement.Seq != seq || payloadHash(it.Signed.Payload) != e.Payload {
		return nil, fmt.Errorf("the peer's transaction %s does not hold meter %s's seq %d at item %d as indexed", id, meterID, seq, e.Item)
	}
	m := it.Measurement
	return &meter.MeasurementRecord{MeterID: m.MeterID, Seq: m.Seq, Time: m.Time, Value: m.Value, Unit: m.Unit,
		Ciphertext: m.Ciphertext, Payload: base64.StdEncoding.EncodeToString(it.Signed.Payload),
		Signature: base64.StdEncoding.EncodeToString(it.Signed.Signature), KeyVersion: int(e.Version),
		Fingerprint: kv.Fingerprint, TxID: id, AcceptedAt: t.Time.UTC().Format(time.RFC3339Nano)}, nil
}

// transaction reads a transaction of the chaincode and decodes its items,
// from the cache or the peer.
func (x *Index) transaction(ctx context.Context, id string) (*chain.Tx, []wire.Item, error) {
	if e, ok := x.cache.get(id); ok {
		return e.tx, e.items, nil
	}
	t, err := x.evidence(ctx, id)
	if err != nil {
		return nil, nil, fmt.Errorf("read the evidence of transaction %s: %w", id, err)
	}
	if !t.Valid() || t.ID != id {
		return nil, nil, fmt.Errorf("the peer answered transaction %s (%s) for the indexed valid transaction %s", t.ID, t.Code, id)
	}
	items, err := wire.Decode(t.Function, t.Args, t.ResponsePayload)
	if err != nil {
		return nil, nil, fmt.Errorf("transaction %s: %w", id, err)
	}
	x.cache.put(id, cachedTx{tx: t, items: items})
	return t, items, nil
}

// Rejections lists a meter's refused batch items (Unattributed: those whose
// meter ID was malformed) in ledger order.
func (x *Index) Rejections(q Query) (out []*meter.Rejection, next []byte, err error) {
	prefix := append([]byte(q.MeterID), 0)
	out = []*meter.Rejection{}
	next, err = x.page(bRefused, prefix, append(bytes.Clone(prefix), 0xff), q, func(_, v []byte) error {
		rej := new(meter.Rejection)
		out = append(out, rej)
		return json.Unmarshal(v, rej)
	})
	return out, next, err
}

// ErrCursor is a cursor that does not belong to the listing.
var ErrCursor = errors.New("the cursor does not belong to this listing")

func (x *Index) page(bucket, start, end []byte, q Query, each func(k, v []byte) error) ([]byte, error) {
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
			if err := each(k, v); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return next, err
}

// readingKey is a meter's number, the meter time and the seq: 20 bytes,
// a reading's position in a listing (its cursor).
func readingKey(num []byte, at time.Time, seq uint64) []byte {
	k := append(bytes.Clone(num), timeKey(at)...)
	return binary.BigEndian.AppendUint64(k, seq)
}

// timeChunkKey is a meter's number and an hour of meter time (hourOf).
func timeChunkKey(num []byte, hour uint32) []byte {
	return binary.BigEndian.AppendUint32(bytes.Clone(num), hour)
}

// seqChunkKey is a meter's number and the seq's chunk.
func seqChunkKey(num []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(bytes.Clone(num), seq/seqsPerChunk)
}

// txKey is a transaction's block and position: 12 bytes.
func txKey(block uint64, pos uint32) []byte {
	return binary.BigEndian.AppendUint32(u64(block), pos)
}

// txIDBytes keeps a transaction ID of 64 hexadecimal digits (as Fabric
// makes them) in 32 bytes, any other ID as it is after a 0xff mark.
func txIDBytes(id string) []byte {
	if b, err := hex.DecodeString(id); err == nil && len(b) == 32 && hex.EncodeToString(b) == id {
		return b
	}
	return append([]byte{0xff}, id...)
}

func txIDString(b []byte) string {
	if len(b) == 32 {
		return hex.EncodeToString(b)
	}
	return string(b[1:])
}

// keyTime is the meter time of a reading's position (readingKey).
func keyTime(k []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[4:12])^1<<63)).UTC()
}

// timeKey is a time as 8 bytes that sort chronologically: nanoseconds
// since 1970 with the sign bit flipped, for times from 1678 to 2262.
func timeKey(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())^1<<63)
}

var (
	join = follow.Key
	u64  = follow.Uint64
	u32  = follow.Uint32
)
