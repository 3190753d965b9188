package index

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// The binary values of the index's buckets (encode.go has the primitives).

// Flags of a block summary.
const blockConfig = 1

// putBlock encodes a block as its pages show it: header, orderers'
// signatures and, for each transaction, its ID, validation code, function
// and creator. The rest of a transaction stays in the block (Evidence).
func putBlock(d *strs, b *chain.Block) (enc, error) {
	var flags byte
	if b.Config {
		flags |= blockConfig
	}
	e := enc{flags}.bytes(b.HeaderHash).bytes(b.PreviousHash).bytes(b.DataHash).time(b.Time).uvarint(uint64(max(b.Size, 0)))
	var err error
	e = e.uvarint(uint64(len(b.Signatures)))
	for _, s := range b.Signatures {
		e = e.uvarint(uint64(s.ConsenterID))
		if e, err = d.put(e, s.MSPID); err != nil {
			return nil, err
		}
		if e, err = d.put(e, s.Subject); err != nil {
			return nil, err
		}
		valid := byte(0)
		if s.Valid {
			valid = 1
		}
		e = append(e, valid)
	}
	e = e.uvarint(uint64(len(b.Txs)))
	for _, t := range b.Txs {
		e = e.txID(t.ID)
		for _, s := range []string{t.Code, t.Function, t.CreatorMSP} {
			if e, err = d.put(e, s); err != nil {
				return nil, err
			}
		}
	}
	return e, nil
}

func getBlock(d *strs, n uint64, v []byte) (*BlockSummary, error) {
	r := &dec{b: v}
	flags := r.byte()
	b := &BlockSummary{Number: n, Config: flags&blockConfig != 0,
		HeaderHash: hex.EncodeToString(r.bytes()), PreviousHash: hex.EncodeToString(r.bytes()), DataHash: hex.EncodeToString(r.bytes()),
		Time: r.time(), Size: r.int()}
	sigs := r.int()
	for i := 0; i < sigs && r.err == nil; i++ {
		s := chain.Signature{ConsenterID: uint32(r.uvarint()), MSPID: d.get(r), Subject: d.get(r), Valid: r.byte() == 1}
		b.Signatures = append(b.Signatures, s)
	}
	txs := r.int()
	for i := 0; i < txs && r.err == nil; i++ {
		b.Txs = append(b.Txs, TxSummary{ID: r.txID(), Code: d.get(r), Function: d.get(r), CreatorMSP: d.get(r)})
	}
	if err := r.end("block"); err != nil {
		return nil, err
	}
	return b, nil
}

// putRefusal encodes a refusal; its block, transaction and item are its
// key, and its transaction's ID is the block's (summaries.txID).
func putRefusal(d *strs, r Refusal) (enc, error) {
	var kind byte
	if r.Kind == RefusedUpdate {
		kind = 2
	}
	e := enc{kind}.str(r.MeterID).uvarint(r.Seq)
	var err error
	for _, s := range []string{r.NMI, r.Submitter, r.Code, r.Function} {
		if e, err = d.put(e, s); err != nil {
			return nil, err
		}
	}
	return e.str(r.Reason).time(r.Time), nil
}

func getRefusal(d *strs, block uint64, v []byte) (Refusal, error) {
	r := &dec{b: v}
	out := Refusal{Kind: RefusedMeasurement, Block: block}
	if r.byte() == 2 {
		out.Kind = RefusedUpdate
	}
	out.MeterID, out.Seq = r.str(), r.uvarint()
	out.NMI, out.Submitter, out.Code, out.Function = d.get(r), d.get(r), d.get(r), d.get(r)
	out.Reason, out.Time = r.str(), r.time()
	return out, r.end("refusal")
}

// putVersion encodes a version of a meter's record: the transaction's time
// and ID, and the record as the chaincode wrote it (JSON, deflated); its
// block is in the key.
func putVersion(st MeterState) (enc, error) {
	m, err := json.Marshal(st.Meter)
	if err != nil {
		return nil, err
	}
	return enc{}.time(st.Time).txID(st.TxID).bytes(deflate(m)), nil
}

func getVersion(block uint64, v []byte) (MeterState, error) {
	r := &dec{b: v}
	st := MeterState{Block: block, Time: r.time(), TxID: r.txID()}
	z := r.next(r.uvarint())
	if err := r.end("meter version"); err != nil {
		return st, err
	}
	m, err := inflate(z)
	if err != nil {
		return st, fmt.Errorf("meter version: %w", err)
	}
	return st, json.Unmarshal(m, &st.Meter)
}

// putKey and getKey encode a key version (JSON, deflated).
func putKey(k KeyVersion) ([]byte, error) {
	b, err := json.Marshal(k)
	if err != nil {
		return nil, err
	}
	return deflate(b), nil
}

func getKey(v []byte) (KeyVersion, error) {
	var k KeyVersion
	b, err := inflate(v)
	if err != nil {
		return k, fmt.Errorf("key version: %w", err)
	}
	return k, json.Unmarshal(b, &k)
}

// putHour and getHour encode an hour's counts; the hour is its key.
func putHour(h HourStat) enc {
	return enc{}.uvarint(h.Accepted).uvarint(h.Refused).uvarint(h.Transactions)
}

func getHour(hour int64, v []byte) (HourStat, error) {
	h := HourStat{Hour: time.Unix(hour*3600, 0).UTC()}
	if v == nil {
		return h, nil
	}
	r := &dec{b: v}
	h.Accepted, h.Refused, h.Transactions = r.uvarint(), r.uvarint(), r.uvarint()
	return h, r.end("hour")
}

// putMinute and getMinute encode a minute's counts; the minute is its key.
func putMinute(m MinuteStat) enc {
	return enc{}.uvarint(m.Transactions).uvarint(m.Accepted).uvarint(m.Refused)
}

func getMinute(minute int64, v []byte) (MinuteStat, error) {
	m := MinuteStat{Minute: time.Unix(minute*60, 0).UTC()}
	if v == nil {
		return m, nil
	}
	r := &dec{b: v}
	m.Transactions, m.Accepted, m.Refused = r.uvarint(), r.uvarint(), r.uvarint()
	return m, r.end("minute")
}

// meterTime reads a measurement's time to the second, for the index; the
// exact text stays in the transaction.
func meterTime(m meter.Measurement) (int64, bool) {
	t, err := time.Parse(time.RFC3339Nano, m.Time)
	if err != nil {
		return 0, false
	}
	return t.Unix(), true
}
