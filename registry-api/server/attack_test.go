package server

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
)

// Attacks by one client with a valid ingest token on the deliveries of
// others (docs/security.md). Each test performs the attack and shows it
// failing.

// A single delivery whose signature is longer than any ECDSA signature
// (1,100 bytes) is refused at once, by the chaincode's own rule of an
// item's form, and never joins a group with other clients' deliveries.
func TestAttackOversizedSignatureRefusedBeforeGrouping(t *testing.T) {
	f := newFixture(t)
	sm := signedFixture(t, "p256", "PTB-0001")
	sm.Signature = bytes.Repeat([]byte{0x30}, 1100)
	problemOf(t, f.do(post("/api/v1/meters/PTB-0001/measurements", ingest, sm)), http.StatusUnprocessableEntity, string(meter.CodeBadSignature))
	if calls := f.ledger.named(wire.TxSubmitPacked); len(calls) != 0 {
		t.Fatalf("the delivery reached the ledger: %d transactions", len(calls))
	}
}

// When a group's transaction fails as a whole (here the chaincode refuses
// any batch that holds one client's poisoned item), every member is sent
// again on its own before anyone hears a refusal: the honest members are
// accepted, only the poisoned one is refused, and the answer kept under an
// honest member's Idempotency-Key is its own acceptance.
func TestAttackGroupFailureRetriesEachMemberAlone(t *testing.T) {
	f := newFixture(t)
	f.opts.GroupSlots = 1
	f.build()
	gathered := make(chan int, 10)
	f.srv.batcher.gathered = func(n int) { gathered <- n }
	honest := signedFixture(t, "p256", "PTB-0001")
	honest2 := signedFixture(t, "p384", "PTB-0002")
	poison := signedFixture(t, "secp256k1", "PTB-0003")
	poison.Signature = readTestdata(t, "measurements/p256-otherkey.sig")
	f.ledger.on(wire.TxSubmitPacked, func(_ context.Context, args []string) (any, error) {
		items, err := wire.Unpack([]byte(args[0]))
		if err != nil {
			return nil, err
		}
		for _, sm := range items {
			if bytes.Equal(sm.Signature, poison.Signature) {
				return nil, meter.Errorf(meter.CodeMalformed, "the batch is poisoned")
			}
		}
		return wire.Outcome{TxID: "tx-ok", Items: len(items), Accepted: len(items), KeyVersions: map[string]int{"PTB-0001": 1, "PTB-0002": 1}}, nil
	})
	// A first delivery holds the only slot, so that the next three gather.
	gate := make(chan struct{})
	f.ledger.gate, f.ledger.entered = gate, make(chan struct{}, 1)
	var wg sync.WaitGroup
	var first *httptest.ResponseRecorder
	wg.Go(func() {
		first = f.do(post("/api/v1/meters/PTB-0001/measurements", ingest, signedFixture(t, "p256", "PTB-0001")))
	})
	<-f.ledger.entered
	reqs := []request{
		post("/api/v1/meters/PTB-0001/measurements", ingest, honest).with(HeaderIdempotencyKey, "honest-1"),
		post("/api/v1/meters/PTB-0003/measurements", ingest, poison),
		post("/api/v1/meters/PTB-0002/measurements", ingest, honest2),
	}
	recs := make([]*httptest.ResponseRecorder, len(reqs))
	for i, r := range reqs {
		wg.Go(func() { recs[i] = f.do(r) })
	}
	for n := 0; n < len(reqs); n = <-gathered {
	}
	close(gate)
	wg.Wait()
	decode[api.MeasurementReceipt](t, first, http.StatusCreated)
	decode[api.MeasurementReceipt](t, recs[0], http.StatusCreated)
	decode[api.MeasurementReceipt](t, recs[2], http.StatusCreated)
	problemOf(t, recs[1], http.StatusBadRequest, string(meter.CodeMalformed))
	// The group of three, then each member alone.
	if n := len(f.ledger.named(wire.TxSubmitPacked)); n != 1+1+3 {
		t.Errorf("%d transactions, want the first, the group and its three members alone", n)
	}
	replay := f.do(reqs[0])
	if replay.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatal("the honest delivery's answer was not kept")
	}
	decode[api.MeasurementReceipt](t, replay, http.StatusCreated)
}

// Two colluding NMIs commit a reading marked accepted whose signature the
// meter's key did not make: the registry neither answers with it nor
// counts it as what the ledger holds, and lists it as a finding.
func TestAttackForgedAcceptedReadingIsAFinding(t *testing.T) {
	f := newFixture(t)
	forged := signedFixture(t, "p256", "PTB-0001")
	f.index(t, acceptedBlock(t, 0, "tx-genuine", signedFixture(t, "p384", "PTB-0002")))
	b := acceptedBlock(t, 1, "tx-forged", signedFixture(t, "p256", "PTB-0001"))
	// The same meter registered with p256 by block 1's registration; the
	// item's signature replaced by another key's.
	forged.Signature = readTestdata(t, "measurements/p256-otherkey.sig")
	packed, err := wire.Pack([]meter.SignedMeasurement{forged})
	if err != nil {
		t.Fatal(err)
	}
	b.Txs[1].Args = []string{string(packed)}
	f.index(t, b)
	got := decode[api.FindingList](t, f.do(get("/api/v1/findings", auditor)), http.StatusOK)
	if len(got.Findings) != 1 || got.Findings[0].Kind != "signature" || got.Findings[0].TxID != "tx-forged" || got.Findings[0].Block != 1 {
		t.Fatalf("findings %+v, want the forged reading's", got)
	}
	if _, _, found, _ := f.readings.Accepted(forged, 1); found {
		t.Error("the forged reading is indexed as accepted")
	}
}

// Two clients ask for an attestation of one meter at once and share it.
// The first, with an Idempotency-Key, goes away while the attestation is
// under way: the second still gets its bundle. Before, the shared
// attestation ran in the first caller's context and under its key, and
// failed for everyone when that client disconnected.
func TestAttackSharedAttestationOutlivesItsFirstCaller(t *testing.T) {
	f := newFixture(t)
	// The fake commits the attestation in a block above 100.
	f.index(t, emptyBlocks(0, 110)...)
	gate := make(chan struct{})
	f.ledger.gate, f.ledger.entered = gate, make(chan struct{}, 1)
	gone, leave := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		f.do(request{method: http.MethodPost, path: "/api/v1/meters/PTB-0001/attestations", as: utility, contentType: "application/json",
			header: map[string]string{HeaderIdempotencyKey: "first"}, ctx: gone})
	})
	<-f.ledger.entered
	joined := make(chan struct{})
	f.srv.attest.joined = func(string) { close(joined) }
	var second *httptest.ResponseRecorder
	wg.Go(func() { second = f.do(post("/api/v1/meters/PTB-0001/attestations", customer, nil)) })
	<-joined
	leave()
	close(gate)
	wg.Wait()
	if second.Code != http.StatusCreated {
		t.Fatalf("the second caller: %d %s", second.Code, second.Body)
	}
	if n := len(f.ledger.named(wire.TxAttestMeter)); n != 1 {
		t.Errorf("%d attestation transactions, want the one both shared", n)
	}
}
