package billing_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/billing"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/stubtest"
)

// TestFlow takes a period from its binding to its bill, each statement
// signed by its party and submitted by a client that is neither of them.
func TestFlow(t *testing.T) {
	w := newWorld(t)
	stamp := func(s *stubtest.Stub) string {
		ts, _ := s.GetTxTimestamp()
		return ts.AsTime().UTC().Format(time.RFC3339Nano)
	}
	check := func(name string, got *agreement.Record, stub *stubtest.Stub, want *agreement.Record, eventName string) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: record %s\nwant %s", name, mustJSON(t, got), mustJSON(t, want))
		}
		if stored := w.stored(meterID, period); !reflect.DeepEqual(stored, want) {
			t.Fatalf("%s: stored %s", name, mustJSON(t, stored))
		}
		if e := event(t, stub, eventName); e != (billing.Event{MeterID: meterID, Period: period}) {
			t.Fatalf("%s: event %+v", name, e)
		}
		if len(stub.Writes) != 1 || len(stub.Params) != 0 {
			t.Fatalf("%s wrote %d keys and %d policies, want the record alone", name, len(stub.Writes), len(stub.Params))
		}
	}

	ps := periodStatement(meterID, period)
	bindReq := w.bindRequest(ps)
	rec, stub := ok(w, w.ingest, w.bind(mustJSON(t, bindReq)))
	want := &agreement.Record{Period: bindReq.Statement, CustomerKey: w.customer.Public().PEM(), CustomerSignature: bindReq.CustomerSignature, PeriodTx: stub.GetTxID()}
	check("BindPeriod", rec, stub, want, billing.EventPeriodBound)

	ts := tariffStatement(meterID, period, tariffHash)
	tariffReq := w.tariffRequest(ts)
	rec, stub = ok(w, w.ingest, w.agree(meterID, period, mustJSON(t, tariffReq)))
	want.Tariff = &agreement.TariffRecord{TariffSHA256: tariffHash, UtilityKey: w.utility.Public().PEM(),
		CustomerSignature: tariffReq.CustomerSignature, UtilitySignature: tariffReq.UtilitySignature, TxID: stub.GetTxID(), At: stamp(stub)}
	check("AgreeTariff", rec, stub, want, billing.EventTariffAgreed)

	keyReq := w.keyRequest(keyStatement(meterID, period, tariffHash))
	rec, stub = ok(w, w.ingest, w.keyIssued(meterID, period, mustJSON(t, keyReq)))
	want.Key = &agreement.KeyRecord{TariffSHA256: tariffHash, CustomerSignature: keyReq.CustomerSignature, TxID: stub.GetTxID(), At: stamp(stub)}
	check("RecordKeyIssued", rec, stub, want, billing.EventKeyIssued)

	billReq := w.billRequest(billStatement(meterID, period, tariffHash, 96))
	rec, stub = ok(w, w.registrar, w.bill(meterID, period, mustJSON(t, billReq)))
	want.Bill = &agreement.BillRecord{Amount: 1234567, TariffSHA256: tariffHash, Slots: 96,
		UtilitySignature: billReq.UtilitySignature, TxID: stub.GetTxID(), At: stamp(stub)}
	check("RecordBill", rec, stub, want, billing.EventBillRecorded)

	// Anyone, an auditor included, reads the record; reading writes nothing.
	before := w.ledger.Snapshot()
	rec, stub = ok(w, w.auditor, w.read(meterID, period))
	if !reflect.DeepEqual(rec, want) || len(stub.Writes) != 0 || stub.Event != nil {
		t.Fatalf("read %s, %d writes, event %v", mustJSON(t, rec), len(stub.Writes), stub.Event)
	}
	if d := before.Diff(w.ledger.Snapshot()); d != "" {
		t.Fatalf("a read changed the state: %s", d)
	}
	// Every record the ledger keeps verifies as its parties signed it, the
	// statements rebuilt from the record alone: its keys name the parties.
	customer, err := meter.ParsePublicKeyPEM(rec.CustomerKey)
	if err != nil {
		t.Fatal(err)
	}
	utility, err := meter.ParsePublicKeyPEM(rec.Tariff.UtilityKey)
	if err != nil {
		t.Fatal(err)
	}
	cfp, ufp := customer.Fingerprint(), utility.Fingerprint()
	tariff := agreement.TariffStatement{Type: agreement.TypeTariff, MeterID: meterID, Period: period, TariffSHA256: rec.Tariff.TariffSHA256,
		CustomerKeySHA256: cfp, UtilityKeySHA256: ufp}
	for what, err := range map[string]error{
		"period":                 agreement.Verify(customer, rec.Period, rec.CustomerSignature),
		"tariff by the customer": agreement.Verify(customer, tariff, rec.Tariff.CustomerSignature),
		"tariff by the utility":  agreement.Verify(utility, tariff, rec.Tariff.UtilitySignature),
		"key": agreement.Verify(customer, agreement.KeyStatement{Type: agreement.TypeKey, MeterID: meterID, Period: period,
			TariffSHA256: rec.Key.TariffSHA256, CustomerKeySHA256: cfp, UtilityKeySHA256: ufp}, rec.Key.CustomerSignature),
		"bill": agreement.Verify(utility, agreement.BillStatement{Type: agreement.TypeBill, MeterID: meterID, Period: period,
			TariffSHA256: rec.Bill.TariffSHA256, CustomerKeySHA256: cfp, UtilityKeySHA256: ufp, Amount: rec.Bill.Amount, Slots: rec.Bill.Slots}, rec.Bill.UtilitySignature),
	} {
		if err != nil {
			t.Errorf("the recorded %s does not verify: %v", what, err)
		}
	}
	// A period of another meter, or another period of the meter, is its own record.
	ok(w, w.ingest, w.bind(mustJSON(t, w.bindRequest(periodStatement(meterID, "2026-11-21")))))
	if got := w.stored(meterID, period); !reflect.DeepEqual(got, want) {
		t.Fatalf("binding another period changed this one: %s", mustJSON(t, got))
	}
}

func TestBindPeriodRefusals(t *testing.T) {
	w := newWorld(t)
	good := w.bindRequest(periodStatement(meterID, period))
	with := func(change func(*agreement.PeriodRequest)) string {
		r := good
		change(&r)
		return mustJSON(t, r)
	}
	// resigned changes the statement and signs it again, as the customer would.
	resigned := func(change func(*agreement.PeriodStatement)) string {
		st := good.Statement
		change(&st)
		return mustJSON(t, w.bindRequest(st))
	}
	cases := []struct {
		name string
		who  *stubtest.Identity
		req  string
		code meter.Code
	}{
		{"auditor", w.auditor, mustJSON(t, good), meter.CodeForbidden},
		{"not JSON", w.ingest, `{"statement":`, meter.CodeMalformed},
		{"unknown field", w.ingest, strings.TrimSuffix(mustJSON(t, good), "}") + `,"utilityKey":"x"}`, meter.CodeMalformed},
		{"trailing data", w.ingest, mustJSON(t, good) + "{}", meter.CodeMalformed},
		{"over 64 KiB", w.ingest, with(func(r *agreement.PeriodRequest) { r.CustomerSignature = strings.Repeat("A", 64<<10) }), meter.CodeTooLarge},
		{"wrong statement type", w.ingest, resigned(func(s *agreement.PeriodStatement) { s.Type = agreement.TypeTariff }), meter.CodeMalformed},
		{"no slots", w.ingest, resigned(func(s *agreement.PeriodStatement) { s.Slots = 0 }), meter.CodeMalformed},
		{"invalid period", w.ingest, resigned(func(s *agreement.PeriodStatement) { s.Period = "2026/11" }), meter.CodeMalformed},
		{"invalid meter ID", w.ingest, resigned(func(s *agreement.PeriodStatement) { s.MeterID = "-x" }), meter.CodeMalformed},
		{"uppercase key hash", w.ingest, resigned(func(s *agreement.PeriodStatement) { s.PublicKeySHA256 = strings.ToUpper(s.PublicKeySHA256) }), meter.CodeMalformed},
		{"customer key not PEM", w.ingest, with(func(r *agreement.PeriodRequest) { r.CustomerKey = "key" }), meter.CodeInvalidKey},
		{"signed by another key", w.ingest, with(func(r *agreement.PeriodRequest) { r.CustomerSignature = sign(t, w.other, r.Statement) }), meter.CodeBadSignature},
		{"key of another party", w.ingest, with(func(r *agreement.PeriodRequest) { r.CustomerKey = w.other.Public().PEM() }), meter.CodeBadSignature},
		{"statement changed after signing", w.ingest, with(func(r *agreement.PeriodRequest) { r.Statement.Slots = 95 }), meter.CodeBadSignature},
		{"signature not base64", w.ingest, with(func(r *agreement.PeriodRequest) { r.CustomerSignature = "%%%" }), meter.CodeMalformed},
		{"no signature", w.ingest, with(func(r *agreement.PeriodRequest) { r.CustomerSignature = "" }), meter.CodeMalformed},
		{"unknown meter", w.ingest, resigned(func(s *agreement.PeriodStatement) { s.MeterID = "PTB-0009" }), meter.CodeMeterNotFound},
		{"revoked meter", w.ingest, resigned(func(s *agreement.PeriodStatement) { s.MeterID = "PTB-0002" }), meter.CodeMeterRevoked},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := w.in(t)
			refused(w, tc.who, tc.code, w.bind(tc.req))
		})
	}
	t.Run("second binding", func(t *testing.T) {
		w := w.in(t)
		ok(w, w.ingest, w.bind(mustJSON(t, good)))
		refused(w, w.ingest, agreement.CodePeriodExists, w.bind(mustJSON(t, good)))
		// Not even with another key: the period stays bound to the first.
		other := good
		other.Statement.PublicKeySHA256 = sha("another functional key")
		other.Statement.CustomerKeySHA256 = w.other.Public().Fingerprint()
		other.CustomerKey, other.CustomerSignature = w.other.Public().PEM(), sign(t, w.other, other.Statement)
		other.MeterSignature = sign(t, w.meterKeys[meterID], other.Statement)
		refused(w, w.ingest, agreement.CodePeriodExists, w.bind(mustJSON(t, other)))
	})
}

// A client that is not the meter's cannot bind the meter's billing period
// first: the binding needs the meter's own signature, with its registered
// key. Before, any client could take another customer's period.
func TestBindPeriodNeedsTheMeter(t *testing.T) {
	w := newWorld(t)
	squat := w.bindRequest(periodStatement(meterID, period))
	squat.Statement.CustomerKeySHA256 = w.other.Public().Fingerprint()
	squat.CustomerKey, squat.CustomerSignature = w.other.Public().PEM(), sign(t, w.other, squat.Statement)
	squat.MeterSignature = sign(t, w.other, squat.Statement) // the squatter has no meter key
	err := refused(w, w.ingest, meter.CodeBadSignature, w.bind(mustJSON(t, squat)))
	if !strings.Contains(err.Error(), "only the meter itself") {
		t.Errorf("the refusal does not say why: %v", err)
	}
	// The period is still free for the meter's own customer.
	ok(w, w.ingest, w.bind(mustJSON(t, w.bindRequest(periodStatement(meterID, period)))))
}

func TestAgreeTariffRefusals(t *testing.T) {
	w := newWorld(t)
	good := w.tariffRequest(tariffStatement(meterID, period, tariffHash))
	with := func(change func(*agreement.TariffRequest)) string {
		r := good
		change(&r)
		return mustJSON(t, r)
	}
	resigned := func(st agreement.TariffStatement) string { return mustJSON(t, w.tariffRequest(st)) }
	t.Run("period not bound", func(t *testing.T) {
		refused(w.in(t), w.ingest, agreement.CodePeriodNotFound, w.agree(meterID, period, mustJSON(t, good)))
	})
	w.bound()
	cases := []struct {
		name            string
		who             *stubtest.Identity
		meterID, period string
		req             string
		code            meter.Code
	}{
		{"auditor", w.auditor, meterID, period, mustJSON(t, good), meter.CodeForbidden},
		{"invalid meter ID", w.ingest, "-x", period, mustJSON(t, good), meter.CodeMalformed},
		{"invalid period", w.ingest, meterID, "", mustJSON(t, good), meter.CodeMalformed},
		{"not JSON", w.ingest, meterID, period, "[]", meter.CodeMalformed},
		{"unknown field", w.ingest, meterID, period, strings.TrimSuffix(mustJSON(t, good), "}") + `,"amount":1}`, meter.CodeMalformed},
		{"wrong statement type", w.ingest, meterID, period, resigned(agreement.TariffStatement{Type: agreement.TypeKey, MeterID: meterID, Period: period, TariffSHA256: tariffHash}), meter.CodeMalformed},
		{"statement of another meter", w.ingest, meterID, period, resigned(tariffStatement("PTB-0003", period, tariffHash)), meter.CodeMeterMismatch},
		{"statement of another period", w.ingest, meterID, period, resigned(tariffStatement(meterID, "2026-11-21", tariffHash)), agreement.CodePeriodMismatch},
		{"tariff hash not hex", w.ingest, meterID, period, resigned(tariffStatement(meterID, period, "tariff")), meter.CodeMalformed},
		{"unbound period of the meter", w.ingest, meterID, "2026-11-21", resigned(tariffStatement(meterID, "2026-11-21", tariffHash)), agreement.CodePeriodNotFound},
		{"utility key not PEM", w.ingest, meterID, period, with(func(r *agreement.TariffRequest) { r.UtilityKey = "" }), meter.CodeInvalidKey},
		{"customer signature by another key", w.ingest, meterID, period, with(func(r *agreement.TariffRequest) { r.CustomerSignature = sign(t, w.other, r.Statement) }), meter.CodeBadSignature},
		{"customer signature by the utility", w.ingest, meterID, period, with(func(r *agreement.TariffRequest) { r.CustomerSignature = r.UtilitySignature }), meter.CodeBadSignature},
		{"utility signature by another key", w.ingest, meterID, period, with(func(r *agreement.TariffRequest) { r.UtilitySignature = sign(t, w.other, r.Statement) }), meter.CodeBadSignature},
		{"utility key of another party", w.ingest, meterID, period, with(func(r *agreement.TariffRequest) { r.UtilityKey = w.other.Public().PEM() }), meter.CodeBadSignature},
		{"utility signature not base64", w.ingest, meterID, period, with(func(r *agreement.TariffRequest) { r.UtilitySignature = "*" }), meter.CodeMalformed},
		{"the customer as the utility", w.ingest, meterID, period, with(func(r *agreement.TariffRequest) {
			r.Statement.UtilityKeySHA256 = w.customer.Public().Fingerprint()
			r.UtilityKey, r.CustomerSignature = w.customer.Public().PEM(), sign(t, w.customer, r.Statement)
			r.UtilitySignature = r.CustomerSignature
		}), meter.CodeMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := w.in(t)
			refused(w, tc.who, tc.code, w.agree(tc.meterID, tc.period, tc.req))
		})
	}
	t.Run("second agreement", func(t *testing.T) {
		w := w.in(t)
		ok(w, w.ingest, w.agree(meterID, period, mustJSON(t, good)))
		refused(w, w.ingest, agreement.CodeAgreementExists, w.agree(meterID, period, mustJSON(t, good)))
		refused(w, w.ingest, agreement.CodeAgreementExists, w.agree(meterID, period, resigned(tariffStatement(meterID, period, sha("cheaper")))))
	})
}

func TestRecordKeyIssuedRefusals(t *testing.T) {
	w := newWorld(t)
	good := w.keyRequest(keyStatement(meterID, period, tariffHash))
	t.Run("period not bound", func(t *testing.T) {
		refused(w.in(t), w.ingest, agreement.CodePeriodNotFound, w.keyIssued(meterID, period, mustJSON(t, good)))
	})
	w.bound()
	t.Run("no agreement", func(t *testing.T) {
		refused(w.in(t), w.ingest, agreement.CodeNoAgreement, w.keyIssued(meterID, period, mustJSON(t, good)))
	})
	ok(w, w.ingest, w.agree(meterID, period, mustJSON(t, w.tariffRequest(tariffStatement(meterID, period, tariffHash)))))
	resigned := func(st agreement.KeyStatement) string { return mustJSON(t, w.keyRequest(st)) }
	cases := []struct {
		name            string
		who             *stubtest.Identity
		meterID, period string
		req             string
		code            meter.Code
	}{
		{"auditor", w.auditor, meterID, period, mustJSON(t, good), meter.CodeForbidden},
		{"invalid period", w.ingest, meterID, "a b", mustJSON(t, good), meter.CodeMalformed},
		{"unknown field", w.ingest, meterID, period, strings.TrimSuffix(mustJSON(t, good), "}") + `,"key":"secret"}`, meter.CodeMalformed},
		{"wrong statement type", w.ingest, meterID, period, resigned(agreement.KeyStatement{Type: agreement.TypeBill, MeterID: meterID, Period: period, TariffSHA256: tariffHash}), meter.CodeMalformed},
		{"statement of another meter", w.ingest, meterID, period, resigned(keyStatement("PTB-0003", period, tariffHash)), meter.CodeMeterMismatch},
		{"statement of another period", w.ingest, meterID, period, resigned(keyStatement(meterID, "2026-11-21", tariffHash)), agreement.CodePeriodMismatch},
		{"another tariff", w.ingest, meterID, period, resigned(keyStatement(meterID, period, sha("another tariff"))), agreement.CodeTariffMismatch},
		{"signed by the utility", w.ingest, meterID, period, mustJSON(t, agreement.KeyRequest{Statement: good.Statement, CustomerSignature: sign(t, w.utility, good.Statement)}), meter.CodeBadSignature},
		{"signed by another key", w.ingest, meterID, period, mustJSON(t, agreement.KeyRequest{Statement: good.Statement, CustomerSignature: sign(t, w.other, good.Statement)}), meter.CodeBadSignature},
		{"no signature", w.ingest, meterID, period, mustJSON(t, agreement.KeyRequest{Statement: good.Statement}), meter.CodeMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := w.in(t)
			refused(w, tc.who, tc.code, w.keyIssued(tc.meterID, tc.period, tc.req))
		})
	}
	t.Run("second record", func(t *testing.T) {
		w := w.in(t)
		ok(w, w.ingest, w.keyIssued(meterID, period, mustJSON(t, good)))
		refused(w, w.ingest, agreement.CodeKeyIssued, w.keyIssued(meterID, period, mustJSON(t, good)))
	})
}

func TestRecordBillRefusals(t *testing.T) {
	w := newWorld(t)
	good := w.billRequest(billStatement(meterID, period, tariffHash, 96))
	t.Run("period not bound", func(t *testing.T) {
		refused(w.in(t), w.ingest, agreement.CodePeriodNotFound, w.bill(meterID, period, mustJSON(t, good)))
	})
	w.bound()
	t.Run("no agreement", func(t *testing.T) {
		refused(w.in(t), w.ingest, agreement.CodeNoAgreement, w.bill(meterID, period, mustJSON(t, good)))
	})
	ok(w, w.ingest, w.agree(meterID, period, mustJSON(t, w.tariffRequest(tariffStatement(meterID, period, tariffHash)))))
	resigned := func(st agreement.BillStatement) string { return mustJSON(t, w.billRequest(st)) }
	signedBy := func(key *meter.PrivateKey) string {
		return mustJSON(t, agreement.BillRequest{Statement: good.Statement, UtilitySignature: sign(t, key, good.Statement)})
	}
	cases := []struct {
		name            string
		who             *stubtest.Identity
		meterID, period string
		req             string
		code            meter.Code
	}{
		{"auditor", w.auditor, meterID, period, mustJSON(t, good), meter.CodeForbidden},
		{"invalid meter ID", w.ingest, "PTB 1", period, mustJSON(t, good), meter.CodeMalformed},
		{"amount as a string", w.ingest, meterID, period, strings.Replace(mustJSON(t, good), `"amount":1234567`, `"amount":"1234567"`, 1), meter.CodeMalformed},
		{"negative amount", w.ingest, meterID, period, strings.Replace(mustJSON(t, good), `"amount":1234567`, `"amount":-1`, 1), meter.CodeMalformed},
		{"wrong statement type", w.ingest, meterID, period, resigned(agreement.BillStatement{Type: agreement.TypeKey, MeterID: meterID, Period: period, TariffSHA256: tariffHash, Slots: 96}), meter.CodeMalformed},
		{"statement of another meter", w.ingest, meterID, period, resigned(billStatement("PTB-0003", period, tariffHash, 96)), meter.CodeMeterMismatch},
		{"statement of another period", w.ingest, meterID, period, resigned(billStatement(meterID, "2026-11-21", tariffHash, 96)), agreement.CodePeriodMismatch},
		{"another tariff", w.ingest, meterID, period, resigned(billStatement(meterID, period, sha("another tariff"), 96)), agreement.CodeTariffMismatch},
		{"a slot short", w.ingest, meterID, period, resigned(billStatement(meterID, period, tariffHash, 95)), agreement.CodeSlotsMismatch},
		{"a slot over", w.ingest, meterID, period, resigned(billStatement(meterID, period, tariffHash, 97)), agreement.CodeSlotsMismatch},
		{"no slots", w.ingest, meterID, period, resigned(billStatement(meterID, period, tariffHash, 0)), meter.CodeMalformed},
		{"signature not base64", w.ingest, meterID, period, mustJSON(t, agreement.BillRequest{Statement: good.Statement, UtilitySignature: "a b"}), meter.CodeMalformed},
		{"signed by another key", w.ingest, meterID, period, signedBy(w.other), meter.CodeBadSignature},
		{"signed by the customer", w.ingest, meterID, period, signedBy(w.customer), meter.CodeBadSignature},
		{"amount changed after signing", w.ingest, meterID, period, strings.Replace(mustJSON(t, good), `"amount":1234567`, `"amount":1`, 1), meter.CodeBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := w.in(t)
			refused(w, tc.who, tc.code, w.bill(tc.meterID, tc.period, tc.req))
		})
	}
	t.Run("second bill", func(t *testing.T) {
		w := w.in(t)
		ok(w, w.ingest, w.bill(meterID, period, mustJSON(t, good)))
		refused(w, w.ingest, agreement.CodeBillExists, w.bill(meterID, period, mustJSON(t, good)))
		lower := billStatement(meterID, period, tariffHash, 96)
		lower.Amount = 1
		refused(w, w.ingest, agreement.CodeBillExists, w.bill(meterID, period, resigned(lower)))
	})
}

func TestGetBillingPeriod(t *testing.T) {
	w := newWorld(t)
	refused(w, w.auditor, agreement.CodePeriodNotFound, w.read(meterID, period))
	refused(w, w.auditor, meter.CodeMalformed, w.read("-x", period))
	refused(w, w.auditor, meter.CodeMalformed, w.read(meterID, strings.Repeat("p", 33)))
	w.agreed()
	rec, _ := ok(w, w.auditor, w.read(meterID, period))
	if rec.Tariff == nil || rec.Key != nil || rec.Bill != nil {
		t.Fatalf("record %s", mustJSON(t, rec))
	}
}

// A ledger failure is INTERNAL and fails the whole transaction.
func TestLedgerFailure(t *testing.T) {
	w := newWorld(t)
	w.fault = func(op, key string) error {
		if op == "PutState" && strings.HasPrefix(key, "fe/") {
			return errors.New("leveldb: closed")
		}
		return nil
	}
	err := refused(w, w.ingest, meter.CodeInternal, w.bind(mustJSON(t, w.bindRequest(periodStatement(meterID, period)))))
	if !strings.Contains(err.Error(), "leveldb: closed") {
		t.Errorf("the cause is lost: %v", err)
	}
	w.fault = nil
	w.bound()
	w.ledger.State[agreement.Key(meterID, period)] = []byte("{")
	refused(w, w.auditor, meter.CodeInternal, w.read(meterID, period))
}

// Whoever sees a binding request on its way (the registry's operator, an
// endorsing NMI) puts a key of its own in the customer's place, signs the
// same statement with it and submits first, with the meter's consent taken
// from the request: refused, since the statement the meter signed names
// the customer's key. Before, the period was bound to the attacker.
func TestAttackSwapTheCustomerKey(t *testing.T) {
	w := newWorld(t)
	honest := w.bindRequest(periodStatement(meterID, period))
	swapped := honest
	swapped.CustomerKey, swapped.CustomerSignature = w.other.Public().PEM(), sign(t, w.other, honest.Statement)
	refused(w, w.ingest, meter.CodeBadSignature, w.bind(mustJSON(t, swapped)))
	ok(w, w.ingest, w.bind(mustJSON(t, honest)))
}

// The same on the tariff agreement: the attacker replaces the utility's key
// and signature with its own, to record later a bill of any amount under
// that key. Refused: the customer's signature covers the utility's key.
// Before, the agreement was recorded with the attacker as the utility.
func TestAttackSwapTheUtilityKey(t *testing.T) {
	w := newWorld(t)
	ok(w, w.ingest, w.bind(mustJSON(t, w.bindRequest(periodStatement(meterID, period)))))
	honest := w.tariffRequest(tariffStatement(meterID, period, tariffHash))
	swapped := honest
	swapped.UtilityKey, swapped.UtilitySignature = w.other.Public().PEM(), sign(t, w.other, honest.Statement)
	refused(w, w.ingest, meter.CodeBadSignature, w.agree(meterID, period, mustJSON(t, swapped)))
	ok(w, w.ingest, w.agree(meterID, period, mustJSON(t, honest)))
	// A bill signed by another key than the agreed utility's, or naming
	// another customer, is refused too.
	bill := w.billRequest(billStatement(meterID, period, tariffHash, 96))
	forged := bill
	forged.UtilitySignature = sign(t, w.other, bill.Statement)
	ok(w, w.ingest, w.keyIssued(meterID, period, mustJSON(t, w.keyRequest(keyStatement(meterID, period, tariffHash)))))
	refused(w, w.ingest, meter.CodeBadSignature, w.bill(meterID, period, mustJSON(t, forged)))
	other := billStatement(meterID, period, tariffHash, 96)
	other.CustomerKeySHA256 = w.other.Public().Fingerprint()
	refused(w, w.ingest, meter.CodeBadSignature, w.bill(meterID, period, mustJSON(t, w.billRequest(other))))
}
