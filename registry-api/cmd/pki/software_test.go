package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
)

var (
	fw12 = meter.Software{ID: "fw-1.2", Checksum: "sha256:9f86d081884c7d65"}
	fw13 = meter.Software{ID: "fw-1.3", Checksum: "sha256:2c26b46b68ffc68f"}
)

func meterType(id string) *meter.MeterType {
	return &meter.MeterType{ID: id, NMI: "PTBMSP", Manufacturer: "ACME", Model: "E350", Certificate: "DE-MI003-PTB001",
		Versions: []meter.ApprovedSoftware{{Software: fw12, ApprovedFrom: "2026-05-01T00:00:00Z", ApprovedTx: "tx1"},
			{Software: fw13, ApprovedFrom: "2026-06-01T00:00:00Z", ApprovedTx: "tx2",
				Withdrawal: &meter.Withdrawal{Reason: "fault in the register", From: "2026-06-02T00:00:00Z", TxID: "tx3"}}},
		RecordedTx: "tx1", RecordedAt: "2026-05-01T00:00:00Z", UpdatedTx: "tx3", UpdatedAt: "2026-06-02T00:00:00Z"}
}

// TestTypeRoutes checks that each command of types and software calls its
// endpoint with its body, and prints the registry's answer.
func TestTypeRoutes(t *testing.T) {
	key, _ := keyPair(t, t.TempDir(), "m", meter.P256)
	k := readKey(t, key).Public()
	typed := meterRecord("PTB-0001", k, 1)
	typed.TypeID = "PTB-E350"
	record := `{"typeId":"PTB-E350","manufacturer":"ACME","model":"E350","certificate":"DE-MI003-PTB001",` +
		`"versions":[{"softwareId":"fw-1.2","softwareChecksum":"sha256:9f86d081884c7d65"}]}`
	receipt := api.TypeReceipt{Type: meterType("PTB-E350"), Tx: api.Tx{TxID: "tx9", Block: 40}}
	for _, tc := range []struct {
		args         []string
		stdin        string
		method, path string
		query        string
		answer       any
		stdout       string
		body         string
	}{
		{[]string{"type", "record", "-"}, record, "POST", "/api/v1/types", "", receipt, "recorded meter type PTB-E350 in block 40", record},
		{[]string{"type", "show", "PTB-E350", "--min-block", "12"}, "", "GET", "/api/v1/types/PTB-E350", "minBlock=12", meterType("PTB-E350"),
			"from 2026-06-02T00:00:00Z: fault in the register", ""},
		{[]string{"type", "list", "--nmi", "PTBMSP"}, "", "GET", "/api/v1/types", "nmi=PTBMSP",
			api.TypeList{Types: []*meter.MeterType{meterType("PTB-E350")}}, "fw-1.2, fw-1.3 (withdrawn)", ""},
		{[]string{"type", "history", "PTB-E350"}, "", "GET", "/api/v1/types/PTB-E350/history", "",
			[]api.TypeVersion{{TxID: "tx1", Time: "2026-05-01T00:00:00Z", Type: meterType("PTB-E350")}}, "2026-05-01T00:00:00Z", ""},
		{[]string{"type", "meters", "PTB-E350", "--limit", "2"}, "", "GET", "/api/v1/types/PTB-E350/meters", "limit=2",
			api.MeterList{Meters: []*meter.Meter{typed}}, "PTB-0001", ""},
		{[]string{"type", "approve", "PTB-E350", "--software-id", "fw-1.3", "--software-checksum", "sha256:2c26b46b68ffc68f", "--from", "2026-06-01T00:00:00Z"},
			"", "POST", "/api/v1/types/PTB-E350/versions", "", receipt, "approved fw-1.3 for meter type PTB-E350",
			`{"softwareId":"fw-1.3","softwareChecksum":"sha256:2c26b46b68ffc68f","approvedFrom":"2026-06-01T00:00:00Z"}`},
		{[]string{"type", "withdraw", "PTB-E350", "--software-id", "fw-1.3", "--reason", "fault in the register"}, "",
			"POST", "/api/v1/types/PTB-E350/withdraw", "", receipt, "withdrew fw-1.3 of meter type PTB-E350",
			`{"softwareId":"fw-1.3","reason":"fault in the register"}`},
		{[]string{"assign-type", "PTB-0001", "PTB-E350"}, "", "PUT", "/api/v1/meters/PTB-0001/type", "",
			api.MeterReceipt{Meter: typed, Tx: api.Tx{TxID: "tx7", Block: 41}}, "named the type of PTB-0001 in block 41", `{"typeId":"PTB-E350"}`},
		{[]string{"software", "log", "PTB-0001"}, "", "GET", "/api/v1/meters/PTB-0001/software", "",
			api.MeterSoftware{MeterID: "PTB-0001", TypeID: "PTB-E350", Current: fw13,
				Installed: []meter.Installed{{Software: fw12, Since: "2026-05-01T00:00:00Z", TxID: "tx1"}, {Software: fw13, Since: "2026-05-20T00:00:00Z", TxID: "tx5"}},
				Log: []*meter.UpdateReport{{MeterID: "PTB-0001", Number: 1, Time: "2026-05-20T00:00:00Z", From: fw12, To: fw13,
					Result: meter.UpdateSuccess, SubmittedBy: "CMIMSP", TxID: "tx5"}}},
			"CMIMSP", ""},
	} {
		t.Run(strings.Join(tc.args[:2], " "), func(t *testing.T) {
			reg, srv := fakeRegistry(t, false, map[string]http.HandlerFunc{
				"/": func(w http.ResponseWriter, r *http.Request) { answer(w, http.StatusOK, tc.answer) },
			})
			r := pki(t, tc.stdin, envFor(t, srv), tc.args...)
			r.want(t, exitOK)
			got := reg.requests[0]
			if got.method != tc.method || got.path != tc.path || got.query != tc.query {
				t.Errorf("called %s %s?%s, want %s %s?%s", got.method, got.path, got.query, tc.method, tc.path, tc.query)
			}
			if strings.TrimSpace(string(got.body)) != tc.body || got.idempotent != (tc.method != "GET") {
				t.Errorf("sent %s (Idempotency-Key %v), want %s", got.body, got.idempotent, tc.body)
			}
			if !strings.Contains(r.stdout, tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, r.stdout)
			}
		})
	}
}

// updateRegistry fakes a registry whose meters hold key k and run fw12: it
// checks each delivered statement against k, keeps it, and records it, or
// refuses it with refuse when that is set.
func updateRegistry(t *testing.T, k *meter.PublicKey, refuse meter.Code) (*registry, []string, *[]meter.UpdateStatement) {
	var got []meter.UpdateStatement
	reg, srv := fakeRegistry(t, false, map[string]http.HandlerFunc{
		"GET /api/v1/meters/{id}": func(w http.ResponseWriter, r *http.Request) {
			m := meterRecord(r.PathValue("id"), k, 1)
			m.Metadata.SoftwareID, m.Metadata.SoftwareChecksum = fw12.ID, fw12.Checksum
			answer(w, http.StatusOK, m)
		},
		"POST /api/v1/meters/{id}/software-updates": func(w http.ResponseWriter, r *http.Request) {
			var su meter.SignedUpdate
			json.NewDecoder(r.Body).Decode(&su)
			if su.MeterID != r.PathValue("id") {
				answer(w, http.StatusUnprocessableEntity, api.Problem{Code: string(meter.CodeMeterMismatch), Detail: "another meter"})
				return
			}
			st, err := su.Open(k)
			if err != nil {
				answer(w, http.StatusUnprocessableEntity, api.Problem{Code: string(meter.CodeOf(err)), Detail: err.Error(), TxID: "tx-evidence"})
				return
			}
			got = append(got, st)
			if refuse != "" {
				answer(w, http.StatusUnprocessableEntity, api.Problem{Code: string(refuse), Detail: "fw-1.3 is not approved", TxID: "tx-evidence"})
				return
			}
			answer(w, http.StatusCreated, api.SoftwareUpdateReceipt{MeterID: su.MeterID, Tx: api.Tx{TxID: "tx8", Block: 50},
				Report: &meter.UpdateReport{MeterID: su.MeterID, Number: 1, Time: st.Time, From: st.From, To: st.To, Result: st.Result,
					KeyVersion: 1, SubmittedBy: "PTBMSP", TxID: "tx8"}})
		},
	})
	return reg, envFor(t, srv), &got
}

// With --key, pki signs the statement as the meter would, from the
// software the ledger says the meter runs, once the key is its current one.
func TestSoftwareUpdateWithKey(t *testing.T) {
	dir := t.TempDir()
	key, _ := keyPair(t, dir, "m", meter.P256)
	reg, env, got := updateRegistry(t, readKey(t, key).Public(), "")
	r := pki(t, "", env, "software", "update", "PTB-0001", "--key", key, "--to-id", fw13.ID, "--to-checksum", fw13.Checksum)
	r.want(t, exitOK)
	want := meter.UpdateStatement{Type: meter.StatementType, MeterID: "PTB-0001", Time: now.Format(time.RFC3339), From: fw12, To: fw13, Result: meter.UpdateSuccess}
	if len(*got) != 1 || (*got)[0] != want {
		t.Fatalf("the registry got %+v, want %+v", *got, want)
	}
	if !strings.Contains(r.stdout, "recorded statement 1 of meter PTB-0001 in block 50") || !strings.Contains(r.stdout, "fw-1.2 (sha256:9f86d081884c7d65)") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	if last := reg.requests[len(reg.requests)-1]; !last.idempotent {
		t.Error("the delivery carried no Idempotency-Key")
	}

	// A failed update, from software named here, at a given time.
	r = pki(t, "", env, "software", "update", "PTB-0001", "--key", key, "--from-id", fw13.ID, "--from-checksum", fw13.Checksum,
		"--to-id", "fw-2.0", "--to-checksum", "sha256:fcde2b2edba56bf4", "--failed", "--detail", "checksum error", "--time", "2026-05-21T09:00:00Z")
	r.want(t, exitOK)
	if st := (*got)[1]; st.Result != meter.UpdateFailure || st.From != fw13 || st.Detail != "checksum error" || st.Time != "2026-05-21T09:00:00Z" {
		t.Errorf("the registry got %+v", st)
	}

	other, _ := keyPair(t, dir, "other", meter.P256)
	r = pki(t, "", env, "software", "update", "PTB-0001", "--key", other, "--to-id", fw13.ID, "--to-checksum", fw13.Checksum)
	r.want(t, exitUsage)
	if !strings.Contains(r.stderr, "not the current key") || len(*got) != 2 {
		t.Errorf("another key: stderr %s, %d delivered", r.stderr, len(*got))
	}
}

// A statement signed offline is delivered as it is; one the ledger
// refuses exits 1 and names the transaction that carries it.
func TestSoftwareSignAndDeliver(t *testing.T) {
	dir := t.TempDir()
	key, _ := keyPair(t, dir, "m", meter.P256)
	_, env, got := updateRegistry(t, readKey(t, key).Public(), meter.CodeSoftwareNotApproved)
	signed := pki(t, "", nil, "software", "sign", "--key", key, "--meter", "PTB-0001", "--from-id", fw12.ID, "--from-checksum", fw12.Checksum,
		"--to-id", fw13.ID, "--to-checksum", fw13.Checksum)
	signed.want(t, exitOK)
	var su meter.SignedUpdate
	if err := json.Unmarshal([]byte(signed.stdout), &su); err != nil || su.MeterID != "PTB-0001" {
		t.Fatalf("sign printed %s: %v", signed.stdout, err)
	}
	r := pki(t, signed.stdout, env, "software", "update", "--signed", "-")
	r.want(t, exitFailure)
	if !strings.Contains(r.stderr, "SOFTWARE_NOT_APPROVED") || !strings.Contains(r.stderr, "transaction tx-evidence") || len(*got) != 1 {
		t.Errorf("stderr %s, %d delivered", r.stderr, len(*got))
	}

	// The exact bytes and a DER signature, as a meter maker's tools make
	// them; the meter is the one the statement names.
	st, err := meter.UpdateStatement{MeterID: "PTB-0001", Time: now.Format(time.RFC3339), From: fw12, To: fw13, Result: meter.UpdateSuccess}.Statement()
	if err != nil {
		t.Fatal(err)
	}
	der, err := readKey(t, key).Sign(st)
	if err != nil {
		t.Fatal(err)
	}
	r = pki(t, "", env, "software", "update", "--statement", writeTemp(t, "statement.json", string(st)), "--signature", writeTemp(t, "statement.sig", string(der)))
	r.want(t, exitFailure)
	if len(*got) != 2 || (*got)[1].MeterID != "PTB-0001" || !strings.Contains(r.stderr, "SOFTWARE_NOT_APPROVED") {
		t.Errorf("stderr %s, delivered %+v", r.stderr, *got)
	}
}

func TestSignNamesSoftware(t *testing.T) {
	key, _ := keyPair(t, t.TempDir(), "m", meter.P256)
	r := pki(t, "", nil, "sign", "--key", key, "--meter", "PTB-0001", "--seq", "7", "--value", "1.5", "--software-id", "fw-1.3")
	r.want(t, exitOK)
	var sm meter.SignedMeasurement
	if err := json.Unmarshal([]byte(r.stdout), &sm); err != nil {
		t.Fatal(err)
	}
	if m, err := meter.ParseMeasurement(sm.Payload); err != nil || m.SoftwareID != "fw-1.3" {
		t.Errorf("payload %s (%v), want softwareId fw-1.3", sm.Payload, err)
	}
}
