package server

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
)

// signedFixture is one of the chaincode's openssl-signed measurements.
func signedFixture(t *testing.T, name, id string) meter.SignedMeasurement {
	return meter.SignedMeasurement{MeterID: id, Payload: readTestdata(t, "measurements/"+name+".good.json"),
		Signature: readTestdata(t, "measurements/"+name+".sig")}
}

func TestSubmitMeasurement(t *testing.T) {
	cases := []struct {
		name, fixture, path string
		body                func(meter.SignedMeasurement) any
	}{
		{"meter named in the body", "p256", "/api/v1/meters/PTB-0001/measurements",
			func(sm meter.SignedMeasurement) any { return sm }},
		{"meter only in the path", "p384", "/api/v1/meters/PTB-0002/measurements",
			func(sm meter.SignedMeasurement) any {
				return map[string][]byte{"payload": sm.Payload, "signature": sm.Signature}
			}},
		{"secp256k1", "secp256k1", "/api/v1/meters/PTB-0003/measurements",
			func(sm meter.SignedMeasurement) any { return sm }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			sm := signedFixture(t, c.fixture, "")
			m, err := meter.ParseMeasurement(sm.Payload)
			if err != nil {
				t.Fatal(err)
			}
			sm.MeterID = m.MeterID
			got := decode[api.MeasurementReceipt](t, f.do(post(c.path, ingest, c.body(sm))), http.StatusCreated)
			if got.MeterID != m.MeterID || got.Seq != m.Seq || got.KeyVersion != 1 || got.TxID != "tx001" || got.Block != 101 {
				t.Errorf("receipt = %+v", got)
			}
			calls := f.ledger.recorded()
			// The exact signed bytes reach the chaincode, re-encoded only as base64.
			want := []string{m.MeterID, base64.StdEncoding.EncodeToString(sm.Payload), base64.StdEncoding.EncodeToString(sm.Signature)}
			if len(calls) != 1 || calls[0].Role != api.RoleIngest || calls[0].Tx != "SubmitMeasurement" || !slices.Equal(calls[0].Args, want) {
				t.Errorf("calls = %+v, want SubmitMeasurement%q as ingest", calls, want)
			}
		})
	}
}

func TestSubmitBatch(t *testing.T) {
	f := newFixture(t)
	items := []meter.SignedMeasurement{
		signedFixture(t, "p256", "PTB-0001"),
		signedFixture(t, "p384", "PTB-0002"),
		// Judged by the chaincode, not refused here: it is kept as a rejection.
		{MeterID: "PTB-0002", Payload: []byte("not a measurement"), Signature: []byte{0x30}},
	}
	got := decode[api.BatchReceipt](t, f.do(post("/api/v1/measurements/batch", ingest, api.MeasurementBatch{Measurements: items})), http.StatusOK)
	if got.Accepted != 2 || got.Rejected != 1 || len(got.Items) != 3 || got.TxID != "tx001" || got.Block != 101 {
		t.Errorf("receipt = %+v", got)
	}
	if it := got.Items[2]; it.Outcome != meter.OutcomeRejected || it.Code != meter.CodeMalformed || it.Index != 2 {
		t.Errorf("item 2 = %+v, want rejected as MALFORMED", it)
	}
	calls := f.ledger.recorded()
	if len(calls) != 1 || calls[0].Role != api.RoleIngest || calls[0].Tx != "SubmitMeasurements" || len(calls[0].Args) != 1 {
		t.Fatalf("calls = %+v, want one SubmitMeasurements as ingest", calls)
	}
	var sent []meter.SignedMeasurement
	if err := json.Unmarshal([]byte(calls[0].Args[0]), &sent); err != nil {
		t.Fatal(err)
	}
	if len(sent) != len(items) {
		t.Fatalf("the chaincode got %d items, want %d", len(sent), len(items))
	}
	for i := range items {
		if sent[i].MeterID != items[i].MeterID || string(sent[i].Payload) != string(items[i].Payload) || string(sent[i].Signature) != string(items[i].Signature) {
			t.Errorf("item %d reached the chaincode changed: %+v", i, sent[i])
		}
	}
}

func TestVerifyMeasurement(t *testing.T) {
	f := newFixture(t)
	sm := signedFixture(t, "p256", "PTB-0001")
	got := decode[meter.Verification](t, f.do(post("/api/v1/measurements/verify", auditor, sm)), http.StatusOK)
	if !got.Valid || got.MeterID != "PTB-0001" || got.Seq != 1 || got.KeyVersion != 1 {
		t.Errorf("verification = %+v", got)
	}
	want := []string{"PTB-0001", base64.StdEncoding.EncodeToString(sm.Payload), base64.StdEncoding.EncodeToString(sm.Signature)}
	calls := f.ledger.recorded()
	if len(calls) != 1 || calls[0].Method != "Evaluate" || calls[0].Role != api.RoleAuditor || calls[0].Tx != "VerifyMeasurement" || !slices.Equal(calls[0].Args, want) {
		t.Errorf("calls = %+v, want VerifyMeasurement%q evaluated as auditor", calls, want)
	}

	// A measurement the ledger would refuse is a verdict, not an error.
	f.ledger.on("VerifyMeasurement", returns(meter.Verification{MeterID: "PTB-0001", Seq: 1, KeyVersion: 1,
		Code: meter.CodeBadSignature, Reason: "signature does not verify"}))
	got = decode[meter.Verification](t, f.do(post("/api/v1/measurements/verify", ingest, sm)), http.StatusOK)
	if got.Valid || got.Code != meter.CodeBadSignature {
		t.Errorf("verification = %+v, want invalid with BAD_SIGNATURE", got)
	}
}
