package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/client"
)

// exchange is one request the fake registry received.
type exchange struct {
	method, path, query, key, auth string
	body                           []byte
}

// fakeRegistry answers every request with the next of its answers and
// records what it received.
type fakeRegistry struct {
	mu       sync.Mutex
	got      []exchange
	statuses []int
	answer   any
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.got = append(f.got, exchange{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery,
		key: r.Header.Get("Idempotency-Key"), auth: r.Header.Get("Authorization"), body: body})
	status := http.StatusCreated
	if len(f.statuses) > 0 {
		status, f.statuses = f.statuses[0], f.statuses[1:]
	}
	answer := f.answer
	f.mu.Unlock()
	if status >= 400 {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(api.Problem{Type: api.ProblemType("PERIOD_EXISTS"), Title: "Conflict", Status: status,
			Detail: "period 2026-11-20 of meter PTB-0001 is bound already", Code: "PERIOD_EXISTS"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(answer)
}

func newClient(t *testing.T, h http.Handler) *client.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := client.New(client.Options{BaseURL: srv.URL, Token: "nmipki_test"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var record = &agreement.Record{
	Period: agreement.PeriodStatement{Type: agreement.TypePeriod, MeterID: "PTB-0001", Period: "2026-11-20",
		Start: "2026-11-20T00:00:00Z", Interval: "15m0s", Slots: 96, Group: 2048, MaxReading: 100000, MaxWeight: 1000,
		PublicKeySHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
	CustomerKey: "-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----\n", CustomerSignature: "c2ln", PeriodTx: "tx-bind",
	Bill: &agreement.BillRecord{Amount: 1234567, TariffSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Slots: 96, UtilitySignature: "c2ln", TxID: "tx-bill", At: "2026-11-21T10:23:00Z"},
}

// TestBillingWrites sends each billing write to its route with its body
// and an Idempotency-Key, and decodes the receipt.
func TestBillingWrites(t *testing.T) {
	ctx := context.Background()
	tariff := agreement.TariffStatement{Type: agreement.TypeTariff, MeterID: "PTB:1", Period: "2026-11-20", TariffSHA256: "ab"}
	cases := []struct {
		name, path string
		body       any
		call       func(*client.Client) (*api.BillingReceipt, error)
	}{
		{"bind", "/api/v1/billing/periods", api.BillingPeriodRequest{Statement: record.Period, CustomerKey: "pem", CustomerSignature: "c2ln"},
			func(c *client.Client) (*api.BillingReceipt, error) {
				return c.BindBillingPeriod(ctx, api.BillingPeriodRequest{Statement: record.Period, CustomerKey: "pem", CustomerSignature: "c2ln"})
			}},
		{"tariff", "/api/v1/billing/periods/PTB:1/2026-11-20/tariff", api.TariffAgreementRequest{Statement: tariff, UtilityKey: "pem"},
			func(c *client.Client) (*api.BillingReceipt, error) {
				return c.AgreeTariff(ctx, "PTB:1", "2026-11-20", api.TariffAgreementRequest{Statement: tariff, UtilityKey: "pem"})
			}},
		{"key", "/api/v1/billing/periods/a%20b/p%2Fq/key", api.KeyIssuedRequest{CustomerSignature: "c2ln"},
			func(c *client.Client) (*api.BillingReceipt, error) {
				return c.RecordKeyIssued(ctx, "a b", "p/q", api.KeyIssuedRequest{CustomerSignature: "c2ln"})
			}},
		{"bill", "/api/v1/billing/periods/PTB-0001/2026-11-20/bill", api.BillRequest{Statement: agreement.BillStatement{Amount: 7, Slots: 96}},
			func(c *client.Client) (*api.BillingReceipt, error) {
				return c.RecordBill(ctx, "PTB-0001", "2026-11-20", api.BillRequest{Statement: agreement.BillStatement{Amount: 7, Slots: 96}})
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := &api.BillingReceipt{Record: record, Tx: api.Tx{TxID: "tx9", Block: 42}}
			f := &fakeRegistry{answer: want}
			got, err := tc.call(newClient(t, f))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("receipt %+v, want %+v", got, want)
			}
			if len(f.got) != 1 {
				t.Fatalf("%d requests", len(f.got))
			}
			e := f.got[0]
			if e.method != http.MethodPost || e.path != tc.path || e.key == "" || e.auth != "Bearer nmipki_test" {
				t.Errorf("sent %s %s, Idempotency-Key %q, Authorization %q; want POST %s with a key", e.method, e.path, e.key, e.auth, tc.path)
			}
			if b, _ := json.Marshal(tc.body); string(e.body) != string(b) {
				t.Errorf("body %s, want %s", e.body, b)
			}
		})
	}
}

// A refusal is an *api.Problem; 503 is retried with the same key.
func TestBillingWriteFailures(t *testing.T) {
	f := &fakeRegistry{statuses: []int{http.StatusConflict}}
	c := newClient(t, f)
	_, err := c.BindBillingPeriod(context.Background(), api.BillingPeriodRequest{})
	var p *api.Problem
	if client.ProblemCode(err) != "PERIOD_EXISTS" || !errors.As(err, &p) || p.Status != http.StatusConflict {
		t.Fatalf("error %v, want the PERIOD_EXISTS problem", err)
	}
	if len(f.got) != 1 {
		t.Errorf("a refusal was sent %d times", len(f.got))
	}

	f = &fakeRegistry{statuses: []int{http.StatusServiceUnavailable, http.StatusCreated}, answer: api.BillingReceipt{Record: record}}
	c = newClient(t, f)
	if _, err := c.RecordBill(context.Background(), "PTB-0001", "2026-11-20", api.BillRequest{}); err != nil {
		t.Fatal(err)
	}
	if len(f.got) != 2 || f.got[0].key == "" || f.got[0].key != f.got[1].key || string(f.got[0].body) != string(f.got[1].body) {
		t.Errorf("retry: %d requests with keys %q", len(f.got), []string{f.got[0].key, f.got[len(f.got)-1].key})
	}
}

func TestBillingPeriod(t *testing.T) {
	f := &fakeRegistry{statuses: []int{http.StatusOK}, answer: record}
	got, err := newClient(t, f).BillingPeriod(context.Background(), "PTB-0001", "2026-11-20", client.Read{MinBlock: 42})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, record) {
		t.Errorf("record %+v", got)
	}
	e := f.got[0]
	if e.method != http.MethodGet || e.path != "/api/v1/billing/periods/PTB-0001/2026-11-20" || e.query != "minBlock=42" || e.key != "" || len(e.body) != 0 {
		t.Errorf("sent %s %s?%s, key %q, body %q", e.method, e.path, e.query, e.key, e.body)
	}
}
