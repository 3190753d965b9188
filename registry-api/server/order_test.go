package server

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
)

// While a transaction carrying a meter's reading is in flight, the
// registry sends no other transaction with that meter's readings: a
// concentrator's batch that holds one waits for it, and is then sent. Two
// of the meter's readings in flight at once would be ordered by chance and
// conflict on its replay guard.
func TestOneTransactionPerMeterInFlight(t *testing.T) {
	f := newFixture(t)
	gate := make(chan struct{})
	f.ledger.gate, f.ledger.entered = gate, make(chan struct{}, 1)
	waited := make(chan string, 4)
	f.srv.locks.waiting = func(id string) { waited <- id }
	var wg sync.WaitGroup
	var single, batch *httptest.ResponseRecorder
	wg.Go(func() {
		single = f.do(post("/api/v1/meters/PTB-0001/measurements", ingest, signedFixture(t, "p256", "PTB-0001")))
	})
	<-f.ledger.entered
	items := []meter.SignedMeasurement{signedFixture(t, "p384", "PTB-0002"), signedFixture(t, "p256", "PTB-0001")}
	wg.Go(func() {
		batch = f.do(post("/api/v1/measurements/batch", ingest, api.MeasurementBatch{Measurements: items}))
	})
	if id := <-waited; id != "PTB-0001" {
		t.Fatalf("the batch waited for %s", id)
	}
	if n := len(f.ledger.named(wire.TxSubmitPacked)); n != 1 {
		t.Fatalf("%d transactions while the first is in flight, want 1", n)
	}
	close(gate)
	wg.Wait()
	if single.Code != http.StatusCreated || batch.Code != http.StatusOK {
		t.Fatalf("single %d %s, batch %d %s", single.Code, single.Body, batch.Code, batch.Body)
	}
	if n := len(f.ledger.named(wire.TxSubmitPacked)); n != 2 {
		t.Fatalf("%d transactions, want 2", n)
	}
}
