package main

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
)

const testToken = "operator-secret"

// request is what the fake registry received.
type request struct {
	method, path, query, contentType string
	idempotent                       bool
	body                             []byte
}

// registry fakes the registry API: it checks the bearer token, records each
// request and answers with the handlers a test gives it.
type registry struct {
	mu       sync.Mutex
	requests []request
}

func fakeRegistry(t *testing.T, tls bool, handlers map[string]http.HandlerFunc) (*registry, *httptest.Server) {
	t.Helper()
	reg := &registry{}
	mux := http.NewServeMux()
	for pattern, h := range handlers {
		mux.HandleFunc(pattern, h)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			answer(w, http.StatusUnauthorized, api.Problem{Code: api.CodeUnauthenticated, Detail: "bad token"})
			return
		}
		body, _ := io.ReadAll(r.Body)
		reg.mu.Lock()
		reg.requests = append(reg.requests, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"),
			r.Header.Get("Idempotency-Key") != "", body})
		reg.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		mux.ServeHTTP(w, r)
	})
	srv := httptest.NewUnstartedServer(h)
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return reg, srv
}

func answer(w http.ResponseWriter, status int, v any) {
	if p, ok := v.(api.Problem); ok {
		p.Status = status
		v = p
		w.Header().Set("Content-Type", "application/problem+json")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// envFor points the commands at srv with the test token in a file.
func envFor(t *testing.T, srv *httptest.Server) []string {
	return []string{"PKI_API=" + srv.URL, "PKI_TOKEN_FILE=" + writeTemp(t, "token", testToken+"\n")}
}

func (r result) noToken(t *testing.T) {
	t.Helper()
	if strings.Contains(r.stdout+r.stderr, testToken) {
		t.Error("the token was printed")
	}
}

func meterRecord(id string, k *meter.PublicKey, version int) *meter.Meter {
	return &meter.Meter{ID: id, NMI: "PTB", PublicKey: k.PEM(), Curve: k.Curve(), Fingerprint: k.Fingerprint(),
		KeyVersion: version, Status: meter.StatusActive, RegisteredTx: "tx1", RegisteredAt: "2026-05-01T00:00:00Z"}
}

func TestRegister(t *testing.T) {
	key, pub := keyPair(t, t.TempDir(), "m", meter.P256)
	k := readKey(t, key).Public()
	reg, srv := fakeRegistry(t, false, map[string]http.HandlerFunc{
		"POST /api/v1/meters": func(w http.ResponseWriter, r *http.Request) {
			var req meter.Registration
			json.NewDecoder(r.Body).Decode(&req)
			if err := req.VerifyProof(k, "PTBMSP"); err != nil {
				answer(w, http.StatusUnprocessableEntity, api.Problem{Code: string(meter.CodeOf(err)), Detail: err.Error()})
				return
			}
			answer(w, http.StatusCreated, api.MeterReceipt{Meter: meterRecord(req.MeterID, k, 1), Tx: api.Tx{TxID: "tx1", Block: 7}})
		},
	})
	// The meter maker's proof, piped into the registration.
	proof := pki(t, "", nil, "meter", "prove", "--key", key, "--meter", "PTB-0001", "--nmi", "PTBMSP")
	proof.want(t, exitOK)
	args := []string{"register", "--id", "PTB-0001", "--key", pub, "--proof", "-", "--manufacturer", "ACME", "--model", "E350",
		"--serial", "123456", "--software-id", "fw-1.2", "--software-checksum", "sha256:9f86d081884c7d65"}
	r := pki(t, proof.stdout, envFor(t, srv), args...)
	r.want(t, exitOK)
	r.noToken(t)
	if !strings.Contains(r.stdout, "registered PTB-0001 in block 7") || !strings.Contains(r.stdout, k.Fingerprint()) {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	got := reg.requests[0]
	var sent meter.Registration
	if err := json.Unmarshal(got.body, &sent); err != nil {
		t.Fatal(err)
	}
	want := meter.Registration{MeterID: "PTB-0001", PublicKey: k.PEM(), Metadata: meter.Metadata{Manufacturer: "ACME", Model: "E350",
		SerialNumber: "123456", SoftwareID: "fw-1.2", SoftwareChecksum: "sha256:9f86d081884c7d65"}, Proof: strings.TrimSpace(proof.stdout)}
	if sent != want || !got.idempotent || got.contentType != "application/json" {
		t.Errorf("sent %+v (idempotency key %v, %s), want %+v", sent, got.idempotent, got.contentType, want)
	}

	// A proof the meter made for another NMI is refused by the registry,
	// and the CLI says so with the problem's code.
	other := pki(t, "", nil, "meter", "prove", "--key", key, "--meter", "PTB-0001", "--nmi", "CMIMSP")
	other.want(t, exitOK)
	r = pki(t, other.stdout, envFor(t, srv), args...)
	r.want(t, exitFailure)
	if !strings.Contains(r.stderr, "register meter PTB-0001") || !strings.Contains(r.stderr, string(meter.CodeBadSignature)) {
		t.Errorf("a proof for CMIMSP: stderr %s", r.stderr)
	}
}

func TestRegisterCSV(t *testing.T) {
	csv := "meterId,publicKey,manufacturer,model,serialNumber,softwareId,softwareChecksum,proof\nM-1,MFkw…,ACME,E350,1,fw,sha256:9f86d081,MEUC…\n"
	reg, srv := fakeRegistry(t, false, map[string]http.HandlerFunc{
		"POST /api/v1/meters/batch": func(w http.ResponseWriter, r *http.Request) {
			answer(w, http.StatusCreated, api.Enrolment{Registered: 1, MeterIDs: []string{"M-1"},
				Transactions: []api.BatchTx{{Tx: api.Tx{TxID: "tx9", Block: 9}, Meters: 1}}})
		},
	})
	r := pki(t, csv, envFor(t, srv), "register", "--csv", "-")
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, "registered 1 meters in 1 transactions") || !strings.Contains(r.stdout, "tx9") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	if got := reg.requests[0]; string(got.body) != csv || got.contentType != "text/csv" {
		t.Errorf("sent %q as %s; want the file as it is, as text/csv", got.body, got.contentType)
	}
}

func TestListAll(t *testing.T) {
	key, _ := keyPair(t, t.TempDir(), "m", meter.P256)
	k := readKey(t, key).Public()
	reg, srv := fakeRegistry(t, false, map[string]http.HandlerFunc{
		"GET /api/v1/meters": func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("cursor") == "" {
				answer(w, http.StatusOK, api.MeterList{Meters: []*meter.Meter{meterRecord("M-1", k, 1), meterRecord("M-2", k, 1)}, Next: "c1"})
				return
			}
			answer(w, http.StatusOK, api.MeterList{Meters: []*meter.Meter{meterRecord("M-3", k, 2)}})
		},
	})
	r := pki(t, "", envFor(t, srv), "list", "--all", "--limit", "2", "--status", "active", "-o", "json")
	r.want(t, exitOK)
	var page api.MeterList
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Meters) != 3 || page.Next != "" {
		t.Errorf("--all printed %d meters, next %q; want 3 and no next", len(page.Meters), page.Next)
	}
	if q := reg.requests[1].query; !strings.Contains(q, "cursor=c1") || !strings.Contains(q, "limit=2") || !strings.Contains(q, "status=active") {
		t.Errorf("second page asked with %q", q)
	}

	r = pki(t, "", envFor(t, srv), "list")
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, "M-2") || strings.Contains(r.stdout, "M-3") || !strings.Contains(r.stderr, "--cursor c1") {
		t.Errorf("one page printed\n%s\nstderr %s", r.stdout, r.stderr)
	}
}

func TestRotateWithOldKey(t *testing.T) {
	dir := t.TempDir()
	oldKey, _ := keyPair(t, dir, "old", meter.P256)
	_, newPub := keyPair(t, dir, "new", meter.Secp256k1)
	old := readKey(t, oldKey).Public()
	var proofOK bool
	_, srv := fakeRegistry(t, false, map[string]http.HandlerFunc{
		"GET /api/v1/meters/{id}": func(w http.ResponseWriter, r *http.Request) {
			answer(w, http.StatusOK, meterRecord(r.PathValue("id"), old, 2))
		},
		"POST /api/v1/meters/{id}/rotate": func(w http.ResponseWriter, r *http.Request) {
			var req api.RotateRequest
			json.NewDecoder(r.Body).Decode(&req)
			nk, err := meter.ParsePublicKeyPEM(req.PublicKey)
			if err != nil {
				answer(w, http.StatusUnprocessableEntity, api.Problem{Code: string(meter.CodeInvalidKey), Detail: err.Error()})
				return
			}
			sig, _ := base64.StdEncoding.DecodeString(req.Proof)
			proofOK = old.Verify(meter.RotationStatement(r.PathValue("id"), 3, nk), sig) == nil
			answer(w, http.StatusOK, api.MeterReceipt{Meter: meterRecord(r.PathValue("id"), nk, 3), Tx: api.Tx{TxID: "tx3", Block: 12}})
		},
	})
	r := pki(t, "", envFor(t, srv), "rotate", "PTB-0001", "--key", newPub, "--old-key", oldKey)
	r.want(t, exitOK)
	if !proofOK {
		t.Error("the proof does not verify with the old key over the statement for version 3")
	}
	if !strings.Contains(r.stdout, "rotated PTB-0001") {
		t.Errorf("stdout:\n%s", r.stdout)
	}

	other, _ := keyPair(t, dir, "other", meter.P256)
	r = pki(t, "", envFor(t, srv), "rotate", "PTB-0001", "--key", newPub, "--old-key", other)
	r.want(t, exitUsage)
	if !strings.Contains(r.stderr, "not the current key") {
		t.Errorf("stderr: %s", r.stderr)
	}
}

func TestRevoke(t *testing.T) {
	key, _ := keyPair(t, t.TempDir(), "m", meter.P256)
	k := readKey(t, key).Public()
	reg, srv := fakeRegistry(t, false, map[string]http.HandlerFunc{
		"POST /api/v1/meters/{id}/revoke": func(w http.ResponseWriter, r *http.Request) {
			var req api.RevokeRequest
			json.NewDecoder(r.Body).Decode(&req)
			m := meterRecord(r.PathValue("id"), k, 1)
			m.Status, m.Revocation = meter.StatusRevoked, &meter.Revocation{Reason: req.Reason, InvalidityDate: req.InvalidityDate, TxID: "tx4"}
			answer(w, http.StatusOK, api.MeterReceipt{Meter: m, Tx: api.Tx{TxID: "tx4", Block: 13}})
		},
	})
	r := pki(t, "", envFor(t, srv), "revoke", "M-1", "--reason", "keyCompromise", "--invalidity-date", "2026-05-01T00:00:00Z")
	r.want(t, exitOK)
	if want := `{"reason":"keyCompromise","invalidityDate":"2026-05-01T00:00:00Z"}`; string(reg.requests[0].body) != want {
		t.Errorf("sent %s, want %s", reg.requests[0].body, want)
	}
	if !strings.Contains(r.stdout, "keyCompromise") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
}

func TestSubmit(t *testing.T) {
	key, _ := keyPair(t, t.TempDir(), "m", meter.P256)
	sign := func(seq string) string {
		r := pki(t, "", nil, "sign", "--key", key, "--meter", "M-1", "--seq", seq, "--value", "1.5")
		r.want(t, exitOK)
		return r.stdout
	}
	reg, srv := fakeRegistry(t, false, map[string]http.HandlerFunc{
		"POST /api/v1/meters/{id}/measurements": func(w http.ResponseWriter, r *http.Request) {
			answer(w, http.StatusCreated, api.MeasurementReceipt{MeterID: r.PathValue("id"), Seq: 1, KeyVersion: 1, Tx: api.Tx{TxID: "tx5", Block: 20}})
		},
		"POST /api/v1/measurements/batch": func(w http.ResponseWriter, r *http.Request) {
			var b api.MeasurementBatch
			json.NewDecoder(r.Body).Decode(&b)
			rec := api.BatchReceipt{Tx: api.Tx{TxID: "tx6", Block: 21}, Accepted: 1, Rejected: len(b.Measurements) - 1}
			for i, sm := range b.Measurements {
				it := meter.ItemResult{Index: i, MeterID: sm.MeterID, Outcome: meter.OutcomeAccepted}
				if i > 0 {
					it.Outcome, it.Code, it.Reason = meter.OutcomeRejected, meter.CodeReplay, "seq not above"
				}
				rec.Items = append(rec.Items, it)
			}
			answer(w, http.StatusOK, rec)
		},
	})
	env := envFor(t, srv)

	r := pki(t, sign("1"), env, "submit", "-")
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, "accepted M-1 seq 1") || reg.requests[0].path != "/api/v1/meters/M-1/measurements" {
		t.Errorf("single: %s to %s", r.stdout, reg.requests[0].path)
	}

	// Objects one after the other are a batch.
	r = pki(t, sign("2")+sign("3"), env, "submit", "-")
	r.want(t, exitFailure)
	if reg.requests[1].path != "/api/v1/measurements/batch" || !strings.Contains(r.stdout, "REPLAY") || !strings.Contains(r.stderr, "1 of 2 measurements refused") {
		t.Errorf("batch to %s:\n%s\nstderr %s", reg.requests[1].path, r.stdout, r.stderr)
	}
	var b api.MeasurementBatch
	if err := json.Unmarshal(reg.requests[1].body, &b); err != nil || len(b.Measurements) != 2 {
		t.Errorf("batch body %s: %v", reg.requests[1].body, err)
	}

	// So are an array and a {"measurements":[…]} object.
	one := strings.TrimSpace(sign("4"))
	for _, in := range []string{"[" + one + "]", `{"measurements":[` + one + `]}`} {
		pki(t, in, env, "submit", "-").want(t, exitOK)
		if last := reg.requests[len(reg.requests)-1]; last.path != "/api/v1/measurements/batch" || !last.idempotent {
			t.Errorf("%s went to %s", in[:12], last.path)
		}
	}
}

func TestProblem(t *testing.T) {
	_, srv := fakeRegistry(t, false, map[string]http.HandlerFunc{
		"GET /api/v1/meters/{id}": func(w http.ResponseWriter, r *http.Request) {
			answer(w, http.StatusNotFound, api.Problem{Code: string(meter.CodeMeterNotFound), Detail: "meter M-9 is not registered"})
		},
	})
	r := pki(t, "", envFor(t, srv), "show", "M-9")
	r.want(t, exitFailure)
	if want := "pki: read meter M-9: METER_NOT_FOUND: meter M-9 is not registered\n"; r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
	r = pki(t, "", envFor(t, srv), "show", "M-9", "-o", "json")
	r.want(t, exitFailure)
	var p api.Problem
	if err := json.Unmarshal([]byte(r.stderr), &p); err != nil || p.Code != string(meter.CodeMeterNotFound) || p.Status != 404 {
		t.Errorf("stderr %s: %v", r.stderr, err)
	}
	// A wrong token is the registry's refusal too.
	r = pki(t, "", []string{"PKI_API=" + srv.URL, "PKI_TOKEN=wrong"}, "show", "M-9")
	r.want(t, exitFailure)
	if !strings.Contains(r.stderr, api.CodeUnauthenticated) {
		t.Errorf("stderr %s", r.stderr)
	}
}

func TestConsortiumOverTLS(t *testing.T) {
	_, srv := fakeRegistry(t, true, map[string]http.HandlerFunc{
		"GET /api/v1/consortium": func(w http.ResponseWriter, r *http.Request) {
			answer(w, http.StatusOK, api.Consortium{Channel: "meters", Height: 42, NMI: "PTB", ConsensusType: "BFT",
				Members:   []channel.Member{{Name: "PTB", MSPID: "PTBMSP", AnchorPeers: []string{"peer0.ptb:7051"}}},
				Orderers:  []channel.Consenter{{ID: 1, Host: "orderer0.ptb", Port: 7050, MSPID: "PTBMSP"}},
				Chaincode: api.Chaincode{Name: "pki", Version: "1.0", Sequence: 1, ContractVersion: "1.0.0"}})
		},
	})
	ca := writeTemp(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	r := pki(t, "", append(envFor(t, srv), "PKI_CA="+ca), "consortium")
	r.want(t, exitOK)
	for _, want := range []string{"height", "42", "PTBMSP", "orderer0.ptb:7050", "pki 1.0 (sequence 1, contract 1.0.0)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	// Without the CA the registry's certificate is not trusted.
	pki(t, "", envFor(t, srv), "consortium").want(t, exitFailure)
}

// TestRoutes checks that each command calls its endpoint, and prints the
// registry's answer.
func TestRoutes(t *testing.T) {
	key, _ := keyPair(t, t.TempDir(), "m", meter.P256)
	k := readKey(t, key).Public()
	signed := pki(t, "", nil, "sign", "--key", key, "--meter", "M-1", "--seq", "5", "--value", "2.5").stdout
	rec := api.MeterReceipt{Meter: meterRecord("M-1", k, 1), Tx: api.Tx{TxID: "tx8", Block: 30}}
	for _, tc := range []struct {
		args          []string
		stdin         string
		method, path  string
		query         string
		answer        any
		stdout        string
		wantBodyMatch string
	}{
		{[]string{"show", "M-1", "--min-block", "12"}, "", "GET", "/api/v1/meters/M-1", "minBlock=12", rec.Meter, "BEGIN PUBLIC KEY", ""},
		{[]string{"history", "M-1"}, "", "GET", "/api/v1/meters/M-1/history", "",
			[]api.MeterVersion{{TxID: "tx1", Time: "2026-05-01T00:00:00Z", Meter: rec.Meter}}, "2026-05-01T00:00:00Z", ""},
		{[]string{"keys", "M-1", "--min-block", "3"}, "", "GET", "/api/v1/meters/M-1/keys", "minBlock=3",
			[]meter.KeyVersion{{MeterID: "M-1", Version: 1, Curve: meter.P256, Fingerprint: k.Fingerprint(), ValidFrom: "2026-05-01T00:00:00Z"}}, k.Fingerprint(), ""},
		{[]string{"reinstate", "M-1"}, "", "POST", "/api/v1/meters/M-1/reinstate", "", rec, "reinstated M-1", ""},
		{[]string{"pre-enrol", "--id", "M-2", "--identity", "ACME E350 42"}, "", "POST", "/api/v1/pre-enrolments", "",
			api.PreEnrolmentReceipt{PreEnrolment: &meter.PreEnrolment{MeterID: "M-2", IdentityHash: meter.IdentityHash("ACME E350 42")}},
			"pre-enrolled M-2", `"identityHash":"` + meter.IdentityHash("ACME E350 42") + `"`},
		{[]string{"verify", "-"}, signed, "POST", "/api/v1/measurements/verify", "",
			meter.Verification{Valid: true, MeterID: "M-1", Seq: 5, KeyVersion: 1}, "valid: meter M-1 seq 5, key version 1", `"payload"`},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			reg, srv := fakeRegistry(t, false, map[string]http.HandlerFunc{
				"/": func(w http.ResponseWriter, r *http.Request) { answer(w, http.StatusOK, tc.answer) },
			})
			r := pki(t, tc.stdin, envFor(t, srv), tc.args...)
			r.want(t, exitOK)
			got := reg.requests[0]
			if got.method != tc.method || got.path != tc.path || got.query != tc.query {
				t.Errorf("called %s %s?%s, want %s %s?%s", got.method, got.path, got.query, tc.method, tc.path, tc.query)
			}
			if !strings.Contains(string(got.body), tc.wantBodyMatch) {
				t.Errorf("sent %s, want it to hold %s", got.body, tc.wantBodyMatch)
			}
			if !strings.Contains(r.stdout, tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, r.stdout)
			}
		})
	}
}
