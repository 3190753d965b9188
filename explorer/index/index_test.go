package index_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/explorer/index/synth"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

var start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func open(t *testing.T) (*index.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "index.db")
	s, err := index.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func add(t *testing.T, s *index.Store, blocks ...*chain.Block) {
	t.Helper()
	for _, b := range blocks {
		if err := s.Add(b, index.Integrity{Checked: true, CheckedThrough: b.Number}, []byte(`{"state":`+strconv.FormatUint(b.Number, 10)+`}`), nil); err != nil {
			t.Fatalf("add block %d: %v", b.Number, err)
		}
	}
}

func TestIndexLifecycle(t *testing.T) {
	s, path := open(t)
	c := synth.New(start)
	add(t, s,
		c.Register("PTBMSP", 3),                                             // 0
		c.Register("CMIMSP", 2),                                             // 1
		c.Measurements("INMETROMSP", c.Meters()[:3], 9, 4),                  // 2: items 3 and 7 refused
		c.Revoke("PTBMSP", synth.MeterID(2), meter.ReasonKeyCompromise),     // 3
		c.Invalid("CMIMSP", synth.MeterID(1), "ENDORSEMENT_POLICY_FAILURE"), // 4
	)

	totals, err := s.Totals()
	if err != nil {
		t.Fatal(err)
	}
	if totals.Blocks != 5 || totals.Transactions != 5 || totals.Invalid != 1 || totals.Accepted != 7 || totals.Refused != 2 {
		t.Fatalf("totals %+v", totals)
	}
	if p := totals.ByNMI["PTBMSP"]; p.Registered != 3 || p.Revoked != 1 || p.Active() != 2 {
		t.Fatalf("PTB counts %+v", p)
	}
	if c := totals.ByNMI["CMIMSP"]; c.Registered != 2 || c.Revoked != 0 {
		t.Fatalf("CMI counts %+v (an invalid revocation must not count)", c)
	}

	v, err := s.Meter(synth.MeterID(2), 10)
	if err != nil {
		t.Fatal(err)
	}
	if v.Current.Meter.Status != meter.StatusRevoked || len(v.History) != 2 || v.History[0].Block != 0 || v.History[1].Block != 3 {
		t.Fatalf("meter 2: %+v", v)
	}
	if len(v.Keys) != 1 || v.Keys[0].Version != 1 {
		t.Fatalf("keys %+v", v.Keys)
	}
	// Meter 2 had readings at items 1, 4 (accepted) and 7 (refused).
	if len(v.Recent) != 3 || v.Recent[0].Outcome != meter.OutcomeRejected || v.Recent[0].Code != string(meter.CodeReplay) {
		t.Fatalf("recent readings newest first: %+v", v.Recent)
	}
	if _, err := s.Meter("NOPE-1", 10); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("unknown meter: %v", err)
	}

	refusals, err := s.Refusals(index.RefusalFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(refusals) != 2 || refusals[0].Kind != index.RefusedMeasurement || refusals[0].Code != string(meter.CodeReplay) ||
		refusals[0].MeterID != synth.MeterID(2) {
		t.Fatalf("refusals newest first, the invalid transaction not among them: %+v", refusals)
	}
	invalid, err := s.InvalidTxs(index.InvalidFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(invalid) != 1 || invalid[0].Code != "ENDORSEMENT_POLICY_FAILURE" || invalid[0].MeterID != synth.MeterID(1) ||
		invalid[0].Block != 4 || invalid[0].Submitter != "CMIMSP" || invalid[0].CarriedBy != nil || invalid[0].TxID == "" {
		t.Fatalf("invalid transactions: %+v", invalid)
	}
	if totals.InvalidByCode["ENDORSEMENT_POLICY_FAILURE"] != 1 || totals.InvalidCarried != 0 {
		t.Fatalf("invalid transactions by cause %v, carried %d", totals.InvalidByCode, totals.InvalidCarried)
	}
	for _, tc := range []struct {
		name string
		f    index.RefusalFilter
		want int
	}{
		{"by NMI (owner of refused meters)", index.RefusalFilter{NMI: "PTBMSP"}, 2},
		{"by submitter NMI", index.RefusalFilter{NMI: "INMETROMSP"}, 2},
		{"by meter", index.RefusalFilter{MeterID: synth.MeterID(1)}, 1},
		{"by code", index.RefusalFilter{Code: "REPLAY"}, 2},
		{"by time, none before", index.RefusalFilter{To: start.Add(-time.Hour)}, 0},
		{"limit", index.RefusalFilter{Limit: 1}, 1},
		{"before block 4", index.RefusalFilter{Before: 4}, 2},
	} {
		got, err := s.Refusals(tc.f)
		if err != nil || len(got) != tc.want {
			t.Errorf("%s: %d refusals (%v), want %d", tc.name, len(got), err, tc.want)
		}
	}

	// The registry as it stood after block 2: meter 2 still active, all 5 there.
	var at2 []index.Entry
	if err := s.Registry(2, func(e index.Entry) error { at2 = append(at2, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(at2) != 5 || at2[1].Meter.ID != synth.MeterID(2) || at2[1].Meter.Status != meter.StatusActive {
		t.Fatalf("registry at block 2: %+v", at2)
	}
	var at0 []index.Entry
	if err := s.Registry(0, func(e index.Entry) error { at0 = append(at0, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(at0) != 3 {
		t.Fatalf("registry at block 0 has %d meters, want 3", len(at0))
	}

	b3, err := s.Block(3)
	if err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]index.Hit{
		"3":                    {Kind: "block", ID: "3"},
		b3.HeaderHash:          {Kind: "block", ID: "3"},
		b3.Txs[0].ID:           {Kind: "tx", ID: b3.Txs[0].ID},
		synth.MeterID(4):       {Kind: "meter", ID: synth.MeterID(4)},
		" " + synth.MeterID(4): {Kind: "meter", ID: synth.MeterID(4)},
	} {
		if hit, err := s.Search(q); err != nil || hit != want {
			t.Errorf("search %q: %+v %v, want %+v", q, hit, err, want)
		}
	}
	if _, err := s.Search("99"); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("search for a block not indexed: %v", err)
	}
	blocks, err := s.Blocks(0, 2)
	if err != nil || len(blocks) != 2 || blocks[0].Number != 4 || blocks[1].Number != 3 {
		t.Fatalf("newest blocks: %+v %v", blocks, err)
	}
	if blocks, _ := s.Blocks(2, 10); len(blocks) != 2 || blocks[0].Number != 1 {
		t.Fatalf("blocks before 2: %+v", blocks)
	}

	// Reopened, the store resumes where it stopped.
	s.Close()
	s2, err := index.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	next, verifier, err := s2.Checkpoint()
	if err != nil || next != 5 || string(verifier) != `{"state":4}` {
		t.Fatalf("checkpoint %d %s %v", next, verifier, err)
	}
	if err := s2.Add(c.Register("PTBMSP", 1), index.Integrity{}, nil, nil); err != nil {
		t.Fatalf("resume with block 5: %v", err)
	}
}

func TestAddRefusesBlocksOutOfOrder(t *testing.T) {
	s, _ := open(t)
	c := synth.New(start)
	b0, b1 := c.Register("PTBMSP", 1), c.Register("PTBMSP", 1)
	if err := s.Add(b1, index.Integrity{}, nil, nil); err == nil {
		t.Fatal("block 1 accepted before block 0")
	}
	add(t, s, b0)
	if err := s.Add(b0, index.Integrity{}, nil, nil); err == nil {
		t.Fatal("block 0 accepted twice")
	}
	if next, _, _ := s.Checkpoint(); next != 1 {
		t.Fatalf("checkpoint %d after a refused block", next)
	}
}

func TestHoursAndRate(t *testing.T) {
	s, _ := open(t)
	c := synth.New(start)
	add(t, s, c.Register("PTBMSP", 2), c.Measurements("PTBMSP", c.Meters(), 10, 5))
	hours, err := s.Hours(start.Add(-time.Hour), start.Add(time.Hour))
	if err != nil || len(hours) != 3 {
		t.Fatalf("hours %+v %v", hours, err)
	}
	if h := hours[1]; h.Accepted != 8 || h.Refused != 2 || h.Transactions != 2 || !h.Hour.Equal(start) {
		t.Fatalf("the hour of the blocks: %+v", h)
	}
	minutes, err := s.Minutes(start.Add(-4*time.Minute), start.Add(30*time.Second))
	if err != nil || len(minutes) != 5 {
		t.Fatalf("minutes %+v %v", minutes, err)
	}
	if m := minutes[4]; m.Accepted != 8 || m.Refused != 2 || m.Transactions != 2 || !m.Minute.Equal(start) {
		t.Fatalf("the minute of the blocks: %+v", m)
	}
	if m := minutes[3]; m.Accepted+m.Refused+m.Transactions != 0 || !m.Minute.Equal(start.Add(-time.Minute)) {
		t.Fatalf("the minute before: %+v", m)
	}
}

// The index keeps each meter's latest valid attestation and the numbers of
// the configuration blocks, which an attestation bundle needs.
func TestAttestationsAndConfigBlocks(t *testing.T) {
	s, _ := open(t)
	c := synth.New(start)
	genesis := c.Tx(chain.Tx{Type: "CONFIG"})
	genesis.Config = true
	attest := func(id, code string) *chain.Block {
		return c.Tx(chain.Tx{Type: "ENDORSER_TRANSACTION", CreatorMSP: "CMIMSP", CreatorRole: "registrar", Chaincode: "pki",
			Function: wire.TxAttestMeter, Args: []string{id}, Code: code, Endorsers: []string{"CMIMSP", "PTBMSP"}})
	}
	add(t, s, genesis, c.Register("PTBMSP", 2), attest(synth.MeterID(1), "VALID")) // 0-2
	joined := c.Tx(chain.Tx{Type: "CONFIG"})
	joined.Config = true
	add(t, s, joined, // 3
		attest(synth.MeterID(1), "VALID"), attest(synth.MeterID(1), "MVCC_READ_CONFLICT"), attest("bad id", "VALID")) // 4-6

	a, err := s.Attestation(synth.MeterID(1))
	if err != nil {
		t.Fatal(err)
	}
	if a.Block != 4 || a.TxID == "" {
		t.Errorf("latest attestation %+v, want the valid one of block 4", a)
	}
	if _, err := s.Attestation(synth.MeterID(2)); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("meter never attested: %v", err)
	}
	for upTo, want := range map[uint64][]uint64{0: {0}, 2: {0}, 3: {0, 3}, 6: {0, 3}} {
		got, err := s.ConfigBlocks(upTo)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("configuration blocks up to %d: %v, %v; want %v", upTo, got, err, want)
		}
	}
}
