package server

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
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
			// The exact signed bytes reach the chaincode, in a packed batch
			// that groups single deliveries.
			assertSent(t, f.ledger.recorded(), []meter.SignedMeasurement{sm})
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
	assertSent(t, f.ledger.recorded(), items)
}

// assertSent checks the ledger got one packed batch of exactly these items.
func assertSent(t *testing.T, calls []call, items []meter.SignedMeasurement) {
	t.Helper()
	if len(calls) != 1 || calls[0].Role != api.RoleIngest || calls[0].Tx != wire.TxSubmitPacked || len(calls[0].Args) != 1 {
		t.Fatalf("calls = %+v, want one %s as ingest", calls, wire.TxSubmitPacked)
	}
	sent, err := wire.Unpack([]byte(calls[0].Args[0]))
	if err != nil {
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

// Single deliveries that arrive while the registry's transaction slot is
// busy share the next transaction, and each hears its own item's outcome.
func TestSingleDeliveriesGrouped(t *testing.T) {
	f := newFixture(t)
	f.opts.GroupSlots = 1
	f.build()
	gathered := make(chan int, 10)
	f.srv.batcher.gathered = func(n int) { gathered <- n }
	good := signedFixture(t, "p256", "PTB-0001")
	bad := good
	bad.Signature = readTestdata(t, "measurements/p256-otherkey.sig")
	// The chaincode refuses the item signed with another key, wherever in
	// the group it lands.
	f.ledger.on(wire.TxSubmitPacked, func(_ context.Context, args []string) (any, error) {
		items, err := wire.Unpack([]byte(args[0]))
		if err != nil {
			return nil, err
		}
		out := wire.Outcome{TxID: "tx-group", Items: len(items), KeyVersions: map[string]int{"PTB-0001": 3}}
		for i, sm := range items {
			if string(sm.Signature) == string(bad.Signature) {
				out.Rejected++
				out.Exceptions = append(out.Exceptions, meter.ItemResult{Index: i, MeterID: "PTB-0001", Seq: 1,
					Outcome: meter.OutcomeRejected, Code: meter.CodeBadSignature, Reason: "signature does not verify"})
			} else {
				out.Accepted++
			}
		}
		return out, nil
	})
	// The first delivery takes the slot and is held at the gateway.
	gate := make(chan struct{})
	f.ledger.gate, f.ledger.entered = gate, make(chan struct{}, 1)
	recs := make([]*httptest.ResponseRecorder, 3)
	var wg sync.WaitGroup
	first := good
	first.MeterID = "PTB-0001"
	wg.Go(func() { recs[0] = f.do(post("/api/v1/meters/PTB-0001/measurements", ingest, first)) })
	<-f.ledger.entered
	// Two more arrive while it is busy: they gather into one group.
	for i, sm := range []meter.SignedMeasurement{good, bad} {
		wg.Go(func() { recs[i+1] = f.do(post("/api/v1/meters/"+sm.MeterID+"/measurements", ingest, sm)) })
	}
	for n := 0; n < 2; n = <-gathered {
	}
	close(gate)
	wg.Wait()
	calls := f.ledger.named(wire.TxSubmitPacked)
	if len(calls) != 2 {
		t.Fatalf("%d transactions for a delivery and two that arrived while it was busy, want 2", len(calls))
	}
	if items, _ := wire.Unpack([]byte(calls[1].Args[0])); len(items) != 2 {
		t.Fatalf("the second transaction carries %d deliveries, want 2", len(items))
	}
	for _, i := range []int{0, 1} {
		if r := decode[api.MeasurementReceipt](t, recs[i], http.StatusCreated); r.KeyVersion != 3 {
			t.Errorf("accepted delivery %d: %+v", i, r)
		}
	}
	p := problemOf(t, recs[2], http.StatusUnprocessableEntity, string(meter.CodeBadSignature))
	if p.TxID == "" {
		t.Errorf("the refused delivery does not name the transaction that holds its refusal: %+v", p)
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

// The chaincode remembers a meter's last few readings by their bytes: a
// re-delivery of an older one is refused as a replay. The registry then
// asks its index, once the index has read every block the peer holds: the
// very reading accepted before is answered as the duplicate it is; a seq
// the index holds no such reading of stays a replay; and while the index
// is behind the peer (rebuilding), the answer is 503, never a refusal of a
// reading that was accepted.
func TestReplayOfAnAcceptedReading(t *testing.T) {
	sm := signedFixture(t, "p256", "PTB-0001")
	replay := returns(wire.Outcome{TxID: "tx-x", Items: 1, Rejected: 1, Exceptions: []meter.ItemResult{{Index: 0, MeterID: "PTB-0001", Seq: 1,
		Outcome: meter.OutcomeRejected, Code: meter.CodeReplay, Reason: "meter PTB-0001: seq 1 is more than 128 below the highest accepted seq 900"}}})
	single := func(sm meter.SignedMeasurement) request {
		return post("/api/v1/meters/PTB-0001/measurements", ingest, sm)
	}
	batch := func(sm meter.SignedMeasurement) request {
		return post("/api/v1/measurements/batch", ingest, api.MeasurementBatch{Measurements: []meter.SignedMeasurement{sm}})
	}

	t.Run("accepted in a block the index reads late", func(t *testing.T) {
		f := newFixture(t)
		f.opts.IndexWait = 500 * time.Millisecond
		f.build()
		f.ledger.on(wire.TxSubmitPacked, replay)
		accepted := acceptedBlock(t, 0, "tx-accepting", sm)
		var once sync.Once
		f.ledger.height = func() uint64 {
			// The peer holds block 0; the index reads it only now.
			once.Do(func() {
				go func() {
					if err := f.readings.Add(accepted); err != nil {
						panic(err)
					}
				}()
			})
			return 1
		}
		r := decode[api.MeasurementReceipt](t, f.do(single(sm)), http.StatusOK)
		if !r.Duplicate || r.TxID != "tx-accepting" {
			t.Errorf("receipt %+v, want a duplicate of tx-accepting", r)
		}
		b := decode[api.BatchReceipt](t, f.do(batch(sm)), http.StatusOK)
		if b.Duplicates != 1 || b.Items[0].Outcome != meter.OutcomeDuplicate || b.Items[0].TxID != "tx-accepting" {
			t.Errorf("batch receipt %+v", b)
		}
	})
	t.Run("no such reading in the index", func(t *testing.T) {
		f := newFixture(t)
		f.ledger.on(wire.TxSubmitPacked, replay)
		f.index(t, &chain.Block{Number: 0, Txs: []chain.Tx{registrationOf(t, []meter.SignedMeasurement{sm})}})
		f.ledger.height = func() uint64 { return 1 }
		problemOf(t, f.do(single(sm)), http.StatusConflict, string(meter.CodeReplay))
		b := decode[api.BatchReceipt](t, f.do(batch(sm)), http.StatusOK)
		if b.Rejected != 1 || b.Items[0].Code != meter.CodeReplay {
			t.Errorf("batch receipt %+v", b)
		}
	})
	t.Run("index behind the peer", func(t *testing.T) {
		f := newFixture(t)
		f.ledger.on(wire.TxSubmitPacked, replay)
		f.index(t, &chain.Block{Number: 0, Txs: []chain.Tx{registrationOf(t, []meter.SignedMeasurement{sm})}})
		f.ledger.height = func() uint64 { return 40 }
		for _, r := range []request{single(sm), batch(sm)} {
			p := problemOf(t, f.do(r), http.StatusServiceUnavailable, api.CodeUnavailable)
			if !strings.Contains(p.Detail, "has read 1 of the peer's 40 blocks") || !strings.Contains(p.Detail, "nothing was sent") {
				t.Errorf("detail %q", p.Detail)
			}
		}
		// The refusal of an accepted reading never reaches the ledger: the
		// request fails, and leaves the ledger as it was.
		if f.ledger.ordered != 0 {
			t.Errorf("%d transactions sent while the index was behind, want none", f.ledger.ordered)
		}
	})
}
