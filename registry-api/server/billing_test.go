package server

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
)

const (
	billedMeter  = "PTB-0001"
	billedPeriod = "2026-11-20"
)

// billingParties are the customer's and the utility's keys and the valid,
// signed requests of one period.
type billingParties struct {
	customer, utility, other *meter.PrivateKey
	tariffHash               string

	bind   api.BillingPeriodRequest
	tariff api.TariffAgreementRequest
	key    api.KeyIssuedRequest
	bill   api.BillRequest
}

func newBillingParties(t testing.TB) *billingParties {
	t.Helper()
	newKey := func() *meter.PrivateKey {
		k, err := meter.GenerateKey(meter.P256)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	p := &billingParties{customer: newKey(), utility: newKey(), other: newKey(), tariffHash: meter.IdentityHash("tariff")}
	ps := periodStatement(billedMeter, billedPeriod)
	ps.CustomerKeySHA256 = p.customer.Public().Fingerprint()
	cfp, ufp := p.customer.Public().Fingerprint(), p.utility.Public().Fingerprint()
	p.bind = api.BillingPeriodRequest{Statement: ps, CustomerKey: p.customer.Public().PEM(), CustomerSignature: p.sign(t, p.customer, ps),
		MeterSignature: p.sign(t, p.customer, ps)} // the fake ledger does not check whose it is
	ts := agreement.TariffStatement{Type: agreement.TypeTariff, MeterID: billedMeter, Period: billedPeriod, TariffSHA256: p.tariffHash,
		CustomerKeySHA256: cfp, UtilityKeySHA256: ufp}
	p.tariff = api.TariffAgreementRequest{Statement: ts, UtilityKey: p.utility.Public().PEM(),
		CustomerSignature: p.sign(t, p.customer, ts), UtilitySignature: p.sign(t, p.utility, ts)}
	ks := agreement.KeyStatement{Type: agreement.TypeKey, MeterID: billedMeter, Period: billedPeriod, TariffSHA256: p.tariffHash,
		CustomerKeySHA256: cfp, UtilityKeySHA256: ufp}
	p.key = api.KeyIssuedRequest{Statement: ks, CustomerSignature: p.sign(t, p.customer, ks)}
	bs := agreement.BillStatement{Type: agreement.TypeBill, MeterID: billedMeter, Period: billedPeriod, TariffSHA256: p.tariffHash,
		CustomerKeySHA256: cfp, UtilityKeySHA256: ufp, Amount: 1234567, Slots: 96}
	p.bill = api.BillRequest{Statement: bs, UtilitySignature: p.sign(t, p.utility, bs)}
	return p
}

func (p *billingParties) sign(t testing.TB, key *meter.PrivateKey, statement any) string {
	t.Helper()
	sig, err := agreement.Sign(key, statement)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestBilling submits each billing statement as the party that may, and
// checks what reached the ledger and what came back.
func TestBilling(t *testing.T) {
	p := newBillingParties(t)
	periodPath := "/api/v1/billing/periods/" + billedMeter + "/" + billedPeriod
	cases := []struct {
		name string
		req  request
		tx   string
		// args are the transaction's arguments before the request's JSON.
		args []string
		// body is the request, as the chaincode's request type decodes it.
		body, decoded any
		check         func(t *testing.T, rec *agreement.Record)
	}{
		{"bind", post("/api/v1/billing/periods", customer, p.bind), "billing:BindPeriod", nil, p.bind, new(agreement.PeriodRequest),
			func(t *testing.T, rec *agreement.Record) {
				if rec.Period != p.bind.Statement || rec.CustomerKey != p.bind.CustomerKey {
					t.Errorf("record %+v", rec)
				}
			}},
		{"tariff by the customer", post(periodPath+"/tariff", customer, p.tariff), "billing:AgreeTariff", []string{billedMeter, billedPeriod}, p.tariff, new(agreement.TariffRequest),
			func(t *testing.T, rec *agreement.Record) {
				if rec.Tariff == nil || rec.Tariff.TariffSHA256 != p.tariffHash || rec.Tariff.UtilitySignature != p.tariff.UtilitySignature {
					t.Errorf("record %+v", rec)
				}
			}},
		{"tariff by the utility", post(periodPath+"/tariff", utility, p.tariff), "billing:AgreeTariff", []string{billedMeter, billedPeriod}, p.tariff, new(agreement.TariffRequest),
			func(t *testing.T, rec *agreement.Record) {
				if rec.Tariff == nil {
					t.Errorf("record %+v", rec)
				}
			}},
		{"key", post(periodPath+"/key", customer, p.key), "billing:RecordKeyIssued", []string{billedMeter, billedPeriod}, p.key, new(agreement.KeyRequest),
			func(t *testing.T, rec *agreement.Record) {
				if rec.Key == nil || rec.Key.CustomerSignature != p.key.CustomerSignature {
					t.Errorf("record %+v", rec)
				}
			}},
		{"bill", post(periodPath+"/bill", utility, p.bill), "billing:RecordBill", []string{billedMeter, billedPeriod}, p.bill, new(agreement.BillRequest),
			func(t *testing.T, rec *agreement.Record) {
				if rec.Bill == nil || rec.Bill.Amount != 1234567 || rec.Bill.Slots != 96 {
					t.Errorf("record %+v", rec)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			rec := f.do(c.req)
			got := decode[api.BillingReceipt](t, rec, http.StatusCreated)
			if loc := rec.Header().Get("Location"); loc != periodPath {
				t.Errorf("Location = %q, want %s", loc, periodPath)
			}
			if got.TxID != "tx001" || got.Block != 101 || got.Record == nil {
				t.Fatalf("receipt = %+v", got)
			}
			c.check(t, got.Record)
			calls := f.ledger.recorded()
			if len(calls) != 1 || calls[0].Method != "SubmitAll" || calls[0].Tx != c.tx || calls[0].Role != roleOf[c.req.as] {
				t.Fatalf("calls = %+v, want one %s submitted as %s", calls, c.tx, roleOf[c.req.as])
			}
			args := calls[0].Args
			if len(args) != len(c.args)+1 {
				t.Fatalf("args = %q", args)
			}
			for i, a := range c.args {
				if args[i] != a {
					t.Errorf("argument %d = %q, want %q", i, args[i], a)
				}
			}
			// The chaincode decodes the body strictly into its own request type.
			if err := decodeStrict([]byte(args[len(args)-1]), c.decoded); err != nil {
				t.Fatalf("the chaincode cannot decode %s: %v", args[len(args)-1], err)
			}
			if jsonText(c.decoded) != jsonText(c.body) {
				t.Errorf("the chaincode got %s, want %s", jsonText(c.decoded), jsonText(c.body))
			}
		})
	}
}

func TestGetBillingPeriod(t *testing.T) {
	f := newFixture(t)
	got := decode[agreement.Record](t, f.do(get("/api/v1/billing/periods/PTB-0001/2026-11-20?minBlock=42", auditor)), http.StatusOK)
	if got.Period.MeterID != "PTB-0001" || got.Period.Period != "2026-11-20" {
		t.Errorf("record %+v", got)
	}
	calls := f.ledger.recorded()
	if len(calls) != 2 || calls[0].Method != "AwaitBlock" || calls[0].Block != 42 ||
		calls[1].Method != "Evaluate" || calls[1].Tx != "billing:GetBillingPeriod" || calls[1].Role != api.RoleAuditor ||
		jsonText(calls[1].Args) != `["PTB-0001","2026-11-20"]` {
		t.Fatalf("calls = %+v", calls)
	}
	// Every role reads, the parties as themselves.
	for _, as := range []string{customer, utility, operator, ingest} {
		decode[agreement.Record](t, f.do(get("/api/v1/billing/periods/PTB-0001/2026-11-20", as)), http.StatusOK)
		if c := f.ledger.recorded(); c[len(c)-1].Role != roleOf[as] {
			t.Errorf("read by %s evaluated as %s", as, c[len(c)-1].Role)
		}
	}
	f.ledger.on("billing:GetBillingPeriod", fails(meter.Errorf(agreement.CodePeriodNotFound, "period 2026-11-21 of meter PTB-0001 is not bound")))
	problemOf(t, f.do(get("/api/v1/billing/periods/PTB-0001/2026-11-21", auditor)), http.StatusNotFound, string(agreement.CodePeriodNotFound))
}

// TestBillingRefusals answers the billing contract's refusals with their
// status and code.
func TestBillingRefusals(t *testing.T) {
	p := newBillingParties(t)
	periodPath := "/api/v1/billing/periods/" + billedMeter + "/" + billedPeriod
	cases := []struct {
		tx     string
		req    request
		code   meter.Code
		status int
	}{
		{"billing:BindPeriod", post("/api/v1/billing/periods", customer, p.bind), agreement.CodePeriodExists, http.StatusConflict},
		{"billing:BindPeriod", post("/api/v1/billing/periods", customer, p.bind), meter.CodeMeterNotFound, http.StatusNotFound},
		{"billing:BindPeriod", post("/api/v1/billing/periods", customer, p.bind), meter.CodeMeterRevoked, http.StatusConflict},
		{"billing:AgreeTariff", post(periodPath+"/tariff", utility, p.tariff), agreement.CodePeriodNotFound, http.StatusNotFound},
		{"billing:AgreeTariff", post(periodPath+"/tariff", utility, p.tariff), agreement.CodeAgreementExists, http.StatusConflict},
		{"billing:AgreeTariff", post(periodPath+"/tariff", utility, p.tariff), meter.CodeBadSignature, http.StatusUnprocessableEntity},
		{"billing:RecordKeyIssued", post(periodPath+"/key", customer, p.key), agreement.CodeNoAgreement, http.StatusConflict},
		{"billing:RecordKeyIssued", post(periodPath+"/key", customer, p.key), agreement.CodeKeyIssued, http.StatusConflict},
		{"billing:RecordKeyIssued", post(periodPath+"/key", customer, p.key), agreement.CodeTariffMismatch, http.StatusUnprocessableEntity},
		{"billing:RecordBill", post(periodPath+"/bill", utility, p.bill), agreement.CodeBillExists, http.StatusConflict},
		{"billing:RecordBill", post(periodPath+"/bill", utility, p.bill), agreement.CodeSlotsMismatch, http.StatusUnprocessableEntity},
		{"billing:RecordBill", post(periodPath+"/bill", utility, p.bill), meter.CodeForbidden, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.tx+" "+string(c.code), func(t *testing.T) {
			f := newFixture(t)
			f.ledger.on(c.tx, fails(meter.Errorf(c.code, "refused for the test")))
			if p := problemOf(t, f.do(c.req), c.status, string(c.code)); p.Detail != "refused for the test" {
				t.Errorf("detail %q, want the chaincode's message", p.Detail)
			}
		})
	}
}

// A retried billing write with the same Idempotency-Key is answered from
// the registry, not submitted again.
func TestBillingIdempotent(t *testing.T) {
	f := newFixture(t)
	p := newBillingParties(t)
	req := post("/api/v1/billing/periods", customer, p.bind).with(HeaderIdempotencyKey, "bind-1")
	first := f.do(req)
	second := f.do(req)
	if first.Code != http.StatusCreated || second.Code != http.StatusCreated || second.Body.String() != first.Body.String() ||
		second.Header().Get("Idempotent-Replayed") != "true" || second.Header().Get("Location") != first.Header().Get("Location") {
		t.Fatalf("first %d %s, second %d %s %v", first.Code, first.Body, second.Code, second.Body, second.Header())
	}
	if n := len(f.ledger.named("billing:BindPeriod")); n != 1 {
		t.Errorf("BindPeriod submitted %d times, want once", n)
	}
	var rec api.BillingReceipt
	if err := json.Unmarshal(second.Body.Bytes(), &rec); err != nil || rec.Record.PeriodTx != "tx-bind" {
		t.Errorf("replayed %s: %v", second.Body, err)
	}
}
