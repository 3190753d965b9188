package contract_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/cid"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/pki-chaincode/contract"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

const (
	keysDir = "../testdata/keys"
	msmtDir = "../testdata/measurements"
)

// txTime is the transaction time the fixtures were made for; their
// measurements are stamped 2026-11-21T10:15:00Z.
var txTime = time.Date(2026, 11, 21, 10, 20, 0, 0, time.UTC)

// identity is a client as Fabric presents it: a serialized MSP identity
// carrying an X.509 certificate issued by the organisation's CA.
type identity struct {
	msp, role string
	creator   []byte
}

// attrOID is the Fabric CA attribute extension.
var attrOID = asn1.ObjectIdentifier{1, 2, 3, 4, 5, 6, 7, 8, 1}

var (
	caOnce sync.Once
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	idMu   sync.Mutex
	ids    = map[string]*identity{}
)

// client returns the identity of a client of mspID with the given pki.role
// ("" for a certificate without the attribute).
func client(t testing.TB, mspID, role string) *identity {
	t.Helper()
	caOnce.Do(func() {
		var err error
		if caKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca.test", Organization: []string{"Test CA"}},
			NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
		if err != nil {
			panic(err)
		}
		if caCert, err = x509.ParseCertificate(der); err != nil {
			panic(err)
		}
	})
	idMu.Lock()
	defer idMu.Unlock()
	name := role + "@" + mspID
	if id, ok := ids[name]; ok {
		return id
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(len(ids) + 2)), Subject: pkix.Name{CommonName: name, OrganizationalUnit: []string{"client"}},
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if role != "" {
		attrs, err := json.Marshal(map[string]map[string]string{"attrs": {contract.RoleAttribute: role}})
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: attrOID, Value: attrs}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	creator, err := proto.Marshal(&msp.SerializedIdentity{Mspid: mspID,
		IdBytes: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})})
	if err != nil {
		t.Fatal(err)
	}
	id := &identity{msp: mspID, role: role, creator: creator}
	ids[name] = id
	return id
}

// world is a channel with the contract deployed and a fake peer.
type world struct {
	t      testing.TB
	ledger *ledger
	cc     *contract.Registry
	now    time.Time                  // the time of the next transaction
	txs    *int                       // transactions so far, shared by the views of one world
	fault  func(op, key string) error // set on every transaction's stub

	ptb, cmi, ingest, auditor *identity
}

func newWorld(t testing.TB) *world {
	return &world{t: t, ledger: newLedger(), cc: contract.New(), now: txTime, txs: new(int),
		ptb: client(t, "PTBMSP", contract.RoleRegistrar), cmi: client(t, "CMIMSP", contract.RoleRegistrar),
		ingest: client(t, "PTBMSP", contract.RoleIngest), auditor: client(t, "CMIMSP", contract.RoleAuditor)}
}

// in returns a view of the world that reports to t, for a subtest.
func (w *world) in(t testing.TB) *world {
	v := *w
	v.t = t
	return &v
}

func (w *world) stub(who *identity, args ...string) *fakeStub {
	*w.txs++
	s := newFakeStub(w.ledger, fmt.Sprintf("tx%05d", *w.txs), w.now, who.creator, args...)
	s.fault = w.fault
	return s
}

// run executes fn as one transaction of who, calling the contract directly
// with the context contractapi would build. Its writes are committed only if
// fn succeeds.
func run[T any](w *world, who *identity, fn func(contractapi.TransactionContextInterface) (T, error)) (T, *fakeStub, error) {
	w.t.Helper()
	stub := w.stub(who)
	ctx := new(contractapi.TransactionContext)
	ctx.SetStub(stub)
	ci, err := cid.New(stub)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx.SetClientIdentity(ci)
	v, err := fn(ctx)
	if err == nil {
		stub.commit()
	}
	return v, stub, err
}

// ok runs fn and fails the test if it is refused.
func ok[T any](w *world, who *identity, fn func(contractapi.TransactionContextInterface) (T, error)) (T, *fakeStub) {
	w.t.Helper()
	v, stub, err := run(w, who, fn)
	if err != nil {
		w.t.Fatalf("refused: %v", err)
	}
	return v, stub
}

// refused runs fn, requires a refusal with code want, and requires that the
// committed state is unchanged.
func refused[T any](w *world, who *identity, want meter.Code, fn func(contractapi.TransactionContextInterface) (T, error)) error {
	w.t.Helper()
	before := w.ledger.snapshot()
	_, _, err := run(w, who, fn)
	if err == nil {
		w.t.Fatalf("accepted, want %s", want)
	}
	if got := meter.CodeOf(err); got != want {
		w.t.Fatalf("refused with %v, want code %s", err, want)
	}
	if d := before.diff(w.ledger.snapshot()); d != "" {
		w.t.Fatalf("refused transaction changed the state: %s", d)
	}
	return err
}

// readOnly runs fn, requires success and that it staged no write and no event.
func readOnly[T any](w *world, who *identity, fn func(contractapi.TransactionContextInterface) (T, error)) T {
	w.t.Helper()
	before := w.ledger.snapshot()
	v, stub := ok(w, who, fn)
	if len(stub.writes) > 0 || len(stub.params) > 0 || stub.event != nil {
		w.t.Fatalf("a read wrote %d keys, %d policies, event %v", len(stub.writes), len(stub.params), stub.event)
	}
	if d := before.diff(w.ledger.snapshot()); d != "" {
		w.t.Fatalf("a read changed the state: %s", d)
	}
	return v
}

// event decodes the transaction's event, requiring its name.
func event[T any](t testing.TB, stub *fakeStub, name string) T {
	t.Helper()
	var v T
	if stub.event == nil {
		t.Fatalf("no event, want %s", name)
	}
	if stub.event.EventName != name {
		t.Fatalf("event %s, want %s", stub.event.EventName, name)
	}
	if err := json.Unmarshal(stub.event.Payload, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// invoke runs a transaction through contractapi, as the peer would: the
// function name and string arguments in, a response with the serialised
// result or the error message out.
func (w *world) invoke(cc *contractapi.ContractChaincode, who *identity, fn string, args ...string) (*peer.Response, *fakeStub) {
	w.t.Helper()
	stub := w.stub(who, append([]string{fn}, args...)...)
	resp := cc.Invoke(stub)
	if resp.Status == 200 {
		stub.commit()
	}
	return resp, stub
}

func (w *world) state(key string) []byte { return w.ledger.state[key] }

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pubPEM(t testing.TB, name string) string {
	return string(readFile(t, filepath.Join(keysDir, name+".good.pem")))
}

func privateKey(t testing.TB, name string) *meter.PrivateKey {
	t.Helper()
	k, err := meter.ParsePrivateKeyPEM(string(readFile(t, filepath.Join(keysDir, name+".key.pem"))))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func metadata() meter.Metadata {
	return meter.Metadata{Manufacturer: "Acme Metering", Model: "EM-3000", SerialNumber: "SN-0001",
		SoftwareID: "EM3-FW 2.1", SoftwareChecksum: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
}

func registration(id, publicKeyPEM string) meter.Registration {
	return meter.Registration{MeterID: id, PublicKey: publicKeyPEM, Metadata: metadata()}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// register enrols a meter as registrar who and returns its record.
func (w *world) register(who *identity, id, publicKeyPEM string) *meter.Meter {
	w.t.Helper()
	req := mustJSON(w.t, registration(id, publicKeyPEM))
	m, _ := ok(w, who, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.RegisterMeter(ctx, req)
	})
	return m
}

// reading signs a measurement of meter id.
func reading(t testing.TB, key *meter.PrivateKey, id string, seq uint64, at time.Time) meter.SignedMeasurement {
	t.Helper()
	sm, err := meter.Sign(key, meter.Measurement{MeterID: id, Seq: seq, Time: at.Format(time.RFC3339Nano),
		Value: fmt.Sprintf("%d.5", 1000+seq), Unit: "kWh"})
	if err != nil {
		t.Fatal(err)
	}
	return sm
}

// signRaw signs payload bytes as they are, valid or not.
func signRaw(t testing.TB, key *meter.PrivateKey, id string, payload []byte) meter.SignedMeasurement {
	t.Helper()
	sig, err := key.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return meter.SignedMeasurement{MeterID: id, Payload: payload, Signature: sig}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// submit delivers one signed measurement.
func (w *world) submit(sm meter.SignedMeasurement) func(contractapi.TransactionContextInterface) (*meter.ItemResult, error) {
	return func(ctx contractapi.TransactionContextInterface) (*meter.ItemResult, error) {
		return w.cc.SubmitMeasurement(ctx, sm.MeterID, b64(sm.Payload), b64(sm.Signature))
	}
}

// readingTime is the meter time of the fixtures, five minutes before txTime.
var readingTime = time.Date(2026, 11, 21, 10, 15, 0, 0, time.UTC)
