package index

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// Invalid transactions are operational events, not refusals: the peers
// kept nothing of them, and most are a concurrent write's doing
// (MVCC_READ_CONFLICT), after which the registry endorses the same request
// again and a later transaction carries its items. The index keeps each
// one apart from the refused items (bucket invalid) and links it to the
// first later valid transaction of the same request — the same chaincode,
// function and arguments, as the registry sends it again — through the
// request's hash (bucket pending, while no such transaction has come).

// InvalidTx is a transaction the peers marked invalid.
type InvalidTx struct {
	Block   uint64 `json:"block"`
	TxIndex int    `json:"txIndex"`
	TxID    string `json:"txId"`
	// Code is the peers' validation code.
	Code      string `json:"code"`
	Function  string `json:"function,omitempty"`
	Submitter string `json:"submitter"`
	// MeterID is the meter a single-meter transaction named (its first
	// argument), if any.
	MeterID string `json:"meterId,omitempty"`
	// Items is how many measurements it carried (0: not a measurement
	// transaction, or one that cannot be read).
	Items int       `json:"items,omitempty"`
	Time  time.Time `json:"time"`
	// CarriedBy is the first later valid transaction of the same request,
	// which carried its items; nil while there is none.
	CarriedBy *TxPos `json:"carriedBy,omitempty"`
}

// TxPos is where a transaction is.
type TxPos struct {
	Block   uint64 `json:"block"`
	TxIndex int    `json:"txIndex"`
	TxID    string `json:"txId"`
}

// requestHash identifies a request as the registry endorses it again after
// a conflict: chaincode, function and arguments, each length-prefixed.
func requestHash(t *chain.Tx) []byte {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, s := range append([]string{t.Chaincode, t.Function}, t.Args...) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	return h.Sum(nil)[:16]
}

// invalid indexes a transaction the peers marked invalid, and waits for
// the transaction that carries its request.
func (a *adder) invalid(t *chain.Tx) error {
	a.totals.Invalid++
	if a.totals.InvalidByCode == nil {
		a.totals.InvalidByCode = map[string]uint64{}
	}
	a.totals.InvalidByCode[t.Code]++
	it := InvalidTx{Code: t.Code, Function: t.Function, Submitter: t.CreatorMSP, MeterID: meterArg(t), Items: carriedItems(t), Time: t.Time}
	v, err := putInvalid(a.strs, it)
	if err != nil {
		return err
	}
	if err := a.tx.Bucket(bInvalid).Put(key(u64(a.block.Number), u32(uint32(t.Index))), v); err != nil {
		return err
	}
	if t.Function == "" {
		return nil // not a chaincode invocation: no request to carry again
	}
	pos := binary.AppendUvarint(binary.AppendUvarint(nil, a.block.Number), uint64(t.Index))
	return appendTo(a.tx.Bucket(bPending), requestHash(t), pos)
}

// carry links the invalid transactions that wait for a valid transaction's
// request to it. Most blocks find none waiting and hash nothing.
func (a *adder) carry(t *chain.Tx) error {
	pending := a.tx.Bucket(bPending)
	if t.Function == "" {
		return nil
	}
	if k, _ := pending.Cursor().First(); k == nil {
		return nil
	}
	h := requestHash(t)
	waiting := pending.Get(h)
	if waiting == nil {
		return nil
	}
	invalid := a.tx.Bucket(bInvalid)
	carrier := key(u64(a.block.Number), u32(uint32(t.Index)))
	r := &dec{b: append([]byte(nil), waiting...)}
	for len(r.b) > 0 {
		k := key(u64(r.uvarint()), u32(uint32(r.int())))
		if r.err != nil {
			return fmt.Errorf("invalid transactions waiting: %w", r.err)
		}
		v := invalid.Get(k)
		if v == nil {
			return fmt.Errorf("invalid transaction at %x: %w", k, errCorrupt)
		}
		if v[len(v)-1] != 0 {
			return fmt.Errorf("invalid transaction at %x carried twice: %w", k, errCorrupt)
		}
		// The link replaces the stored value's last byte: 1, block, tx.
		linked := append(append([]byte(nil), v[:len(v)-1]...), 1)
		linked = binary.AppendUvarint(binary.AppendUvarint(linked, a.block.Number), uint64(t.Index))
		if err := invalid.Put(k, linked); err != nil {
			return err
		}
		if err := appendTo(a.tx.Bucket(bCarriers), carrier, k); err != nil {
			return err
		}
		a.totals.InvalidCarried++
	}
	return pending.Delete(h)
}

// carriedItems counts the measurements a transaction carried, without
// reading them: it was refused as a whole.
func carriedItems(t *chain.Tx) int {
	switch t.Function {
	case wire.TxSubmitMeasurement:
		return 1
	case wire.TxSubmitPacked:
		if len(t.Args) == 1 {
			if items, err := wire.Unpack([]byte(t.Args[0])); err == nil {
				return len(items)
			}
		}
	case wire.TxSubmitMeasurements:
		var items []json.RawMessage
		if len(t.Args) == 1 && json.Unmarshal([]byte(t.Args[0]), &items) == nil {
			return len(items)
		}
	}
	return 0
}

// putInvalid encodes an invalid transaction; its block and index are its
// key, and its ID is the block's. The last byte is 0 until a valid
// transaction carries its request, then 1 followed by that transaction's
// block and index (carry).
func putInvalid(d *strs, it InvalidTx) (enc, error) {
	e := enc{}.str(it.MeterID).uvarint(uint64(it.Items))
	var err error
	for _, s := range []string{it.Code, it.Function, it.Submitter} {
		if e, err = d.put(e, s); err != nil {
			return nil, err
		}
	}
	return append(e.time(it.Time), 0), nil
}

func getInvalid(sums *summaries, k, v []byte) (InvalidTx, error) {
	r := &dec{b: v}
	it := InvalidTx{Block: decodeU64(k[:8]), TxIndex: int(binary.BigEndian.Uint32(k[8:12]))}
	it.MeterID, it.Items = r.str(), r.int()
	it.Code, it.Function, it.Submitter = sums.d.get(r), sums.d.get(r), sums.d.get(r)
	it.Time = r.time()
	if r.byte() == 1 {
		it.CarriedBy = &TxPos{Block: r.uvarint(), TxIndex: r.int()}
	}
	if err := r.end("invalid transaction"); err != nil {
		return it, err
	}
	var err error
	if it.TxID, err = sums.txID(it.Block, it.TxIndex); err != nil {
		return it, err
	}
	if c := it.CarriedBy; c != nil {
		if c.TxID, err = sums.txID(c.Block, c.TxIndex); err != nil {
			return it, err
		}
	}
	return it, nil
}

// InvalidFilter selects invalid transactions; zero fields do not filter.
type InvalidFilter struct {
	// NMI is the submitter's MSP ID; Code the validation code.
	NMI, Code string
	// Before continues a listing: the transactions of blocks below it.
	Before uint64
	Limit  int
}

// InvalidTxs lists invalid transactions, newest first.
func (s *Store) InvalidTxs(f InvalidFilter) ([]InvalidTx, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	var out []InvalidTx
	err := s.db.View(func(tx *bolt.Tx) error {
		sums := newSummaries(tx)
		c := tx.Bucket(bInvalid).Cursor()
		var k, v []byte
		if f.Before == 0 {
			k, v = c.Last()
		} else {
			k, v = lastBefore(c, u64(f.Before))
		}
		for ; k != nil && len(out) < f.Limit; k, v = c.Prev() {
			it, err := getInvalid(sums, k, v)
			if err != nil {
				return err
			}
			if f.NMI != "" && it.Submitter != f.NMI || f.Code != "" && it.Code != f.Code {
				continue
			}
			out = append(out, it)
		}
		return nil
	})
	return out, err
}

// Carried tells what the peers and the registry did with a transaction:
// for an invalid one, itself (with the transaction that carried its
// request, if one did); for a valid one, the invalid transactions whose
// request it carried.
func (s *Store) Carried(block uint64, txIndex int) (self *InvalidTx, carried []InvalidTx, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		sums := newSummaries(tx)
		k := key(u64(block), u32(uint32(txIndex)))
		if v := tx.Bucket(bInvalid).Get(k); v != nil {
			it, err := getInvalid(sums, k, v)
			if err != nil {
				return err
			}
			self = &it
			return nil
		}
		list := tx.Bucket(bCarriers).Get(k)
		for ; len(list) >= 12; list = list[12:] {
			ik := list[:12]
			v := tx.Bucket(bInvalid).Get(ik)
			if v == nil {
				return fmt.Errorf("carried transaction at %x: %w", ik, errCorrupt)
			}
			it, err := getInvalid(sums, ik, v)
			if err != nil {
				return err
			}
			carried = append(carried, it)
		}
		if len(list) != 0 {
			return fmt.Errorf("carried transactions of %x: %w", k, errCorrupt)
		}
		return nil
	})
	return self, carried, err
}
