package contract_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/contract"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/stubtest"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// TestChaincode drives every transaction through contractapi as the peer
// does: string arguments in, the serialised result (validated against the
// contract's metadata) or the error message out.
func TestChaincode(t *testing.T) {
	cc, err := contractapi.NewChaincode(contract.New(contract.WithClock(nil)))
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	call := func(who *stubtest.Identity, fn string, args ...string) []byte {
		t.Helper()
		resp, _ := w.invoke(cc, who, fn, args...)
		if resp.Status != 200 {
			t.Fatalf("%s: status %d: %s", fn, resp.Status, resp.Message)
		}
		return resp.Payload
	}
	decode := func(b []byte, v any) {
		t.Helper()
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}

	// Metadata: the read-only transactions are marked for evaluation.
	var md struct {
		Contracts map[string]struct {
			Transactions []struct {
				Name string   `json:"name"`
				Tag  []string `json:"tag"`
			} `json:"transactions"`
		} `json:"contracts"`
	}
	decode(call(w.auditor, "org.hyperledger.fabric:GetMetadata"), &md)
	tags := map[string]string{}
	for _, tx := range md.Contracts["pki"].Transactions {
		tags[tx.Name] = strings.Join(tx.Tag, ",")
	}
	for _, name := range contract.New().GetEvaluateTransactions() {
		if !strings.Contains(tags[name], "EVALUATE") {
			t.Errorf("%s is tagged %q", name, tags[name])
		}
	}
	for _, name := range []string{"RegisterMeter", "RegisterMeters", "PreEnrollMeter", "RotateKey", "RevokeMeter", "ReinstateMeter", "SubmitMeasurement", "SubmitMeasurements"} {
		if !strings.Contains(tags[name], "SUBMIT") {
			t.Errorf("%s is tagged %q", name, tags[name])
		}
	}

	var m meter.Meter
	decode(call(w.ptb, "RegisterMeter", mustJSON(t, registration("PTB-0001", pubPEM(t, "p256")))), &m)
	if m.ID != "PTB-0001" || m.NMI != "PTBMSP" || m.Metadata.Model != "EM-3000" {
		t.Fatalf("registered %+v", m)
	}
	var enr wire.Enrolment
	decode(call(w.ptb, "RegisterMeters", mustJSON(t, []meter.Registration{
		registration("PTB-0002", pubPEM(t, "p384")), registration("PTB-0003", pubPEM(t, "secp256k1"))})), &enr)
	if strings.Join(enr.MeterIDs, ",") != "PTB-0002,PTB-0003" {
		t.Fatalf("enrolled %+v", enr)
	}
	var pre meter.PreEnrolment
	decode(call(w.cmi, "PreEnrollMeter", "CMI-0001", meter.IdentityHash("urn:CMI-0001")), &pre)
	decode(call(w.auditor, "GetPreEnrolment", "CMI-0001"), &pre)
	if pre.NMI != "CMIMSP" {
		t.Fatalf("pre-enrolment %+v", pre)
	}

	decode(call(w.auditor, "GetMeter", "PTB-0001"), &m)
	var page wire.MeterPage
	decode(call(w.auditor, "ListMeters", "PTBMSP", "active", "2", ""), &page)
	if len(page.Meters) != 2 || page.Bookmark == "" {
		t.Fatalf("page %s", mustJSON(t, page))
	}

	sm := fixture(t, "PTB-0001", "p256.good.json", "p256.sig")
	var ver meter.Verification
	decode(call(w.auditor, "VerifyMeasurement", sm.MeterID, b64(sm.Payload), b64(sm.Signature)), &ver)
	if !ver.Valid {
		t.Fatalf("verification %+v", ver)
	}
	var item meter.ItemResult
	decode(call(w.ingest, "SubmitMeasurement", sm.MeterID, b64(sm.Payload), b64(sm.Signature)), &item)
	if item.Outcome != meter.OutcomeAccepted {
		t.Fatalf("item %+v", item)
	}
	var res wire.Outcome
	decode(call(w.ingest, "SubmitMeasurements", mustJSON(t, []meter.SignedMeasurement{
		fixture(t, "PTB-0002", "p384.good.json", "p384.sig"), sm})), &res)
	if res.Accepted != 1 || res.Duplicates != 1 || len(res.Exceptions) != 1 || res.Exceptions[0].Index != 1 ||
		res.Exceptions[0].Outcome != meter.OutcomeDuplicate {
		t.Fatalf("batch %s", mustJSON(t, res))
	}
	items := []meter.SignedMeasurement{fixture(t, "PTB-0002", "p384.good.json", "p384.sig"), sm, sm}
	packed, err := wire.Pack(items)
	if err != nil {
		t.Fatal(err)
	}
	var again wire.Outcome
	decode(call(w.ingest, "SubmitMeasurementsPacked", string(packed)), &again)
	if again.Accepted != 0 || again.Duplicates != 3 || again.Items != 3 {
		t.Fatalf("packed batch through Invoke %s", mustJSON(t, again))
	}

	next, err := generateKey(meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := privateKey(t, "p256").Sign(meter.RotationStatement("PTB-0001", 2, next.Public()))
	if err != nil {
		t.Fatal(err)
	}
	decode(call(w.ptb, "RotateKey", "PTB-0001", next.Public().PEM(), b64(proof)), &m)
	decode(call(w.ptb, "RevokeMeter", "PTB-0001", "certificateHold", ""), &m)
	if m.Status != meter.StatusRevoked || m.Revocation == nil {
		t.Fatalf("revoked %+v", m)
	}
	decode(call(w.ptb, "ReinstateMeter", "PTB-0001"), &m)
	if m.Status != meter.StatusActive || m.KeyVersion != 2 {
		t.Fatalf("reinstated %+v", m)
	}
	var keys []meter.KeyVersion
	decode(call(w.auditor, "GetMeterKeys", "PTB-0001"), &keys)
	var hist []wire.MeterVersion
	decode(call(w.auditor, "GetMeterHistory", "PTB-0001"), &hist)
	if len(keys) != 2 || len(hist) != 4 {
		t.Fatalf("%d keys, %d versions", len(keys), len(hist))
	}

	// A refusal crosses the boundary as "CODE: message" and commits nothing.
	before := w.ledger.Snapshot()
	resp, _ := w.invoke(cc, w.ptb, "RegisterMeter", mustJSON(t, registration("PTB-0001", pubPEM(t, "other"))))
	if e, ok := meter.ParseError("chaincode response 500, " + resp.Message); resp.Status != 500 || !ok || e.Code != meter.CodeMeterExists {
		t.Fatalf("duplicate registration: %d %q", resp.Status, resp.Message)
	}
	resp, _ = w.invoke(cc, w.auditor, "RevokeMeter", "PTB-0002", "keyCompromise", "")
	if e, ok := meter.ParseError(resp.Message); resp.Status != 500 || !ok || e.Code != meter.CodeForbidden {
		t.Fatalf("auditor revocation: %d %q", resp.Status, resp.Message)
	}
	resp, _ = w.invoke(cc, w.ptb, "RevokeMeter", "PTB-0002")
	if resp.Status != 500 {
		t.Fatalf("missing arguments: %d %q", resp.Status, resp.Message)
	}
	resp, _ = w.invoke(cc, w.ptb, "ListMeters", "", "", "many", "")
	if resp.Status != 500 {
		t.Fatalf("page size not a number: %d %q", resp.Status, resp.Message)
	}
	if d := before.Diff(w.ledger.Snapshot()); d != "" {
		t.Fatalf("refused transactions changed the state: %s", d)
	}
}

// Every time on the ledger is the proposal's timestamp, which the client
// sets: an endorsing peer refuses one more than state.MaxClockSkew from its
// own clock, so a client cannot back- or post-date registrations,
// revocations or the plausibility window of readings.
func TestProposalTimestampBounded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offset time.Duration
		ok     bool
	}{
		{"on time", 0, true},
		{"4 minutes ahead", 4 * time.Minute, true},
		{"a day ahead", 24 * time.Hour, false},
		{"a week back", -7 * 24 * time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			// The endorsing peer's clock reads txTime; the client stamps
			// its proposal txTime+offset.
			w.cc = contract.New(contract.WithClock(func() time.Time { return txTime }))
			w.now = txTime.Add(tc.offset)
			req := mustJSON(t, registration("PTB-0001", pubPEM(t, "p256")))
			reg := func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
				return w.cc.RegisterMeter(ctx, req)
			}
			if tc.ok {
				ok(w, w.ptb, reg)
				return
			}
			err := refused(w, w.ptb, meter.CodeClockSkew, reg)
			if !strings.Contains(err.Error(), "the submitting client's clock is wrong") {
				t.Errorf("refusal does not say what is wrong: %v", err)
			}
		})
	}
}
