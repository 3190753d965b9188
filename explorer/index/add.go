package index

import (
	"encoding/hex"
	"encoding/json"
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

// appendOnly packs the pages of buckets whose keys only grow (block
// numbers): bbolt's default of half-full pages would double their size.
const appendOnly = 0.95

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

// TxDetail is a transaction as its page shows it: the parsed transaction,
// with its read and write sets cut to the first entries.
type TxDetail struct {
	chain.Tx
	Block uint64 `json:"block"`
	// ReadCount and WriteCount are the full sizes of the sets.
	ReadCount  int `json:"readCount"`
	WriteCount int `json:"writeCount"`
	// ArgSizes are the full sizes of the arguments that were cut.
	ArgSizes []ArgSize `json:"argSizes,omitempty"`
}

// ArgSize is the full size of a cut argument.
type ArgSize struct {
	Index int `json:"index"`
	Bytes int `json:"bytes"`
}

func cut(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// Limits of what a transaction's page keeps of large sets and values.
const (
	maxSetEntries = 50
	maxValueBytes = 160
	maxArgBytes   = 4096
)

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
// or refused in a concentrator batch.
type Reading struct {
	Seq        uint64    `json:"seq"`
	Time       string    `json:"time,omitempty"` // meter time, for accepted ones
	Value      string    `json:"value,omitempty"`
	Unit       string    `json:"unit,omitempty"`
	KeyVersion int       `json:"keyVersion,omitempty"`
	Outcome    string    `json:"outcome"`
	Code       string    `json:"code,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	TxID       string    `json:"txId"`
	Block      uint64    `json:"block"`
	TxTime     time.Time `json:"txTime"`
}

// Refusal kinds.
const (
	RefusedMeasurement = "measurement" // a batch item the chaincode refused
	InvalidTransaction = "transaction" // a transaction the peers marked invalid
)

// Refusal is a refused measurement or an invalid transaction.
type Refusal struct {
	Kind    string `json:"kind"`
	MeterID string `json:"meterId,omitempty"`
	Seq     uint64 `json:"seq,omitempty"`
	// NMI is the meter's owner for a refused measurement, the submitter for
	// an invalid transaction.
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
		ix := &adder{tx: tx, totals: &totals, block: b, hours: map[int64]*HourStat{}, minutes: map[int64]uint64{}}
		if err := ix.block0(); err != nil {
			return err
		}
		if err := attestations.Add(tx, b); err != nil {
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
	totals *Totals
	block  *chain.Block
	// hours and minutes collect the block's counts, written once at its end.
	hours   map[int64]*HourStat
	minutes map[int64]uint64
	// found numbers the block's findings.
	found uint32
}

func (a *adder) block0() error {
	b := a.block
	sum := BlockSummary{
		Number: b.Number, HeaderHash: hex.EncodeToString(b.HeaderHash), PreviousHash: hex.EncodeToString(b.PreviousHash),
		DataHash: hex.EncodeToString(b.DataHash), Time: b.Time, Config: b.Config, Size: b.Size, Signatures: b.Signatures,
	}
	for _, t := range b.Txs {
		sum.Txs = append(sum.Txs, TxSummary{ID: t.ID, Code: t.Code, Function: t.Function, CreatorMSP: t.CreatorMSP})
	}
	blocks := a.tx.Bucket(bBlocks)
	blocks.FillPercent = appendOnly
	if err := putJSON(blocks, u64(b.Number), sum); err != nil {
		return err
	}
	return a.tx.Bucket(bBlockHash).Put([]byte(sum.HeaderHash), u64(b.Number))
}

func (a *adder) transaction(t *chain.Tx) error {
	d := TxDetail{Tx: *t, Block: a.block.Number, ReadCount: len(t.Reads), WriteCount: len(t.Writes)}
	if len(d.Reads) > maxSetEntries {
		d.Reads = d.Reads[:maxSetEntries]
	}
	if len(d.Writes) > maxSetEntries {
		d.Writes = d.Writes[:maxSetEntries]
	}
	d.Writes = append([]chain.Write(nil), d.Writes...)
	for i := range d.Writes {
		d.Writes[i].Value = cut(d.Writes[i].Value, maxValueBytes)
	}
	// A concentrator batch or a bulk registration carries megabytes of
	// arguments; the page shows their beginning (Tx.ArgsForDisplay).
	d.Args = append([]string(nil), d.Args...)
	for i, arg := range d.Args {
		if len(arg) > maxArgBytes {
			d.Args[i] = arg[:maxArgBytes]
			d.ArgSizes = append(d.ArgSizes, ArgSize{Index: i, Bytes: len(arg)})
		}
	}
	d.ResponsePayload = cut(d.ResponsePayload, maxArgBytes)
	d.Events = append([]chain.Event(nil), d.Events...)
	for i := range d.Events {
		d.Events[i].Payload = cut(d.Events[i].Payload, maxArgBytes)
	}
	if t.ID != "" {
		if err := putJSON(a.tx.Bucket(bTxs), []byte(t.ID), d); err != nil {
			return err
		}
	}
	a.totals.Transactions++
	if err := a.countTx(t.Time); err != nil {
		return err
	}
	if !t.Valid() {
		a.totals.Invalid++
		return a.refuse(Refusal{Kind: InvalidTransaction, MeterID: meterArg(t), NMI: t.CreatorMSP, Submitter: t.CreatorMSP,
			Code: t.Code, Reason: "the peers marked the transaction " + t.Code + "; nothing it wrote was kept",
			Function: t.Function, TxID: t.ID, Block: a.block.Number, Time: t.Time}, 0, t.Index)
	}
	if err := a.writes(t); err != nil {
		return err
	}
	if t.Chaincode != wire.Namespace {
		return nil
	}
	if f := audit.Function(t.Function); f != nil {
		return a.find(t, f.Kind, "", f.Problem)
	}
	// The measurements are the transaction itself: its arguments and the
	// outcome the endorsers signed. One that cannot be decoded is indexed
	// without them, and auditors are told.
	items, f := follow.Measurements(t)
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

// writes applies what a valid transaction wrote to meter records and key
// versions, each under the key it was written to. A new key is guarded by
// the chaincode's endorsement policy only (2 of 5 NMIs), not by the owner's
// key-level policy, so two NMIs running modified chaincode can write any
// value under a key that does not exist yet: the index trusts a value only
// as far as its key and the chaincode's rules vouch for it. Key versions
// are checked after the records, since the chaincode writes a key version
// only together with its meter's record (the write set is sorted by key,
// keyver/ before meter/).
func (a *adder) writes(t *chain.Tx) error {
	written := map[string]meter.Meter{} // records this transaction wrote, as applied
	var keyVersions []chain.Write
	for _, w := range t.Writes {
		if w.Namespace != wire.Namespace || w.Delete {
			continue
		}
		kind, rest := wire.KeyKind(w.Key)
		switch kind {
		case wire.KindMeter:
			m, err := a.meter(t, w.Key, rest, w.Value)
			if err != nil {
				return fmt.Errorf("write %s: %w", w.Key, err)
			}
			if m != nil {
				written[m.ID] = *m
			}
		case wire.KindKeyVersion:
			keyVersions = append(keyVersions, w)
		}
	}
	for _, w := range keyVersions {
		_, rest := wire.KeyKind(w.Key)
		if err := a.keyVersion(t, w.Key, rest, w.Value, written); err != nil {
			return fmt.Errorf("write %s: %w", w.Key, err)
		}
	}
	return nil
}

// meter applies the record written to meter/<id> if it is one the
// chaincode could have written there, and returns it; otherwise it records
// a finding and returns nil.
func (a *adder) meter(t *chain.Tx, key, id string, value []byte) (*meter.Meter, error) {
	meters := a.tx.Bucket(bMeters)
	var prev MeterState
	had := meter.ValidateMeterID(id) == nil && meters.Get([]byte(id)) != nil
	if had {
		if err := getJSON(meters, []byte(id), &prev); err != nil {
			return nil, err
		}
	}
	var before *meter.Meter
	if had {
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
	if !had {
		c.Registered++
	}
	switch {
	case m.Status == meter.StatusRevoked && (!had || prev.Meter.Status != meter.StatusRevoked):
		c.Revoked++
	case m.Status == meter.StatusActive && had && prev.Meter.Status == meter.StatusRevoked:
		c.Revoked--
	}
	st := MeterState{Meter: m, TxID: t.ID, Block: a.block.Number, Time: t.Time}
	if err := putJSON(meters, []byte(id), st); err != nil {
		return nil, err
	}
	return &m, putJSON(a.tx.Bucket(bMeterHist), join([]byte(id), u64(a.block.Number), u32(uint32(t.Index))), st)
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
	return putJSON(a.tx.Bucket(bKeys), join([]byte(k.MeterID), u32(uint32(k.Version))), KeyVersion{KeyVersion: *k, Block: a.block.Number})
}

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
	findings := a.tx.Bucket(bFindings)
	findings.FillPercent = appendOnly
	a.found++
	k := append(append(u64(a.block.Number), u32(uint32(t.Index))...), u32(a.found)...)
	return putJSON(findings, k, f)
}

func (a *adder) accepted(t *chain.Tx, it wire.Item) error {
	if f, err := a.forged(it); err != nil || f != nil {
		if err != nil {
			return err
		}
		return a.find(t, f.Kind, wire.GuardKey(it.Signed.MeterID), f.Problem)
	}
	a.totals.Accepted++
	if err := a.countHour(t.Time, 1, 0); err != nil {
		return err
	}
	m := it.Measurement
	r := Reading{Seq: m.Seq, Time: m.Time, Value: m.Value, Unit: m.Unit, KeyVersion: it.Result.KeyVersion,
		Outcome: meter.OutcomeAccepted, TxID: t.ID, Block: a.block.Number, TxTime: t.Time}
	return a.reading(m.MeterID, t, it.Index, r)
}

// forged says why an item the endorsers marked accepted is not a reading
// the chaincode accepts (audit.Accepted), nil when it is one.
func (a *adder) forged(it wire.Item) (*audit.Finding, error) {
	id := it.Signed.MeterID
	var st MeterState
	raw := a.tx.Bucket(bMeters).Get([]byte(id))
	if raw == nil {
		return audit.Accepted(it, nil, ""), nil
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, err
	}
	var kv KeyVersion
	if st.Meter.KeyVersion == it.Result.KeyVersion {
		if err := getJSON(a.tx.Bucket(bKeys), join([]byte(id), u32(uint32(st.Meter.KeyVersion))), &kv); err != nil {
			return nil, err
		}
	}
	return audit.Accepted(it, &st.Meter, kv.PublicKey), nil
}

func (a *adder) rejected(t *chain.Tx, it wire.Item) error {
	rej := it.Result
	a.totals.Refused++
	if err := a.countHour(t.Time, 0, 1); err != nil {
		return err
	}
	owner := ""
	var st MeterState
	if raw := a.tx.Bucket(bMeters).Get([]byte(rej.MeterID)); raw != nil && json.Unmarshal(raw, &st) == nil {
		owner = st.Meter.NMI
	}
	if owner == "" {
		owner = t.CreatorMSP
	}
	if meter.ValidateMeterID(rej.MeterID) == nil {
		r := Reading{Seq: rej.Seq, Outcome: meter.OutcomeRejected, Code: string(rej.Code), Reason: rej.Reason,
			TxID: t.ID, Block: a.block.Number, TxTime: t.Time}
		if err := a.reading(rej.MeterID, t, it.Index, r); err != nil {
			return err
		}
	}
	return a.refuse(Refusal{Kind: RefusedMeasurement, MeterID: rej.MeterID, Seq: rej.Seq, NMI: owner, Submitter: t.CreatorMSP,
		Code: string(rej.Code), Reason: rej.Reason, Function: t.Function, TxID: t.ID, Block: a.block.Number, Time: t.Time}, it.Index, t.Index)
}

func (a *adder) reading(meterID string, t *chain.Tx, item int, r Reading) error {
	key := join([]byte(meterID), u64(a.block.Number), u32(uint32(t.Index)), u32(uint32(item)))
	return putJSON(a.tx.Bucket(bReadings), key, r)
}

func (a *adder) refuse(r Refusal, item, txIndex int) error {
	key := append(append(u64(a.block.Number), u32(uint32(txIndex))...), u32(uint32(item))...)
	refusals := a.tx.Bucket(bRefusals)
	refusals.FillPercent = appendOnly
	return putJSON(refusals, key, r)
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

func (a *adder) countHour(t time.Time, accepted, refused uint64) error {
	h := a.hour(t)
	h.Accepted += accepted
	h.Refused += refused
	return nil
}

func (a *adder) countTx(t time.Time) error {
	if t.IsZero() {
		return nil
	}
	a.hour(t).Transactions++
	a.minutes[t.Unix()/60]++
	return nil
}

// flushCounts adds the block's counts to the stored ones.
func (a *adder) flushCounts() error {
	hours := a.tx.Bucket(bHours)
	for k, add := range a.hours {
		var h HourStat
		if err := getJSON(hours, u64(uint64(k)), &h); err != nil {
			return err
		}
		h.Hour = add.Hour
		h.Accepted += add.Accepted
		h.Refused += add.Refused
		h.Transactions += add.Transactions
		if err := putJSON(hours, u64(uint64(k)), h); err != nil {
			return err
		}
	}
	minutes := a.tx.Bucket(bMinutes)
	for k, n := range a.minutes {
		key := u64(uint64(k))
		if err := minutes.Put(key, u64(decodeU64(minutes.Get(key))+n)); err != nil {
			return err
		}
	}
	return nil
}
