package index_test

import (
	"testing"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/explorer/index/synth"
)

// A batch invalidated by a concurrent write (MVCC_READ_CONFLICT) and
// carried by the registry's second endorsement of the same request is an
// operational event, not a refusal: it is listed apart, linked to the
// transaction that carried its readings, and counted by cause.
func TestInvalidCarried(t *testing.T) {
	s, _ := open(t)
	c := synth.New(start)
	add(t, s, c.Register("PTBMSP", 4))
	conflicted, carried := c.ConflictedMeasurements("CMIMSP", c.Meters(), 8, 0, "MVCC_READ_CONFLICT")
	add(t, s, conflicted, carried, // 1, 2
		c.Invalid("PTBMSP", synth.MeterID(3), "BAD_CREATOR_SIGNATURE"), // 3: never carried
		c.Measurements("CMIMSP", c.Meters(), 4, 2))                     // 4: two refused

	totals, err := s.Totals()
	if err != nil {
		t.Fatal(err)
	}
	if totals.Invalid != 2 || totals.InvalidCarried != 1 || totals.InvalidByCode["MVCC_READ_CONFLICT"] != 1 ||
		totals.InvalidByCode["BAD_CREATOR_SIGNATURE"] != 1 || totals.Accepted != 10 || totals.Refused != 2 {
		t.Fatalf("totals %+v", totals)
	}
	refusals, err := s.Refusals(index.RefusalFilter{})
	if err != nil || len(refusals) != 2 {
		t.Fatalf("refusals %+v %v: only the two refused readings", refusals, err)
	}

	list, err := s.InvalidTxs(index.InvalidFilter{})
	if err != nil || len(list) != 2 {
		t.Fatalf("invalid transactions %+v %v", list, err)
	}
	never, mvcc := list[0], list[1]
	if never.Block != 3 || never.CarriedBy != nil || never.MeterID != synth.MeterID(3) {
		t.Errorf("the invalid revocation: %+v", never)
	}
	if mvcc.Block != 1 || mvcc.Code != "MVCC_READ_CONFLICT" || mvcc.Items != 8 || mvcc.Submitter != "CMIMSP" ||
		mvcc.TxID != conflicted.Txs[0].ID {
		t.Errorf("the conflicted batch: %+v", mvcc)
	}
	if cb := mvcc.CarriedBy; cb == nil || cb.Block != 2 || cb.TxIndex != 0 || cb.TxID != carried.Txs[0].ID {
		t.Errorf("carried by %+v, want block 2's transaction %s", cb, carried.Txs[0].ID)
	}
	for _, tc := range []struct {
		name string
		f    index.InvalidFilter
		want int
	}{
		{"by code", index.InvalidFilter{Code: "MVCC_READ_CONFLICT"}, 1},
		{"by submitter", index.InvalidFilter{NMI: "PTBMSP"}, 1},
		{"before block 3", index.InvalidFilter{Before: 3}, 1},
		{"limit", index.InvalidFilter{Limit: 1}, 1},
	} {
		if got, err := s.InvalidTxs(tc.f); err != nil || len(got) != tc.want {
			t.Errorf("%s: %d (%v), want %d", tc.name, len(got), err, tc.want)
		}
	}

	self, _, err := s.Carried(1, 0)
	if err != nil || self == nil || self.CarriedBy == nil || self.CarriedBy.Block != 2 {
		t.Errorf("Carried of the invalid batch: %+v %v", self, err)
	}
	self, by, err := s.Carried(2, 0)
	if err != nil || self != nil || len(by) != 1 || by[0].TxID != conflicted.Txs[0].ID {
		t.Errorf("Carried of the carrying batch: %+v %+v %v", self, by, err)
	}
	if self, by, err := s.Carried(4, 0); err != nil || self != nil || by != nil {
		t.Errorf("Carried of a batch committed at once: %+v %+v %v", self, by, err)
	}
}

// A transaction's refusals are found from it, and refusals by kind.
func TestRefusalsOfATransaction(t *testing.T) {
	s, _ := open(t)
	c := synth.New(start)
	add(t, s, c.Register("PTBMSP", 3), c.Measurements("CMIMSP", c.Meters(), 9, 3)) // items 2, 5, 8 refused
	got, err := s.RefusalsOf(1, 0)
	if err != nil || len(got) != 3 || got[0].Seq != 1 || got[0].MeterID != synth.MeterID(3) || got[0].TxID == "" {
		t.Fatalf("refusals of block 1's batch: %+v %v", got, err)
	}
	if got, err := s.RefusalsOf(0, 0); err != nil || len(got) != 0 {
		t.Fatalf("refusals of the registration: %+v %v", got, err)
	}
	if got, err := s.Refusals(index.RefusalFilter{Kind: index.RefusedUpdate}); err != nil || len(got) != 0 {
		t.Fatalf("refused update statements: %+v %v", got, err)
	}
	if got, err := s.Refusals(index.RefusalFilter{Kind: index.RefusedMeasurement}); err != nil || len(got) != 3 {
		t.Fatalf("refused measurements: %+v %v", got, err)
	}
}
