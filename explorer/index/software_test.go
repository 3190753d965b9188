package index_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/explorer/index/synth"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

var newer = meter.Software{ID: "EM-FW 4.3.0", Checksum: "sha256:4d967a30111bf29f"}

// softwareChain is a meter type's life:
//
//	0: PTB records type PTB-T1, software EM-FW 4.2.1 (synth.Software) approved
//	1: PTB registers SYN-0000001..3 of type PTB-T1
//	2: CMI registers SYN-0000004 of no type
//	3: PTB approves EM-FW 4.3.0
//	4: CMI assigns SYN-0000004 type PTB-T1
//	5: INMETRO delivers SYN-0000001's statement: updated to 4.3.0, accepted
//	6: INMETRO delivers SYN-0000002's statement: updated to 9.9.9, refused
//	7: PTB withdraws EM-FW 4.2.1
//	8: PTB revokes SYN-0000003
func softwareChain() (*synth.Chain, []*chain.Block) {
	c := synth.New(start)
	return c, []*chain.Block{
		c.RecordType("PTBMSP", "PTB-T1", synth.Software),
		c.RegisterOfType("PTBMSP", 3, "PTB-T1"),
		c.Register("CMIMSP", 1),
		c.ApproveSoftware("PTB-T1", newer),
		c.AssignType(synth.MeterID(4), "PTB-T1"),
		c.Update("INMETROMSP", synth.MeterID(1), newer, meter.UpdateSuccess),
		c.RefusedUpdate("INMETROMSP", synth.MeterID(2), meter.Software{ID: "EM-FW 9.9.9", Checksum: "sha256:0000000000000000"},
			meter.CodeSoftwareNotApproved, "meter SYN-0000002 may not load EM-FW 9.9.9: software EM-FW 9.9.9 is not a version of type PTB-T1"),
		c.WithdrawSoftware("PTB-T1", synth.Software.ID, "fault found in the energy register"),
		c.Revoke("PTBMSP", synth.MeterID(3), meter.ReasonCessationOfOperation),
	}
}

func ids(ms []index.MeterState) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Meter.ID)
	}
	return out
}

func TestMeterTypesAndSoftware(t *testing.T) {
	s, _ := open(t)
	_, blocks := softwareChain()
	add(t, s, blocks...)
	if all := findings(t, s); len(all) != 0 {
		t.Fatalf("findings of an honest chain: %+v", all)
	}

	v, err := s.Type("PTB-T1")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.History) != 3 || v.History[0].Block != 0 || v.History[1].Block != 3 || v.History[2].Block != 7 || v.Current.Block != 7 ||
		v.Current.TxID != blocks[7].Txs[0].ID {
		t.Fatalf("type history %+v", v.History)
	}
	mt := v.Current.Type
	if mt.NMI != "PTBMSP" || len(mt.Versions) != 2 || mt.Versions[0].Withdrawal == nil || mt.Versions[0].Withdrawal.Reason != "fault found in the energy register" ||
		mt.Versions[1].Withdrawal != nil {
		t.Fatalf("type now %+v", mt)
	}
	// SYN-0000001 runs 4.3.0; SYN-0000002 and 4 run 4.2.1, and so did 3
	// when it was revoked.
	want := []index.SoftwareCount{{Software: synth.Software, Active: 2, Revoked: 1}, {Software: newer, Active: 1}}
	if !slices.Equal(v.Software, want) {
		t.Fatalf("meters by software %+v, want %+v", v.Software, want)
	}

	all, err := s.TypeMeters("PTB-T1", "", 10)
	if err != nil || !slices.Equal(ids(all), []string{synth.MeterID(1), synth.MeterID(2), synth.MeterID(3), synth.MeterID(4)}) {
		t.Fatalf("meters of the type: %v %v", ids(all), err)
	}
	if page, _ := s.TypeMeters("PTB-T1", synth.MeterID(2), 1); !slices.Equal(ids(page), []string{synth.MeterID(3)}) {
		t.Errorf("the page after SYN-0000002: %v", ids(page))
	}
	if old, _ := s.SoftwareMeters("PTB-T1", synth.Software, "", 10); !slices.Equal(ids(old), []string{synth.MeterID(2), synth.MeterID(4)}) {
		t.Errorf("meters in service on 4.2.1: %v", ids(old))
	}
	if none, _ := s.TypeMeters("PTB-T2", "", 10); len(none) != 0 {
		t.Errorf("meters of a type not recorded: %v", ids(none))
	}

	// As of the withdrawal's block and after: two meters in service run
	// withdrawn software; before it, none.
	withdrawnAt := blocks[7].Time
	sw, err := s.Software(withdrawnAt)
	if on := sw.Withdrawn; err != nil || sw.Typed != 3 || sw.Types != 1 || sw.OnWithdrawn != 2 || len(on) != 1 || on[0].TypeID != "PTB-T1" ||
		on[0].Version.ID != synth.Software.ID || on[0].Meters != 2 {
		t.Fatalf("software status: %+v, %v", sw, err)
	}
	if sw, _ := s.Software(withdrawnAt.Add(-time.Second)); len(sw.Withdrawn) != 0 || sw.OnWithdrawn != 0 {
		t.Errorf("withdrawn before the withdrawal: %+v", sw)
	}

	types, err := s.Types()
	if err != nil || len(types) != 1 || types[0].Type.ID != "PTB-T1" || types[0].Active != 3 || types[0].Revoked != 1 {
		t.Fatalf("types %+v %v", types, err)
	}
	var asOf []index.TypeState
	if err := s.TypesAt(2, func(st index.TypeState) error { asOf = append(asOf, st); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(asOf) != 1 || len(asOf[0].Type.Versions) != 1 || asOf[0].Block != 0 {
		t.Errorf("types as of block 2: %+v", asOf)
	}
	if err := s.TypesAt(0, func(index.TypeState) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Type("PTB-T2"); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("a type not recorded: %v", err)
	}

	m1, err := s.Meter(synth.MeterID(1), 1)
	if err != nil {
		t.Fatal(err)
	}
	if m1.Current.Meter.CurrentSoftware() != newer || m1.Current.Meter.TypeID != "PTB-T1" || m1.Current.Block != 5 {
		t.Errorf("SYN-0000001 now: %+v", m1.Current)
	}
	ups, total, err := s.Updates(synth.MeterID(1), 10)
	if err != nil || total != 1 || len(ups) != 1 {
		t.Fatalf("SYN-0000001's statements: %+v %d %v", ups, total, err)
	}
	if u := ups[0]; u.Outcome != meter.UpdateAccepted || u.From != synth.Software || u.To != newer || u.Result != meter.UpdateSuccess ||
		u.Number != 1 || u.KeyVersion != 1 || u.Submitter != "INMETROMSP" || u.TxID != blocks[5].Txs[0].ID || u.Block != 5 ||
		u.Time != blocks[5].Time.Format(time.RFC3339) {
		t.Errorf("SYN-0000001's statement %+v", u)
	}
	ups, total, _ = s.Updates(synth.MeterID(2), 10)
	if total != 1 || ups[0].Outcome != meter.UpdateRefused || ups[0].Code != string(meter.CodeSoftwareNotApproved) ||
		ups[0].To.ID != "EM-FW 9.9.9" || ups[0].Submitter != "INMETROMSP" || ups[0].TxID != blocks[6].Txs[0].ID {
		t.Errorf("SYN-0000002's statements: %+v", ups)
	}
	refusals, err := s.Refusals(index.RefusalFilter{MeterID: synth.MeterID(2)})
	if err != nil || len(refusals) != 1 || refusals[0].Kind != index.RefusedUpdate || refusals[0].NMI != "PTBMSP" ||
		refusals[0].Submitter != "INMETROMSP" || refusals[0].Code != string(meter.CodeSoftwareNotApproved) || refusals[0].TxID != blocks[6].Txs[0].ID {
		t.Errorf("refusals of SYN-0000002: %+v %v", refusals, err)
	}
	totals, _ := s.Totals()
	if totals.UpdatesAccepted != 1 || totals.UpdatesRefused != 1 || totals.Refused != 0 {
		t.Errorf("totals %+v: a refused statement is no refused measurement", totals)
	}
	if hit, err := s.Search("PTB-T1"); err != nil || hit.Kind != "type" {
		t.Errorf("search for the type: %+v %v", hit, err)
	}
}

// Only the newest statements are read, and all are counted.
func TestUpdatesNewest(t *testing.T) {
	s, _ := open(t)
	c := synth.New(start)
	add(t, s, c.RecordType("PTBMSP", "PTB-T1", synth.Software), c.RegisterOfType("PTBMSP", 1, "PTB-T1"))
	id := synth.MeterID(1)
	for range 5 {
		add(t, s, c.RefusedUpdate("CMIMSP", id, newer, meter.CodeSoftwareNotApproved, "not approved"))
	}
	ups, total, err := s.Updates(id, 2)
	if err != nil || total != 5 || len(ups) != 2 || ups[0].Block != 5 || ups[1].Block != 6 {
		t.Fatalf("%+v %d %v, want blocks 5 and 6 of 5 statements", ups, total, err)
	}
}

// Readings that name their software show it, read from their transaction.
func TestReadingSoftware(t *testing.T) {
	s, _ := open(t)
	c := synth.New(start)
	blocks := []*chain.Block{c.RecordType("PTBMSP", "PTB-T1", synth.Software), c.RegisterOfType("PTBMSP", 1, "PTB-T1")}
	c.NameSoftware(true)
	blocks = append(blocks, c.Measurements("PTBMSP", c.Meters(), 2, 0))
	add(t, s, blocks...)
	v, err := s.Meter(synth.MeterID(1), 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := index.NewEvidence(source(blocks), 0).Readings(t.Context(), synth.MeterID(1), v.Recent); err != nil {
		t.Fatal(err)
	}
	if len(v.Recent) != 2 || v.Recent[0].SoftwareID != synth.Software.ID {
		t.Fatalf("readings %+v", v.Recent)
	}
}

// The type record two colluding NMIs write under a new key: in another
// NMI's namespace, in another NMI's name, or changing an existing type's
// NMI. None is applied; each is a finding.
func TestForgedMeterTypes(t *testing.T) {
	record := func(id, nmi string) []byte {
		return synth.Value(meter.MeterType{ID: id, NMI: nmi, Manufacturer: "Forged", Model: "F", Certificate: "none",
			Versions: []meter.ApprovedSoftware{{Software: synth.Software, ApprovedFrom: start.Format(time.RFC3339)}}})
	}
	for _, tc := range []struct {
		name, key string
		value     []byte
		kind      string
		says      []string
	}{
		{"in another NMI's namespace", "type/PTB-T9", record("PTB-T9", "CMIMSP"), index.FindingOwner, []string{"namespace", `"CMI-"`}},
		{"in another NMI's name", "type/PTB-T9", record("PTB-T9", "PTBMSP"), index.FindingOwner, []string{`"PTBMSP"`, `"CMIMSP" submitted`}},
		{"changing the type's NMI", "type/PTB-T1", record("PTB-T1", "CMIMSP"), index.FindingOwner, []string{`from "PTBMSP" to "CMIMSP"`}},
		{"under another type's key", "type/CMI-T1", record("PTB-T1", "CMIMSP"), index.FindingMismatch, []string{`"PTB-T1"`}},
		{"not a type record", "type/CMI-T1", []byte(`"x"`), index.FindingValue, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := open(t)
			c := synth.New(start)
			add(t, s, c.RecordType("PTBMSP", "PTB-T1", synth.Software), c.RegisterOfType("PTBMSP", 1, "PTB-T1"))
			b := c.Forge("CMIMSP", "INMETROMSP", tc.key, tc.value)
			add(t, s, b)
			wantFinding(t, s, b, tc.kind, tc.key, tc.says...)
			if v, err := s.Type("PTB-T1"); err != nil || len(v.History) != 1 || v.Current.Type.NMI != "PTBMSP" {
				t.Errorf("PTB's type after the forged write: %+v %v", v, err)
			}
			types, _ := s.Types()
			if len(types) != 1 {
				t.Errorf("types %+v", types)
			}
		})
	}
}

// updateBlock is a chain of a type and two meters, and the block of
// SYN-0000001's accepted update to newer.
func updateBlock() (*synth.Chain, []*chain.Block, *chain.Block) {
	c := synth.New(start)
	setup := []*chain.Block{c.RecordType("PTBMSP", "PTB-T1", synth.Software, newer), c.RegisterOfType("PTBMSP", 2, "PTB-T1")}
	return c, setup, c.Update("CMIMSP", synth.MeterID(1), newer, meter.UpdateSuccess)
}

// report decodes the software log entry a transaction writes.
func report(t *testing.T, tx *chain.Tx) (*chain.Write, meter.UpdateReport) {
	t.Helper()
	for i, w := range tx.Writes {
		if kind, _ := wire.KeyKind(w.Key); kind == wire.KindSoftwareLog {
			var r meter.UpdateReport
			if err := json.Unmarshal(w.Value, &r); err != nil {
				t.Fatal(err)
			}
			return &tx.Writes[i], r
		}
	}
	t.Fatal("no software log entry written")
	return nil, meter.UpdateReport{}
}

// Software log entries the chaincode never writes: without the meter's
// record counting them (a new key, which two NMIs can write), signed by
// another key than the meter's, naming another meter; statements marked
// accepted without one.
// None is indexed as the meter's statement; each is a finding.
func TestForgedSoftwareLogs(t *testing.T) {
	logKey := wire.SoftwareLogKey(synth.MeterID(1), 1)
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, c *synth.Chain, tx *chain.Tx)
		key    string
		kind   string
		says   []string
	}{
		{"an entry without its meter's record", func(t *testing.T, _ *synth.Chain, tx *chain.Tx) {
			tx.Writes = slices.DeleteFunc(tx.Writes, func(w chain.Write) bool { return w.Key == wire.MeterKey(synth.MeterID(1)) })
		}, logKey, index.FindingUnbound, []string{"without the meter's record"}},
		{"a statement another key signed", func(t *testing.T, c *synth.Chain, tx *chain.Tx) {
			w, r := report(t, tx)
			statement, _ := base64.StdEncoding.DecodeString(r.Statement)
			sig, err := c.Key(synth.MeterID(2)).Sign(statement)
			if err != nil {
				t.Fatal(err)
			}
			r.Signature = base64.StdEncoding.EncodeToString(sig)
			w.Value = synth.Value(r)
		}, logKey, index.FindingSignature, []string{"not a statement of the meter", "key version 1"}},
		{"another meter's statement", func(t *testing.T, c *synth.Chain, tx *chain.Tx) {
			w, r := report(t, tx)
			r.MeterID = synth.MeterID(2)
			w.Value = synth.Value(r)
		}, logKey, index.FindingMismatch, []string{synth.MeterID(2)}},
		{"marked accepted without an entry", func(t *testing.T, _ *synth.Chain, tx *chain.Tx) {
			tx.Writes = slices.DeleteFunc(tx.Writes, func(w chain.Write) bool { return w.Key == logKey })
		}, wire.SoftwareLogPrefix(synth.MeterID(1)), index.FindingStatement, []string{"marked accepted", "no entry"}},
		{"an update that does not decode", func(t *testing.T, _ *synth.Chain, tx *chain.Tx) {
			tx.Writes = nil
			tx.ResponsePayload = []byte(`{"meterId":"SYN-0000009","outcome":"refused"}`)
		}, "", index.FindingStatement, []string{"cannot be decoded", "SYN-0000009"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := open(t)
			c, setup, b := updateBlock()
			tc.change(t, c, &b.Txs[0])
			add(t, s, setup...)
			add(t, s, b)
			wantFinding(t, s, b, tc.kind, tc.key, tc.says...)
			if ups, total, _ := s.Updates(synth.MeterID(1), 10); total != 0 {
				t.Errorf("statements indexed: %+v", ups)
			}
			if totals, _ := s.Totals(); totals.UpdatesAccepted != 0 {
				t.Errorf("totals %+v", totals)
			}
		})
	}
}
