package contract_test

import (
	"encoding/json"
	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

func TestAttestMeter(t *testing.T) {
	w := newWorld(t)
	registered := w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	a, stub := ok(w, w.ingest, func(ctx contractapi.TransactionContextInterface) (*wire.Attestation, error) {
		return w.cc.AttestMeter(ctx, "PTB-0001")
	})
	if a.Type != wire.AttestationType || a.Meter == nil || a.Meter.Fingerprint != registered.Fingerprint || a.TxID != stub.GetTxID() {
		t.Fatalf("attestation %+v", a)
	}
	// It reads the record (its version is in the signed read set) and
	// writes only its mark, which makes a second one in the same block
	// conflict.
	if _, read := stub.Reads["meter/PTB-0001"]; !read {
		t.Error("the attestation did not read the meter's record")
	}
	if len(stub.Writes) != 1 {
		t.Fatalf("the attestation wrote %d keys, want its mark only", len(stub.Writes))
	}
	var mark struct{ TxID string }
	if err := json.Unmarshal(w.state("att/PTB-0001"), &mark); err != nil || mark.TxID != stub.GetTxID() {
		t.Fatalf("mark %s: %v", w.state("att/PTB-0001"), err)
	}
	if _, read := stub.Reads["att/PTB-0001"]; !read {
		t.Error("the attestation did not read its mark before writing it")
	}
	refused(w, w.auditor, meter.CodeForbidden, func(ctx contractapi.TransactionContextInterface) (*wire.Attestation, error) {
		return w.cc.AttestMeter(ctx, "PTB-0001")
	})
	refused(w, w.ingest, meter.CodeMeterNotFound, func(ctx contractapi.TransactionContextInterface) (*wire.Attestation, error) {
		return w.cc.AttestMeter(ctx, "PTB-0404")
	})
	refused(w, w.ingest, meter.CodeMalformed, func(ctx contractapi.TransactionContextInterface) (*wire.Attestation, error) {
		return w.cc.AttestMeter(ctx, "PTB 0001")
	})
}
