// Package reconcile reads what a peer's ledger holds of measurements, so
// that a load or fault run is checked against the ledger itself rather than
// against the registry's answers: it walks the peer's blocks and counts, per
// meter and seq, the measurements valid transactions accepted and the
// items they refused (package wire reads both from the transactions), and
// keeps every block's header hash so that peers can be compared block by
// block.
package reconcile

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hyperledger/fabric-gateway/pkg/client"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// Item is one measurement: a meter and a seq.
type Item struct {
	MeterID string
	Seq     uint64
}

func (i Item) String() string { return i.MeterID + "#" + strconv.FormatUint(i.Seq, 10) }

// Ledger is one peer's view.
type Ledger struct {
	// Hashes are the blocks' header hashes, by block number.
	Hashes [][]byte
	// Accepted counts, per item, the valid transactions that accepted it.
	Accepted map[Item]int
	// AcceptedIn names the transaction that accepted an item (the last, if
	// several did).
	AcceptedIn map[Item]string
	// Rejected lists, per item, the codes of the rejections filed for it.
	Rejected map[Item][]meter.Code
	// Invalid counts transactions the peer committed as invalid, by code.
	Invalid map[string]int
}

// Height is the number of blocks read.
func (l *Ledger) Height() uint64 { return uint64(len(l.Hashes)) }

// Read walks a peer's blocks from the first to the one before height (the
// channel's height as that peer reports it when 0).
func Read(ctx context.Context, nw *client.Network, chaincode string, height uint64) (*Ledger, error) {
	if height == 0 {
		h, err := channel.Height(ctx, nw)
		if err != nil {
			return nil, err
		}
		height = h
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	blocks, err := nw.BlockEvents(ctx, client.WithStartBlock(0))
	if err != nil {
		return nil, fmt.Errorf("read blocks: %w", err)
	}
	l := &Ledger{Accepted: map[Item]int{}, AcceptedIn: map[Item]string{}, Rejected: map[Item][]meter.Code{}, Invalid: map[string]int{}}
	for raw := range blocks {
		b, err := chain.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", raw.GetHeader().GetNumber(), err)
		}
		if b.Number != l.Height() {
			return nil, fmt.Errorf("block %d arrived after block %d", b.Number, l.Height()-1)
		}
		l.Hashes = append(l.Hashes, b.HeaderHash)
		l.add(b, chaincode)
		if l.Height() == height {
			return l, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("the block stream ended at block %d, before %d", l.Height(), height)
}

func (l *Ledger) add(b *chain.Block, chaincode string) {
	for _, tx := range b.Txs {
		if !tx.Valid() {
			l.Invalid[tx.Code]++
			continue
		}
		if tx.Chaincode != chaincode {
			continue
		}
		items, err := wire.Decode(tx.Function, tx.Args, tx.ResponsePayload)
		if err != nil {
			continue
		}
		for _, it := range items {
			item := Item{it.Result.MeterID, it.Result.Seq}
			switch it.Result.Outcome {
			case meter.OutcomeAccepted:
				l.Accepted[item]++
				l.AcceptedIn[item] = tx.ID
			case meter.OutcomeRejected:
				l.Rejected[item] = append(l.Rejected[item], it.Result.Code)
			}
		}
	}
}

// Diverging returns the first block at which two peers' chains differ, and
// false if one is a prefix of the other.
func Diverging(a, b *Ledger) (uint64, bool) {
	for i := range min(len(a.Hashes), len(b.Hashes)) {
		if !bytes.Equal(a.Hashes[i], b.Hashes[i]) {
			return uint64(i), true
		}
	}
	return 0, false
}

// Verdict is what a client was told about one measurement.
type Verdict struct {
	// Accepted: the registry answered accepted (or duplicate of an
	// accepted one); Rejected: it answered a refusal; neither: no verdict.
	Accepted, Rejected bool
	Code               string
}

// Report compares the verdicts clients got with a ledger.
type Report struct {
	Acknowledged int // verdicts: accepted or rejected
	OnLedger     int // acknowledged as accepted and accepted on the ledger exactly once
	// Lost: acknowledged as accepted, not on the ledger.
	Lost []Item
	// Misreported: acknowledged as refused, yet accepted on the ledger; or
	// accepted on the ledger with a rejection filed for it as well.
	Misreported []Item
	// Duplicated: accepted on the ledger more than once.
	Duplicated []Item
	// Unacknowledged: no verdict reached the client, yet the ledger
	// accepted it (what a client without an answer must settle).
	Unacknowledged int
}

// OK reports whether nothing was lost, misreported or duplicated.
func (r *Report) OK() bool {
	return len(r.Lost) == 0 && len(r.Misreported) == 0 && len(r.Duplicated) == 0
}

// Compare checks verdicts against the ledger.
func Compare(verdicts map[Item]Verdict, l *Ledger) *Report {
	r := &Report{}
	for it, v := range verdicts {
		n := l.Accepted[it]
		switch {
		case v.Accepted:
			r.Acknowledged++
			if n == 0 {
				r.Lost = append(r.Lost, it)
			} else {
				r.OnLedger++
			}
		case v.Rejected:
			r.Acknowledged++
			if n > 0 {
				r.Misreported = append(r.Misreported, it)
			}
		default:
			if n > 0 {
				r.Unacknowledged++
			}
		}
	}
	for it, n := range l.Accepted {
		if n > 1 {
			r.Duplicated = append(r.Duplicated, it)
		}
		if len(l.Rejected[it]) > 0 {
			if _, known := verdicts[it]; known {
				r.Misreported = append(r.Misreported, it)
			}
		}
	}
	for _, s := range [][]Item{r.Lost, r.Misreported, r.Duplicated} {
		slices.SortFunc(s, func(a, b Item) int { return strings.Compare(a.String(), b.String()) })
	}
	return r
}
