package index

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/inter-nmi/pki/network/pkg/audit"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/follow"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// Software update statements (docs/software.md): each one a meter's
// software log recorded, and each one the chaincode refused, is kept under
// the meter's number, block and transaction (bucket updates), with what
// the statement says; a refused one is a refusal too (bucket refusals).
// Statements come one a transaction and a meter has few: nothing of this
// is per reading.

// Update is a software update statement delivered for a meter, as the
// explorer saw it: accepted (recorded in the meter's software log) or
// refused (by the chaincode, with code and reason; nothing was written).
type Update struct {
	// Outcome is meter.UpdateAccepted or meter.UpdateRefused.
	Outcome string `json:"outcome"`
	Code    string `json:"code,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Time, From, To, Result and Detail are what the meter signed; empty
	// for a refused statement whose bytes do not parse.
	Time   string         `json:"time,omitempty"`
	From   meter.Software `json:"from"`
	To     meter.Software `json:"to"`
	Result string         `json:"result,omitempty"`
	Detail string         `json:"detail,omitempty"`
	// Number is the statement's entry in the meter's software log, and
	// KeyVersion the key that verified it (accepted ones).
	Number     int `json:"number,omitempty"`
	KeyVersion int `json:"keyVersion,omitempty"`
	// Submitter is the NMI whose client delivered the statement.
	Submitter string    `json:"submitter"`
	TxID      string    `json:"txId"`
	Block     uint64    `json:"block"`
	TxIndex   int       `json:"txIndex"`
	TxTime    time.Time `json:"txTime"`
}

// updateRefused flags a stored update statement the chaincode refused.
const updateRefused = 1

// putUpdate encodes a statement; its meter, block and transaction are its
// key, and its transaction's ID is the block's (summaries.txID). What the
// statement says is kept in place: a refused one's is whatever was sent.
func putUpdate(d *strs, u Update) (enc, error) {
	var flags byte
	if u.Outcome == meter.UpdateRefused {
		flags |= updateRefused
	}
	e := enc{flags}
	var err error
	for _, s := range []string{u.Submitter, u.Code, u.Result} {
		if e, err = d.put(e, s); err != nil {
			return nil, err
		}
	}
	e = e.str(u.Reason).str(u.Time).str(u.From.ID).str(u.From.Checksum).str(u.To.ID).str(u.To.Checksum).str(u.Detail)
	return e.uvarint(uint64(max(u.Number, 0))).uvarint(uint64(max(u.KeyVersion, 0))).time(u.TxTime), nil
}

func getUpdate(d *strs, k, v []byte) (Update, error) {
	r := &dec{b: v}
	u := Update{Outcome: meter.UpdateAccepted, Block: decodeU64(k[4:12]), TxIndex: int(binary.BigEndian.Uint32(k[12:16]))}
	if r.byte()&updateRefused != 0 {
		u.Outcome = meter.UpdateRefused
	}
	u.Submitter, u.Code, u.Result = d.get(r), d.get(r), d.get(r)
	u.Reason, u.Time = r.str(), r.str()
	u.From = meter.Software{ID: r.str(), Checksum: r.str()}
	u.To = meter.Software{ID: r.str(), Checksum: r.str()}
	u.Detail, u.Number, u.KeyVersion, u.TxTime = r.str(), r.int(), r.int(), r.time()
	return u, r.end("update statement")
}

// logged is what a transaction wrote to software logs, as far as the
// index applied it.
type logged struct {
	// entries are the log entries applied, by meter ID.
	entries map[string]*meter.UpdateReport
	// refused counts the log entries written that were findings instead.
	refused int
}

// softwareLog applies an entry written to swlog/<id>/<number> if it is one
// the chaincode could have written there (audit.SoftwareLog, and its
// statement signed by the meter: audit.Statement), and indexes it as the
// meter's accepted statement; otherwise it records a finding.
func (a *adder) softwareLog(t *chain.Tx, key, rest string, value []byte, written map[string]meter.Meter, l *logged) error {
	r, f := audit.SoftwareLog(key, rest, value, written)
	if f == nil {
		pem, err := a.keyPEM(r.MeterID, r.KeyVersion)
		if err != nil {
			return err
		}
		f = audit.Statement(r, pem)
	}
	if f != nil {
		l.refused++
		return a.find(t, f.Kind, key, f.Problem)
	}
	l.entries[r.MeterID] = r
	a.totals.UpdatesAccepted++
	return a.putUpdate(r.MeterID, t, Update{Outcome: meter.UpdateAccepted, Time: r.Time, From: r.From, To: r.To, Result: r.Result,
		Detail: r.Detail, Number: r.Number, KeyVersion: r.KeyVersion, Submitter: t.CreatorMSP})
}

// keyPEM is the key of a meter's version, "" if the index has none.
func (a *adder) keyPEM(id string, version int) (string, error) {
	n, err := a.number(id, false)
	if err != nil || n == 0 || version < 1 {
		return "", err
	}
	v := a.tx.Bucket(bKeys).Get(keyOfVersion(n, version))
	if v == nil {
		return "", nil
	}
	kv, err := getKey(v)
	if err != nil {
		return "", err
	}
	return kv.PublicKey, nil
}

// update indexes the statement a SubmitSoftwareUpdate transaction
// delivered: a refused one from the outcome its endorsers signed; an
// accepted one was indexed from its log entry (softwareLog), which must be
// there. A duplicate, a statement recorded before, is not indexed again.
func (a *adder) update(t *chain.Tx, l *logged) error {
	u, f := follow.SoftwareUpdate(t)
	if f != nil {
		return a.find(t, f.Kind, "", f.Problem)
	}
	if u == nil {
		return nil
	}
	id := u.Signed.MeterID
	switch u.Outcome.Outcome {
	case meter.UpdateAccepted:
		if l.entries[id] == nil && l.refused == 0 {
			return a.find(t, audit.KindStatement, wire.SoftwareLogPrefix(id),
				fmt.Sprintf("meter %s's update statement is marked accepted, but the transaction wrote no entry of its software log for it; it was not indexed", id))
		}
		return nil
	case meter.UpdateRefused:
	default:
		return nil
	}
	o := u.Outcome
	st := Update{Outcome: meter.UpdateRefused, Code: string(o.Code), Reason: o.Reason, Submitter: t.CreatorMSP}
	if u.Parsed {
		s := u.Statement
		st.Time, st.From, st.To, st.Result, st.Detail = s.Time, s.From, s.To, s.Result, s.Detail
	}
	a.totals.UpdatesRefused++
	owner := t.CreatorMSP
	prev, err := a.state(id)
	if err != nil {
		return err
	}
	if prev != nil {
		owner = prev.Meter.NMI
	}
	if err := a.putUpdate(id, t, st); err != nil {
		return err
	}
	return a.refuse(Refusal{Kind: RefusedUpdate, MeterID: id, NMI: owner, Submitter: t.CreatorMSP, Code: st.Code, Reason: st.Reason,
		Function: t.Function, TxID: t.ID, Block: a.block.Number, Time: t.Time}, 0, t.Index)
}

func (a *adder) putUpdate(id string, t *chain.Tx, u Update) error {
	n, err := a.number(id, true)
	if err != nil {
		return err
	}
	u.TxTime = t.Time
	v, err := putUpdate(a.strs, u)
	if err != nil {
		return err
	}
	return a.tx.Bucket(bUpdates).Put(key(u32(n), u64(a.block.Number), u32(uint32(t.Index))), v)
}

// Updates lists a meter's newest update statements, up to limit, oldest
// first, and how many it has in all.
func (s *Store) Updates(meterID string, limit int) (out []Update, total int, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		n := meterNumber(tx, meterID)
		if n == 0 {
			return nil
		}
		sums := newSummaries(tx)
		prefix := u32(n)
		c := tx.Bucket(bUpdates).Cursor()
		for k, v := lastBefore(c, u32(n+1)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			total++
			if len(out) == limit {
				continue // counted only
			}
			if len(k) != 16 {
				return fmt.Errorf("update statement key of meter %s: %w", meterID, errCorrupt)
			}
			u, err := getUpdate(sums.d, k, v)
			if err != nil {
				return err
			}
			if u.TxID, err = sums.txID(u.Block, u.TxIndex); err != nil {
				return err
			}
			out = append(out, u)
		}
		slices.Reverse(out)
		return nil
	})
	return out, total, err
}
