package index_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/explorer/index/synth"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

func registry(t *testing.T, s *index.Store, block uint64) map[string]index.Entry {
	t.Helper()
	out := map[string]index.Entry{}
	if err := s.Registry(block, func(e index.Entry) error { out[e.Meter.ID] = e; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// findings returns every finding, and fails unless the running count agrees.
func findings(t *testing.T, s *index.Store) []index.Finding {
	t.Helper()
	all, err := s.Findings(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if totals, _ := s.Totals(); totals.Findings != uint64(len(all)) {
		t.Fatalf("totals count %d findings, the list has %d", totals.Findings, len(all))
	}
	return all
}

// wantFinding fails unless the block has exactly one finding, of kind
// about key, whose problem says each of says.
func wantFinding(t *testing.T, s *index.Store, b *chain.Block, kind, key string, says ...string) index.Finding {
	t.Helper()
	in, err := s.FindingsIn(b.Number)
	if err != nil || len(in) != 1 {
		t.Fatalf("findings of block %d: %+v %v, want one", b.Number, in, err)
	}
	f := in[0]
	tx := b.Txs[0]
	if f.Kind != kind || f.Key != key || f.Block != b.Number || f.TxID != tx.ID || f.Submitter != tx.CreatorMSP ||
		!slices.Equal(f.Endorsers, tx.Endorsers) || !f.Time.Equal(tx.Time) {
		t.Errorf("finding %+v, want kind %s, key %s, block %d, tx %s by %s endorsed by %v", f, kind, key, b.Number, tx.ID, tx.CreatorMSP, tx.Endorsers)
	}
	for _, w := range says {
		if !strings.Contains(f.Problem, w) {
			t.Errorf("the finding does not say %q: %s", w, f.Problem)
		}
	}
	return f
}

// Two colluding NMIs (CMI, INMETRO) run modified chaincode and write a new
// key, meter/NEW-X, which only the 2-of-5 chaincode policy guards, with a
// value that is PTB's meter, revoked. The index must not take the value's
// word for which meter it is: PTB's meter, its counts and the registry
// export stay as the ledger's record of that meter has them, and auditors
// get a finding.
func TestForgedMeterUnderAnotherKey(t *testing.T) {
	s, path := open(t)
	c := synth.New(start)
	add(t, s, c.Register("PTBMSP", 2), c.Register("CMIMSP", 1))
	victim := synth.MeterID(1)
	forged := c.Record(victim)
	forged.Status = meter.StatusRevoked
	forged.Revocation = &meter.Revocation{Reason: meter.ReasonKeyCompromise, RevokedAt: start.Format(time.RFC3339)}
	b := c.Forge("CMIMSP", "INMETROMSP", "meter/NEW-X", synth.Value(forged))
	add(t, s, b)

	v, err := s.Meter(victim, 10)
	if err != nil {
		t.Fatal(err)
	}
	if v.Current.Meter.Status != meter.StatusActive || len(v.History) != 1 || v.Current.Block != 0 {
		t.Errorf("PTB's meter after the forged write: status %s, %d versions, set in block %d; want active, 1, 0",
			v.Current.Meter.Status, len(v.History), v.Current.Block)
	}
	if e := registry(t, s, b.Number)[victim]; e.Meter.Status != meter.StatusActive || e.Block != 0 {
		t.Errorf("registry export after the forged write: %s %s set in block %d", e.Meter.ID, e.Meter.Status, e.Block)
	}
	if n := len(registry(t, s, b.Number)); n != 3 {
		t.Errorf("registry export has %d meters, want 3", n)
	}
	if totals, _ := s.Totals(); totals.ByNMI["PTBMSP"].Revoked != 0 || totals.ByNMI["PTBMSP"].Registered != 2 {
		t.Errorf("PTB's counts after the forged write: %+v", totals.ByNMI["PTBMSP"])
	}
	if _, err := s.Meter("NEW-X", 1); err == nil {
		t.Error("the forged key is indexed as a meter")
	}
	wantFinding(t, s, b, index.FindingMismatch, "meter/NEW-X", victim, "NEW-X", "not applied")
	// The transaction itself stays readable, as evidence: the index knows
	// where it is, its block holds it.
	ref, err := s.Tx(b.Txs[0].ID)
	if err != nil || ref.Block != b.Number || ref.Index != 0 {
		t.Fatalf("the forged transaction: %+v %v", ref, err)
	}
	if d, err := index.NewEvidence(source{b}, 0).Tx(context.Background(), ref.Block, ref.Index); err != nil || d.Writes[0].Key != "meter/NEW-X" {
		t.Errorf("the forged transaction read from its block: %+v %v", d, err)
	}

	// The finding is durable.
	s.Close()
	s2, err := index.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if all := findings(t, s2); len(all) != 1 || all[0].Key != "meter/NEW-X" {
		t.Fatalf("findings after reopening: %+v", all)
	}
}

// The same forgery of key versions, and a key version that names its key
// but was not written with its meter's record (so the owner's policy on the
// record never vouched for it).
func TestForgedKeyVersions(t *testing.T) {
	victim := synth.MeterID(1)
	attacker := func(version int) []byte {
		return synth.Value(meter.KeyVersion{MeterID: victim, Version: version, PublicKey: "attacker's key", Curve: meter.P256, Fingerprint: "00"})
	}
	for _, tc := range []struct {
		name, key, kind string
		value           []byte
	}{
		{"under another meter's key", "keyver/NEW-X/000001", index.FindingMismatch, attacker(2)},
		{"under another version's key", "keyver/" + victim + "/000003", index.FindingMismatch, attacker(2)},
		{"without the record", "keyver/" + victim + "/000002", index.FindingUnbound, attacker(2)},
		{"under a malformed key", "keyver/" + victim + "/2", index.FindingKey, attacker(2)},
		{"not a key version", "keyver/" + victim + "/000002", index.FindingValue, []byte(`[1,2]`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := open(t)
			c := synth.New(start)
			add(t, s, c.Register("PTBMSP", 1))
			b := c.Forge("CMIMSP", "INMETROMSP", tc.key, tc.value)
			add(t, s, b)
			if v, err := s.Meter(victim, 1); err != nil || len(v.Keys) != 1 || v.Keys[0].Fingerprint == "00" {
				t.Errorf("PTB's meter has key versions %+v (%v), want only its own", v.Keys, err)
			}
			wantFinding(t, s, b, tc.kind, tc.key)
		})
	}
}

// A new key can also carry a consistent record of a meter "owned" by an NMI
// that did not submit it: the chaincode makes the submitter the owner.
func TestForgedOwner(t *testing.T) {
	s, _ := open(t)
	c := synth.New(start)
	add(t, s, c.Register("PTBMSP", 1))
	fake := c.Record(synth.MeterID(1))
	fake.ID = "FAKE-1"
	b := c.Forge("CMIMSP", "INMETROMSP", "meter/FAKE-1", synth.Value(fake))
	add(t, s, b)
	if totals, _ := s.Totals(); totals.ByNMI["PTBMSP"].Registered != 1 || totals.ByNMI["CMIMSP"] != nil {
		t.Errorf("counts after CMI registered a meter in PTB's name: PTB %+v, CMI %+v", totals.ByNMI["PTBMSP"], totals.ByNMI["CMIMSP"])
	}
	if _, err := s.Meter("FAKE-1", 1); err == nil {
		t.Error("the meter registered in another NMI's name is indexed")
	}
	wantFinding(t, s, b, index.FindingOwner, "meter/FAKE-1", `"PTBMSP"`, `"CMIMSP"`)
}

// A valid transaction whose value does not decode used to fail Add, so the
// explorer exited, and again at every restart. It is a finding now, and
// indexing goes on.
func TestUndecodableValue(t *testing.T) {
	s, _ := open(t)
	c := synth.New(start)
	add(t, s, c.Register("PTBMSP", 1))
	bad := c.Forge("CMIMSP", "INMETROMSP", "meter/X", []byte(`{not json`))
	if err := s.Add(bad, index.Integrity{Checked: true, CheckedThrough: 1}, nil, nil); err != nil {
		t.Fatalf("block 1 with an undecodable value: %v", err)
	}
	add(t, s, c.Register("PTBMSP", 1))
	if next, _, _ := s.Checkpoint(); next != 3 {
		t.Fatalf("indexed through %d", next)
	}
	if _, err := s.Meter("X", 1); err == nil {
		t.Error("the undecodable value is indexed as meter X")
	}
	wantFinding(t, s, bad, index.FindingValue, "meter/X", "not a meter record")
	if all := findings(t, s); len(all) != 1 {
		t.Fatalf("findings %+v", all)
	}
}

// A measurement transaction the explorer cannot decode used to be skipped
// without a word.
func TestUndecodableMeasurements(t *testing.T) {
	s, _ := open(t)
	c := synth.New(start)
	add(t, s, c.Register("PTBMSP", 1))
	bad := c.Tx(chain.Tx{Type: "ENDORSER_TRANSACTION", CreatorMSP: "PTBMSP", CreatorRole: "ingest", Chaincode: "pki",
		Function: wire.TxSubmitPacked, Args: []string{"not packed"}, ResponsePayload: []byte(`{"items":1,"accepted":1}`),
		Endorsers: []string{"PTBMSP", "CMIMSP"}})
	add(t, s, bad, c.Measurements("PTBMSP", c.Meters(), 4, 0))
	wantFinding(t, s, bad, index.FindingMeasurements, "", "cannot be decoded")
	if totals, _ := s.Totals(); totals.Accepted != 4 || totals.Transactions != 3 {
		t.Errorf("totals %+v", totals)
	}
	// Not a measurement transaction at all is no finding.
	add(t, s, c.Tx(chain.Tx{Type: "ENDORSER_TRANSACTION", CreatorMSP: "PTBMSP", Chaincode: "pki", Function: "GetMeter", Args: []string{synth.MeterID(1)}}))
	if all := findings(t, s); len(all) != 1 {
		t.Fatalf("findings %+v", all)
	}
}

func TestFindingsListing(t *testing.T) {
	s, _ := open(t)
	c := synth.New(start)
	add(t, s, c.Register("PTBMSP", 1))
	for i := range 3 {
		add(t, s, c.Forge("CMIMSP", "INMETROMSP", "meter/X-"+string(rune('A'+i)), []byte(`null`)))
	}
	all := findings(t, s)
	if len(all) != 3 || all[0].Block != 3 || all[2].Block != 1 {
		t.Fatalf("newest first: %+v", all)
	}
	if page, _ := s.Findings(3, 10); len(page) != 2 || page[0].Block != 2 {
		t.Fatalf("before block 3: %+v", page)
	}
	if page, _ := s.Findings(99, 1); len(page) != 1 || page[0].Block != 3 {
		t.Fatalf("before a block beyond the last, limit 1: %+v", page)
	}
	if none, _ := s.FindingsIn(0); len(none) != 0 {
		t.Fatalf("block 0: %+v", none)
	}
}
