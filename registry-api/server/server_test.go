package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inter-nmi/pki/network/pkg/credentials"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/idempotency"
	"github.com/inter-nmi/pki/registry-api/readings"
)

// Credential IDs of the fixture's tokens.
const (
	operator  = "ptb-operator"
	operator2 = "ptb-operator-2"
	ingest    = "ptb-ingest"
	auditor   = "ptb-auditor"
	customer  = "ptb-customer"
	utility   = "ptb-utility"
)

var roleOf = map[string]api.Role{operator: api.RoleOperator, operator2: api.RoleOperator, ingest: api.RoleIngest, auditor: api.RoleAuditor,
	customer: api.RoleCustomer, utility: api.RoleUtility}

// fixture is a server on a fake ledger, with a token per credential and an
// idempotency store in a temporary directory.
type fixture struct {
	t        *testing.T
	ledger   *fakeLedger
	creds    *credentials.Store
	tokens   map[string]string
	dbPath   string
	store    *idempotency.Store
	readings *readings.Index
	opts     Options
	srv      *Server
	reg      *prometheus.Registry
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, ledger: newFakeLedger(), tokens: map[string]string{},
		dbPath: filepath.Join(t.TempDir(), "idempotency.db")}
	var creds []credentials.Credential
	for id, role := range roleOf {
		token, cred, err := credentials.NewToken(id, role)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[id] = token
		creds = append(creds, cred)
	}
	var err error
	if f.creds, err = credentials.New(creds); err != nil {
		t.Fatal(err)
	}
	if f.store, err = idempotency.Open(f.dbPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	if f.readings, err = readings.Open(filepath.Join(t.TempDir(), "readings.db"), "pki"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.readings.Close() })
	// The fake ledger commits in blocks the fake index reads only when a
	// test feeds them: answers do not wait for it.
	f.opts = Options{NMI: fixtureNMI, Channel: "metrology", Ledger: f.ledger, Credentials: f.creds, Idempotency: f.store, Log: slog.New(slog.DiscardHandler),
		IndexWait: time.Millisecond}
	f.build()
	return f
}

// build makes the server from the fixture's options, with fresh metrics.
func (f *fixture) build() {
	f.reg = prometheus.NewRegistry()
	f.opts.Metrics, f.opts.Gatherer, f.opts.Idempotency, f.opts.Readings = f.reg, f.reg, f.store, f.readings
	if f.srv != nil {
		f.srv.Close()
	}
	f.srv = New(f.opts)
	f.t.Cleanup(f.srv.Close)
}

// restart closes the idempotency database and opens it again under a new
// server, as a restarted process would.
func (f *fixture) restart() {
	f.t.Helper()
	if err := f.store.Close(); err != nil {
		f.t.Fatal(err)
	}
	var err error
	if f.store, err = idempotency.Open(f.dbPath); err != nil {
		f.t.Fatal(err)
	}
	f.build()
}

// request is one HTTP request of a test.
type request struct {
	method, path string
	// as names the credential whose token is sent; "" sends none.
	as string
	// authorization, when set, is sent as the Authorization header instead.
	authorization string
	contentType   string
	body          string
	header        map[string]string
	// chunked hides the body's length, as a streaming client would.
	chunked bool
	// ctx, when set, is the request's context: a client that goes away
	// cancels it.
	ctx context.Context
}

// post is a JSON POST; body is sent as is if it is a string, else as JSON.
func post(path, as string, body any) request {
	return request{method: http.MethodPost, path: path, as: as, contentType: "application/json", body: jsonText(body)}
}

func get(path, as string) request { return request{method: http.MethodGet, path: path, as: as} }

func (r request) with(name, value string) request {
	h := map[string]string{}
	for k, v := range r.header {
		h[k] = v
	}
	h[name] = value
	r.header = h
	return r
}

func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// do serves r and checks the answer against the API description. It may be
// called from any goroutine.
func (f *fixture) do(r request) *httptest.ResponseRecorder {
	var body io.Reader = strings.NewReader(r.body)
	req := httptest.NewRequest(r.method, r.path, body)
	if r.chunked {
		req.Body = io.NopCloser(struct{ io.Reader }{strings.NewReader(r.body)})
		req.ContentLength = -1
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	switch {
	case r.authorization != "":
		req.Header.Set("Authorization", r.authorization)
	case r.as != "":
		req.Header.Set("Authorization", "Bearer "+f.tokens[r.as])
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	if r.ctx != nil {
		req = req.WithContext(r.ctx)
	}
	rec := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(rec, req)
	checkDocumented(f.t, req, rec)
	return rec
}

// decode reads a JSON answer of the expected status into v.
func decode[T any](t *testing.T, rec *httptest.ResponseRecorder, status int) T {
	t.Helper()
	var v T
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %s: %v", rec.Body, err)
	}
	return v
}

// problemOf checks that the answer is a problem of the given status and code
// and returns it.
func problemOf(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) api.Problem {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p api.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("decode problem %s: %v", rec.Body, err)
	}
	if p.Code != code {
		t.Errorf("code %q, want %q (detail %q)", p.Code, code, p.Detail)
	}
	if p.Status != rec.Code || p.Type != api.ProblemType(p.Code) || p.Title == "" || p.Detail == "" {
		t.Errorf("problem %+v is incomplete or disagrees with the status %d", p, rec.Code)
	}
	return p
}

// fixtureNMI is the MSP ID the fixture's registry speaks for.
const fixtureNMI = "PTBMSP"

// registration is a valid registration of id with the given key, proved by
// the meter for fixtureNMI when the tests hold the key's private half (the
// test data's keys and those newKeyPEM made); other text goes without a
// proof.
func registration(id, publicKey string) meter.Registration {
	reg := meter.Registration{MeterID: id, PublicKey: publicKey,
		Metadata: meter.Metadata{Manufacturer: "Acme", Model: "E350", SerialNumber: "SN-" + id,
			SoftwareID: "fw-1.2", SoftwareChecksum: "sha256:9f86d081884c7d65"}}
	if k := meterKeys.of(publicKey); k != nil {
		if err := reg.Prove(k, fixtureNMI); err != nil {
			panic(err)
		}
	}
	return reg
}

// newKeyPEM makes a fresh P-256 public key, whose private half registration
// proves with.
func newKeyPEM(t testing.TB) string {
	t.Helper()
	k, err := meter.GenerateKey(meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	meterKeys.add(k)
	return k.Public().PEM()
}

// withProof is reg with another proof.
func withProof(reg meter.Registration, proof string) meter.Registration {
	reg.Proof = proof
	return reg
}

// proofOf is the proof the meter of publicKey makes for the NMI nmi and the
// meter ID id.
func proofOf(t testing.TB, publicKey, nmi, id string) string {
	t.Helper()
	k := meterKeys.of(publicKey)
	if k == nil {
		t.Fatalf("the tests hold no private key of %q", publicKey)
	}
	reg := meter.Registration{MeterID: id}
	if err := reg.Prove(k, nmi); err != nil {
		t.Fatal(err)
	}
	return reg.Proof
}

// signedBy is the base64 signature over msg by the private half of publicKey.
func signedBy(t testing.TB, publicKey string, msg []byte) string {
	t.Helper()
	k := meterKeys.of(publicKey)
	if k == nil {
		t.Fatalf("the tests hold no private key of %q", publicKey)
	}
	sig, err := k.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func publicKey(t testing.TB, pem string) *meter.PublicKey {
	t.Helper()
	k, err := meter.ParsePublicKeyPEM(pem)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// derOf is a public key as a CSV cell holds it: base64 of its DER.
func derOf(t testing.TB, pem string) string {
	return base64.StdEncoding.EncodeToString(publicKey(t, pem).DER())
}

// meterKeys are the private keys of the meters the tests register, by
// public key fingerprint: the test data's, loaded on first use, and those
// newKeyPEM made.
var meterKeys keyring

type keyring struct {
	once sync.Once
	mu   sync.Mutex
	keys map[string]*meter.PrivateKey
}

func (r *keyring) load() {
	r.once.Do(func() {
		r.keys = map[string]*meter.PrivateKey{}
		files, err := filepath.Glob(filepath.Join(testdata, "keys", "*.key.pem"))
		if err != nil || len(files) == 0 {
			panic(fmt.Sprintf("no private keys in %s/keys (%v)", testdata, err))
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				panic(err)
			}
			k, err := meter.ParsePrivateKeyPEM(string(b))
			if err != nil {
				panic(fmt.Sprintf("%s: %v", f, err))
			}
			r.keys[k.Public().Fingerprint()] = k
		}
	})
}

func (r *keyring) add(k *meter.PrivateKey) {
	r.load()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys[k.Public().Fingerprint()] = k
}

// of is the private key of a public key PEM, nil if the tests hold none.
func (r *keyring) of(publicKeyPEM string) *meter.PrivateKey {
	pub, err := meter.ParsePublicKeyPEM(publicKeyPEM)
	if err != nil {
		return nil
	}
	r.load()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keys[pub.Fingerprint()]
}

func TestHealthz(t *testing.T) {
	f := newFixture(t)
	got := decode[map[string]string](t, f.do(get("/healthz", "")), http.StatusOK)
	if got["status"] != "ok" {
		t.Errorf("healthz = %v", got)
	}
	if n := len(f.ledger.recorded()); n != 0 {
		t.Errorf("healthz made %d ledger calls", n)
	}
}

func TestReadyz(t *testing.T) {
	f := newFixture(t)
	got := decode[map[string]string](t, f.do(get("/readyz", "")), http.StatusOK)
	if got["status"] != "ready" {
		t.Errorf("readyz = %v", got)
	}
	f.ledger.on("Ready", fails(io.ErrUnexpectedEOF))
	problemOf(t, f.do(get("/readyz", "")), http.StatusServiceUnavailable, api.CodeUnavailable)
	if n := len(f.ledger.named("Ready")); n != 2 {
		t.Errorf("Ready called %d times, want 2", n)
	}
}

// The metrics are served on the operations handler only: on the API's
// port they would tell any client who calls what how often.
func TestMetrics(t *testing.T) {
	f := newFixture(t)
	f.do(get("/api/v1/meters/PTB-0001", auditor))
	f.do(get("/api/v1/meters/PTB-0001", ""))
	for _, id := range []string{"", auditor, operator} {
		if rec := f.do(get("/metrics", id)); rec.Code != http.StatusNotFound {
			t.Errorf("GET /metrics on the API's port with credential %q: %d, want 404", id, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	f.srv.OperationsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("operations /metrics without a client certificate: %d, want 401", rec.Code)
	}
	rec = httptest.NewRecorder()
	withCert := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	withCert.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{}}}}
	f.srv.OperationsHandler().ServeHTTP(rec, withCert)
	if rec.Code != http.StatusOK {
		t.Fatalf("operations /metrics: status %d", rec.Code)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`registry_http_requests_total{method="GET",route="/api/v1/meters/:id",status="200"} 1`,
		`registry_http_requests_total{method="GET",route="/api/v1/meters/:id",status="401"} 1`,
		`registry_http_request_duration_seconds_count{method="GET",route="/api/v1/meters/:id",status="200"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
}

func TestRequestID(t *testing.T) {
	f := newFixture(t)
	rec := f.do(get("/healthz", "").with("X-Request-Id", "abc-123"))
	if got := rec.Header().Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("X-Request-Id = %q, want the client's", got)
	}
	long := strings.Repeat("x", 65)
	rec = f.do(get("/healthz", "").with("X-Request-Id", long))
	if got := rec.Header().Get("X-Request-Id"); got == long || len(got) != 16 {
		t.Errorf("X-Request-Id = %q, want a fresh one for an over-long client value", got)
	}
}

func TestTimeout(t *testing.T) {
	f := newFixture(t)
	f.opts.ReadTimeout = time.Millisecond
	f.build()
	// The ledger works until the request's deadline ends it, as the gateway does.
	f.ledger.on("GetMeter", func(ctx context.Context, _ []string) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	problemOf(t, f.do(get("/api/v1/meters/PTB-0001", auditor)), http.StatusGatewayTimeout, api.CodeTimeout)
}

// TestMain quiets gin as the registry's main does: the mode is the
// program's choice, not the server package's.
func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}
