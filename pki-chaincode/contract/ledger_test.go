package contract_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// failOn makes the ledger call op fail for keys with the given prefix.
func failOn(op, prefix string) func(string, string) error {
	return func(o, key string) error {
		if o == op && strings.HasPrefix(key, prefix) {
			return errors.New("leveldb: closed")
		}
		return nil
	}
}

// A ledger failure is INTERNAL and fails the whole transaction: it is never
// mistaken for a refusal of the input, nor recorded as one.
func TestLedgerFailure(t *testing.T) {
	w := newWorld(t)
	p256, p384 := privateKey(t, "p256"), privateKey(t, "p384")
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	w.register(w.ptb, "PTB-0002", pubPEM(t, "p384"))
	ok(w, w.ingest, w.submit(reading(t, p384, "PTB-0002", 1, readingTime)))

	w.fault = failOn("PutState", "fp/")
	err := refused(w, w.ptb, meter.CodeInternal, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.RegisterMeter(ctx, mustJSON(t, registration("PTB-0003", pubPEM(t, "secp256k1"))))
	})
	if !strings.Contains(err.Error(), "leveldb: closed") {
		t.Errorf("the cause is lost: %v", err)
	}

	w.fault = failOn("GetState", "last/PTB-0002")
	batch := mustJSON(t, []meter.SignedMeasurement{
		reading(t, p256, "PTB-0001", 1, readingTime),
		reading(t, p384, "PTB-0002", 2, readingTime),
	})
	refused(w, w.ingest, meter.CodeInternal, func(ctx contractapi.TransactionContextInterface) (*wire.Outcome, error) {
		return w.cc.SubmitMeasurements(ctx, batch)
	})
	sm := reading(t, p384, "PTB-0002", 2, readingTime)
	refused(w, w.auditor, meter.CodeInternal, func(ctx contractapi.TransactionContextInterface) (*meter.Verification, error) {
		return w.cc.VerifyMeasurement(ctx, sm.MeterID, b64(sm.Payload), b64(sm.Signature))
	})

	w.fault = failOn("GetHistoryForKey", "meter/")
	refused(w, w.auditor, meter.CodeInternal, func(ctx contractapi.TransactionContextInterface) ([]*wire.MeterVersion, error) {
		return w.cc.GetMeterHistory(ctx, "PTB-0001")
	})
	w.fault = failOn("GetStateByRange", "keyver/")
	refused(w, w.auditor, meter.CodeInternal, func(ctx contractapi.TransactionContextInterface) ([]*meter.KeyVersion, error) {
		return w.cc.GetMeterKeys(ctx, "PTB-0001")
	})

	// Once the ledger works again, so does the batch.
	w.fault = nil
	res, _ := ok(w, w.ingest, func(ctx contractapi.TransactionContextInterface) (*wire.Outcome, error) {
		return w.cc.SubmitMeasurements(ctx, batch)
	})
	if res.Accepted != 2 {
		t.Fatalf("batch %s", mustJSON(t, res))
	}
}

// A record that does not decode is a ledger fault too.
func TestCorruptRecord(t *testing.T) {
	w := newWorld(t)
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	w.ledger.State["meter/PTB-0001"] = []byte("{")
	refused(w, w.auditor, meter.CodeInternal, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.GetMeter(ctx, "PTB-0001")
	})
	refused(w, w.ptb, meter.CodeInternal, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.RevokeMeter(ctx, "PTB-0001", "keyCompromise", "")
	})
}
