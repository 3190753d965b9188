package readings

import (
	"runtime"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/inter-nmi/pki/network/pkg/audit"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// checks are a block's measurement transactions decoded, by position, and
// the verdicts of package audit on their accepted readings, by position and
// item, made on every core before the block is written (a rebuild from
// block 0 is mostly signature checks).
type checks struct {
	items    map[int][]wire.Item
	verdicts map[[2]int]*audit.Finding
}

// check decodes a block's measurement transactions and checks, in
// parallel, each accepted reading of a meter whose record and keys no
// transaction of the block writes: for those, the index as it stands is
// what writing the block in order would see. The readings of the other
// meters are checked in order as the block is written.
func (x *Index) check(b *chain.Block) (*checks, error) {
	c := &checks{items: map[int][]wire.Item{}, verdicts: map[[2]int]*audit.Finding{}}
	touched := map[string]bool{}
	for i := range b.Txs {
		t := &b.Txs[i]
		if !t.Valid() || t.Chaincode != x.chaincode {
			continue
		}
		for _, w := range t.Writes {
			if kind, rest := wire.KeyKind(w.Key); w.Namespace == x.chaincode && (kind == wire.KindMeter || kind == wire.KindKeyVersion) {
				touched[meterOfKey(kind, rest)] = true
			}
		}
		if audit.Function(t.Function) != nil || t.Function == wire.TxAttestMeter {
			continue
		}
		if items, err := wire.Decode(t.Function, t.Args, t.ResponsePayload); err == nil {
			c.items[i] = items
		}
	}
	type job struct {
		at   [2]int
		it   wire.Item
		mtr  *meter.Meter
		pem  string
		seen *audit.Finding
	}
	var jobs []job
	err := x.db.View(func(tx *bolt.Tx) error {
		for pos, items := range c.items {
			for i, it := range items {
				if it.Result.Outcome != meter.OutcomeAccepted || touched[it.Signed.MeterID] {
					continue
				}
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
				jobs = append(jobs, job{at: [2]int{pos, i}, it: it, mtr: mtr, pem: kv.PublicKey})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range next {
				jobs[j].seen = audit.Accepted(jobs[j].it, jobs[j].mtr, jobs[j].pem)
			}
		})
	}
	for j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
	for _, j := range jobs {
		c.verdicts[j.at] = j.seen
	}
	return c, nil
}

// meterOfKey is the meter a meter record's or key version's key names.
func meterOfKey(kind, rest string) string {
	if kind == wire.KindKeyVersion {
		if i := strings.LastIndexByte(rest, '/'); i >= 0 {
			return rest[:i]
		}
	}
	return rest
}
