package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
)

// The fixture's type and the software versions the tests name.
const fixtureType = "PTB-E350"

var (
	fw12 = meter.Software{ID: "fw-1.2", Checksum: "sha256:9f86d081884c7d65"}
	fw13 = meter.Software{ID: "fw-1.3", Checksum: "sha256:2c26b46b68ffc68f"}
)

func typeRecord() api.TypeRecordRequest {
	return api.TypeRecordRequest{TypeID: fixtureType, Manufacturer: "Acme", Model: "E350", Certificate: "DE-MI003-PTB001",
		Versions: []meter.VersionApproval{{Software: fw12}, {Software: fw13, ApprovedFrom: "2026-12-01T00:00:00Z"}}}
}

// signedUpdate is meter id's statement that it loaded fw13 over fw12,
// signed with a key the tests hold.
func signedUpdate(t *testing.T, id string) meter.SignedUpdate {
	t.Helper()
	k := meterKeys.of(newKeyPEM(t))
	su, err := meter.SignUpdate(k, meter.UpdateStatement{MeterID: id, Time: "2026-12-07T10:00:00Z", From: fw12, To: fw13, Result: meter.UpdateSuccess})
	if err != nil {
		t.Fatal(err)
	}
	return su
}

// TestMeterTypeWrites sends each write of types to its transaction, as the
// operator, with the request's arguments.
func TestMeterTypeWrites(t *testing.T) {
	record := typeRecord()
	cases := []struct {
		name     string
		req      request
		status   int
		tx       string
		args     []string
		location string
	}{
		{"record", post("/api/v1/types", operator, record), http.StatusCreated, wire.TxRecordMeterType,
			[]string{jsonText(record)}, "/api/v1/types/" + fixtureType},
		{"approve", post("/api/v1/types/PTB-E350/versions", operator, api.ApproveRequest{Software: fw13, ApprovedFrom: "2026-12-01T00:00:00+01:00"}),
			http.StatusOK, wire.TxApproveSoftware, []string{fixtureType, fw13.ID, fw13.Checksum, "2026-12-01T00:00:00+01:00"}, ""},
		{"approve at once", post("/api/v1/types/PTB-E350/versions", operator, `{"softwareId":"fw-1.3","softwareChecksum":"sha256:2c26b46b68ffc68f"}`),
			http.StatusOK, wire.TxApproveSoftware, []string{fixtureType, fw13.ID, fw13.Checksum, ""}, ""},
		{"withdraw", post("/api/v1/types/PTB-E350/withdraw", operator, api.WithdrawRequest{SoftwareID: fw12.ID, Reason: "fault in the energy register", From: "2026-11-30T00:00:00Z"}),
			http.StatusOK, wire.TxWithdrawSoftware, []string{fixtureType, fw12.ID, "fault in the energy register", "2026-11-30T00:00:00Z"}, ""},
		{"withdraw at once", post("/api/v1/types/PTB-E350/withdraw", operator, api.WithdrawRequest{SoftwareID: "fw/1.2 (älter)", Reason: "superseded"}),
			http.StatusOK, wire.TxWithdrawSoftware, []string{fixtureType, "fw/1.2 (älter)", "superseded", ""}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			rec := f.do(c.req)
			got := decode[api.TypeReceipt](t, rec, c.status)
			if got.Type == nil || got.Type.ID != fixtureType || got.TxID != "tx001" || got.Block != 101 || got.Duplicate {
				t.Errorf("receipt = %+v", got)
			}
			if loc := rec.Header().Get("Location"); loc != c.location {
				t.Errorf("Location = %q, want %q", loc, c.location)
			}
			calls := f.ledger.recorded()
			if len(calls) != 1 || calls[0].Method != "SubmitAll" || calls[0].Role != api.RoleOperator || calls[0].Tx != c.tx || !slices.Equal(calls[0].Args, c.args) {
				t.Errorf("calls = %+v, want %s%q submitted as operator", calls, c.tx, c.args)
			}
		})
	}
	t.Run("assign", func(t *testing.T) {
		f := newFixture(t)
		req := request{method: http.MethodPut, path: "/api/v1/meters/PTB-0001/type", as: operator, contentType: "application/json",
			body: jsonText(api.AssignTypeRequest{TypeID: fixtureType})}
		got := decode[api.MeterReceipt](t, f.do(req), http.StatusOK)
		if got.Meter == nil || got.Meter.TypeID != fixtureType || got.TxID != "tx001" || got.Duplicate {
			t.Errorf("receipt = %+v", got)
		}
		calls := f.ledger.recorded()
		if len(calls) != 1 || calls[0].Role != api.RoleOperator || calls[0].Tx != wire.TxAssignMeterType || !slices.Equal(calls[0].Args, []string{"PTB-0001", fixtureType}) {
			t.Errorf("calls = %+v", calls)
		}
	})
}

// TestMeterTypeRepeated answers a repeated request, which the ledger
// answers without writing, with the transaction that did what it asks.
func TestMeterTypeRepeated(t *testing.T) {
	assign := request{method: http.MethodPut, path: "/api/v1/meters/PTB-0001/type", as: operator, contentType: "application/json",
		body: jsonText(api.AssignTypeRequest{TypeID: fixtureType})}
	cases := []struct {
		name, tx string
		req      request
		earlier  string
	}{
		{"record", wire.TxRecordMeterType, post("/api/v1/types", operator, typeRecord()), "tx-type"},
		{"approve", wire.TxApproveSoftware, post("/api/v1/types/PTB-E350/versions", operator, api.ApproveRequest{Software: fw13}), "tx-approve"},
		{"assign", wire.TxAssignMeterType, assign, "tx-assign"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.ledger.readOnly[c.tx] = true
			f.ledger.on("GetMeterHistory", func(_ context.Context, args []string) (any, error) {
				typed := meterRecord(args[0], "")
				typed.TypeID = fixtureType
				return []api.MeterVersion{{TxID: "tx-reg", Meter: meterRecord(args[0], "")}, {TxID: "tx-assign", Meter: typed},
					{TxID: "tx-rotate", Meter: typed}}, nil
			})
			got := decode[map[string]any](t, f.do(c.req), http.StatusOK)
			if got["duplicate"] != true || got["txId"] != c.earlier || got["block"] != float64(7) {
				t.Errorf("answer %v, want a duplicate naming %s in block 7", got, c.earlier)
			}
			if n := f.ledger.ordered; n != 0 {
				t.Errorf("%d transactions ordered for a repeated request", n)
			}
		})
	}
}

// TestMeterTypeReads evaluates each read as the caller's role.
func TestMeterTypeReads(t *testing.T) {
	cases := []struct {
		path string
		tx   string
		args []string
	}{
		{"/api/v1/types/PTB-E350", wire.TxGetMeterType, []string{fixtureType}},
		{"/api/v1/types/PTB-E350/history", wire.TxGetMeterTypeHistory, []string{fixtureType}},
		{"/api/v1/types", wire.TxListMeterTypes, []string{"", "100", ""}},
		{"/api/v1/types?nmi=CMIMSP&limit=5", wire.TxListMeterTypes, []string{"CMIMSP", "5", ""}},
		{"/api/v1/types/PTB-E350/meters", wire.TxListTypeMeters, []string{fixtureType, "100", ""}},
	}
	for _, c := range cases {
		for _, as := range []string{auditor, ingest, operator, customer} {
			t.Run(c.path+" as "+as, func(t *testing.T) {
				f := newFixture(t)
				if rec := f.do(get(c.path, as)); rec.Code != http.StatusOK {
					t.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
				calls := f.ledger.recorded()
				if len(calls) != 1 || calls[0].Method != "Evaluate" || calls[0].Tx != c.tx || calls[0].Role != roleOf[as] || !slices.Equal(calls[0].Args, c.args) {
					t.Errorf("calls = %+v, want %s%q evaluated as %s", calls, c.tx, c.args, roleOf[as])
				}
			})
		}
	}
	f := newFixture(t)
	mt := decode[meter.MeterType](t, f.do(get("/api/v1/types/PTB-E350", auditor)), http.StatusOK)
	if mt.ID != fixtureType || mt.NMI != fixtureNMI || len(mt.Versions) != 1 {
		t.Errorf("type = %+v", mt)
	}
	list := decode[api.MeterList](t, f.do(get("/api/v1/types/PTB-E350/meters", auditor)), http.StatusOK)
	if len(list.Meters) != 1 || list.Meters[0].TypeID != fixtureType {
		t.Errorf("meters of the type = %+v", list)
	}
}

// TestMeterSoftware reads the record and the log, and reads them again
// while they disagree.
func TestMeterSoftware(t *testing.T) {
	updated := func(id string) *meter.Meter {
		m := meterRecord(id, "")
		m.TypeID = fixtureType
		m.Install(fw13, "2026-12-07T10:00:00Z", "tx-update")
		m.Updates = &meter.UpdateMark{Count: 1, LastTime: "2026-12-07T10:00:00Z", LastHash: strings.Repeat("a", 64), LastTx: "tx-update"}
		return m
	}
	report := updateReport(meter.UpdateStatement{MeterID: "PTB-0001", Time: "2026-12-07T10:00:00Z", From: fw12, To: fw13, Result: meter.UpdateSuccess},
		"e30=", "MEUCIQ==")

	t.Run("never updated", func(t *testing.T) {
		f := newFixture(t)
		got := decode[api.MeterSoftware](t, f.do(get("/api/v1/meters/PTB-0001/software", auditor)), http.StatusOK)
		if got.Current != fw12 || got.TypeID != "" || len(got.Log) != 0 ||
			len(got.Installed) != 1 || got.Installed[0].Software != fw12 || got.Installed[0].TxID != "tx-reg" {
			t.Errorf("software = %+v", got)
		}
		if calls := f.ledger.recorded(); len(calls) != 2 || calls[0].Tx != wire.TxGetMeter || calls[1].Tx != wire.TxGetSoftwareLog || calls[1].Role != api.RoleAuditor {
			t.Errorf("calls = %+v, want GetMeter and GetSoftwareLog as auditor", calls)
		}
	})
	t.Run("updated", func(t *testing.T) {
		f := newFixture(t)
		f.ledger.on(wire.TxGetMeter, func(_ context.Context, args []string) (any, error) { return updated(args[0]), nil })
		f.ledger.on(wire.TxGetSoftwareLog, returns([]*meter.UpdateReport{report}))
		got := decode[api.MeterSoftware](t, f.do(get("/api/v1/meters/PTB-0001/software?minBlock=9", ingest)), http.StatusOK)
		if got.Current != fw13 || got.TypeID != fixtureType || len(got.Installed) != 2 || got.Installed[1].TxID != "tx-update" ||
			len(got.Log) != 1 || got.Log[0].To != fw13 {
			t.Errorf("software = %+v", got)
		}
	})
	t.Run("an update between the two reads", func(t *testing.T) {
		f := newFixture(t)
		reads := 0
		f.ledger.on(wire.TxGetMeter, func(_ context.Context, args []string) (any, error) {
			reads++
			if reads == 1 {
				return meterRecord(args[0], ""), nil
			}
			return updated(args[0]), nil
		})
		f.ledger.on(wire.TxGetSoftwareLog, returns([]*meter.UpdateReport{report}))
		got := decode[api.MeterSoftware](t, f.do(get("/api/v1/meters/PTB-0001/software", auditor)), http.StatusOK)
		if got.Current != fw13 || len(got.Log) != 1 || reads != 2 {
			t.Errorf("software = %+v after %d reads of the record", got, reads)
		}
	})
	t.Run("record and log keep disagreeing", func(t *testing.T) {
		f := newFixture(t)
		f.ledger.on(wire.TxGetMeter, func(_ context.Context, args []string) (any, error) { return updated(args[0]), nil })
		problemOf(t, f.do(get("/api/v1/meters/PTB-0001/software", auditor)), http.StatusServiceUnavailable, api.CodeConflict)
		if n := len(f.ledger.named(wire.TxGetSoftwareLog)); n != 3 {
			t.Errorf("the log was read %d times, want 3", n)
		}
	})
	t.Run("unknown meter", func(t *testing.T) {
		f := newFixture(t)
		f.ledger.on(wire.TxGetMeter, fails(meter.Errorf(meter.CodeMeterNotFound, "meter PTB-0009 is not registered")))
		problemOf(t, f.do(get("/api/v1/meters/PTB-0009/software", auditor)), http.StatusNotFound, string(meter.CodeMeterNotFound))
	})
}

// TestSoftwareUpdate delivers a meter's statement as the ingest role, with
// the signed bytes and the signature in base64.
func TestSoftwareUpdate(t *testing.T) {
	su := signedUpdate(t, "PTB-0001")
	body := map[string]any{"statement": su.Statement, "signature": su.Signature}
	f := newFixture(t)
	got := decode[api.SoftwareUpdateReceipt](t, f.do(post("/api/v1/meters/PTB-0001/software-updates", ingest, body)), http.StatusCreated)
	if got.MeterID != "PTB-0001" || got.TxID != "tx001" || got.Block != 101 || got.Duplicate || got.Report == nil || got.Report.To != fw13 {
		t.Errorf("receipt = %+v", got)
	}
	want := []string{"PTB-0001", base64.StdEncoding.EncodeToString(su.Statement), base64.StdEncoding.EncodeToString(su.Signature)}
	calls := f.ledger.recorded()
	if len(calls) != 1 || calls[0].Method != "SubmitAll" || calls[0].Role != api.RoleIngest || calls[0].Tx != wire.TxSubmitSoftwareUpdate || !slices.Equal(calls[0].Args, want) {
		t.Errorf("calls = %+v, want %s%q submitted as ingest", calls, wire.TxSubmitSoftwareUpdate, want)
	}
	// The body may name the meter, as the path does.
	decode[api.SoftwareUpdateReceipt](t, f.do(post("/api/v1/meters/PTB-0001/software-updates", ingest, su)), http.StatusCreated)
}

// TestSoftwareUpdateRefused answers a statement the ledger refused with
// the problem of its code, naming the committed transaction that carries
// it as evidence.
func TestSoftwareUpdateRefused(t *testing.T) {
	su := signedUpdate(t, "PTB-0001")
	for _, code := range []meter.Code{meter.CodeBadSignature, meter.CodeSoftwareMismatch, meter.CodeSoftwareNotApproved, meter.CodeReplay,
		meter.CodeMeterRevoked, meter.CodeMeterNotFound, meter.CodeImplausibleTime, meter.CodeMalformed, meter.CodeMeterMismatch} {
		t.Run(string(code), func(t *testing.T) {
			f := newFixture(t)
			f.ledger.on(wire.TxSubmitSoftwareUpdate, returns(meter.UpdateOutcome{MeterID: "PTB-0001", Outcome: meter.UpdateRefused,
				Code: code, Reason: "refused for the test", TxID: "tx-update"}))
			p := problemOf(t, f.do(post("/api/v1/meters/PTB-0001/software-updates", ingest, su)), statusOf[string(code)], string(code))
			if p.TxID != "tx001" || p.Detail != "refused for the test" {
				t.Errorf("problem %+v: want the chaincode's reason and the committed transaction tx001", p)
			}
			if f.ledger.ordered != 1 {
				t.Errorf("%d transactions ordered; a refused statement is committed as evidence", f.ledger.ordered)
			}
		})
	}
	t.Run("refused at endorsement", func(t *testing.T) {
		// A refusal the chaincode returns as an error sends nothing.
		f := newFixture(t)
		f.ledger.on(wire.TxSubmitSoftwareUpdate, fails(meter.Errorf(meter.CodeForbidden, "auditors may not deliver update statements")))
		p := problemOf(t, f.do(post("/api/v1/meters/PTB-0001/software-updates", ingest, su)), http.StatusForbidden, string(meter.CodeForbidden))
		if p.TxID != "" || f.ledger.ordered != 0 {
			t.Errorf("problem %+v, %d ordered: nothing was sent", p, f.ledger.ordered)
		}
	})
}

// TestSoftwareUpdateDuplicate answers a re-delivery, which the ledger
// answers without writing, with the transaction that recorded it.
func TestSoftwareUpdateDuplicate(t *testing.T) {
	su := signedUpdate(t, "PTB-0001")
	st, err := meter.ParseStatement(su.Statement)
	if err != nil {
		t.Fatal(err)
	}
	earlier := updateReport(st, base64.StdEncoding.EncodeToString(su.Statement), base64.StdEncoding.EncodeToString(su.Signature))
	earlier.TxID = "tx-first"
	f := newFixture(t)
	f.ledger.readOnly[wire.TxSubmitSoftwareUpdate] = true
	f.ledger.on(wire.TxSubmitSoftwareUpdate, returns(meter.UpdateOutcome{MeterID: "PTB-0001", Outcome: meter.UpdateDuplicate, Report: earlier, TxID: "tx-now"}))
	got := decode[api.SoftwareUpdateReceipt](t, f.do(post("/api/v1/meters/PTB-0001/software-updates", ingest, su)), http.StatusOK)
	if !got.Duplicate || got.TxID != "tx-first" || got.Block != 7 || got.Report == nil || got.Report.TxID != "tx-first" {
		t.Errorf("receipt = %+v, want a duplicate naming tx-first in block 7", got)
	}
	if f.ledger.ordered != 0 {
		t.Errorf("%d transactions ordered for a re-delivery", f.ledger.ordered)
	}
}

// TestSoftwareIdempotent replays the first answer to a retried write, a
// refusal included, and settles a write whose outcome was lost by asking
// about its transaction, sending no other.
func TestSoftwareIdempotent(t *testing.T) {
	su := signedUpdate(t, "PTB-0001")
	writes := []struct {
		name string
		req  request
		tx   string
	}{
		{"record", post("/api/v1/types", operator, typeRecord()), wire.TxRecordMeterType},
		{"approve", post("/api/v1/types/PTB-E350/versions", operator, api.ApproveRequest{Software: fw13}), wire.TxApproveSoftware},
		{"withdraw", post("/api/v1/types/PTB-E350/withdraw", operator, api.WithdrawRequest{SoftwareID: fw12.ID, Reason: "superseded"}), wire.TxWithdrawSoftware},
		{"assign", request{method: http.MethodPut, path: "/api/v1/meters/PTB-0001/type", as: operator, contentType: "application/json",
			body: jsonText(api.AssignTypeRequest{TypeID: fixtureType})}, wire.TxAssignMeterType},
		{"update", post("/api/v1/meters/PTB-0001/software-updates", ingest, su), wire.TxSubmitSoftwareUpdate},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			f := newFixture(t)
			req := w.req.with(HeaderIdempotencyKey, "k1")
			first := f.do(req)
			assertReplay(t, first, f.do(req))
			if n := len(f.ledger.named(w.tx)); n != 1 {
				t.Errorf("the ledger got %d calls of %s, want 1", n, w.tx)
			}
		})
		t.Run(w.name+" outcome unknown", func(t *testing.T) {
			f := newFixture(t)
			f.ledger.lose = 1
			req := w.req.with(HeaderIdempotencyKey, "k2")
			p := problemOf(t, f.do(req), http.StatusGatewayTimeout, api.CodeOutcomeUnknown)
			retry := f.do(req)
			if retry.Code/100 != 2 {
				t.Fatalf("retry answered %d: %s", retry.Code, retry.Body)
			}
			var got map[string]any
			if err := json.Unmarshal(retry.Body.Bytes(), &got); err != nil || got["txId"] != p.TxID {
				t.Errorf("retry %s, want the answer of %s", retry.Body, p.TxID)
			}
			settled := 0
			for _, c := range f.ledger.recorded() {
				if c.Method == "Settle" && c.Args[0] == p.TxID {
					settled++
				}
			}
			if f.ledger.ordered != 1 || settled != 1 {
				t.Errorf("%d ordered, %d settled; want the one transaction, settled", f.ledger.ordered, settled)
			}
		})
	}
	t.Run("a refused statement", func(t *testing.T) {
		f := newFixture(t)
		f.ledger.on(wire.TxSubmitSoftwareUpdate, returns(meter.UpdateOutcome{MeterID: "PTB-0001", Outcome: meter.UpdateRefused,
			Code: meter.CodeReplay, Reason: "not newer", TxID: "tx-update"}))
		req := post("/api/v1/meters/PTB-0001/software-updates", ingest, su).with(HeaderIdempotencyKey, "k3")
		first := f.do(req)
		problemOf(t, first, http.StatusConflict, string(meter.CodeReplay))
		assertReplay(t, first, f.do(req))
		if f.ledger.ordered != 1 {
			t.Errorf("%d transactions ordered, want 1", f.ledger.ordered)
		}
	})
}

// TestSoftwareRefusals answers the chaincode's refusals of the type routes
// with their problems: another NMI's operator may not change PTB's type
// (NOT_OWNER), and each new code has its status.
func TestSoftwareRefusals(t *testing.T) {
	assign := request{method: http.MethodPut, path: "/api/v1/meters/PTB-0001/type", as: operator, contentType: "application/json",
		body: jsonText(api.AssignTypeRequest{TypeID: fixtureType})}
	typed := registration("PTB-0001", newKeyPEM(t))
	typed.TypeID = fixtureType
	cases := []struct {
		tx   string
		req  request
		code meter.Code
	}{
		{wire.TxRecordMeterType, post("/api/v1/types", operator, typeRecord()), meter.CodeTypeExists},
		{wire.TxApproveSoftware, post("/api/v1/types/PTB-E350/versions", operator, api.ApproveRequest{Software: fw13}), meter.CodeNotOwner},
		{wire.TxApproveSoftware, post("/api/v1/types/PTB-E350/versions", operator, api.ApproveRequest{Software: fw13}), meter.CodeTypeNotFound},
		{wire.TxApproveSoftware, post("/api/v1/types/PTB-E350/versions", operator, api.ApproveRequest{Software: fw13}), meter.CodeVersionExists},
		{wire.TxWithdrawSoftware, post("/api/v1/types/PTB-E350/withdraw", operator, api.WithdrawRequest{SoftwareID: "fw-9", Reason: "r"}), meter.CodeNotOwner},
		{wire.TxWithdrawSoftware, post("/api/v1/types/PTB-E350/withdraw", operator, api.WithdrawRequest{SoftwareID: "fw-9", Reason: "r"}), meter.CodeVersionNotFound},
		{wire.TxWithdrawSoftware, post("/api/v1/types/PTB-E350/withdraw", operator, api.WithdrawRequest{SoftwareID: "fw-9", Reason: "r"}), meter.CodeVersionWithdrawn},
		{wire.TxAssignMeterType, assign, meter.CodeSoftwareNotApproved},
		{wire.TxAssignMeterType, assign, meter.CodeTypeNotFound},
		{wire.TxAssignMeterType, assign, meter.CodeNotOwner},
		{wire.TxRegisterMeter, post("/api/v1/meters", operator, typed), meter.CodeTypeNotFound},
		{wire.TxRegisterMeter, post("/api/v1/meters", operator, typed), meter.CodeSoftwareNotApproved},
		{wire.TxRegisterMeters, post("/api/v1/meters/batch", operator, []meter.Registration{typed}), meter.CodeSoftwareNotApproved},
		{wire.TxGetMeterType, get("/api/v1/types/PTB-E350", auditor), meter.CodeTypeNotFound},
		{wire.TxGetMeterTypeHistory, get("/api/v1/types/PTB-E350/history", auditor), meter.CodeTypeNotFound},
	}
	for _, c := range cases {
		t.Run(c.tx+" "+string(c.code), func(t *testing.T) {
			f := newFixture(t)
			f.ledger.on(c.tx, fails(meter.Errorf(c.code, "refused for the test")))
			p := problemOf(t, f.do(c.req), statusOf[string(c.code)], string(c.code))
			if !strings.Contains(p.Detail, "refused for the test") {
				t.Errorf("detail %q, want the chaincode's message", p.Detail)
			}
			if f.ledger.ordered != 0 {
				t.Errorf("%d transactions ordered after a refusal at endorsement", f.ledger.ordered)
			}
		})
	}
}

// TestSoftwareBadRequests refuses what the chaincode would refuse for its
// form alone, or that cannot be a request, before the ledger sees it.
func TestSoftwareBadRequests(t *testing.T) {
	su := signedUpdate(t, "PTB-0001")
	record := func(change func(*api.TypeRecordRequest)) api.TypeRecordRequest {
		r := typeRecord()
		change(&r)
		return r
	}
	put := func(path, body string) request {
		return request{method: http.MethodPut, path: path, as: operator, contentType: "application/json", body: body}
	}
	const (
		malformed = string(meter.CodeMalformed)
		tooLarge  = string(meter.CodeTooLarge)
	)
	cases := []struct {
		name   string
		req    request
		status int
		code   string
	}{
		{"type of another NMI's namespace", post("/api/v1/types", operator, record(func(r *api.TypeRecordRequest) { r.TypeID = "CMI-E350" })), 403, string(meter.CodeNotOwner)},
		{"type without versions", post("/api/v1/types", operator, record(func(r *api.TypeRecordRequest) { r.Versions = nil })), 400, malformed},
		{"type listing a version twice", post("/api/v1/types", operator, record(func(r *api.TypeRecordRequest) { r.Versions[1].Software = fw12 })), 409, string(meter.CodeVersionExists)},
		{"type with a bad checksum", post("/api/v1/types", operator, record(func(r *api.TypeRecordRequest) { r.Versions[0].Checksum = "9f86d081" })), 400, malformed},
		{"type with a bad date", post("/api/v1/types", operator, record(func(r *api.TypeRecordRequest) { r.Versions[1].ApprovedFrom = "December" })), 400, malformed},
		{"type without certificate", post("/api/v1/types", operator, record(func(r *api.TypeRecordRequest) { r.Certificate = "" })), 400, malformed},
		{"type with an invalid ID", post("/api/v1/types", operator, record(func(r *api.TypeRecordRequest) { r.TypeID = "PTB E350" })), 400, malformed},
		{"type with an unknown field", post("/api/v1/types", operator, strings.TrimSuffix(jsonText(typeRecord()), "}")+`,"nmi":"CMIMSP"}`), 400, malformed},
		{"type as text", request{method: "POST", path: "/api/v1/types", as: operator, contentType: "text/plain", body: jsonText(typeRecord())}, 415, api.CodeUnsupportedMedia},
		{"approve for an invalid type ID", post("/api/v1/types/-x/versions", operator, api.ApproveRequest{Software: fw13}), 400, malformed},
		{"approve without checksum", post("/api/v1/types/PTB-E350/versions", operator, `{"softwareId":"fw-1.3"}`), 400, malformed},
		{"approve with a bad date", post("/api/v1/types/PTB-E350/versions", operator, api.ApproveRequest{Software: fw13, ApprovedFrom: "tomorrow"}), 400, malformed},
		{"approve an identification over 128 bytes", post("/api/v1/types/PTB-E350/versions", operator,
			api.ApproveRequest{Software: meter.Software{ID: strings.Repeat("v", 129), Checksum: fw13.Checksum}}), 413, tooLarge},
		{"withdraw without reason", post("/api/v1/types/PTB-E350/withdraw", operator, api.WithdrawRequest{SoftwareID: "fw-1.2"}), 400, malformed},
		{"withdraw without software", post("/api/v1/types/PTB-E350/withdraw", operator, api.WithdrawRequest{Reason: "superseded"}), 400, malformed},
		{"withdraw for a long reason", post("/api/v1/types/PTB-E350/withdraw", operator, api.WithdrawRequest{SoftwareID: "fw-1.2", Reason: strings.Repeat("r", 257)}), 413, tooLarge},
		{"withdraw for a reason with a control character", post("/api/v1/types/PTB-E350/withdraw", operator, api.WithdrawRequest{SoftwareID: "fw-1.2", Reason: "a\x07b"}), 400, malformed},
		{"withdraw with a bad date", post("/api/v1/types/PTB-E350/withdraw", operator, api.WithdrawRequest{SoftwareID: "fw-1.2", Reason: "r", From: "now"}), 400, malformed},
		{"assign an invalid type ID", put("/api/v1/meters/PTB-0001/type", `{"typeId":"~x"}`), 400, malformed},
		{"assign without type", put("/api/v1/meters/PTB-0001/type", `{}`), 400, malformed},
		{"assign to an invalid meter ID", put("/api/v1/meters/-x/type", `{"typeId":"PTB-E350"}`), 400, malformed},
		{"register with an invalid type ID", post("/api/v1/meters", operator, func() meter.Registration {
			r := registration("PTB-0001", newKeyPEM(t))
			r.TypeID = "PTB E350"
			return r
		}()), 400, malformed},
		{"update for another meter than the path", post("/api/v1/meters/PTB-0002/software-updates", ingest, su), 422, string(meter.CodeMeterMismatch)},
		{"update without signature", post("/api/v1/meters/PTB-0001/software-updates", ingest, map[string]any{"statement": su.Statement}), 400, malformed},
		{"update statement not base64", post("/api/v1/meters/PTB-0001/software-updates", ingest, `{"statement":"%%%","signature":"AAAA"}`), 400, malformed},
		{"update statement over 2 KiB", post("/api/v1/meters/PTB-0001/software-updates", ingest,
			map[string]any{"statement": make([]byte, meter.MaxStatementBytes+1), "signature": su.Signature}), 413, tooLarge},
		{"update with an unknown field", post("/api/v1/meters/PTB-0001/software-updates", ingest,
			map[string]any{"statement": su.Statement, "signature": su.Signature, "payload": "AAAA"}), 400, malformed},
		{"update of an invalid meter ID", post("/api/v1/meters/-x/software-updates", ingest, su), 400, malformed},
		{"type of an invalid ID", get("/api/v1/types/-x", auditor), 400, malformed},
		{"history of an invalid type ID", get("/api/v1/types/~x/history", auditor), 400, malformed},
		{"meters of an invalid type ID", get("/api/v1/types/~x/meters", auditor), 400, malformed},
		{"types with limit 0", get("/api/v1/types?limit=0", auditor), 400, malformed},
		{"types with a bad cursor", get("/api/v1/types?cursor=!!", auditor), 400, malformed},
		{"meters of a type with limit 1001", get("/api/v1/types/PTB-E350/meters?limit=1001", auditor), 400, malformed},
		{"types with minBlock not a number", get("/api/v1/types?minBlock=x", auditor), 400, malformed},
		{"software of an invalid meter ID", get("/api/v1/meters/-x/software", auditor), 400, malformed},
		{"software with minBlock not a number", get("/api/v1/meters/PTB-0001/software?minBlock=x", auditor), 400, malformed},
		{"GET a meter's type", get("/api/v1/meters/PTB-0001/type", auditor), 405, api.CodeMethodNotAllowed},
		{"DELETE a type", request{method: http.MethodDelete, path: "/api/v1/types/PTB-E350", as: operator}, 405, api.CodeMethodNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			problemOf(t, f.do(c.req), c.status, c.code)
			if calls := f.ledger.recorded(); len(calls) != 0 {
				t.Errorf("the ledger was called: %+v", calls[0])
			}
		})
	}
}
