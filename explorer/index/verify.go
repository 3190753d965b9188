package index

import (
	"runtime"
	"sync"

	"github.com/inter-nmi/pki/network/pkg/audit"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/follow"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// Checking the signature of every reading marked accepted (audit.Accepted)
// is most of the cost of indexing a block. A block's checks run on every
// processor before the block is indexed transaction by transaction, each
// against the meter's record and key as the block found them; indexing
// takes a check's verdict where the record and key it checks against are
// still those, and checks again where a transaction of the block changed
// them (a rotation before a reading in the same block).

// measured is a measurement transaction's items, decoded once, or the
// finding that they do not decode.
type measured struct {
	items []wire.Item
	f     *audit.Finding
}

// checked is the verdict of audit.Accepted on an item, and the record and
// key it was given.
type checked struct {
	st  *MeterState
	pem string
	f   *audit.Finding
}

// itemAt names an item of a block: its transaction and its index there.
type itemAt struct{ tx, item int }

// minParallel is the fewest checks worth spreading over processors.
const minParallel = 64

// measurements decodes the block's measurement transactions and checks
// their accepted items' signatures in parallel.
func (a *adder) measurements() error {
	type job struct {
		at  itemAt
		it  wire.Item
		chk checked
	}
	var jobs []job
	for i := range a.block.Txs {
		t := &a.block.Txs[i]
		if !t.Valid() || t.Chaincode != wire.Namespace || audit.Function(t.Function) != nil {
			continue
		}
		items, f := follow.Measurements(t)
		a.decoded[t.Index] = measured{items, f}
		for _, it := range items {
			if it.Result.Outcome != meter.OutcomeAccepted {
				continue
			}
			st, pem, err := a.inForce(it)
			if err != nil {
				return err
			}
			if st != nil {
				jobs = append(jobs, job{at: itemAt{t.Index, it.Index}, it: it, chk: checked{st: st, pem: pem}})
			}
		}
	}
	workers := runtime.GOMAXPROCS(0)
	if workers < 2 || len(jobs) < minParallel {
		return nil // checked as they are indexed
	}
	var wg sync.WaitGroup
	per := (len(jobs) + workers - 1) / workers
	for from := 0; from < len(jobs); from += per {
		part := jobs[from:min(from+per, len(jobs))]
		wg.Go(func() {
			for i := range part {
				part[i].chk.f = audit.Accepted(part[i].it, &part[i].chk.st.Meter, part[i].chk.pem)
			}
		})
	}
	wg.Wait()
	for _, j := range jobs {
		a.checks[j.at] = j.chk
	}
	return nil
}

// items returns a measurement transaction's items, decoded.
func (a *adder) items(t *chain.Tx) ([]wire.Item, *audit.Finding) {
	if m, ok := a.decoded[t.Index]; ok {
		return m.items, m.f
	}
	return follow.Measurements(t)
}

// inForce is the record of an item's meter as it stands, and the key of
// the version the item claims if that version is in force ("" if not); st
// is nil for a meter not registered.
func (a *adder) inForce(it wire.Item) (st *MeterState, pem string, err error) {
	id := it.Signed.MeterID
	if st, err = a.state(id); err != nil || st == nil || st.Meter.KeyVersion != it.Result.KeyVersion {
		return st, "", err
	}
	k, ok := a.known.get(id)
	if ok && k.st == st && k.hasPEM {
		return st, k.pem, nil
	}
	n, err := a.number(id, false)
	if err != nil {
		return nil, "", err
	}
	v := a.tx.Bucket(bKeys).Get(keyOfVersion(n, st.Meter.KeyVersion))
	if v == nil {
		return st, "", nil
	}
	kv, err := getKey(v)
	if err != nil {
		return nil, "", err
	}
	if ok && k.st == st {
		k.pem, k.hasPEM = kv.PublicKey, true
		a.known.put(k)
	}
	return st, kv.PublicKey, nil
}

// forged says why an item the endorsers marked accepted is not a reading
// the chaincode accepts (audit.Accepted), nil when it is one.
func (a *adder) forged(t *chain.Tx, it wire.Item) (*audit.Finding, error) {
	st, pem, err := a.inForce(it)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return audit.Accepted(it, nil, ""), nil
	}
	if c, ok := a.checks[itemAt{t.Index, it.Index}]; ok && c.st == st && c.pem == pem {
		return c.f, nil
	}
	return audit.Accepted(it, &st.Meter, pem), nil
}
