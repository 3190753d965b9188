package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/ledger"
)

// keyed is a registration of PTB-0001 with an Idempotency-Key: always the
// same bytes, as a client's retry sends them (a proof made anew would be
// another request).
func keyed(t *testing.T, as, key string) request {
	return post("/api/v1/meters", as, ptb0001(t)).with(HeaderIdempotencyKey, key)
}

var ptb0001Once sync.Once
var ptb0001Body string

// ptb0001 is one registration of PTB-0001 with the test data's P-256 key.
func ptb0001(t *testing.T) string {
	ptb0001Once.Do(func() {
		ptb0001Body = jsonText(registration("PTB-0001", string(readTestdata(t, "keys/p256.good.pem"))))
	})
	return ptb0001Body
}

func assertReplay(t *testing.T, first, again *httptest.ResponseRecorder) {
	t.Helper()
	if first.Header().Get("Idempotent-Replayed") != "" {
		t.Error("the first answer is marked as replayed")
	}
	if again.Header().Get("Idempotent-Replayed") != "true" {
		t.Error("the replayed answer lacks Idempotent-Replayed: true")
	}
	if again.Code != first.Code || again.Body.String() != first.Body.String() ||
		again.Header().Get("Content-Type") != first.Header().Get("Content-Type") ||
		again.Header().Get("Location") != first.Header().Get("Location") {
		t.Errorf("replay %d %q %q %s\ndiffers from the first answer %d %q %q %s",
			again.Code, again.Header().Get("Content-Type"), again.Header().Get("Location"), again.Body,
			first.Code, first.Header().Get("Content-Type"), first.Header().Get("Location"), first.Body)
	}
}

// submits counts the registrations sent to the ledger.
func (f *fixture) submits() int {
	n := 0
	for _, c := range f.ledger.named("RegisterMeter") {
		if c.Method == "SubmitAll" {
			n++
		}
	}
	return n
}

func TestIdempotentReplay(t *testing.T) {
	f := newFixture(t)
	first := f.do(keyed(t, operator, "k1"))
	decode[api.MeterReceipt](t, first, http.StatusCreated)
	again := f.do(keyed(t, operator, "k1"))
	assertReplay(t, first, again)
	if n := f.submits(); n != 1 {
		t.Errorf("the ledger got %d registrations, want 1", n)
	}
}

func TestIdempotencyWithoutKey(t *testing.T) {
	f := newFixture(t)
	req := post("/api/v1/meters", operator, ptb0001(t))
	f.do(req)
	if rec := f.do(req); rec.Header().Get("Idempotent-Replayed") != "" {
		t.Error("an answer without Idempotency-Key was replayed")
	}
	if n := f.submits(); n != 2 {
		t.Errorf("the ledger got %d registrations, want 2", n)
	}
}

func TestIdempotencyKeyReused(t *testing.T) {
	f := newFixture(t)
	f.do(keyed(t, operator, "k1"))
	other := post("/api/v1/meters", operator, registration("PTB-0002", newKeyPEM(t))).with(HeaderIdempotencyKey, "k1")
	problemOf(t, f.do(other), http.StatusUnprocessableEntity, api.CodeIdempotencyConflict)
	// The same body to another path is another request too.
	elsewhere := keyed(t, operator, "k1")
	elsewhere.path = "/api/v1/meters/batch"
	problemOf(t, f.do(elsewhere), http.StatusUnprocessableEntity, api.CodeIdempotencyConflict)
	if n := len(f.ledger.recorded()); n != 1 {
		t.Errorf("the ledger got %d calls, want 1", n)
	}
}

func TestIdempotencySurvivesRestart(t *testing.T) {
	f := newFixture(t)
	first := f.do(keyed(t, operator, "k1"))
	f.restart()
	assertReplay(t, first, f.do(keyed(t, operator, "k1")))
	if n := f.submits(); n != 1 {
		t.Errorf("the ledger got %d registrations, want 1", n)
	}
}

// TestIdempotencyKeepsNoServerErrors lets a request that failed with 5xx be
// retried for real with the same key.
func TestIdempotencyKeepsNoServerErrors(t *testing.T) {
	f := newFixture(t)
	f.ledger.on("RegisterMeter", fails(fmt.Errorf("%w: no peers available", ledger.ErrUnavailable)))
	problemOf(t, f.do(keyed(t, operator, "k1")), http.StatusServiceUnavailable, api.CodeUnavailable)
	f.ledger.on("RegisterMeter", returns(meterRecord("PTB-0001", "")))
	retry := f.do(keyed(t, operator, "k1"))
	decode[api.MeterReceipt](t, retry, http.StatusCreated)
	if retry.Header().Get("Idempotent-Replayed") != "" {
		t.Error("the retry was answered from the store")
	}
	assertReplay(t, retry, f.do(keyed(t, operator, "k1")))
	if n := f.submits(); n != 2 {
		t.Errorf("the ledger got %d registrations, want 2 (the failure and the retry)", n)
	}
}

// TestIdempotencyKeepsRefusals replays a refusal: the request was answered.
func TestIdempotencyKeepsRefusals(t *testing.T) {
	f := newFixture(t)
	f.ledger.on("RegisterMeter", fails(meter.Errorf(meter.CodeMeterExists, "meter PTB-0001 is already registered")))
	first := f.do(keyed(t, operator, "k1"))
	problemOf(t, first, http.StatusConflict, string(meter.CodeMeterExists))
	again := f.do(keyed(t, operator, "k1"))
	assertReplay(t, first, again)
	problemOf(t, again, http.StatusConflict, string(meter.CodeMeterExists))
	if n := f.submits(); n != 1 {
		t.Errorf("the ledger got %d registrations, want 1", n)
	}
}

func TestIdempotencyPerCredential(t *testing.T) {
	f := newFixture(t)
	a := f.do(keyed(t, operator, "shared"))
	b := f.do(keyed(t, operator2, "shared"))
	if a.Code != http.StatusCreated || b.Code != http.StatusCreated || b.Header().Get("Idempotent-Replayed") != "" {
		t.Errorf("answers %d and %d (replayed %q), want two fresh 201", a.Code, b.Code, b.Header().Get("Idempotent-Replayed"))
	}
	if n := f.submits(); n != 2 {
		t.Errorf("the ledger got %d registrations, want one per credential", n)
	}
}

// TestIdempotencyInFlight refuses a duplicate that arrives while the first
// request is still with the ledger.
func TestIdempotencyInFlight(t *testing.T) {
	f := newFixture(t)
	gate := make(chan struct{})
	f.ledger.gate, f.ledger.entered = gate, make(chan struct{})
	first := make(chan *httptest.ResponseRecorder)
	go func() { first <- f.do(keyed(t, operator, "k1")) }()
	<-f.ledger.entered
	problemOf(t, f.do(keyed(t, operator, "k1")), http.StatusConflict, api.CodeIdempotencyConflict)
	close(gate)
	rec := <-first
	decode[api.MeterReceipt](t, rec, http.StatusCreated)
	assertReplay(t, rec, f.do(keyed(t, operator, "k1")))
	if n := f.submits(); n != 1 {
		t.Errorf("the ledger got %d registrations, want 1", n)
	}
}

// TestIdempotencyAfterPanic releases the key of a request whose handler
// panicked, so the retry is not refused as in flight for ever.
func TestIdempotencyAfterPanic(t *testing.T) {
	f := newFixture(t)
	f.ledger.on("RegisterMeter", func(context.Context, []string) (any, error) { panic("boom") })
	problemOf(t, f.do(keyed(t, operator, "k1")), http.StatusInternalServerError, string(meter.CodeInternal))
	f.ledger.on("RegisterMeter", returns(meterRecord("PTB-0001", "")))
	decode[api.MeterReceipt](t, f.do(keyed(t, operator, "k1")), http.StatusCreated)
	if n := f.submits(); n != 2 {
		t.Errorf("the ledger got %d registrations, want 2", n)
	}
}

// TestIdempotentMeasurement covers an ingest write and a stored 201 without
// Location.
func TestIdempotentMeasurement(t *testing.T) {
	f := newFixture(t)
	req := post("/api/v1/meters/PTB-0001/measurements", ingest, signedFixture(t, "p256", "PTB-0001")).with(HeaderIdempotencyKey, "m-1")
	first := f.do(req)
	decode[api.MeasurementReceipt](t, first, http.StatusCreated)
	assertReplay(t, first, f.do(req))
	if n := len(f.ledger.named(wire.TxSubmitPacked)); n != 1 {
		t.Errorf("the ledger got %d measurements, want 1", n)
	}
}

// A write whose transaction was sent but whose outcome was not learnt in
// time answers OUTCOME_UNKNOWN with the transaction's ID; a retry with the
// same key, even after a restart, asks about that transaction and sends no
// other, and answers as the first attempt would have.
func TestIdempotentOutcomeUnknown(t *testing.T) {
	f := newFixture(t)
	f.ledger.lose = 1
	first := f.do(keyed(t, operator, "k1"))
	p := problemOf(t, first, http.StatusGatewayTimeout, api.CodeOutcomeUnknown)
	if p.TxID == "" || first.Header().Get("Retry-After") == "" {
		t.Fatalf("OUTCOME_UNKNOWN without txId or Retry-After: %+v %v", p, first.Header())
	}
	f.restart()
	again := f.do(keyed(t, operator, "k1"))
	r := decode[api.MeterReceipt](t, again, http.StatusCreated)
	if r.TxID != p.TxID {
		t.Errorf("the retry answered transaction %s, the first attempt sent %s", r.TxID, p.TxID)
	}
	if n := f.submits(); n != 1 {
		t.Errorf("the ledger got %d registrations, want 1", n)
	}
	var settled []call
	for _, c := range f.ledger.recorded() {
		if c.Method == "Settle" {
			settled = append(settled, c)
		}
	}
	if len(settled) != 1 || settled[0].Args[0] != p.TxID {
		t.Errorf("settled %+v, want transaction %s once", settled, p.TxID)
	}
	assertReplay(t, again, f.do(keyed(t, operator, "k1")))
}

func TestTransactionStatus(t *testing.T) {
	f := newFixture(t)
	txID := "8f0e3c1a9b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f"
	st := decode[api.TransactionStatus](t, f.do(get("/api/v1/transactions/"+txID+"?wait=2s", auditor)), http.StatusOK)
	if st != (api.TransactionStatus{TxID: txID, Status: api.TxValid, ValidationCode: "VALID", Block: 7}) {
		t.Errorf("status %+v", st)
	}
	problemOf(t, f.do(get("/api/v1/transactions/not-a-tx", auditor)), http.StatusBadRequest, string(meter.CodeMalformed))
	problemOf(t, f.do(get("/api/v1/transactions/"+txID+"?wait=1h", auditor)), http.StatusBadRequest, string(meter.CodeMalformed))
}

// A re-delivered measurement is answered 200 as a duplicate, naming the
// transaction that accepted it and its block: from the chaincode's answer,
// or, when exactly this evidence is in the index of the blocks, without a
// transaction at all.
func TestDuplicateMeasurement(t *testing.T) {
	f := newFixture(t)
	sm := signedFixture(t, "p256", "PTB-0001")
	f.ledger.on(wire.TxSubmitPacked, returns(wire.Outcome{TxID: "tx-x", Items: 1, Duplicates: 1,
		Exceptions: []meter.ItemResult{{Index: 0, MeterID: "PTB-0001", Seq: 1, Outcome: meter.OutcomeDuplicate, TxID: "tx-first"}}}))
	r := decode[api.MeasurementReceipt](t, f.do(post("/api/v1/meters/PTB-0001/measurements", ingest, sm)), http.StatusOK)
	if !r.Duplicate || r.TxID != "tx-first" || r.Block != 7 {
		t.Errorf("receipt %+v", r)
	}

	g := newFixture(t)
	g.index(t, acceptedBlock(t, 0, "tx-accepting", sm))
	r = decode[api.MeasurementReceipt](t, g.do(post("/api/v1/meters/PTB-0001/measurements", ingest, sm)), http.StatusOK)
	if !r.Duplicate || r.TxID != "tx-accepting" || r.Block != 0 {
		t.Errorf("receipt from the index %+v", r)
	}
	batch := decode[api.BatchReceipt](t, g.do(post("/api/v1/measurements/batch", ingest, api.MeasurementBatch{Measurements: []meter.SignedMeasurement{sm}})), http.StatusOK)
	if batch.TxID != "" || batch.Duplicates != 1 || batch.Items[0].TxID != "tx-accepting" {
		t.Errorf("batch receipt from the index %+v", batch)
	}
	if calls := g.ledger.recorded(); len(calls) != 0 {
		t.Errorf("re-deliveries the index knew reached the ledger: %+v", calls)
	}
}
