package index_test

import (
	"context"
	"strings"
	"testing"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/explorer/index/synth"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// A meter's readings outgrow the chunk they are appended to: the newest
// are listed first across the chunks closed behind it, with where each one
// is and what the index keeps of it.
func TestReadingsAcrossChunks(t *testing.T) {
	s, _ := open(t)
	c := synth.New(start)
	add(t, s, c.Register("PTBMSP", 2))
	busy, quiet := synth.MeterID(1), synth.MeterID(2)
	var blocks []*chain.Block
	for i := range 120 {
		var b *chain.Block
		switch {
		case i%10 == 9: // a batch of 30 readings of the busy meter and one of the quiet
			b = c.Measurements("CMIMSP", append(repeat(busy, 30), quiet), 31, 0)
		case i%7 == 6: // one reading, refused
			b = c.Singles("PTBMSP", []string{busy}, 1)
		default: // one reading
			b = c.Singles("PTBMSP", []string{busy}, 0)
		}
		blocks = append(blocks, b)
		add(t, s, b)
	}
	// The readings of the busy meter, oldest first, as the chain has them.
	type want struct {
		block   uint64
		tx, it  int
		refused bool
	}
	var all []want
	for _, b := range blocks {
		for ti, tx := range b.Txs {
			items := 1
			if len(tx.Args) == 1 {
				items = 31
			}
			for it := range items {
				if items == 31 && it%31 == 30 {
					continue // the quiet meter's
				}
				all = append(all, want{b.Number, ti, it, items == 1 && strings.Contains(string(tx.ResponsePayload), meter.OutcomeRejected)})
			}
		}
	}
	v, err := s.Meter(busy, len(all)+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Recent) != len(all) {
		t.Fatalf("%d readings listed, the chain has %d", len(v.Recent), len(all))
	}
	for i, r := range v.Recent {
		w := all[len(all)-1-i]
		if r.Block != w.block || r.TxIndex != w.tx || r.Item != w.it || (r.Outcome == meter.OutcomeRejected) != w.refused {
			t.Fatalf("reading %d, newest first: block %d tx %d item %d %s; want block %d tx %d item %d refused %v",
				i, r.Block, r.TxIndex, r.Item, r.Outcome, w.block, w.tx, w.it, w.refused)
		}
		if r.TxID != blocks[r.Block-1].Txs[r.TxIndex].ID {
			t.Fatalf("reading %d names transaction %s", i, r.TxID)
		}
		if w.refused && (r.Code != string(meter.CodeReplay) || r.Reason == "") {
			t.Errorf("refused reading %d: code %q reason %q", i, r.Code, r.Reason)
		}
		if !w.refused && r.Time == "" {
			t.Errorf("accepted reading %d has no meter time", i)
		}
	}
	if v.Recent[0].Seq <= v.Recent[len(v.Recent)-1].Seq {
		t.Errorf("seqs %d … %d, want the newest first", v.Recent[0].Seq, v.Recent[len(v.Recent)-1].Seq)
	}
	if few, _ := s.Meter(busy, 5); len(few.Recent) != 5 || few.Recent[0] != v.Recent[0] || few.Recent[4] != v.Recent[4] {
		t.Errorf("the newest 5: %+v", few.Recent)
	}
	if q, _ := s.Meter(quiet, 100); len(q.Recent) != 12 {
		t.Errorf("the quiet meter has %d readings, want 12", len(q.Recent))
	}

	// What the index does not keep comes from the readings' transactions.
	ev := index.NewEvidence(source(blocks), 0)
	if err := ev.Readings(context.Background(), busy, v.Recent); err != nil {
		t.Fatal(err)
	}
	for i, r := range v.Recent {
		if !r.Read || r.TxTime.IsZero() || (r.Outcome == meter.OutcomeAccepted && (r.Unit != "kWh" || r.Value == "" || r.KeyVersion != 1)) {
			t.Fatalf("reading %d not read from its transaction: %+v", i, r)
		}
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
