package contract_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"

	"github.com/inter-nmi/pki/pki-chaincode/contract"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/stubtest"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

const (
	keysDir = "../../testdata/keys"
	msmtDir = "../../testdata/measurements"
)

// txTime is the transaction time the fixtures were made for; their
// measurements are stamped 2026-11-21T10:15:00Z.
var txTime = time.Date(2026, 11, 21, 10, 20, 0, 0, time.UTC)

// world is a channel with the contract deployed and a fake peer.
type world struct {
	t      testing.TB
	ledger *stubtest.Ledger
	cc     *contract.Registry
	now    time.Time                  // the time of the next transaction
	txs    *int                       // transactions so far, shared by the views of one world
	fault  func(op, key string) error // set on every transaction's stub
	// loseStates has every transaction's GetMultipleStates answer no values.
	loseStates bool

	ptb, cmi, ingest, auditor *stubtest.Identity
}

func newWorld(t testing.TB) *world {
	return &world{t: t, ledger: stubtest.NewLedger(), cc: contract.New(contract.WithClock(nil)), now: txTime, txs: new(int),
		ptb: stubtest.Client(t, "PTBMSP", wire.RoleRegistrar), cmi: stubtest.Client(t, "CMIMSP", wire.RoleRegistrar),
		ingest: stubtest.Client(t, "PTBMSP", wire.RoleIngest), auditor: stubtest.Client(t, "CMIMSP", wire.RoleAuditor)}
}

// in returns a view of the world that reports to t, for a subtest.
func (w *world) in(t testing.TB) *world {
	v := *w
	v.t = t
	return &v
}

func (w *world) stub(who *stubtest.Identity, args ...string) *stubtest.Stub {
	*w.txs++
	s := stubtest.NewStub(w.ledger, fmt.Sprintf("tx%05d", *w.txs), w.now, who.Creator, args...)
	s.Fault = w.fault
	s.LoseMultipleStates = w.loseStates
	return s
}

// run executes fn as one transaction of who (stubtest.Run).
func run[T any](w *world, who *stubtest.Identity, fn func(contractapi.TransactionContextInterface) (T, error)) (T, *stubtest.Stub, error) {
	w.t.Helper()
	stub := w.stub(who)
	v, err := stubtest.Run(w.t, stub, fn)
	return v, stub, err
}

// ok runs fn as a transaction of who and fails the test if it is refused.
func ok[T any](w *world, who *stubtest.Identity, fn func(contractapi.TransactionContextInterface) (T, error)) (T, *stubtest.Stub) {
	w.t.Helper()
	stub := w.stub(who)
	return stubtest.Ok(w.t, stub, fn), stub
}

// refused runs fn as a transaction of who, requires a refusal with code want
// and the committed state unchanged.
func refused[T any](w *world, who *stubtest.Identity, want meter.Code, fn func(contractapi.TransactionContextInterface) (T, error)) error {
	w.t.Helper()
	return stubtest.Refused(w.t, w.ledger, w.stub(who), want, fn)
}

// readOnly runs fn, requires success and that it staged no write and no event.
func readOnly[T any](w *world, who *stubtest.Identity, fn func(contractapi.TransactionContextInterface) (T, error)) T {
	w.t.Helper()
	before := w.ledger.Snapshot()
	v, stub := ok(w, who, fn)
	if len(stub.Writes) > 0 || len(stub.Params) > 0 || stub.Event != nil {
		w.t.Fatalf("a read wrote %d keys, %d policies, event %v", len(stub.Writes), len(stub.Params), stub.Event)
	}
	if d := before.Diff(w.ledger.Snapshot()); d != "" {
		w.t.Fatalf("a read changed the state: %s", d)
	}
	return v
}

// event decodes the transaction's event, requiring its name.
func event[T any](t testing.TB, stub *stubtest.Stub, name string) T {
	t.Helper()
	var v T
	if stub.Event == nil {
		t.Fatalf("no event, want %s", name)
	}
	if stub.Event.EventName != name {
		t.Fatalf("event %s, want %s", stub.Event.EventName, name)
	}
	if err := json.Unmarshal(stub.Event.Payload, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// invoke runs a transaction through contractapi, as the peer would: the
// function name and string arguments in, a response with the serialised
// result or the error message out.
func (w *world) invoke(cc *contractapi.ContractChaincode, who *stubtest.Identity, fn string, args ...string) (*peer.Response, *stubtest.Stub) {
	w.t.Helper()
	stub := w.stub(who, append([]string{fn}, args...)...)
	resp := cc.Invoke(stub)
	if resp.Status == 200 {
		stub.Commit()
	}
	return resp, stub
}

func (w *world) state(key string) []byte { return w.ledger.State[key] }

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

// registration is PTB's request to register id with the key, proved by the
// meter (the key's private half, if the tests know it).
func registration(id, publicKeyPEM string) meter.Registration {
	return registrationFor("PTBMSP", id, publicKeyPEM)
}

// registrationFor is a registration the meter proved for the NMI nmi.
func registrationFor(nmi, id, publicKeyPEM string) meter.Registration {
	reg := meter.Registration{MeterID: id, PublicKey: publicKeyPEM, Metadata: metadata()}
	if priv := signerOf(publicKeyPEM); priv != nil {
		if err := reg.Prove(priv, nmi); err != nil {
			panic(err)
		}
	}
	return reg
}

// signers are the private keys the tests know, by public key fingerprint:
// the test data's and those the tests generate (remember).
var (
	signersMu sync.Mutex
	signers   map[string]*meter.PrivateKey
)

func signerOf(publicKeyPEM string) *meter.PrivateKey {
	pub, err := meter.ParsePublicKeyPEM(publicKeyPEM)
	if err != nil {
		return nil
	}
	signersMu.Lock()
	defer signersMu.Unlock()
	if signers == nil {
		signers = map[string]*meter.PrivateKey{}
		files, _ := filepath.Glob(filepath.Join(keysDir, "*.key.pem"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if k, err := meter.ParsePrivateKeyPEM(string(b)); err == nil {
				signers[k.Public().Fingerprint()] = k
			}
		}
	}
	return signers[pub.Fingerprint()]
}

// remember makes a generated key's registrations provable.
func remember(k *meter.PrivateKey) *meter.PrivateKey {
	signerOf(k.Public().PEM()) // loads the test data's keys first
	signersMu.Lock()
	defer signersMu.Unlock()
	signers[k.Public().Fingerprint()] = k
	return k
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
func (w *world) register(who *stubtest.Identity, id, publicKeyPEM string) *meter.Meter {
	w.t.Helper()
	req := mustJSON(w.t, registrationFor(who.MSP, id, publicKeyPEM))
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

// generateKey makes a meter key whose registrations the tests can prove.
func generateKey(curve meter.Curve) (*meter.PrivateKey, error) {
	k, err := meter.GenerateKey(curve)
	if err != nil {
		return nil, err
	}
	return remember(k), nil
}
