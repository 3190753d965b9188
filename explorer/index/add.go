package index

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/inter-nmi/pki/network/pkg/audit"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/network/pkg/follow"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// packed fills the pages of the buckets whose keys grow (block numbers,
// and meter numbers, given in the order meters appear): bbolt's default of
// half-full pages, made for keys inserted anywhere, would double their
// size (meter records took 2.5 times their size). bbolt does not keep it
// with the bucket: it is set in each write transaction.
const packed = 1.0

// BlockSummary is a block as the block pages show it.
type BlockSummary struct {
	Number       uint64            `json:"number"`
	HeaderHash   string            `json:"headerHash"`
	PreviousHash string            `json:"previousHash"`
	DataHash     string            `json:"dataHash"`
	Time         time.Time         `json:"time"`
	Config       bool              `json:"config"`
	Size         int               `json:"size"`
	Txs          []TxSummary       `json:"txs"`
	Signatures   []chain.Signature `json:"signatures"`
}

// TxSummary is a transaction as a block lists it.
type TxSummary struct {
	ID         string `json:"id"`
	Code       string `json:"code"`
	Function   string `json:"function"`
	CreatorMSP string `json:"creatorMsp"`
}

// TxRef is where a transaction is: its block and its index in the block,
// with what the block's page lists of it.
type TxRef struct {
	TxSummary
	Block uint64 `json:"block"`
	Index int    `json:"index"`
}

// MeterState is a meter's current record and the transaction that set it.
type MeterState struct {
	Meter meter.Meter `json:"meter"`
	TxID  string      `json:"txId"`
	Block uint64      `json:"block"`
	Time  time.Time   `json:"time"`
}

// MeterVersion is one state in a meter's history.
type MeterVersion = MeterState

// KeyVersion is a key the meter held, and where it was written.
type KeyVersion struct {
	meter.KeyVersion
	Block uint64 `json:"block"`
}

// Reading is one measurement of a meter as the explorer saw it: accepted,
// or refused. The index answers where it is (block, transaction, item),
// its outcome, seq and meter time (to the second), and a refusal's code
// and reason; Evidence.Readings reads the rest from its transaction.
type Reading struct {
	Seq uint64 `json:"seq"`
	// Time is the meter's time: to the second from the index, as the
	// meter wrote it once read from the transaction.
	Time    string `json:"time,omitempty"`
	Outcome string `json:"outcome"`
	Code    string `json:"code,omitempty"`
	Reason  string `json:"reason,omitempty"`
	TxID    string `json:"txId"`
	Block   uint64 `json:"block"`
	TxIndex int    `json:"txIndex"`
	Item    int    `json:"item"`
	// Read is set once the rest was read from the transaction.
	Read       bool   `json:"read"`
	Value      string `json:"value,omitempty"`
	Unit       string `json:"unit,omitempty"`
	KeyVersion int    `json:"keyVersion,omitempty"`
	// SoftwareID is the software the reading names in its signed payload,
	// if it names one (refused ones' too, where their payload parses).
	SoftwareID string    `json:"softwareId,omitempty"`
	TxTime     time.Time `json:"txTime,omitzero"`
}

// Refusal kinds.
const (
	RefusedMeasurement = "measurement" // a reading the chaincode refused
	RefusedUpdate      = "update"      // a software update statement the chaincode refused
)

// Refusal is a reading or a software update statement the chaincode
// refused: evidence kept by a valid transaction. Transactions the peers
// marked invalid are not refusals (InvalidTx).
type Refusal struct {
	Kind    string `json:"kind"`
	MeterID string `json:"meterId,omitempty"`
	Seq     uint64 `json:"seq,omitempty"`
	// NMI is the meter's owner (the submitter if the meter is unknown).
	NMI       string    `json:"nmi"`
	Submitter string    `json:"submitter"`
	Code      string    `json:"code"`
	Reason    string    `json:"reason"`
	Function  string    `json:"function,omitempty"`
	TxID      string    `json:"txId"`
	Block     uint64    `json:"block"`
	Time      time.Time `json:"time"`
}

// Finding kinds: what is wrong with a write of a valid transaction, or with
// a measurement transaction, that the index did not apply (package audit).
const (
	FindingValue        = audit.KindValue
	FindingKey          = audit.KindKey
	FindingMismatch     = audit.KindMismatch
	FindingUnbound      = audit.KindUnbound
	FindingOwner        = audit.KindOwner
	FindingFunction     = audit.KindFunction
	FindingSignature    = audit.KindSignature
	FindingMeasurements = audit.KindMeasurements
	FindingStatement    = audit.KindStatement
	FindingRewrite      = audit.KindRewrite
)

// Finding is an integrity finding: something a transaction the peers
// committed as valid wrote or carried that the chaincode never would, so
// the index did not apply it. Honest chaincode produces none; a finding
// means modified chaincode endorsed by colluding NMIs, or a chaincode
// version this explorer cannot read. Auditors must look at every one.
type Finding struct {
	Kind    string `json:"kind"`
	Block   uint64 `json:"block"`
	TxIndex int    `json:"txIndex"`
	TxID    string `json:"txId"`
	// Key is the state key written; empty for a measurement transaction.
	Key string `json:"key,omitempty"`
	// Problem says what is wrong.
	Problem string `json:"problem"`
	// Submitter and Endorsers are the NMIs that made the transaction.
	Submitter string    `json:"submitter"`
	Endorsers []string  `json:"endorsers"`
	Function  string    `json:"function,omitempty"`
	Time      time.Time `json:"time"`
}

// Attested is a meter's latest valid attestation transaction, whose bundle
// the meter page offers (package proof).
type Attested = follow.Attested

// MinuteStat counts one minute's measurements and transactions.
type MinuteStat struct {
	Minute       time.Time `json:"minute"`
	Accepted     uint64    `json:"accepted"`
	Refused      uint64    `json:"refused"`
	Transactions uint64    `json:"transactions"`
}

// HourStat counts one hour's measurements and transactions.
type HourStat struct {
	Hour         time.Time `json:"hour"`
	Accepted     uint64    `json:"accepted"`
	Refused      uint64    `json:"refused"`
	Transactions uint64    `json:"transactions"`
}

// Add indexes the next block, with the verdict of the integrity check up to
// it, the verifier's state to resume from, and the channel configuration if
// the block carries one. It is one bbolt transaction: after a crash the
// store is at the block before or after, never between.
//
// What a valid transaction wrote is indexed under the key it was written
// to, never under an ID its value claims: a write whose value disagrees
// with its key, or does not decode, is not applied but recorded as a
// Finding, and the block is indexed all the same: beyond a block out of
// order, Add fails only when the store does, so no transaction can stop the
// explorer.
func (s *Store) Add(b *chain.Block, integrity Integrity, verifier []byte, cfg *channel.Config) error {
	var ix *adder
	defer func() {
		if ix != nil {
			s.known.drop(ix.written)
		}
	}()
	return s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		next := decodeU64(meta.Get(kCheckpoint))
		if b.Number != next {
			return fmt.Errorf("index expects block %d, got %d", next, b.Number)
		}
		var totals Totals
		if err := getJSON(meta, kTotals, &totals); err != nil {
			return err
		}
		if totals.ByNMI == nil {
			totals.ByNMI = map[string]*Count{}
		}
		ix = newAdder(tx, s.known, &totals, b)
		if err := ix.summary(); err != nil {
			return err
		}
		if err := attestations.Add(tx, b); err != nil {
			return err
		}
		if err := ix.measurements(); err != nil {
			return err
		}
		for i := range b.Txs {
			if err := ix.transaction(&b.Txs[i]); err != nil {
				return fmt.Errorf("block %d tx %d: %w", b.Number, i, err)
			}
		}
		if err := ix.flushCounts(); err != nil {
			return err
		}
		totals.Blocks++
		if !b.Time.IsZero() {
			totals.LastBlock = b.Time
		}
		if err := putJSON(meta, kTotals, totals); err != nil {
			return err
		}
		if err := putJSON(meta, kIntegrity, integrity); err != nil {
			return err
		}
		if cfg != nil {
			if err := putJSON(meta, kConfig, cfg); err != nil {
				return err
			}
		}
		if verifier != nil {
			if err := meta.Put(kVerifier, verifier); err != nil {
				return err
			}
		}
		return meta.Put(kCheckpoint, u64(b.Number+1))
	})
}

type adder struct {
	tx     *bolt.Tx
	strs   *strs
	totals *Totals
	block  *chain.Block
	// hours and minutes collect the block's counts, written once at its end.
	hours   map[int64]*HourStat
	minutes map[int64]*MinuteStat
	// found numbers the block's findings.
	found uint32
	// current are the records of the meters the block touched, as applied
	// so far (nil: not registered).
	current map[string]*MeterState
	// decoded and checks are the block's measurements and the verdicts on
	// their signatures, made before it is indexed (verify.go).
	decoded map[int]measured
	checks  map[itemAt]checked
	// known are the meters the store keeps decoded; written are those
	// whose records the block wrote, which it no longer may keep.
	known   *knownMeters
	written map[string]bool
}

func newAdder(tx *bolt.Tx, known *knownMeters, totals *Totals, b *chain.Block) *adder {
	a := &adder{tx: tx, strs: newStrs(tx), totals: totals, block: b, hours: map[int64]*HourStat{}, minutes: map[int64]*MinuteStat{},
		current: map[string]*MeterState{}, decoded: map[int]measured{}, checks: map[itemAt]checked{}, known: known, written: map[string]bool{}}
	// Not the tails of readings, which grow in place: packed full, their
	// pages would split at every reading, and be left near empty as the
	// tails are closed (a tenth full, measured).
	for _, name := range [][]byte{bBlocks, bRefusals, bInvalid, bCarriers, bFindings, bHours, bMinutes, bReadings, bConfigs, bMeterHist, bKeys, bMeterNums} {
		tx.Bucket(name).FillPercent = packed
	}
	return a
}

// summary indexes the block's header, signatures and transaction list,
// and where its header hash and transaction IDs are found.
func (a *adder) summary() error {
	b := a.block
	v, err := putBlock(a.strs, b)
	if err != nil {
		return err
	}
	if err := a.tx.Bucket(bBlocks).Put(u64(b.Number), v); err != nil {
		return err
	}
	if len(b.HeaderHash) > 0 {
		if err := appendTo(a.tx.Bucket(bBlockHash), prefix8(b.HeaderHash), binary.AppendUvarint(nil, b.Number)); err != nil {
			return err
		}
	}
	txids := a.tx.Bucket(bTxIDs)
	for i, t := range b.Txs {
		if t.ID == "" {
			continue
		}
		if err := appendTo(txids, txKey(t.ID), binary.AppendUvarint(binary.AppendUvarint(nil, b.Number), uint64(i))); err != nil {
			return err
		}
	}
	return nil
}

// appendTo appends to the value under k.
func appendTo(b *bolt.Bucket, k, v []byte) error {
	return b.Put(k, append(append([]byte(nil), b.Get(k)...), v...))
}

// prefix8 is the first 8 bytes of a hash, the key of a lookup by hash:
// the value lists every entry of that prefix, and the caller checks the
// whole hash.
func prefix8(h []byte) []byte {
	out := make([]byte, 8)
	copy(out, h)
	return out
}

// txKey is the lookup key of a transaction ID: the first 8 bytes of its
// hash as Fabric's IDs are, hex, or of any other ID itself.
func txKey(id string) []byte {
	if raw, ok := hexID(id); ok {
		return prefix8(raw)
	}
	return prefix8([]byte(id))
}

func (a *adder) transaction(t *chain.Tx) error {
	a.totals.Transactions++
	a.countTx(t.Time)
	if !t.Valid() {
		return a.invalid(t)
	}
	if err := a.carry(t); err != nil {
		return err
	}
	l, err := a.writes(t)
	if err != nil {
		return err
	}
	if t.Chaincode != wire.Namespace {
		return nil
	}
	if f := audit.Function(t.Function); f != nil {
		return a.find(t, f.Kind, "", f.Problem)
	}
	if err := a.update(t, l); err != nil {
		return err
	}
	// The measurements are the transaction itself: its arguments and the
	// outcome the endorsers signed. One that cannot be decoded is indexed
	// without them, and auditors are told.
	items, f := a.items(t)
	if f != nil {
		return a.find(t, f.Kind, "", f.Problem)
	}
	for _, it := range items {
		var err error
		switch it.Result.Outcome {
		case meter.OutcomeAccepted:
			err = a.accepted(t, it)
		case meter.OutcomeRejected:
			err = a.rejected(t, it)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// meterArg guesses the meter an invalid transaction was about: the
// contract's single-meter transactions take the meter ID first.
func meterArg(t *chain.Tx) string {
	if len(t.Args) > 0 && meter.ValidateMeterID(t.Args[0]) == nil && !strings.HasPrefix(t.Args[0], "{") {
		return t.Args[0]
	}
	return ""
}

// writes applies what a valid transaction wrote to meter records, key
// versions, meter types and software logs, each under the key it was
// written to. A new key is guarded by the chaincode's endorsement policy
// only (2 of 5 NMIs), not by the owner's key-level policy, so two NMIs
// running modified chaincode can write any value under a key that does
// not exist yet: the index trusts a value only as far as its key and the
// chaincode's rules vouch for it. Key versions and log entries are checked
// after the records, since the chaincode writes either only together with
// its meter's record (the write set is sorted by key, keyver/ before
// meter/ before swlog/), and log entries after key versions, whose keys
// verify their statements.
func (a *adder) writes(t *chain.Tx) (*logged, error) {
	written := map[string]meter.Meter{} // records this transaction wrote, as applied
	var keyVersions, logs []chain.Write
	for _, w := range t.Writes {
		if w.Namespace != wire.Namespace || w.Delete {
			continue
		}
		kind, rest := wire.KeyKind(w.Key)
		switch kind {
		case wire.KindMeter:
			m, err := a.meter(t, w.Key, rest, w.Value)
			if err != nil {
				return nil, fmt.Errorf("write %s: %w", w.Key, err)
			}
			if m != nil {
				written[m.ID] = *m
			}
		case wire.KindKeyVersion:
			keyVersions = append(keyVersions, w)
		case wire.KindSoftwareLog:
			logs = append(logs, w)
		case wire.KindType:
			if err := a.meterType(t, w.Key, rest, w.Value); err != nil {
				return nil, fmt.Errorf("write %s: %w", w.Key, err)
			}
		}
	}
	for _, w := range keyVersions {
		_, rest := wire.KeyKind(w.Key)
		if err := a.keyVersion(t, w.Key, rest, w.Value, written); err != nil {
			return nil, fmt.Errorf("write %s: %w", w.Key, err)
		}
	}
	l := &logged{entries: map[string]*meter.UpdateReport{}}
	for _, w := range logs {
		_, rest := wire.KeyKind(w.Key)
		if err := a.softwareLog(t, w.Key, rest, w.Value, written, l); err != nil {
			return nil, fmt.Errorf("write %s: %w", w.Key, err)
		}
	}
	return l, nil
}

// number returns a meter's number in the index, giving it the next one if
// it has none yet and create is set (0: none).
func (a *adder) number(id string, create bool) (uint32, error) {
	nums := a.tx.Bucket(bMeterNums)
	if v := nums.Get([]byte(id)); len(v) == 4 {
		return binary.BigEndian.Uint32(v), nil
	}
	if !create {
		return 0, nil
	}
	seq, err := nums.NextSequence()
	if err != nil {
		return 0, err
	}
	if seq >= 1<<32 {
		return 0, fmt.Errorf("more than %d meters", uint32(1<<32-1))
	}
	return uint32(seq), nums.Put([]byte(id), u32(uint32(seq)))
}

// state is a meter's current record, nil if it has none.
func (a *adder) state(id string) (*MeterState, error) {
	if st, ok := a.current[id]; ok {
		return st, nil
	}
	if k, ok := a.known.get(id); ok {
		a.current[id] = k.st
		return k.st, nil
	}
	n, err := a.number(id, false)
	if err != nil || n == 0 {
		return nil, err
	}
	st, err := currentVersion(a.tx, n)
	if err != nil {
		return nil, err
	}
	a.current[id] = st
	a.known.put(known{id: id, st: st})
	return st, nil
}

// meter applies the record written to meter/<id> if it is one the
// chaincode could have written there, and returns it; otherwise it records
// a finding and returns nil.
func (a *adder) meter(t *chain.Tx, key, id string, value []byte) (*meter.Meter, error) {
	var prev *MeterState
	if meter.ValidateMeterID(id) == nil {
		var err error
		if prev, err = a.state(id); err != nil {
			return nil, err
		}
	}
	var before *meter.Meter
	if prev != nil {
		before = &prev.Meter
	}
	applied, f := audit.Record(key, id, value, before, t.CreatorMSP)
	if f != nil {
		return nil, a.find(t, f.Kind, key, f.Problem)
	}
	m := *applied
	c := a.totals.ByNMI[m.NMI]
	if c == nil {
		c = &Count{}
		a.totals.ByNMI[m.NMI] = c
	}
	if prev == nil {
		c.Registered++
	}
	switch {
	case m.Status == meter.StatusRevoked && (prev == nil || prev.Meter.Status != meter.StatusRevoked):
		c.Revoked++
	case m.Status == meter.StatusActive && prev != nil && prev.Meter.Status == meter.StatusRevoked:
		c.Revoked--
	}
	n, err := a.number(id, true)
	if err != nil {
		return nil, err
	}
	st := &MeterState{Meter: m, TxID: t.ID, Block: a.block.Number, Time: t.Time}
	v, err := putVersion(*st)
	if err != nil {
		return nil, err
	}
	if err := a.retype(id, before, &m); err != nil {
		return nil, err
	}
	a.current[id] = st
	a.written[id] = true
	return &m, a.tx.Bucket(bMeterHist).Put(key3(n, a.block.Number, t.Index), v)
}

// key3 is the key of a meter's record as a transaction set it.
func key3(n uint32, block uint64, tx int) []byte {
	return key(u32(n), u64(block), u32(uint32(tx)))
}

// keyVersion applies the key version written to keyver/<id>/<version> if
// it is one the chaincode could have written there: the value names that
// meter and version, and the same transaction wrote the meter's record at
// that version and key (a registration or a rotation). Otherwise it records
// a finding.
func (a *adder) keyVersion(t *chain.Tx, key, rest string, value []byte, written map[string]meter.Meter) error {
	k, f := audit.KeyVersion(key, rest, value, written)
	if f != nil {
		return a.find(t, f.Kind, key, f.Problem)
	}
	n, err := a.number(k.MeterID, true)
	if err != nil {
		return err
	}
	v, err := putKey(KeyVersion{KeyVersion: *k, Block: a.block.Number})
	if err != nil {
		return err
	}
	return a.tx.Bucket(bKeys).Put(keyOfVersion(n, k.Version), v)
}

func keyOfVersion(n uint32, version int) []byte { return key(u32(n), u32(uint32(version))) }

// maxProblemBytes bounds a finding's text: a decoding error may quote
// what a forger wrote.
const maxProblemBytes = 1024

// cutText cuts s to at most n bytes, at a character boundary.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// find records an integrity finding about the transaction.
func (a *adder) find(t *chain.Tx, kind, key, problem string) error {
	a.totals.Findings++
	f := Finding{Kind: kind, Block: a.block.Number, TxIndex: t.Index, TxID: t.ID, Key: key, Problem: cutText(problem, maxProblemBytes),
		Submitter: t.CreatorMSP, Endorsers: t.Endorsers, Function: t.Function, Time: t.Time}
	a.found++
	k := append(append(u64(a.block.Number), u32(uint32(t.Index))...), u32(a.found)...)
	return putJSON(a.tx.Bucket(bFindings), k, f)
}

func (a *adder) accepted(t *chain.Tx, it wire.Item) error {
	if f, err := a.forged(t, it); err != nil || f != nil {
		if err != nil {
			return err
		}
		return a.find(t, f.Kind, wire.GuardKey(it.Signed.MeterID), f.Problem)
	}
	a.totals.Accepted++
	a.hour(t.Time).Accepted++
	a.minute(t.Time).Accepted++
	sec, ok := meterTime(it.Measurement)
	return a.reading(it.Signed.MeterID, spot{Block: a.block.Number, Tx: t.Index, Item: it.Index, Seq: it.Measurement.Seq, Time: sec, HasTime: ok})
}

func (a *adder) rejected(t *chain.Tx, it wire.Item) error {
	rej := it.Result
	a.totals.Refused++
	a.hour(t.Time).Refused++
	a.minute(t.Time).Refused++
	owner := ""
	if meter.ValidateMeterID(rej.MeterID) == nil {
		st, err := a.state(rej.MeterID)
		if err != nil {
			return err
		}
		if st != nil {
			owner = st.Meter.NMI
		}
		if err := a.reading(rej.MeterID, spot{Block: a.block.Number, Tx: t.Index, Item: it.Index, Refused: true, Seq: rej.Seq}); err != nil {
			return err
		}
	}
	if owner == "" {
		owner = t.CreatorMSP
	}
	return a.refuse(Refusal{Kind: RefusedMeasurement, MeterID: rej.MeterID, Seq: rej.Seq, NMI: owner, Submitter: t.CreatorMSP,
		Code: string(rej.Code), Reason: rej.Reason, Function: t.Function, TxID: t.ID, Block: a.block.Number, Time: t.Time}, it.Index, t.Index)
}

// reading appends a reading to its meter's tail, closing the tail first
// if it is full and the reading of a later block (readings.go).
func (a *adder) reading(meterID string, s spot) error {
	n, err := a.number(meterID, true)
	if err != nil {
		return err
	}
	tails := a.tx.Bucket(bTails)
	tail := tails.Get(u32(n))
	if tail == nil {
		return tails.Put(u32(n), appendSpot(newChunk(0, false), &last{}, s))
	}
	_, _, _, end, err := readChunk(tail)
	if err != nil {
		return fmt.Errorf("readings of meter %s: %w", meterID, err)
	}
	if len(tail) < chunkBytes || end.block == s.Block {
		return tails.Put(u32(n), appendSpot(append([]byte(nil), tail...), &end, s))
	}
	if err := a.tx.Bucket(bReadings).Put(closedKey(s.Block, n), append([]byte(nil), tail...)); err != nil {
		return err
	}
	// Deleted, not only replaced: a deletion lets bbolt merge the pages
	// the tails left near empty as they were closed.
	if err := tails.Delete(u32(n)); err != nil {
		return err
	}
	return tails.Put(u32(n), appendSpot(newChunk(s.Block, true), &last{}, s))
}

func (a *adder) refuse(r Refusal, item, txIndex int) error {
	v, err := putRefusal(a.strs, r)
	if err != nil {
		return err
	}
	return a.tx.Bucket(bRefusals).Put(key(u64(a.block.Number), u32(uint32(txIndex)), u32(uint32(item))), v)
}

// hour returns the block's counts of the hour t falls in.
func (a *adder) hour(t time.Time) *HourStat {
	k := t.Unix() / 3600
	h := a.hours[k]
	if h == nil {
		h = &HourStat{Hour: time.Unix(k*3600, 0).UTC()}
		a.hours[k] = h
	}
	return h
}

// minute returns the block's counts of the minute t falls in; the counts
// of a transaction without a time go nowhere, as hour's go to 1970.
func (a *adder) minute(t time.Time) *MinuteStat {
	if t.IsZero() {
		return &MinuteStat{}
	}
	k := t.Unix() / 60
	m := a.minutes[k]
	if m == nil {
		m = &MinuteStat{Minute: time.Unix(k*60, 0).UTC()}
		a.minutes[k] = m
	}
	return m
}

func (a *adder) countTx(t time.Time) {
	if t.IsZero() {
		return
	}
	a.hour(t).Transactions++
	a.minute(t).Transactions++
}

// flushCounts adds the block's counts to the stored ones.
func (a *adder) flushCounts() error {
	hours := a.tx.Bucket(bHours)
	for k, add := range a.hours {
		h, err := getHour(k, hours.Get(u64(uint64(k))))
		if err != nil {
			return err
		}
		h.Accepted += add.Accepted
		h.Refused += add.Refused
		h.Transactions += add.Transactions
		if err := hours.Put(u64(uint64(k)), putHour(h)); err != nil {
			return err
		}
	}
	minutes := a.tx.Bucket(bMinutes)
	for k, add := range a.minutes {
		m, err := getMinute(k, minutes.Get(u64(uint64(k))))
		if err != nil {
			return err
		}
		m.Accepted += add.Accepted
		m.Refused += add.Refused
		m.Transactions += add.Transactions
		if err := minutes.Put(u64(uint64(k)), putMinute(m)); err != nil {
			return err
		}
	}
	return nil
}
