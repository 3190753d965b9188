package server

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/contract"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
)

func TestRegisterMeter(t *testing.T) {
	f := newFixture(t)
	reg := registration("PTB-0001", string(readTestdata(t, "keys/p256.good.pem")))
	reg.Identity = "urn:dev:ops:PTB-0001"
	rec := f.do(post("/api/v1/meters", operator, reg))
	got := decode[api.MeterReceipt](t, rec, http.StatusCreated)
	if loc := rec.Header().Get("Location"); loc != "/api/v1/meters/PTB-0001" {
		t.Errorf("Location = %q", loc)
	}
	if got.TxID != "tx001" || got.Block != 101 || got.Meter.ID != "PTB-0001" || got.Meter.Fingerprint != strings.TrimSpace(string(readTestdata(t, "keys/p256.sha256"))) {
		t.Errorf("receipt = %+v", got)
	}
	calls := f.ledger.recorded()
	if len(calls) != 1 || calls[0].Method != "SubmitAll" || calls[0].Role != api.RoleOperator || calls[0].Tx != "RegisterMeter" || len(calls[0].Args) != 1 {
		t.Fatalf("calls = %+v, want one RegisterMeter submitted as operator", calls)
	}
	var sent meter.Registration
	if err := json.Unmarshal([]byte(calls[0].Args[0]), &sent); err != nil || sent != reg {
		t.Errorf("the chaincode got %+v (%v), want %+v", sent, err, reg)
	}
}

func TestRegisterMetersJSON(t *testing.T) {
	f := newFixture(t)
	regs := make([]meter.Registration, 2500)
	ids := make([]string, len(regs))
	for i := range regs {
		ids[i] = fmt.Sprintf("PTB-%05d", i)
		regs[i] = registration(ids[i], newKeyPEM(t))
	}
	got := decode[api.Enrolment](t, f.do(post("/api/v1/meters/batch", operator, regs)), http.StatusCreated)
	if got.Registered != 2500 || !slices.Equal(got.MeterIDs, ids) {
		t.Errorf("registered %d, %d IDs; want all 2500 in order", got.Registered, len(got.MeterIDs))
	}
	if len(got.Transactions) != 3 {
		t.Fatalf("transactions = %+v, want 3", got.Transactions)
	}
	for i, want := range []int{1000, 1000, 500} {
		if tx := got.Transactions[i]; tx.Meters != want || tx.TxID == "" || tx.Block == 0 {
			t.Errorf("transaction %d = %+v, want %d meters", i, tx, want)
		}
	}
	calls := f.ledger.recorded()
	if len(calls) != 1 || calls[0].Method != "SubmitAll" || calls[0].Tx != "RegisterMeters" || calls[0].Role != api.RoleOperator {
		t.Fatalf("calls = %+v, want one SubmitAll of RegisterMeters as operator", calls)
	}
	var sent []meter.Registration
	for i, part := range calls[0].Parts {
		var p []meter.Registration
		if len(part) != 1 {
			t.Fatalf("part %d has %d arguments", i, len(part))
		}
		if err := json.Unmarshal([]byte(part[0]), &p); err != nil {
			t.Fatal(err)
		}
		if len(p) > wire.MaxBulkRegistration {
			t.Errorf("part %d holds %d meters, over the chaincode's %d", i, len(p), wire.MaxBulkRegistration)
		}
		sent = append(sent, p...)
	}
	if len(calls[0].Parts) != 3 || !slices.Equal(sent, regs) {
		t.Errorf("the chaincode got %d parts with %d meters; want 3 parts holding the batch in order", len(calls[0].Parts), len(sent))
	}
}

func TestRegisterMetersCSV(t *testing.T) {
	f := newFixture(t)
	pem := func(name string) string { return string(readTestdata(t, "keys/"+name+".good.pem")) }
	der := func(name string) string {
		return base64.StdEncoding.EncodeToString(readTestdata(t, "keys/"+name+".der"))
	}
	want := []meter.Registration{
		registration("PTB-0001", pem("p256")), registration("PTB-0002", pem("p384")),
		registration("PTB-0003", pem("secp256k1")), registration("PTB-0004", pem("other")),
	}
	for i := range want {
		want[i].SerialNumber = fmt.Sprintf("SN%d", i+1)
	}
	want[1].SoftwareChecksum, want[1].Identity = "crc32:9f86d081", "urn:dev:ops:2"
	want[2].TypeID = "PTB-E350"
	var b bytes.Buffer
	b.WriteString("\ufeff") // as spreadsheets save it
	err := csv.NewWriter(&b).WriteAll([][]string{
		{"serialNumber", "meterId", "publicKey", "manufacturer", "model", "softwareId", "softwareChecksum", "identity", "proof", "typeId"},
		{"SN1", "PTB-0001", pem("p256"), "Acme", "E350", "fw-1.2", "sha256:9f86d081884c7d65", "", want[0].Proof, ""},
		{"SN2", "PTB-0002", der("p384"), " Acme ", "E350", "fw-1.2", "crc32:9f86d081", "urn:dev:ops:2", " " + want[1].Proof + " ", ""},
		{"SN3", "PTB-0003", pem("secp256k1"), "Acme", "E350", "fw-1.2", "sha256:9f86d081884c7d65", "", want[2].Proof, "PTB-E350"},
		{"SN4", "PTB-0004", der("other"), "Acme", "E350", "fw-1.2", "sha256:9f86d081884c7d65", "", want[3].Proof, ""},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"-----BEGIN PUBLIC KEY-----`+"\n") {
		t.Fatal("the CSV does not hold a quoted multi-line PEM cell")
	}
	got := decode[api.Enrolment](t, f.do(request{method: http.MethodPost, path: "/api/v1/meters/batch", as: operator,
		contentType: "text/csv; charset=utf-8", body: b.String()}), http.StatusCreated)
	if got.Registered != 4 || !slices.Equal(got.MeterIDs, []string{"PTB-0001", "PTB-0002", "PTB-0003", "PTB-0004"}) || len(got.Transactions) != 1 {
		t.Errorf("enrolment = %+v", got)
	}
	calls := f.ledger.named("RegisterMeters")
	if len(calls) != 1 || len(calls[0].Parts) != 1 {
		t.Fatalf("calls = %+v, want one part", calls)
	}
	var sent []meter.Registration
	if err := json.Unmarshal([]byte(calls[0].Parts[0][0]), &sent); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if sent[i].PublicKey != want[i].PublicKey {
			// A DER cell becomes the key's PEM; a PEM cell is sent as given.
			k, err := meter.ParsePublicKeyPEM(sent[i].PublicKey)
			w, _ := meter.ParsePublicKeyPEM(want[i].PublicKey)
			if err != nil || !k.Equal(w) {
				t.Errorf("row %d: key %q, want the key of the fixture", i, sent[i].PublicKey)
			}
			sent[i].PublicKey = want[i].PublicKey
		}
		if sent[i] != want[i] {
			t.Errorf("row %d: the chaincode got %+v, want %+v", i, sent[i], want[i])
		}
	}
}

// TestRegisterMetersRefusesBadEntries lists every refused entry and sends
// nothing to the ledger.
func TestRegisterMetersRefusesBadEntries(t *testing.T) {
	key1, key2, key3, key4, key5 := newKeyPEM(t), newKeyPEM(t), newKeyPEM(t), newKeyPEM(t), newKeyPEM(t)
	p256 := string(readTestdata(t, "keys/p256.good.pem"))
	p256DER := base64.StdEncoding.EncodeToString(readTestdata(t, "keys/p256.der"))
	// The meters' proofs gone wrong: none, made for another NMI, for another
	// meter ID, and by another key over the right statement.
	unproved := registration("PTB-B", key2)
	unproved.Proof = ""
	forCMI := withProof(registration("PTB-C", key3), proofOf(t, key3, "CMIMSP", "PTB-C"))
	forOtherMeter := withProof(registration("PTB-D", key4), proofOf(t, key4, fixtureNMI, "PTB-X"))
	byOtherKey := withProof(registration("PTB-E", key5), signedBy(t, key1, meter.RegistrationStatement("PTB-E", fixtureNMI, publicKey(t, key5))))
	const csvHeader = "meterId,publicKey,manufacturer,model,serialNumber,softwareId,softwareChecksum,proof\n"
	// The first row's PEM cell spans lines 2 to 2+n: the next row starts after it.
	next := 3 + strings.Count(p256, "\n")
	cases := []struct {
		name    string
		req     request
		status  int
		code    meter.Code
		entries []string // what each of errors names, in order; none for a single refusal
	}{
		{"repeated ID, repeated key and a bad key", post("/api/v1/meters/batch", operator, []meter.Registration{
			registration("PTB-A", key1), registration("PTB-A", key2), registration("PTB-B", key1),
			registration("PTB-C", "not a key"), registration("PTB-D", key3),
		}), http.StatusConflict, meter.CodeMeterExists, []string{
			`entry 1 (meter "PTB-A"): METER_EXISTS: meter ID repeats entry 0`,
			`entry 2 (meter "PTB-B"): KEY_IN_USE: public key repeats entry 0`,
			`entry 3 (meter "PTB-C"): INVALID_KEY`,
		}},
		{"one bad key", post("/api/v1/meters/batch", operator, []meter.Registration{
			registration("PTB-A", key1), registration("PTB-B", string(readTestdata(t, "keys/rsa2048.bad.pem"))),
		}), http.StatusUnprocessableEntity, meter.CodeUnsupportedKey, nil},
		{"one key as PEM and as DER", request{method: http.MethodPost, path: "/api/v1/meters/batch", as: operator, contentType: "text/csv",
			body: csvHeader +
				`PTB-A,"` + p256 + `",Acme,E350,SN1,fw,sha256:9f86d081884c7d65,` + registration("PTB-A", p256).Proof + "\n" +
				"PTB-B," + p256DER + ",Acme,E350,SN2,fw,sha256:9f86d081884c7d65," + registration("PTB-B", p256).Proof + "\n"},
			http.StatusConflict, meter.CodeKeyInUse, []string{
				fmt.Sprintf(`CSV line %d (meter "PTB-B"): KEY_IN_USE: public key repeats CSV line 2`, next),
			}},
		{"proofs missing, for another NMI, for another meter, by another key", post("/api/v1/meters/batch", operator, []meter.Registration{
			registration("PTB-A", key1), unproved, forCMI, forOtherMeter, byOtherKey,
		}), http.StatusUnprocessableEntity, meter.CodeBadSignature, []string{
			`entry 1 (meter "PTB-B"): BAD_SIGNATURE: meter PTB-B: the registration carries no proof of possession`,
			`entry 2 (meter "PTB-C"): BAD_SIGNATURE: meter PTB-C: the proof of possession does not verify against the key being registered for PTBMSP`,
			`entry 3 (meter "PTB-D"): BAD_SIGNATURE: meter PTB-D: the proof of possession does not verify`,
			`entry 4 (meter "PTB-E"): BAD_SIGNATURE: meter PTB-E: the proof of possession does not verify`,
		}},
		{"a proof not base64", post("/api/v1/meters/batch", operator, []meter.Registration{
			registration("PTB-A", key1), withProof(registration("PTB-B", key2), "not base64!"),
		}), http.StatusBadRequest, meter.CodeMalformed, nil},
		{"CSV rows without proof, named by their lines", request{method: http.MethodPost, path: "/api/v1/meters/batch", as: operator, contentType: "text/csv",
			body: csvHeader +
				`PTB-A,"` + p256 + `",Acme,E350,SN1,fw,sha256:9f86d081884c7d65,` + registration("PTB-A", p256).Proof + "\n" +
				"PTB-B," + derOf(t, key2) + ",Acme,E350,SN2,fw,sha256:9f86d081884c7d65,\n" +
				"PTB-C," + derOf(t, key3) + ",Acme,E350,SN3,fw,sha256:9f86d081884c7d65," + forCMI.Proof + "\n"},
			http.StatusUnprocessableEntity, meter.CodeBadSignature, []string{
				fmt.Sprintf(`CSV line %d (meter "PTB-B"): BAD_SIGNATURE: meter PTB-B: the registration carries no proof of possession`, next),
				fmt.Sprintf(`CSV line %d (meter "PTB-C"): BAD_SIGNATURE: meter PTB-C: the proof of possession does not verify`, next+1),
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			p := problemOf(t, f.do(c.req), c.status, string(c.code))
			switch len(c.entries) {
			case 0:
			case 1:
				// A single refused entry is the detail itself.
				if len(p.Errors) != 0 || !strings.HasPrefix(p.Detail, c.entries[0]) {
					t.Errorf("detail %q (errors %q), want it to start %q", p.Detail, p.Errors, c.entries[0])
				}
			default:
				if len(p.Errors) != len(c.entries) {
					t.Fatalf("errors = %q, want %d entries", p.Errors, len(c.entries))
				}
				for i, want := range c.entries {
					if !strings.HasPrefix(p.Errors[i], want) {
						t.Errorf("errors[%d] = %q, want it to start %q", i, p.Errors[i], want)
					}
				}
			}
			if !strings.HasSuffix(p.Detail, "nothing was registered") {
				t.Errorf("detail %q does not say nothing was registered", p.Detail)
			}
			if calls := f.ledger.recorded(); len(calls) != 0 {
				t.Errorf("the ledger was called: %d calls", len(calls))
			}
		})
	}
}

// TestRegisterMeterProof refuses a registration whose meter did not prove
// it for this NMI, naming the meter, and sends nothing to the ledger.
func TestRegisterMeterProof(t *testing.T) {
	key, other := newKeyPEM(t), newKeyPEM(t)
	unproved := registration("PTB-0001", key)
	unproved.Proof = ""
	cases := []struct {
		name   string
		reg    meter.Registration
		status int
		code   meter.Code
		detail string
	}{
		{"without proof", unproved, http.StatusUnprocessableEntity, meter.CodeBadSignature,
			"meter PTB-0001: the registration carries no proof of possession"},
		{"proved for another NMI", withProof(registration("PTB-0001", key), proofOf(t, key, "CMIMSP", "PTB-0001")),
			http.StatusUnprocessableEntity, meter.CodeBadSignature, "meter PTB-0001: the proof of possession does not verify against the key being registered for PTBMSP"},
		{"proved for another meter ID", withProof(registration("PTB-0001", key), proofOf(t, key, fixtureNMI, "PTB-0002")),
			http.StatusUnprocessableEntity, meter.CodeBadSignature, "meter PTB-0001: the proof of possession does not verify"},
		{"signed by another key", withProof(registration("PTB-0001", key), signedBy(t, other, meter.RegistrationStatement("PTB-0001", fixtureNMI, publicKey(t, key)))),
			http.StatusUnprocessableEntity, meter.CodeBadSignature, "meter PTB-0001: the proof of possession does not verify"},
		{"a proof of another meter's key", withProof(registration("PTB-0001", key), registration("PTB-0001", other).Proof),
			http.StatusUnprocessableEntity, meter.CodeBadSignature, "meter PTB-0001: the proof of possession does not verify"},
		{"a proof not base64", withProof(registration("PTB-0001", key), "MEUC%%"),
			http.StatusBadRequest, meter.CodeMalformed, "meter PTB-0001: proof is not standard base64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			p := problemOf(t, f.do(post("/api/v1/meters", operator, c.reg)), c.status, string(c.code))
			if !strings.HasPrefix(p.Detail, c.detail) {
				t.Errorf("detail %q, want it to start %q", p.Detail, c.detail)
			}
			if calls := f.ledger.recorded(); len(calls) != 0 {
				t.Errorf("the ledger was called: %+v", calls)
			}
		})
	}
	// The same registration proved by the meter for this NMI is sent.
	f := newFixture(t)
	decode[api.MeterReceipt](t, f.do(post("/api/v1/meters", operator, registration("PTB-0001", key))), http.StatusCreated)
	if n := len(f.ledger.named("RegisterMeter")); n != 1 {
		t.Errorf("a proved registration reached the ledger %d times, want 1", n)
	}
}

// TestRegisterMetersCountsRefusals: a delivery list sent without proofs is
// refused entry by entry, the detail counting them all and errors listing
// the first 50.
func TestRegisterMetersCountsRefusals(t *testing.T) {
	f := newFixture(t)
	regs := make([]meter.Registration, 60)
	for i := range regs {
		regs[i] = withProof(registration(fmt.Sprintf("PTB-%04d", i), newKeyPEM(t)), "")
	}
	p := problemOf(t, f.do(post("/api/v1/meters/batch", operator, regs)), http.StatusUnprocessableEntity, string(meter.CodeBadSignature))
	if want := "60 of 60 entries are refused (errors lists the first 50 reasons)"; !strings.HasPrefix(p.Detail, want) {
		t.Errorf("detail %q, want it to start %q", p.Detail, want)
	}
	if len(p.Errors) != 50 || !strings.HasPrefix(p.Errors[49], `entry 49 (meter "PTB-0049"): BAD_SIGNATURE`) {
		t.Errorf("errors lists %d, the last %q", len(p.Errors), p.Errors[len(p.Errors)-1])
	}
	if n := len(f.ledger.recorded()); n != 0 {
		t.Errorf("the ledger was called %d times", n)
	}
}

func TestMeterLifecycle(t *testing.T) {
	newKey := newKeyPEM(t)
	hash := meter.IdentityHash("urn:dev:ops:PTB-0009")
	cases := []struct {
		name     string
		req      request
		status   int
		tx       string
		args     []string
		location string
	}{
		{"rotate", post("/api/v1/meters/PTB-0001/rotate", operator, api.RotateRequest{PublicKey: newKey, Proof: "MEUCIQ=="}),
			http.StatusOK, "RotateKey", []string{"PTB-0001", newKey, "MEUCIQ=="}, ""},
		{"revoke", post("/api/v1/meters/PTB-0001/revoke", operator, api.RevokeRequest{Reason: meter.ReasonCertificateHold, InvalidityDate: "2026-11-20T00:00:00+01:00"}),
			http.StatusOK, "RevokeMeter", []string{"PTB-0001", "certificateHold", "2026-11-20T00:00:00+01:00"}, ""},
		{"revoke without a date", post("/api/v1/meters/PTB-0001/revoke", operator, `{"reason":"keyCompromise"}`),
			http.StatusOK, "RevokeMeter", []string{"PTB-0001", "keyCompromise", ""}, ""},
		{"reinstate", request{method: http.MethodPost, path: "/api/v1/meters/PTB-0001/reinstate", as: operator},
			http.StatusOK, "ReinstateMeter", []string{"PTB-0001"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			rec := f.do(c.req)
			got := decode[api.MeterReceipt](t, rec, c.status)
			if got.Meter == nil || got.Meter.ID != "PTB-0001" || got.TxID != "tx001" || got.Block != 101 {
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
	t.Run("pre-enrol", func(t *testing.T) {
		f := newFixture(t)
		rec := f.do(post("/api/v1/pre-enrolments", operator, api.PreEnrolmentRequest{MeterID: "PTB-0009", IdentityHash: hash}))
		got := decode[api.PreEnrolmentReceipt](t, rec, http.StatusCreated)
		if got.PreEnrolment == nil || got.PreEnrolment.IdentityHash != hash || got.TxID != "tx001" {
			t.Errorf("receipt = %+v", got)
		}
		if loc := rec.Header().Get("Location"); loc != "/api/v1/pre-enrolments/PTB-0009" {
			t.Errorf("Location = %q", loc)
		}
		if calls := f.ledger.named("PreEnrollMeter"); len(calls) != 1 || !slices.Equal(calls[0].Args, []string{"PTB-0009", hash}) {
			t.Errorf("calls = %+v", calls)
		}
	})
}

// TestReads evaluates each read as the caller's role.
func TestReads(t *testing.T) {
	cases := []struct {
		path string
		tx   string
		args []string
	}{
		{"/api/v1/meters/PTB-0001", "GetMeter", []string{"PTB-0001"}},
		{"/api/v1/meters/PTB-0001/history", "GetMeterHistory", []string{"PTB-0001"}},
		{"/api/v1/meters/PTB-0001/keys", "GetMeterKeys", []string{"PTB-0001"}},
		{"/api/v1/pre-enrolments/PTB-0001", "GetPreEnrolment", []string{"PTB-0001"}},
		{"/api/v1/meters", "ListMeters", []string{"", "", "100", ""}},
	}
	for _, c := range cases {
		for _, as := range []string{auditor, ingest, operator} {
			t.Run(c.tx+" as "+as, func(t *testing.T) {
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
	t.Run("meter", func(t *testing.T) {
		f := newFixture(t)
		got := decode[meter.Meter](t, f.do(get("/api/v1/meters/PTB-0001", auditor)), http.StatusOK)
		if want := meterRecord("PTB-0001", ""); got.ID != want.ID || got.Fingerprint != want.Fingerprint || got.Metadata != want.Metadata {
			t.Errorf("meter = %+v, want %+v", got, want)
		}
	})
	t.Run("consortium", func(t *testing.T) {
		f := newFixture(t)
		got := decode[api.Consortium](t, f.do(get("/api/v1/consortium", ingest)), http.StatusOK)
		if got.NMI != "PTB" || got.Chaincode.ContractVersion != contract.Version || len(got.Orderers) != 1 {
			t.Errorf("consortium = %+v", got)
		}
	})
}

var cursorRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// TestListCursor pages through each listing: next is the chaincode's
// bookmark in base64url, and a cursor is passed back as that bookmark.
func TestListCursor(t *testing.T) {
	// A bookmark whose standard base64 holds + and /, which a query would mangle.
	bookmark := "meter/PTB-0100~~~???"
	if std := base64.StdEncoding.EncodeToString([]byte(bookmark)); !strings.ContainsAny(std, "+/") {
		t.Fatalf("the bookmark's base64 %s tests nothing", std)
	}
	cases := []struct {
		path, tx string
		page     func(bookmark string) any
		// args is the expected arguments for size and bookmark.
		args func(size, bookmark string) []string
	}{
		{"/api/v1/meters?nmi=PTB&status=active", "ListMeters",
			func(b string) any {
				return wire.MeterPage{Meters: []*meter.Meter{meterRecord("PTB-0100", "")}, Bookmark: b}
			},
			func(size, b string) []string { return []string{"PTB", "active", size, b} }},
		{"/api/v1/types?nmi=PTBMSP", "ListMeterTypes",
			func(b string) any {
				return wire.TypePage{Types: []*meter.MeterType{meterType("PTB-E350")}, Bookmark: b}
			},
			func(size, b string) []string { return []string{"PTBMSP", size, b} }},
		{"/api/v1/types/PTB-E350/meters", "ListTypeMeters",
			func(b string) any {
				return wire.MeterPage{Meters: []*meter.Meter{meterRecord("PTB-0100", "")}, Bookmark: b}
			},
			func(size, b string) []string { return []string{"PTB-E350", size, b} }},
	}
	for _, c := range cases {
		t.Run(c.tx, func(t *testing.T) {
			f := newFixture(t)
			f.ledger.on(c.tx, returns(c.page(bookmark)))
			path := c.path + "?limit=1"
			if strings.Contains(c.path, "?") {
				path = c.path + "&limit=1"
			}
			first := decode[map[string]any](t, f.do(get(path, auditor)), http.StatusOK)
			next, _ := first["next"].(string)
			if next != base64.RawURLEncoding.EncodeToString([]byte(bookmark)) || !cursorRE.MatchString(next) {
				t.Fatalf("next = %q, want the bookmark in unpadded base64url", next)
			}
			f.ledger.on(c.tx, returns(c.page("")))
			last := decode[map[string]any](t, f.do(get(path+"&cursor="+url.QueryEscape(next), auditor)), http.StatusOK)
			if _, ok := last["next"]; ok {
				t.Errorf("the last page has next %v", last["next"])
			}
			calls := f.ledger.named(c.tx)
			if len(calls) != 2 || !slices.Equal(calls[0].Args, c.args("1", "")) || !slices.Equal(calls[1].Args, c.args("1", bookmark)) {
				t.Errorf("calls = %+v; want the first page without a bookmark, the second from %q", calls, bookmark)
			}
		})
	}
}

// TestMinBlock waits for the block before reading, on every read that takes
// minBlock.
func TestMinBlock(t *testing.T) {
	for _, c := range []struct{ path, tx string }{
		{"/api/v1/meters?minBlock=42", "ListMeters"},
		{"/api/v1/meters/PTB-0001?minBlock=42", "GetMeter"},
		{"/api/v1/meters/PTB-0001/history?minBlock=42", "GetMeterHistory"},
		{"/api/v1/meters/PTB-0001/keys?minBlock=42", "GetMeterKeys"},
		{"/api/v1/types?minBlock=42", "ListMeterTypes"},
		{"/api/v1/types/PTB-E350?minBlock=42", "GetMeterType"},
		{"/api/v1/types/PTB-E350/history?minBlock=42", "GetMeterTypeHistory"},
		{"/api/v1/types/PTB-E350/meters?minBlock=42", "ListTypeMeters"},
	} {
		t.Run(c.tx, func(t *testing.T) {
			f := newFixture(t)
			if rec := f.do(get(c.path, auditor)); rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			calls := f.ledger.recorded()
			if len(calls) != 2 || calls[0].Method != "AwaitBlock" || calls[0].Block != 42 || calls[1].Tx != c.tx {
				t.Errorf("calls = %+v, want AwaitBlock(42) then %s", calls, c.tx)
			}
		})
	}
	f := newFixture(t)
	f.do(get("/api/v1/meters/PTB-0001", auditor))
	if n := len(f.ledger.named("AwaitBlock")); n != 0 {
		t.Errorf("a read without minBlock waited for a block (%d calls)", n)
	}
}

// Consortium votes and withdrawals reach the chaincode with the operator's
// arguments; bad input is refused before the ledger is called.
func TestConsortiumVotes(t *testing.T) {
	f := newFixture(t)
	vote := decode[api.VoteReceipt](t, f.do(post("/api/v1/consortium/votes", operator,
		api.VoteRequest{Action: api.ActionRevoke, MeterID: "NMIM-0001", Reason: "cessationOfOperation"})), http.StatusOK)
	if vote.Tally == nil || vote.Tally.Needed != 3 || vote.TxID == "" {
		t.Fatalf("vote %+v", vote)
	}
	if calls := f.ledger.named("VoteConsortium"); len(calls) != 1 || strings.Join(calls[0].Args, ",") != "revoke,NMIM-0001,cessationOfOperation" {
		t.Fatalf("VoteConsortium calls %+v", calls)
	}
	votes := decode[api.VoteList](t, f.do(get("/api/v1/consortium/votes/revoke/NMIM-0001", auditor)), http.StatusOK)
	if len(votes.Votes) != 1 || votes.Votes[0].Voter != "PTBMSP" {
		t.Fatalf("votes %+v", votes)
	}
	for _, body := range map[string]api.VoteRequest{
		"unknown action":      {Action: "delete", MeterID: "NMIM-0001", Reason: "keyCompromise"},
		"unknown reason":      {Action: api.ActionRevoke, MeterID: "NMIM-0001", Reason: "because"},
		"release without why": {Action: api.ActionRelease, MeterID: "NMIM-0001"},
		"malformed meter ID":  {Action: api.ActionRevoke, MeterID: "NMIM 1", Reason: "keyCompromise"},
	} {
		problemOf(t, f.do(post("/api/v1/consortium/votes", operator, body)), http.StatusBadRequest, string(meter.CodeMalformed))
	}
	problemOf(t, f.do(get("/api/v1/consortium/votes/delete/NMIM-0001", auditor)), http.StatusBadRequest, string(meter.CodeMalformed))
	if n := len(f.ledger.named("VoteConsortium")); n != 1 {
		t.Fatalf("refused votes reached the ledger: %d calls", n)
	}
	pre := decode[api.PreEnrolmentReceipt](t, f.do(request{method: http.MethodDelete, path: "/api/v1/pre-enrolments/PTB-0001", as: operator}), http.StatusOK)
	if pre.PreEnrolment == nil || pre.PreEnrolment.MeterID != "PTB-0001" {
		t.Fatalf("withdrawal %+v", pre)
	}
	if calls := f.ledger.named("WithdrawPreEnrolment"); len(calls) != 1 || calls[0].Args[0] != "PTB-0001" {
		t.Fatalf("WithdrawPreEnrolment calls %+v", calls)
	}
}
