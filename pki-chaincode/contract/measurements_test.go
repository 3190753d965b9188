package contract_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/contract"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/stubtest"
)

// fixture is an openssl-signed measurement from ../testdata.
func fixture(t testing.TB, meterID, payload, sig string) meter.SignedMeasurement {
	return meter.SignedMeasurement{MeterID: meterID,
		Payload:   readFile(t, filepath.Join(msmtDir, payload)),
		Signature: readFile(t, filepath.Join(msmtDir, sig))}
}

func measurementKey(id string, at time.Time, seq uint64) string {
	return fmt.Sprintf("msmt/%s/%s/%020d", id, at.UTC().Format("2006-01-02T15:04:05.000000000Z"), seq)
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
			if e := event[meter.ItemResult](t, stub, contract.EventMeasurementAccepted); e != want {
				t.Errorf("event %+v", e)
			}
			var rec meter.MeasurementRecord
			if err := json.Unmarshal(w.state(measurementKey(tc.meterID, readingTime, 1)), &rec); err != nil {
				t.Fatalf("stored record: %v", err)
			}
			fp := strings.TrimSpace(string(readFile(t, filepath.Join(keysDir, tc.key+".sha256"))))
			wantRec := meter.MeasurementRecord{MeterID: tc.meterID, Seq: 1, Time: "2026-11-21T10:15:00Z", Value: "1234.5", Unit: "kWh",
				Payload: b64(sm.Payload), Signature: b64(sm.Signature), KeyVersion: 1, Fingerprint: fp,
				TxID: stub.GetTxID(), AcceptedAt: txTime.Format(time.RFC3339Nano)}
			if rec != wantRec {
				t.Fatalf("stored\n%+v\nwant\n%+v", rec, wantRec)
			}
			var last struct {
				Seq  uint64 `json:"seq"`
				TxID string `json:"txId"`
			}
			if err := json.Unmarshal(w.state("last/"+tc.meterID), &last); err != nil || last.Seq != 1 || last.TxID != stub.GetTxID() {
				t.Fatalf("replay guard %s: %v", w.state("last/"+tc.meterID), err)
			}
			// The same signed bytes again are a re-delivery: answered as
			// accepted by the first transaction, and nothing is written.
			dup := readOnly(w, w.ingest, w.submit(sm))
			if *dup != (meter.ItemResult{MeterID: tc.meterID, Seq: 1, Outcome: meter.OutcomeDuplicate, TxID: stub.GetTxID()}) {
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
		{"lower seq", w.ingest, raw(fixture(t, "PTB-0001", "p256.good.json", "p256.sig")), meter.CodeReplay},
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
		{"CMI-0003", 0, meter.CodeMeterRevoked, "", false},
		{"PTB-0001", 3, meter.CodeMeterMismatch, "", false},
		{"PTB-0001", 3, meter.CodeImplausibleTime, "", false},
		{"PTB-0001", 1, meter.CodeReplay, "", false},
		{"PTB-0001", 3, "", "", false},
		{"PTB-0001", 2, meter.CodeReplay, "", false},
	}
	batch := mustJSON(t, items)
	res, stub := ok(w, w.ingest, func(ctx contractapi.TransactionContextInterface) (*meter.BatchResult, error) {
		return w.cc.SubmitMeasurements(ctx, batch)
	})
	if res.TxID != stub.GetTxID() || len(res.Items) != len(want) || res.Accepted != 4 || res.Rejected != 8 || res.Duplicates != 1 {
		t.Fatalf("result %s", mustJSON(t, res))
	}
	for i, wi := range want {
		got := res.Items[i]
		if got.Index != i || got.MeterID != wi.meterID || got.Seq != wi.seq || got.Code != wi.code {
			t.Errorf("item %d: %+v, want %+v", i, got, wi)
		}
		if wi.dupOf {
			if got.Outcome != meter.OutcomeDuplicate || got.TxID != stub.GetTxID() || got.Reason != "" {
				t.Errorf("item %d not a duplicate: %+v", i, got)
			}
			if rej := w.state(fmt.Sprintf("rej/%s/%s/%04d", wi.meterID, stub.GetTxID(), i)); rej != nil {
				t.Errorf("item %d, a duplicate, filed as a rejection: %s", i, rej)
			}
			continue
		}
		if wi.code == "" {
			if got.Outcome != meter.OutcomeAccepted || got.KeyVersion != 1 || got.Reason != "" {
				t.Errorf("item %d not accepted: %+v", i, got)
			}
			m, _ := meter.ParseMeasurement(items[i].Payload)
			if w.state(measurementKey(wi.meterID, m.MeasuredAt(), wi.seq)) == nil {
				t.Errorf("item %d not stored", i)
			}
			continue
		}
		if got.Outcome != meter.OutcomeRejected || got.Reason == "" || got.KeyVersion != 0 {
			t.Errorf("item %d not rejected: %+v", i, got)
		}
		filed := wi.filed
		if filed == "" {
			filed = wi.meterID
		}
		var rej meter.Rejection
		key := fmt.Sprintf("rej/%s/%s/%04d", filed, stub.GetTxID(), i)
		if err := json.Unmarshal(w.state(key), &rej); err != nil {
			t.Errorf("item %d: rejection %s: %v", i, key, err)
			continue
		}
		sum := sha256.Sum256(items[i].Payload)
		if rej.MeterID != wi.meterID || rej.Code != wi.code || rej.Reason != got.Reason || rej.Index != i ||
			rej.TxID != stub.GetTxID() || rej.PayloadHash != hex.EncodeToString(sum[:]) || rej.RejectedAt != txTime.Format(time.RFC3339Nano) {
			t.Errorf("item %d: rejection %+v", i, rej)
		}
	}
	if e := event[meter.BatchResult](t, stub, contract.EventMeasurementsSubmitted); mustJSON(t, e) != mustJSON(t, res) {
		t.Errorf("event %s", mustJSON(t, e))
	}
	var last struct{ Seq uint64 }
	if err := json.Unmarshal(w.state("last/PTB-0001"), &last); err != nil || last.Seq != 3 {
		t.Errorf("replay guard of PTB-0001: %s", w.state("last/PTB-0001"))
	}
	// The evidence is listed per meter, and under "-" for malformed IDs.
	rejections := func(id string) []*meter.Rejection {
		return readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) (*contract.RejectionPage, error) {
			return w.cc.GetRejections(ctx, id, 0, "")
		}).Rejections
	}
	var indexes []int
	for _, r := range rejections("PTB-0001") {
		indexes = append(indexes, r.Index)
	}
	if fmt.Sprint(indexes) != "[8 9 10 12]" {
		t.Errorf("rejections of PTB-0001 at %v", indexes)
	}
	if r := rejections("-"); len(r) != 1 || r[0].Index != 6 {
		t.Errorf("unattributed rejections %s", mustJSON(t, r))
	}
	// Stored measurements in meter-time order.
	page := readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) (*contract.MeasurementPage, error) {
		return w.cc.GetMeasurements(ctx, "PTB-0001", "", "", 0, "")
	})
	var seqs []uint64
	for _, m := range page.Measurements {
		seqs = append(seqs, m.Seq)
	}
	if fmt.Sprint(seqs) != "[1 3 2]" {
		t.Errorf("PTB-0001 measurements in time order: %v", seqs)
	}
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
			refused(w, tc.who, tc.code, func(ctx contractapi.TransactionContextInterface) (*meter.BatchResult, error) {
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
	_, stub := ok(w, w.ingest, w.submit(good))
	if v := verify(good); !v.Valid || v.TxID != stub.GetTxID() {
		t.Errorf("the accepted bytes after submission: %+v", v)
	}
	if v := verify(reading(t, key, "PTB-0001", 1, readingTime)); v.Valid || v.Code != meter.CodeReplay {
		t.Errorf("other bytes for the accepted seq: %+v", v)
	}
	refused(w, w.auditor, meter.CodeMalformed, func(ctx contractapi.TransactionContextInterface) (*meter.Verification, error) {
		return w.cc.VerifyMeasurement(ctx, "PTB-0001", "%%%", b64(good.Signature))
	})
}

func TestGetMeasurements(t *testing.T) {
	w := newWorld(t)
	key := privateKey(t, "p256")
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	// A meter whose ID extends the other's must not show up in its range.
	w.register(w.ptb, "PTB-00010", pubPEM(t, "other"))
	ok(w, w.ingest, w.submit(reading(t, privateKey(t, "other"), "PTB-00010", 1, readingTime)))
	start := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	var batch []meter.SignedMeasurement
	for i := range 4 {
		batch = append(batch, reading(t, key, "PTB-0001", uint64(i+1), start.Add(time.Duration(i)*15*time.Minute)))
	}
	req := mustJSON(t, batch)
	ok(w, w.ingest, func(ctx contractapi.TransactionContextInterface) (*meter.BatchResult, error) {
		return w.cc.SubmitMeasurements(ctx, req)
	})
	get := func(w *world, from, to string, size int32, bookmark string) *contract.MeasurementPage {
		return readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) (*contract.MeasurementPage, error) {
			return w.cc.GetMeasurements(ctx, "PTB-0001", from, to, size, bookmark)
		})
	}
	seqs := func(p *contract.MeasurementPage) string {
		var out []string
		for _, m := range p.Measurements {
			if m.MeterID != "PTB-0001" {
				t.Errorf("listed a measurement of %s", m.MeterID)
			}
			out = append(out, fmt.Sprint(m.Seq))
		}
		return strings.Join(out, ",")
	}
	cases := []struct{ from, to, want string }{
		{"", "", "1,2,3,4"},
		{"2026-11-21T09:15:00Z", "2026-11-21T09:30:00Z", "2,3"}, // both ends included
		{"2026-11-21T10:15:00+01:00", "", "2,3,4"},              // 09:15 UTC
		{"", "2026-11-21T09:14:59.999Z", "1"},
		{"2026-11-21T09:45:00.000000001Z", "", ""},
		{"2026-11-21T09:15:00Z", "2026-11-21T09:15:00Z", "2"},
	}
	for _, tc := range cases {
		t.Run(tc.from+".."+tc.to, func(t *testing.T) {
			w := w.in(t)
			if p := get(w, tc.from, tc.to, 0, ""); seqs(p) != tc.want || p.Bookmark != "" {
				t.Fatalf("got %s (bookmark %q), want %s", seqs(p), p.Bookmark, tc.want)
			}
		})
	}
	t.Run("pages", func(t *testing.T) {
		w := w.in(t)
		p1 := get(w, "", "", 3, "")
		p2 := get(w, "", "", 3, p1.Bookmark)
		if seqs(p1) != "1,2,3" || p1.Bookmark == "" || seqs(p2) != "4" || p2.Bookmark != "" {
			t.Fatalf("pages %s (%q), %s (%q)", seqs(p1), p1.Bookmark, seqs(p2), p2.Bookmark)
		}
	})
	for _, tc := range []struct{ name, from, to string }{
		{"from after to", "2026-11-21T10:00:00Z", "2026-11-21T09:00:00Z"},
		{"bad from", "today", ""},
		{"bad to", "", "2026-11-21"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := w.in(t)
			refused(w, w.auditor, meter.CodeMalformed, func(ctx contractapi.TransactionContextInterface) (*contract.MeasurementPage, error) {
				return w.cc.GetMeasurements(ctx, "PTB-0001", tc.from, tc.to, 0, "")
			})
		})
	}
}
