package contract_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/stubtest"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// fixture is an openssl-signed measurement from ../testdata.
func fixture(t testing.TB, meterID, payload, sig string) meter.SignedMeasurement {
	return meter.SignedMeasurement{MeterID: meterID,
		Payload:   readFile(t, filepath.Join(msmtDir, payload)),
		Signature: readFile(t, filepath.Join(msmtDir, sig))}
}

func TestSubmitMeasurementOpenSSL(t *testing.T) {
	for _, tc := range curveFixtures {
		t.Run(tc.key, func(t *testing.T) {
			w := newWorld(t)
			w.register(w.ptb, tc.meterID, pubPEM(t, tc.key))
			sm := fixture(t, tc.meterID, tc.key+".good.json", tc.key+".sig")
			res, stub := ok(w, w.ingest, w.submit(sm))
			want := meter.ItemResult{MeterID: tc.meterID, Seq: 1, Outcome: meter.OutcomeAccepted, KeyVersion: 1}
			if *res != want {
				t.Fatalf("result %+v", res)
			}
			if e := event[meter.ItemResult](t, stub, wire.EventMeasurementAccepted); e != want {
				t.Errorf("event %+v", e)
			}
			// World state keeps only the replay guard: the evidence is the
			// transaction in its block.
			if keys := slices.Collect(maps.Keys(stub.Writes)); len(keys) != 1 || keys[0] != "last/"+tc.meterID {
				t.Fatalf("writes %v, want only the replay guard", keys)
			}
			g, err := wire.UnmarshalGuard(w.state("last/" + tc.meterID))
			if err != nil || g.Last != 1 || len(g.Recent) != 1 || g.Recent[0].Hash != wire.HashOf(sm.Payload) {
				t.Fatalf("replay guard %+v: %v", g, err)
			}
			// The same signed bytes again are a re-delivery: answered as a
			// duplicate (the registry names the accepting transaction from
			// its index of the blocks), and nothing is written.
			dup := readOnly(w, w.ingest, w.submit(sm))
			if *dup != (meter.ItemResult{MeterID: tc.meterID, Seq: 1, Outcome: meter.OutcomeDuplicate}) {
				t.Fatalf("re-delivery: %+v", dup)
			}
			// The same seq with other bytes is a replay.
			refused(w, w.ingest, meter.CodeReplay, w.submit(reading(t, privateKey(t, tc.key), tc.meterID, 1, readingTime)))
		})
	}
}

func TestSubmitMeasurementRefused(t *testing.T) {
	w := newWorld(t)
	key := privateKey(t, "p256")
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	w.register(w.ptb, "PTB-0002", pubPEM(t, "p384"))
	w.register(w.ptb, "PTB-0005", pubPEM(t, "other"))
	ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.RevokeMeter(ctx, "PTB-0005", string(meter.ReasonKeyCompromise), "")
	})
	ok(w, w.ingest, w.submit(reading(t, key, "PTB-0001", 5, readingTime)))
	// 134 makes seq 6 the lowest of the window below it, and seq 1 older.
	ok(w, w.ingest, w.submit(reading(t, key, "PTB-0001", 134, readingTime)))

	good := reading(t, key, "PTB-0001", 6, readingTime)
	ahead := reading(t, key, "PTB-0001", 6, txTime.Add(meter.MaxClockAhead+time.Second))
	old := reading(t, key, "PTB-0001", 6, txTime.Add(-meter.MaxAge-time.Second))
	base := `{"meterId":"PTB-0001","seq":6,"time":"2026-11-21T10:15:00Z","value":1,"unit":"kWh"`
	bigCiphertext := signRaw(t, key, "PTB-0001", []byte(base+`,"ciphertext":"`+strings.Repeat("A", meter.MaxCiphertextBytes+4)+`"}`))
	oversized := signRaw(t, key, "PTB-0001", []byte(base+`,"ciphertext":"`+strings.Repeat("A", meter.MaxPayloadBytes)+`"}`))
	unknownField := signRaw(t, key, "PTB-0001", []byte(base+`,"tariff":"T1"}`))
	trailing := signRaw(t, key, "PTB-0001", []byte(base+`}x`))
	otherKey := good
	otherKey.Signature = reading(t, privateKey(t, "other"), "PTB-0001", 6, readingTime).Signature
	truncated := good
	truncated.Signature = good.Signature[:len(good.Signature)-3]
	mismatch := good
	mismatch.MeterID = "PTB-0002"

	type args struct{ meterID, payload, sig string }
	raw := func(sm meter.SignedMeasurement) args { return args{sm.MeterID, b64(sm.Payload), b64(sm.Signature)} }
	cases := []struct {
		name string
		who  *stubtest.Identity
		in   args
		code meter.Code
	}{
		{"forged by another key", w.ingest, raw(otherKey), meter.CodeBadSignature},
		{"openssl signature by another key", w.ingest, raw(fixture(t, "PTB-0001", "p256.good.json", "p256-otherkey.sig")), meter.CodeBadSignature},
		{"truncated signature", w.ingest, raw(truncated), meter.CodeBadSignature},
		{"replayed seq with other bytes", w.ingest, raw(reading(t, key, "PTB-0001", 5, readingTime.Add(time.Minute))), meter.CodeReplay},
		{"seq below the window", w.ingest, raw(fixture(t, "PTB-0001", "p256.good.json", "p256.sig")), meter.CodeReplay},
		{"seq too far above", w.ingest, raw(reading(t, key, "PTB-0001", 134+wire.MaxSeqAdvance+1, readingTime)), meter.CodeSeqOutOfRange},
		{"revoked meter", w.ingest, raw(reading(t, privateKey(t, "other"), "PTB-0005", 1, readingTime)), meter.CodeMeterRevoked},
		{"payload names another meter", w.ingest, raw(mismatch), meter.CodeMeterMismatch},
		{"meter time ahead", w.ingest, raw(ahead), meter.CodeImplausibleTime},
		{"meter time too old", w.ingest, raw(old), meter.CodeImplausibleTime},
		{"ciphertext too large", w.ingest, raw(bigCiphertext), meter.CodeTooLarge},
		{"payload too large", w.ingest, raw(oversized), meter.CodeTooLarge},
		{"unknown field", w.ingest, raw(unknownField), meter.CodeMalformed},
		{"trailing data", w.ingest, raw(trailing), meter.CodeMalformed},
		{"unknown meter", w.ingest, raw(reading(t, key, "PTB-0404", 1, readingTime)), meter.CodeMeterNotFound},
		{"malformed meter ID", w.ingest, args{"PTB 0001", b64(good.Payload), b64(good.Signature)}, meter.CodeMalformed},
		{"payload not base64", w.ingest, args{"PTB-0001", "{not base64}", b64(good.Signature)}, meter.CodeMalformed},
		{"signature not base64", w.ingest, args{"PTB-0001", b64(good.Payload), "***"}, meter.CodeMalformed},
		{"base64 payload over the limit", w.ingest, args{"PTB-0001", strings.Repeat("A", 4*meter.MaxPayloadBytes), b64(good.Signature)}, meter.CodeTooLarge},
		{"auditor", w.auditor, raw(good), meter.CodeForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := w.in(t)
			refused(w, tc.who, tc.code, func(ctx contractapi.TransactionContextInterface) (*meter.ItemResult, error) {
				return w.cc.SubmitMeasurement(ctx, tc.in.meterID, tc.in.payload, tc.in.sig)
			})
		})
	}
	// After all those refusals the good one is still accepted, by a registrar too.
	ok(w, w.ptb, w.submit(good))
}

// expectItem is the expected outcome of one batch item.
type expectItem struct {
	meterID string
	seq     uint64
	code    meter.Code // "" for accepted
	filed   string     // where the rejection is filed, if not under meterID
	dupOf   bool       // a duplicate of an item this transaction accepted
}

func TestSubmitMeasurementsBatch(t *testing.T) {
	w := newWorld(t)
	p256, p384 := privateKey(t, "p256"), privateKey(t, "p384")
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	w.register(w.ptb, "PTB-0002", pubPEM(t, "p384"))
	w.register(w.cmi, "CMI-0003", pubPEM(t, "secp256k1"))
	ok(w, w.cmi, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.RevokeMeter(ctx, "CMI-0003", string(meter.ReasonSuperseded), "")
	})
	forged := reading(t, p384, "PTB-0002", 1, readingTime)
	forged.Signature = reading(t, privateKey(t, "other"), "PTB-0002", 1, readingTime).Signature
	mismatch := reading(t, p256, "PTB-0002", 3, readingTime)
	mismatch.MeterID = "PTB-0001"
	badID := reading(t, p256, "PTB-0001", 3, readingTime)
	badID.MeterID = "PTB 0001"
	items := []meter.SignedMeasurement{
		reading(t, p256, "PTB-0001", 1, readingTime),                     // 0
		reading(t, p256, "PTB-0001", 2, readingTime.Add(15*time.Minute)), // 1: same meter, next seq
		reading(t, p256, "PTB-0001", 2, readingTime.Add(15*time.Minute)), // 2: the same again
		forged, // 3
		reading(t, p384, "PTB-0002", 1, readingTime), // 4: a forgery does not burn the seq
		reading(t, p256, "PTB-0404", 1, readingTime), // 5
		badID, // 6
		reading(t, privateKey(t, "secp256k1"), "CMI-0003", 1, readingTime), // 7
		mismatch, // 8
		reading(t, p256, "PTB-0001", 3, txTime.Add(time.Hour)),           // 9
		reading(t, p256, "PTB-0001", 1, readingTime.Add(-time.Hour)),     // 10: below the accepted 2
		reading(t, p256, "PTB-0001", 3, readingTime.Add(5*time.Minute)),  // 11
		reading(t, p256, "PTB-0001", 2, readingTime.Add(14*time.Minute)), // 12: seq 2 again, other bytes
	}
	want := []expectItem{
		{"PTB-0001", 1, "", "", false},
		{"PTB-0001", 2, "", "", false},
		{"PTB-0001", 2, "", "", true},
		{"PTB-0002", 1, meter.CodeBadSignature, "", false},
		{"PTB-0002", 1, "", "", false},
		{"PTB-0404", 0, meter.CodeMeterNotFound, "", false},
		{"PTB 0001", 0, meter.CodeMalformed, "-", false},
		{"CMI-0003", 1, meter.CodeMeterRevoked, "", false},
		{"PTB-0001", 3, meter.CodeMeterMismatch, "", false},
		{"PTB-0001", 3, meter.CodeImplausibleTime, "", false},
		{"PTB-0001", 1, meter.CodeReplay, "", false},
		{"PTB-0001", 3, "", "", false},
		{"PTB-0001", 2, meter.CodeReplay, "", false},
	}
	batch := mustJSON(t, items)
	res, stub := ok(w, w.ingest, func(ctx contractapi.TransactionContextInterface) (*wire.Outcome, error) {
		return w.cc.SubmitMeasurements(ctx, batch)
	})
	if res.TxID != stub.GetTxID() || res.Items != len(want) || res.Accepted != 4 || res.Rejected != 8 || res.Duplicates != 1 ||
		len(res.Exceptions) != 9 || res.KeyVersions["PTB-0001"] != 1 || res.KeyVersions["PTB-0002"] != 1 || len(res.KeyVersions) != 2 {
		t.Fatalf("result %s", mustJSON(t, res))
	}
	// The transaction in its block tells every item's outcome: Decode reads
	// it from the function, the argument and the result.
	result, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := wire.Decode(wire.TxSubmitMeasurements, []string{batch}, result)
	if err != nil || len(decoded) != len(want) {
		t.Fatalf("decode: %d items, %v", len(decoded), err)
	}
	for i, wi := range want {
		got := decoded[i].Result
		if got.Index != i || got.MeterID != wi.meterID || got.Seq != wi.seq || got.Code != wi.code {
			t.Errorf("item %d: %+v, want %+v", i, got, wi)
		}
		switch {
		case wi.dupOf:
			if got.Outcome != meter.OutcomeDuplicate || got.TxID != stub.GetTxID() || got.Reason != "" {
				t.Errorf("item %d not a duplicate: %+v", i, got)
			}
		case wi.code == "":
			if got.Outcome != meter.OutcomeAccepted || got.KeyVersion != 1 || got.Reason != "" {
				t.Errorf("item %d not accepted: %+v", i, got)
			}
		default:
			if got.Outcome != meter.OutcomeRejected || got.Reason == "" || got.KeyVersion != 0 {
				t.Errorf("item %d not rejected: %+v", i, got)
			}
		}
	}
	if e := event[wire.Counts](t, stub, wire.EventMeasurementsSubmitted); e != res.Counts() {
		t.Errorf("event %+v", e)
	}
	// One write per meter with an accepted item: its replay guard.
	if keys := slices.Sorted(maps.Keys(stub.Writes)); fmt.Sprint(keys) != "[last/PTB-0001 last/PTB-0002]" {
		t.Errorf("writes %v", keys)
	}
	g, err := wire.UnmarshalGuard(w.state("last/PTB-0001"))
	if err != nil || g.Last != 3 || len(g.Recent) != 3 {
		t.Errorf("replay guard of PTB-0001: %+v %v", g, err)
	}
	// The packed batch is judged the same.
	w2 := newWorld(t)
	w2.register(w2.ptb, "PTB-0001", pubPEM(t, "p256"))
	w2.register(w2.ptb, "PTB-0002", pubPEM(t, "p384"))
	w2.register(w2.cmi, "CMI-0003", pubPEM(t, "secp256k1"))
	ok(w2, w2.cmi, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w2.cc.RevokeMeter(ctx, "CMI-0003", string(meter.ReasonSuperseded), "")
	})
	packed, err := wire.Pack(items)
	if err != nil {
		t.Fatal(err)
	}
	res2, _ := ok(w2, w2.ingest, func(ctx contractapi.TransactionContextInterface) (*wire.Outcome, error) {
		return w2.cc.SubmitMeasurementsPacked(ctx, string(packed))
	})
	res2.TxID = res.TxID
	for i := range res2.Exceptions {
		if res2.Exceptions[i].Outcome == meter.OutcomeDuplicate {
			res2.Exceptions[i].TxID = res.TxID
		}
	}
	if mustJSON(t, res2) != mustJSON(t, res) {
		t.Errorf("packed batch judged\n%s\nthe JSON batch\n%s", mustJSON(t, res2), mustJSON(t, res))
	}
	t.Logf("%d measurements: %d bytes as JSON, %d packed", len(items), len(batch), len(packed))
}

func TestSubmitMeasurementsRefused(t *testing.T) {
	w := newWorld(t)
	key := privateKey(t, "p256")
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	one := mustJSON(t, []meter.SignedMeasurement{reading(t, key, "PTB-0001", 1, readingTime)})
	tooMany := mustJSON(t, make([]meter.SignedMeasurement, meter.MaxBatch+1))
	cases := []struct {
		name, batch string
		who         *stubtest.Identity
		code        meter.Code
	}{
		{"empty", "[]", w.ingest, meter.CodeMalformed},
		{"null", "null", w.ingest, meter.CodeMalformed},
		{"not JSON", "PTB-0001", w.ingest, meter.CodeMalformed},
		{"unknown field", `[{"meterId":"PTB-0001","payload":"","signature":"","extra":1}]`, w.ingest, meter.CodeMalformed},
		{"too many", tooMany, w.ingest, meter.CodeTooLarge},
		{"auditor", one, w.auditor, meter.CodeForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := w.in(t)
			refused(w, tc.who, tc.code, func(ctx contractapi.TransactionContextInterface) (*wire.Outcome, error) {
				return w.cc.SubmitMeasurements(ctx, tc.batch)
			})
		})
	}
}

// VerifyMeasurement judges like SubmitMeasurement and writes nothing.
func TestVerifyMeasurement(t *testing.T) {
	w := newWorld(t)
	key := privateKey(t, "p256")
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	verify := func(sm meter.SignedMeasurement) *meter.Verification {
		t.Helper()
		return readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) (*meter.Verification, error) {
			return w.cc.VerifyMeasurement(ctx, sm.MeterID, b64(sm.Payload), b64(sm.Signature))
		})
	}
	good := fixture(t, "PTB-0001", "p256.good.json", "p256.sig")
	if v := verify(good); *v != (meter.Verification{Valid: true, MeterID: "PTB-0001", Seq: 1, KeyVersion: 1}) {
		t.Fatalf("valid: %+v", v)
	}
	// Verifying twice is no replay: nothing was stored.
	if v := verify(good); !v.Valid {
		t.Fatalf("second verification: %+v", v)
	}
	forged := fixture(t, "PTB-0001", "p256.good.json", "p256-otherkey.sig")
	if v := verify(forged); v.Valid || v.Code != meter.CodeBadSignature || v.Reason == "" || v.KeyVersion != 1 {
		t.Errorf("forged: %+v", v)
	}
	if v := verify(reading(t, key, "PTB-0404", 1, readingTime)); v.Valid || v.Code != meter.CodeMeterNotFound || v.KeyVersion != 0 {
		t.Errorf("unknown meter: %+v", v)
	}
	ok(w, w.ingest, w.submit(good))
	if v := verify(good); !v.Valid || !v.Duplicate {
		t.Errorf("the accepted bytes after submission: %+v", v)
	}
	if v := verify(reading(t, key, "PTB-0001", 1, readingTime)); v.Valid || v.Code != meter.CodeReplay {
		t.Errorf("other bytes for the accepted seq: %+v", v)
	}
	refused(w, w.auditor, meter.CodeMalformed, func(ctx contractapi.TransactionContextInterface) (*meter.Verification, error) {
		return w.cc.VerifyMeasurement(ctx, "PTB-0001", "%%%", b64(good.Signature))
	})
}

// Readings delivered out of order are accepted, each once: a concentrator's
// batch in reverse seq order, and a reading below the highest accepted
// seq that was never accepted. A seq accepted before, or more than
// wire.ReplayWindow below the highest, is refused as a replay.
func TestReorderedReadings(t *testing.T) {
	w := newWorld(t)
	key := privateKey(t, "p256")
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	var items []meter.SignedMeasurement
	for seq := uint64(20); seq >= 1; seq-- {
		if seq != 7 {
			items = append(items, reading(t, key, "PTB-0001", seq, readingTime))
		}
	}
	res, _ := ok(w, w.ingest, func(ctx contractapi.TransactionContextInterface) (*wire.Outcome, error) {
		return w.cc.SubmitMeasurements(ctx, mustJSON(t, items))
	})
	if res.Accepted != 19 || res.Rejected != 0 {
		t.Fatalf("reversed batch: %s", mustJSON(t, res))
	}
	// The one that went another way arrives later, alone: accepted.
	ok(w, w.ingest, w.submit(reading(t, key, "PTB-0001", 7, readingTime)))
	refused(w, w.ingest, meter.CodeReplay, w.submit(reading(t, key, "PTB-0001", 7, readingTime.Add(time.Second))))
	refused(w, w.ingest, meter.CodeReplay, w.submit(reading(t, key, "PTB-0001", 3, readingTime.Add(time.Second))))
	ok(w, w.ingest, w.submit(reading(t, key, "PTB-0001", 20+wire.ReplayWindow+1, readingTime)))
	// 20 is now ReplayWindow+1 below: too old to tell, refused; 21 is in the window.
	refused(w, w.ingest, meter.CodeReplay, w.submit(reading(t, key, "PTB-0001", 20, readingTime.Add(time.Second))))
	ok(w, w.ingest, w.submit(reading(t, key, "PTB-0001", 21, readingTime)))
}

// A peer of the pinned Fabric answers GetMultipleStates with success and
// no values when its state database fails during the read. Read as "no
// such meter and no replay guard", a replay would be accepted; the
// contract checks it got one value per key and fails the endorsement.
func TestMultipleStatesLost(t *testing.T) {
	w := newWorld(t)
	key := privateKey(t, "p256")
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	sm := reading(t, key, "PTB-0001", 1, readingTime)
	ok(w, w.ingest, w.submit(sm))
	w.loseStates = true
	refused(w, w.ingest, meter.CodeInternal, w.submit(sm))
	refused(w, w.ingest, meter.CodeInternal, func(ctx contractapi.TransactionContextInterface) (*wire.Outcome, error) {
		return w.cc.SubmitMeasurements(ctx, mustJSON(t, []meter.SignedMeasurement{reading(t, key, "PTB-0001", 2, readingTime)}))
	})
}
