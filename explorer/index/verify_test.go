package index_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/explorer/index/synth"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// together makes one block of the transactions of consecutive blocks, in
// their order: the first block's number, header and signatures.
func together(blocks ...*chain.Block) *chain.Block {
	b := *blocks[0]
	b.Txs = nil
	for _, x := range blocks {
		for _, t := range x.Txs {
			t.Index = len(b.Txs)
			b.Txs = append(b.Txs, t)
		}
	}
	return &b
}

// A block's signatures are checked on every processor before it is
// indexed, against the records as the block found them. A reading signed
// with a key its own block rotated to is accepted all the same, and a
// forged one among many is still found.
func TestChecksOfABlock(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("one processor: the checks run as the block is indexed")
	}
	s, _ := open(t)
	c := synth.New(start)
	add(t, s, c.Register("PTBMSP", 100))
	rotated := synth.MeterID(7)
	rotate := c.Rotate("PTBMSP", rotated)
	batch := c.Measurements("CMIMSP", c.Meters(), 100, 0)
	// A forged item: meter 9's reading signed by meter 10's key.
	it, err := meter.Sign(c.Key(synth.MeterID(10)), meter.Measurement{MeterID: synth.MeterID(9), Seq: 99, Time: "2026-11-01T00:00:00Z", Value: "1", Unit: "kWh"})
	if err != nil {
		t.Fatal(err)
	}
	items, err := wire.Unpack([]byte(batch.Txs[0].Args[0]))
	if err != nil {
		t.Fatal(err)
	}
	items[8] = it
	packed, err := wire.Pack(items)
	if err != nil {
		t.Fatal(err)
	}
	batch.Txs[0].Args = []string{string(packed)}
	b := together(rotate, batch)
	add(t, s, b)
	totals, _ := s.Totals()
	if totals.Accepted != 99 || totals.Findings != 1 {
		t.Errorf("%d accepted, %d findings; want 99 and the forged one", totals.Accepted, totals.Findings)
	}
	if in, err := s.FindingsIn(b.Number); err != nil || len(in) != 1 || in[0].Kind != index.FindingSignature || in[0].TxIndex != 1 ||
		in[0].Key != wire.GuardKey(synth.MeterID(9)) || !strings.Contains(in[0].Problem, "does not verify") {
		t.Errorf("findings of the block: %+v %v", in, err)
	}
	v, err := s.Meter(rotated, 5)
	if err != nil || len(v.Recent) != 1 || v.Recent[0].Outcome != meter.OutcomeAccepted || v.Current.Meter.KeyVersion != 2 {
		t.Errorf("the rotated meter's reading in the block of its rotation: %+v %v", v, err)
	}
}

// The records the store keeps decoded between blocks are those of the
// committed index: a reading marked accepted after its meter was revoked
// is found, however recently the meter's record was looked up.
func TestKnownMetersFollowTheirRecords(t *testing.T) {
	s, _ := open(t)
	c := synth.New(start)
	add(t, s, c.Register("PTBMSP", 80), c.Measurements("CMIMSP", c.Meters(), 80, 0))
	revoked := synth.MeterID(5)
	add(t, s, c.Revoke("PTBMSP", revoked, meter.ReasonKeyCompromise))
	b := c.Measurements("CMIMSP", c.Meters(), 80, 0)
	add(t, s, b)
	totals, _ := s.Totals()
	if totals.Accepted != 80+79 || totals.Findings != 1 {
		t.Errorf("%d accepted, %d findings; want %d and one of the revoked meter", totals.Accepted, totals.Findings, 80+79)
	}
	wantFinding(t, s, b, index.FindingSignature, wire.GuardKey(revoked), "revoked")
}
