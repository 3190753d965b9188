package contract_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/stubtest"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

var (
	swV1 = meter.Software{ID: "EM3-FW 2.1", Checksum: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
	swV2 = meter.Software{ID: "EM3-FW 2.2", Checksum: "sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"}
	swV3 = meter.Software{ID: "EM3-FW 3.0", Checksum: "sha256:fd61a03af4f77d870fc21e05e7e80678095c92d808cfb3b5c279ee04c74aca13"}
)

// certified is when the type examination certificate was issued.
var certified = txTime.Add(-30 * 24 * time.Hour)

// typeRecord is PTB's record of type PTB-EM3000 with v1 and v2 approved
// from the certificate's date.
func typeRecord() meter.TypeRecord {
	from := certified.Format(time.RFC3339)
	return meter.TypeRecord{TypeID: "PTB-EM3000", Manufacturer: "Acme Metering", Model: "EM-3000",
		Certificate: "DE-26-MI003-PTB012", Versions: []meter.VersionApproval{{Software: swV1, ApprovedFrom: from}, {Software: swV2, ApprovedFrom: from}}}
}

func (w *world) recordType(who *stubtest.Identity, req meter.TypeRecord) (*meter.MeterType, *stubtest.Stub) {
	w.t.Helper()
	body := mustJSON(w.t, req)
	return ok(w, who, func(ctx contractapi.TransactionContextInterface) (*meter.MeterType, error) {
		return w.cc.RecordMeterType(ctx, body)
	})
}

// registerTyped enrols a meter of a type, running sw.
func (w *world) registerTyped(id, typeID string, sw meter.Software) (*meter.Meter, *meter.PrivateKey) {
	w.t.Helper()
	key, err := generateKey(meter.P256)
	if err != nil {
		w.t.Fatal(err)
	}
	reg := registrationFor("PTBMSP", id, key.Public().PEM())
	reg.TypeID, reg.SoftwareID, reg.SoftwareChecksum = typeID, sw.ID, sw.Checksum
	if err := reg.Prove(key, "PTBMSP"); err != nil {
		w.t.Fatal(err)
	}
	body := mustJSON(w.t, reg)
	m, _ := ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.RegisterMeter(ctx, body)
	})
	return m, key
}

// statement signs an update statement of meter id with key.
func statement(t testing.TB, key *meter.PrivateKey, id string, at time.Time, from, to meter.Software, result string) meter.SignedUpdate {
	t.Helper()
	su, err := meter.SignUpdate(key, meter.UpdateStatement{MeterID: id, Time: at.UTC().Format(time.RFC3339), From: from, To: to, Result: result})
	if err != nil {
		t.Fatal(err)
	}
	return su
}

func (w *world) update(who *stubtest.Identity, su meter.SignedUpdate) (*meter.UpdateOutcome, *stubtest.Stub) {
	w.t.Helper()
	return ok(w, who, func(ctx contractapi.TransactionContextInterface) (*meter.UpdateOutcome, error) {
		return w.cc.SubmitSoftwareUpdate(ctx, su.MeterID, b64(su.Statement), b64(su.Signature))
	})
}

// updateRefused delivers su, requires it refused with code want, recorded
// as evidence (an event), and nothing written.
func (w *world) updateRefused(su meter.SignedUpdate, want meter.Code) *meter.UpdateOutcome {
	w.t.Helper()
	before := w.ledger.Snapshot()
	out, stub := w.update(w.ingest, su)
	if out.Outcome != meter.UpdateRefused || out.Code != want {
		w.t.Fatalf("outcome %s %s (%s), want refused %s", out.Outcome, out.Code, out.Reason, want)
	}
	if len(stub.Writes) > 0 || len(stub.Params) > 0 {
		w.t.Fatalf("a refused statement wrote %d keys and %d policies", len(stub.Writes), len(stub.Params))
	}
	if d := before.Diff(w.ledger.Snapshot()); d != "" {
		w.t.Fatalf("a refused statement changed the state: %s", d)
	}
	ev := event[meter.UpdateOutcome](w.t, stub, wire.EventSoftwareUpdate)
	if ev.Code != want || ev.Report != nil {
		w.t.Fatalf("event %+v, want the refusal %s without a report", ev, want)
	}
	return out
}

// signedReading signs a reading that names its software.
func signedReading(t testing.TB, key *meter.PrivateKey, id string, seq uint64, at time.Time, softwareID string) meter.SignedMeasurement {
	t.Helper()
	sm, err := meter.Sign(key, meter.Measurement{MeterID: id, Seq: seq, Time: at.UTC().Format(time.RFC3339Nano),
		Value: fmt.Sprintf("%d.5", seq), Unit: "kWh", SoftwareID: softwareID})
	if err != nil {
		t.Fatal(err)
	}
	return sm
}

func TestRecordMeterType(t *testing.T) {
	w := newWorld(t)
	mt, stub := w.recordType(w.ptb, typeRecord())
	if mt.NMI != "PTBMSP" || len(mt.Versions) != 2 || mt.Versions[0].ApprovedFrom != certified.Format(time.RFC3339Nano) {
		t.Fatalf("recorded %+v", mt)
	}
	if stub.Params[wire.TypeKey(mt.ID)] == nil {
		t.Fatal("the type record carries no key-level policy: any two NMIs could change it")
	}
	ev := event[wire.TypeEvent](t, stub, wire.EventMeterTypeRecorded)
	if ev.TypeID != mt.ID || ev.NMI != "PTBMSP" {
		t.Fatalf("event %+v", ev)
	}
	again := readOnly(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.MeterType, error) {
		return w.cc.RecordMeterType(ctx, mustJSON(t, typeRecord()))
	})
	if again.RecordedTx != mt.RecordedTx {
		t.Fatalf("a repeated request answered %+v", again)
	}

	changed := typeRecord()
	changed.Model = "EM-3001"
	record := func(req meter.TypeRecord) func(contractapi.TransactionContextInterface) (*meter.MeterType, error) {
		body := mustJSON(t, req)
		return func(ctx contractapi.TransactionContextInterface) (*meter.MeterType, error) {
			return w.cc.RecordMeterType(ctx, body)
		}
	}
	cmiType := typeRecord()
	cmiType.TypeID = "CMI-EM3000"
	noVersions := typeRecord()
	noVersions.Versions = nil
	twice := typeRecord()
	twice.Versions = append(twice.Versions, meter.VersionApproval{Software: swV1})
	badChecksum := typeRecord()
	badChecksum.Versions[1].Checksum = "9f86d081"
	tooMany := typeRecord()
	for i := range meter.MaxTypeVersions {
		tooMany.Versions = append(tooMany.Versions, meter.VersionApproval{Software: meter.Software{ID: fmt.Sprintf("v%d", i), Checksum: swV3.Checksum}})
	}
	badFrom := typeRecord()
	badFrom.Versions[0].ApprovedFrom = "tomorrow"
	badText := typeRecord()
	badText.Certificate = "DE-26\u202e-PTB"
	for _, c := range []struct {
		name string
		who  *stubtest.Identity
		req  meter.TypeRecord
		want meter.Code
	}{
		{"the same ID with other content", w.ptb, changed, meter.CodeTypeExists},
		{"by PTB in CMI's namespace", w.ptb, cmiType, meter.CodeNotOwner},
		{"by CMI in PTB's namespace", w.cmi, typeRecord(), meter.CodeNotOwner},
		{"by an ingest client", w.ingest, cmiType, meter.CodeForbidden},
		{"by an auditor", w.auditor, cmiType, meter.CodeForbidden},
		{"without versions", w.ptb, noVersions, meter.CodeMalformed},
		{"a version twice", w.ptb, twice, meter.CodeVersionExists},
		{"a checksum without its algorithm", w.ptb, badChecksum, meter.CodeMalformed},
		{"too many versions", w.ptb, tooMany, meter.CodeTooLarge},
		{"an approval date that is no time", w.ptb, badFrom, meter.CodeMalformed},
		{"a bidirectional override in the certificate", w.ptb, badText, meter.CodeMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := refused(w.in(t), c.who, c.want, record(c.req)); err != nil {
				t.Log(err)
			}
		})
	}
}

func TestApproveAndWithdrawSoftware(t *testing.T) {
	w := newWorld(t)
	w.recordType(w.ptb, typeRecord())
	approve := func(typeID string, sw meter.Software, from string) func(contractapi.TransactionContextInterface) (*meter.MeterType, error) {
		return func(ctx contractapi.TransactionContextInterface) (*meter.MeterType, error) {
			return w.cc.ApproveSoftware(ctx, typeID, sw.ID, sw.Checksum, from)
		}
	}
	withdraw := func(typeID, softwareID, reason, from string) func(contractapi.TransactionContextInterface) (*meter.MeterType, error) {
		return func(ctx contractapi.TransactionContextInterface) (*meter.MeterType, error) {
			return w.cc.WithdrawSoftware(ctx, typeID, softwareID, reason, from)
		}
	}
	future := txTime.Add(48 * time.Hour).Format(time.RFC3339)
	mt, stub := ok(w, w.ptb, approve("PTB-EM3000", swV3, future))
	if v := mt.Version(swV3.ID); v == nil || v.ApprovedFrom != txTime.Add(48*time.Hour).Format(time.RFC3339Nano) || v.ApprovedTx != stub.GetTxID() {
		t.Fatalf("approved %+v", mt.Versions)
	}
	readOnly(w, w.ptb, approve("PTB-EM3000", swV3, "")) // a repetition

	changed := swV3
	changed.Checksum = swV1.Checksum
	for _, c := range []struct {
		name string
		who  *stubtest.Identity
		fn   func(contractapi.TransactionContextInterface) (*meter.MeterType, error)
		want meter.Code
	}{
		{"CMI approves a version of PTB's type", w.cmi, approve("PTB-EM3000", meter.Software{ID: "EVIL 1.0", Checksum: swV3.Checksum}, ""), meter.CodeNotOwner},
		{"CMI withdraws a version of PTB's type", w.cmi, withdraw("PTB-EM3000", swV1.ID, "faulty", ""), meter.CodeNotOwner},
		{"an ingest client approves", w.ingest, approve("PTB-EM3000", meter.Software{ID: "x", Checksum: swV3.Checksum}, ""), meter.CodeForbidden},
		{"an unknown type", w.ptb, approve("PTB-NONE", swV3, ""), meter.CodeTypeNotFound},
		{"the same identification with another checksum", w.ptb, approve("PTB-EM3000", changed, ""), meter.CodeVersionExists},
		{"a checksum that is no checksum", w.ptb, approve("PTB-EM3000", meter.Software{ID: "x", Checksum: "abc"}, ""), meter.CodeMalformed},
		{"a withdrawal without reason", w.ptb, withdraw("PTB-EM3000", swV1.ID, "", ""), meter.CodeMalformed},
		{"a withdrawal of an unlisted version", w.ptb, withdraw("PTB-EM3000", "EM3-FW 9.9", "faulty", ""), meter.CodeVersionNotFound},
		{"a withdrawal from before the approval", w.ptb, withdraw("PTB-EM3000", swV3.ID, "faulty", txTime.Format(time.RFC3339)), meter.CodeMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := refused(w.in(t), c.who, c.want, c.fn); err != nil {
				t.Log(err)
			}
		})
	}

	from := txTime.Add(-time.Hour).Format(time.RFC3339)
	mt, stub = ok(w, w.ptb, withdraw("PTB-EM3000", swV2.ID, "energy register drifts under harmonic load", from))
	v := mt.Version(swV2.ID)
	if v.Withdrawal == nil || v.Withdrawal.From != txTime.Add(-time.Hour).Format(time.RFC3339Nano) || v.Withdrawal.TxID != stub.GetTxID() {
		t.Fatalf("withdrawn %+v", v)
	}
	if v.ApprovedAtTime(txTime) || !mt.Version(swV1.ID).ApprovedAtTime(txTime) {
		t.Fatal("the withdrawn version still counts as approved, or the other lost its approval")
	}
	event[wire.TypeEvent](t, stub, wire.EventSoftwareWithdrawn)
	if err := refused(w, w.ptb, meter.CodeVersionWithdrawn, withdraw("PTB-EM3000", swV2.ID, "again", "")); err != nil {
		t.Log(err)
	}

	history := readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) ([]*wire.TypeVersion, error) {
		return w.cc.GetMeterTypeHistory(ctx, "PTB-EM3000")
	})
	if len(history) != 3 || len(history[0].Type.Versions) != 2 || len(history[1].Type.Versions) != 3 || history[2].Type.Version(swV2.ID).Withdrawal == nil {
		t.Fatalf("history of %d versions, want the recording, the approval and the withdrawal", len(history))
	}
	page := readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) (*wire.TypePage, error) {
		return w.cc.ListMeterTypes(ctx, "PTBMSP", 0, "")
	})
	if len(page.Types) != 1 || page.Types[0].ID != "PTB-EM3000" {
		t.Fatalf("PTB's types: %+v", page.Types)
	}
	if page := readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) (*wire.TypePage, error) {
		return w.cc.ListMeterTypes(ctx, "CMIMSP", 0, "")
	}); len(page.Types) != 0 {
		t.Fatalf("CMI lists PTB's types: %+v", page.Types)
	}
}

func TestRegisterMeterOfType(t *testing.T) {
	w := newWorld(t)
	w.recordType(w.ptb, typeRecord())
	m, _ := w.registerTyped("PTB-T-0001", "PTB-EM3000", swV1)
	if m.TypeID != "PTB-EM3000" || m.CurrentSoftware() != swV1 {
		t.Fatalf("registered %+v", m)
	}
	if w.state(wire.TypeIndexKey("PTB-EM3000", m.ID)) == nil {
		t.Fatal("the meter is not indexed under its type")
	}
	meters := readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) (*wire.MeterPage, error) {
		return w.cc.ListTypeMeters(ctx, "PTB-EM3000", 0, "")
	})
	if len(meters.Meters) != 1 || meters.Meters[0].ID != m.ID {
		t.Fatalf("the type's meters: %+v", meters.Meters)
	}

	// Approved only from tomorrow, and withdrawn: neither may be registered.
	ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.MeterType, error) {
		return w.cc.ApproveSoftware(ctx, "PTB-EM3000", swV3.ID, swV3.Checksum, txTime.Add(24*time.Hour).Format(time.RFC3339))
	})
	ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.MeterType, error) {
		return w.cc.WithdrawSoftware(ctx, "PTB-EM3000", swV2.ID, "faulty", "")
	})
	for _, c := range []struct {
		name   string
		typeID string
		sw     meter.Software
		want   meter.Code
	}{
		{"software not listed for the type", "PTB-EM3000", meter.Software{ID: "EM3-FW 9.9", Checksum: swV1.Checksum}, meter.CodeSoftwareNotApproved},
		{"a listed identification with another checksum", "PTB-EM3000", meter.Software{ID: swV1.ID, Checksum: swV2.Checksum}, meter.CodeSoftwareNotApproved},
		{"a version approved only from tomorrow", "PTB-EM3000", swV3, meter.CodeSoftwareNotApproved},
		{"a withdrawn version", "PTB-EM3000", swV2, meter.CodeSoftwareNotApproved},
		{"an unknown type", "PTB-NONE", swV1, meter.CodeTypeNotFound},
		{"a type ID that is no ID", "PTB/EM", swV1, meter.CodeMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			key, err := generateKey(meter.P256)
			if err != nil {
				t.Fatal(err)
			}
			reg := registrationFor("PTBMSP", "PTB-T-0002", key.Public().PEM())
			reg.TypeID, reg.SoftwareID, reg.SoftwareChecksum = c.typeID, c.sw.ID, c.sw.Checksum
			if err := reg.Prove(key, "PTBMSP"); err != nil {
				t.Fatal(err)
			}
			body := mustJSON(t, reg)
			err = refused(w.in(t), w.ptb, c.want, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
				return w.cc.RegisterMeter(ctx, body)
			})
			t.Log(err)
		})
	}
}

func TestAssignMeterType(t *testing.T) {
	w := newWorld(t)
	w.recordType(w.ptb, typeRecord())
	legacy := w.register(w.ptb, "PTB-0001", pubPEM(t, "p256")) // runs swV1, type unknown
	if legacy.TypeID != "" {
		t.Fatalf("a meter registered without type has type %q", legacy.TypeID)
	}
	other := typeRecord()
	other.TypeID, other.Versions = "PTB-OTHER", []meter.VersionApproval{{Software: swV3}}
	w.recordType(w.ptb, other)
	assign := func(meterID, typeID string) func(contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
			return w.cc.AssignMeterType(ctx, meterID, typeID)
		}
	}
	for _, c := range []struct {
		name   string
		who    *stubtest.Identity
		typeID string
		want   meter.Code
	}{
		{"by another NMI", w.cmi, "PTB-EM3000", meter.CodeNotOwner},
		{"by an ingest client", w.ingest, "PTB-EM3000", meter.CodeForbidden},
		{"a type its software is not approved for", w.ptb, "PTB-OTHER", meter.CodeSoftwareNotApproved},
		{"an unknown type", w.ptb, "PTB-NONE", meter.CodeTypeNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Log(refused(w.in(t), c.who, c.want, assign(legacy.ID, c.typeID)))
		})
	}
	m, stub := ok(w, w.ptb, assign(legacy.ID, "PTB-EM3000"))
	if m.TypeID != "PTB-EM3000" || stub.Params[wire.MeterKey(m.ID)] == nil {
		t.Fatalf("assigned %+v", m)
	}
	if ev := event[wire.TypeEvent](t, stub, wire.EventMeterTypeAssigned); ev.MeterID != m.ID {
		t.Fatalf("event %+v", ev)
	}
	readOnly(w, w.ptb, assign(legacy.ID, "PTB-EM3000"))
	t.Log(refused(w, w.ptb, meter.CodeMalformed, assign(legacy.ID, "PTB-OTHER")))
}

func TestSoftwareUpdate(t *testing.T) {
	w := newWorld(t)
	w.recordType(w.ptb, typeRecord())
	m, key := w.registerTyped("PTB-T-0001", "PTB-EM3000", swV1)
	at := txTime.Add(-2 * time.Minute)

	t.Run("refusals write nothing and are evidence", func(t *testing.T) {
		w := w.in(t)
		other, err := generateKey(meter.P256)
		if err != nil {
			t.Fatal(err)
		}
		w.updateRefused(statement(t, other, m.ID, at, swV1, swV2, meter.UpdateSuccess), meter.CodeBadSignature)
		w.updateRefused(statement(t, key, m.ID, at, swV2, swV1, meter.UpdateSuccess), meter.CodeSoftwareMismatch)
		w.updateRefused(statement(t, key, m.ID, at, swV1, meter.Software{ID: "EVIL 6.6", Checksum: swV3.Checksum}, meter.UpdateSuccess), meter.CodeSoftwareNotApproved)
		w.updateRefused(statement(t, key, m.ID, at, swV1, meter.Software{ID: swV2.ID, Checksum: swV3.Checksum}, meter.UpdateSuccess), meter.CodeSoftwareNotApproved)
		w.updateRefused(statement(t, key, m.ID, txTime.Add(time.Hour), swV1, swV2, meter.UpdateSuccess), meter.CodeImplausibleTime)
		signedForOther := statement(t, key, "PTB-T-0002", at, swV1, swV2, meter.UpdateSuccess)
		signedForOther.MeterID = m.ID
		w.updateRefused(signedForOther, meter.CodeMeterMismatch)
		unknown := statement(t, key, "PTB-T-0404", at, swV1, swV2, meter.UpdateSuccess)
		w.updateRefused(unknown, meter.CodeMeterNotFound)
		junk := meter.SignedUpdate{MeterID: m.ID, Statement: []byte(`{"type":"softwareUpdate","meterId":"PTB-T-0001","extra":1}`)}
		junk.Signature, _ = key.Sign(junk.Statement)
		w.updateRefused(junk, meter.CodeMalformed)
		err = refused(w, w.auditor, meter.CodeForbidden, func(ctx contractapi.TransactionContextInterface) (*meter.UpdateOutcome, error) {
			su := statement(t, key, m.ID, at, swV1, swV2, meter.UpdateSuccess)
			return w.cc.SubmitSoftwareUpdate(ctx, su.MeterID, b64(su.Statement), b64(su.Signature))
		})
		t.Log(err)
	})

	failed := statement(t, key, m.ID, at, swV1, swV2, meter.UpdateFailure)
	out, _ := w.update(w.ingest, failed)
	if out.Outcome != meter.UpdateAccepted || out.Report.Number != 1 || out.Report.Result != meter.UpdateFailure {
		t.Fatalf("a failed update reported: %+v", out)
	}
	after := w.get(m.ID)
	if after.CurrentSoftware() != swV1 || len(after.Software) != 0 {
		t.Fatalf("a failed update changed the software: %+v", after.Software)
	}

	su := statement(t, key, m.ID, at.Add(time.Minute), swV1, swV2, meter.UpdateSuccess)
	cmiIngest := stubtest.Client(t, "CMIMSP", wire.RoleIngest)
	out, stub := w.update(cmiIngest, su)
	if out.Outcome != meter.UpdateAccepted || out.Report.Number != 2 || out.Report.SubmittedBy != "CMIMSP" || out.Report.KeyVersion != 1 {
		t.Fatalf("update answered %+v", out)
	}
	if stub.Params[wire.MeterKey(m.ID)] == nil || stub.Params[wire.SoftwareLogKey(m.ID, 2)] == nil {
		t.Fatal("the meter record or its log entry carries no key-level policy of its owner")
	}
	after = w.get(m.ID)
	if after.CurrentSoftware() != swV2 || len(after.Software) != 2 || after.Software[0].Software != swV1 || after.Updates.Count != 2 {
		t.Fatalf("after the update: software %+v, updates %+v", after.Software, after.Updates)
	}
	if ev := event[meter.UpdateOutcome](t, stub, wire.EventSoftwareUpdate); ev.Outcome != meter.UpdateAccepted || ev.Report != nil {
		t.Fatalf("event %+v", ev)
	}

	// The same bytes again, even after a later statement: a duplicate.
	before := w.ledger.Snapshot()
	if out, stub := w.update(w.ingest, su); out.Outcome != meter.UpdateDuplicate || out.Report.Number != 2 || len(stub.Writes) > 0 {
		t.Fatalf("a re-delivery answered %+v and wrote %d keys", out, len(stub.Writes))
	}
	if out, _ := w.update(w.ingest, failed); out.Outcome != meter.UpdateDuplicate || out.Report.Number != 1 {
		t.Fatalf("a re-delivery of the first statement answered %+v", out)
	}
	if d := before.Diff(w.ledger.Snapshot()); d != "" {
		t.Fatalf("re-deliveries changed the state: %s", d)
	}
	// An older statement never recorded is a replay.
	w.updateRefused(statement(t, key, m.ID, at.Add(30*time.Second), swV2, swV1, meter.UpdateSuccess), meter.CodeReplay)

	log := readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) ([]*meter.UpdateReport, error) {
		return w.cc.GetSoftwareLog(ctx, m.ID)
	})
	if len(log) != 2 || log[0].Result != meter.UpdateFailure || log[1].To != swV2 {
		t.Fatalf("software log %+v", log)
	}
	// The log's evidence verifies offline with the meter's key.
	stmt, sig := decodeB64(t, log[1].Statement), decodeB64(t, log[1].Signature)
	if err := key.Public().Verify(stmt, sig); err != nil {
		t.Fatalf("the recorded statement does not verify: %v", err)
	}

	// A meter of unknown type cannot be checked: refused.
	legacy := w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	w.updateRefused(statement(t, privateKey(t, "p256"), legacy.ID, at, swV1, swV2, meter.UpdateSuccess), meter.CodeSoftwareNotApproved)

	// A revoked meter's statements are refused.
	ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.RevokeMeter(ctx, m.ID, string(meter.ReasonKeyCompromise), "")
	})
	w.updateRefused(statement(t, key, m.ID, at.Add(2*time.Minute), swV2, swV1, meter.UpdateSuccess), meter.CodeMeterRevoked)
}

func TestReadingsNameTheirSoftware(t *testing.T) {
	w := newWorld(t)
	w.recordType(w.ptb, typeRecord())
	m, key := w.registerTyped("PTB-T-0001", "PTB-EM3000", swV1)
	legacy := w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	legacyKey := privateKey(t, "p256")
	before := txTime.Add(-4 * time.Minute)
	updated := txTime.Add(-3 * time.Minute)
	later := txTime.Add(-time.Minute)

	accept := func(sm meter.SignedMeasurement) {
		t.Helper()
		res, _ := ok(w, w.ingest, w.submit(sm))
		if res.Outcome != meter.OutcomeAccepted {
			t.Fatalf("reading %d: %+v", sm.Payload, res)
		}
	}
	refuse := func(sm meter.SignedMeasurement, want meter.Code) {
		t.Helper()
		err := refused(w, w.ingest, want, w.submit(sm))
		t.Log(err)
	}
	accept(signedReading(t, key, m.ID, 1, before, swV1.ID))
	refuse(signedReading(t, key, m.ID, 2, before, swV2.ID), meter.CodeSoftwareMismatch)
	accept(signedReading(t, key, m.ID, 2, before, "")) // without the field: judged as before
	// A meter of unknown type: only what it runs is checked.
	accept(signedReading(t, legacyKey, legacy.ID, 1, before, swV1.ID))
	refuse(signedReading(t, legacyKey, legacy.ID, 2, before, swV2.ID), meter.CodeSoftwareMismatch)

	w.update(w.ingest, statement(t, key, m.ID, updated, swV1, swV2, meter.UpdateSuccess))
	refuse(signedReading(t, key, m.ID, 3, later, swV1.ID), meter.CodeSoftwareMismatch)
	accept(signedReading(t, key, m.ID, 3, later, swV2.ID))
	// A reading the meter signed before its update, delivered late, names
	// the software it ran then: accepted.
	accept(signedReading(t, key, m.ID, 4, before.Add(time.Second), swV1.ID))

	// v2 withdrawn from a minute before "later": readings after it that
	// name v2 are refused, those before it are not.
	withdrawnFrom := later.Add(-30 * time.Second)
	w.now = w.now.Add(time.Minute)
	ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.MeterType, error) {
		return w.cc.WithdrawSoftware(ctx, "PTB-EM3000", swV2.ID, "energy register drifts", withdrawnFrom.Format(time.RFC3339))
	})
	refuse(signedReading(t, key, m.ID, 5, later, swV2.ID), meter.CodeSoftwareNotApproved)
	accept(signedReading(t, key, m.ID, 5, updated.Add(time.Second), swV2.ID))
	// A reading without the field is judged as before.
	accept(signedReading(t, key, m.ID, 6, later, ""))

	// In a batch, each item is judged on its own.
	items := []meter.SignedMeasurement{
		signedReading(t, key, m.ID, 7, later, swV2.ID),
		signedReading(t, key, m.ID, 8, later, swV1.ID),
		signedReading(t, key, m.ID, 9, later, ""),
	}
	out, _ := ok(w, w.ingest, func(ctx contractapi.TransactionContextInterface) (*wire.Outcome, error) {
		return w.cc.SubmitMeasurements(ctx, mustJSON(t, items))
	})
	if out.Accepted != 1 || out.Rejected != 2 || out.Exceptions[0].Code != meter.CodeSoftwareNotApproved || out.Exceptions[1].Code != meter.CodeSoftwareMismatch {
		t.Fatalf("batch outcome %+v", out)
	}

	// VerifyMeasurement answers as a delivery would.
	sm := signedReading(t, key, m.ID, 10, later, swV2.ID)
	v := readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) (*meter.Verification, error) {
		return w.cc.VerifyMeasurement(ctx, sm.MeterID, b64(sm.Payload), b64(sm.Signature))
	})
	if v.Valid || v.Code != meter.CodeSoftwareNotApproved || !strings.Contains(v.Reason, "withdrawn") {
		t.Fatalf("verification %+v", v)
	}
}

func (w *world) get(id string) *meter.Meter {
	w.t.Helper()
	return readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.GetMeter(ctx, id)
	})
}

func decodeB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
