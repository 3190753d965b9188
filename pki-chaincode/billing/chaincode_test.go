package billing_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/billing"
	"github.com/inter-nmi/pki/pki-chaincode/contract"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// TestChaincode drives the billing contract through contractapi as the peer
// does, beside the pki contract as the chaincode serves them: the pki
// contract stays the default, billing transactions carry the "billing:"
// prefix, and every result passes contractapi's check against the metadata.
func TestChaincode(t *testing.T) {
	cc, err := contractapi.NewChaincode(contract.New(contract.WithClock(nil)), billing.New(billing.WithClock(nil)))
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	call := func(fn string, args ...string) *agreement.Record {
		t.Helper()
		resp := w.invoke(cc, w.ingest, fn, args...)
		if resp.Status != 200 {
			t.Fatalf("%s: status %d: %s", fn, resp.Status, resp.Message)
		}
		rec := new(agreement.Record)
		if err := json.Unmarshal(resp.Payload, rec); err != nil {
			t.Fatalf("%s: %s: %v", fn, resp.Payload, err)
		}
		return rec
	}

	var md struct {
		Contracts map[string]struct {
			Transactions []struct {
				Name string   `json:"name"`
				Tag  []string `json:"tag"`
			} `json:"transactions"`
		} `json:"contracts"`
	}
	resp := w.invoke(cc, w.auditor, "org.hyperledger.fabric:GetMetadata")
	if err := json.Unmarshal(resp.Payload, &md); err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, tx := range md.Contracts[agreement.Contract].Transactions {
		tags[tx.Name] = strings.Join(tx.Tag, ",")
	}
	want := map[string]string{"BindPeriod": "SUBMIT", "AgreeTariff": "SUBMIT", "RecordKeyIssued": "SUBMIT",
		"RecordBill": "SUBMIT", "GetBillingPeriod": "EVALUATE"}
	if len(tags) != len(want) {
		t.Errorf("the billing contract has transactions %v, want %v", tags, want)
	}
	for name, tag := range want {
		if !strings.Contains(tags[name], tag) {
			t.Errorf("%s is tagged %q, want %s", name, tags[name], tag)
		}
	}

	// The pki contract answers without a prefix, as before.
	resp = w.invoke(cc, w.auditor, "GetMeter", meterID)
	var m meter.Meter
	if resp.Status != 200 || json.Unmarshal(resp.Payload, &m) != nil || m.ID != meterID {
		t.Fatalf("GetMeter: %d %s", resp.Status, resp.Message)
	}

	bound := call("billing:BindPeriod", mustJSON(t, w.bindRequest(periodStatement(meterID, period))))
	if got := call("billing:GetBillingPeriod", meterID, period); !reflect.DeepEqual(got, bound) || got.Tariff != nil {
		t.Fatalf("read %s, want %s", mustJSON(t, got), mustJSON(t, bound))
	}
	call("billing:AgreeTariff", meterID, period, mustJSON(t, w.tariffRequest(tariffStatement(meterID, period, tariffHash))))
	call("billing:RecordKeyIssued", meterID, period, mustJSON(t, w.keyRequest(keyStatement(meterID, period, tariffHash))))
	billed := call("billing:RecordBill", meterID, period, mustJSON(t, w.billRequest(billStatement(meterID, period, tariffHash, 96))))
	if billed.Tariff == nil || billed.Key == nil || billed.Bill == nil || billed.Bill.Amount != 1234567 {
		t.Fatalf("billed %s", mustJSON(t, billed))
	}
	if got := call("billing:GetBillingPeriod", meterID, period); !reflect.DeepEqual(got, billed) {
		t.Fatalf("read %s, want %s", mustJSON(t, got), mustJSON(t, billed))
	}

	// A refusal crosses the boundary as "CODE: message" and commits nothing.
	before := w.ledger.Snapshot()
	for _, c := range []struct {
		fn   string
		args []string
		code meter.Code
	}{
		{"billing:RecordBill", []string{meterID, period, mustJSON(t, w.billRequest(billStatement(meterID, period, tariffHash, 96)))}, agreement.CodeBillExists},
		{"billing:GetBillingPeriod", []string{meterID, "2026-11-21"}, agreement.CodePeriodNotFound},
		// Without the prefix the name is the pki contract's, which refuses
		// any name but its own transactions'.
		{"BindPeriod", []string{mustJSON(t, w.bindRequest(periodStatement(meterID, "2026-11-21")))}, meter.CodeMalformed},
		{"billing:AgreeTariff", []string{meterID, period}, ""},
	} {
		resp := w.invoke(cc, w.ingest, c.fn, c.args...)
		e, found := meter.ParseErrorIn("chaincode response 500, "+resp.Message, slices.Concat(meter.Codes, agreement.Codes))
		if resp.Status != 500 || found != (c.code != "") || (found && e.Code != c.code) {
			t.Errorf("%s: %d %q, want a refusal with code %q", c.fn, resp.Status, resp.Message, c.code)
		}
	}
	resp = w.invoke(cc, w.auditor, "billing:BindPeriod", mustJSON(t, w.bindRequest(periodStatement(meterID, "2026-11-21"))))
	if e, found := meter.ParseError(resp.Message); resp.Status != 500 || !found || e.Code != meter.CodeForbidden {
		t.Errorf("auditor: %d %q", resp.Status, resp.Message)
	}
	if d := before.Diff(w.ledger.Snapshot()); d != "" {
		t.Fatalf("refused transactions changed the state: %s", d)
	}
}
