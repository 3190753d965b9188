package billing_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"

	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/billing"
	"github.com/inter-nmi/pki/pki-chaincode/contract"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/stubtest"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// txTime is the time of the first transaction; each next one is a minute
// later.
var txTime = time.Date(2026, 11, 21, 10, 20, 0, 0, time.UTC)

// world is a channel with both contracts deployed and a fake peer, a
// registered meter (PTB-0001), a revoked one (PTB-0002), and the parties'
// keys.
type world struct {
	t      testing.TB
	ledger *stubtest.Ledger
	pki    *contract.Registry
	cc     *billing.Billing
	txs    *int // transactions so far, shared by the views of one world
	fault  func(op, key string) error

	registrar, ingest, auditor *stubtest.Identity
	customer, utility, other   *meter.PrivateKey
	// meterKeys are the registered meters' own keys.
	meterKeys map[string]*meter.PrivateKey
}

func newWorld(t testing.TB) *world {
	w := &world{t: t, ledger: stubtest.NewLedger(), pki: contract.New(contract.WithClock(nil)), cc: billing.New(billing.WithClock(nil)), txs: new(int),
		registrar: stubtest.Client(t, "PTBMSP", wire.RoleRegistrar),
		ingest:    stubtest.Client(t, "CMIMSP", wire.RoleIngest),
		auditor:   stubtest.Client(t, "CMIMSP", wire.RoleAuditor),
		customer:  newKey(t), utility: newKey(t), other: newKey(t), meterKeys: map[string]*meter.PrivateKey{}}
	for _, id := range []string{"PTB-0001", "PTB-0002"} {
		w.meterKeys[id] = newKey(t)
		reg := meter.Registration{MeterID: id, PublicKey: w.meterKeys[id].Public().PEM(),
			Metadata: meter.Metadata{Manufacturer: "Acme Metering", Model: "EM-3000", SerialNumber: "SN-" + id,
				SoftwareID: "EM3-FW 2.1", SoftwareChecksum: "sha256:9f86d081884c7d65"}}
		// The meter proves its key for the NMI that registers it.
		if err := reg.Prove(w.meterKeys[id], w.registrar.MSP); err != nil {
			t.Fatal(err)
		}
		req := mustJSON(t, reg)
		ok(w, w.registrar, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
			return w.pki.RegisterMeter(ctx, req)
		})
	}
	ok(w, w.registrar, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.pki.RevokeMeter(ctx, "PTB-0002", string(meter.ReasonKeyCompromise), "")
	})
	return w
}

func newKey(t testing.TB) *meter.PrivateKey {
	t.Helper()
	k, err := meter.GenerateKey(meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (w *world) stub(who *stubtest.Identity, args ...string) *stubtest.Stub {
	at := txTime.Add(time.Duration(*w.txs) * time.Minute)
	*w.txs++
	s := stubtest.NewStub(w.ledger, fmt.Sprintf("tx%05d", *w.txs), at, who.Creator, args...)
	s.Fault = w.fault
	return s
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

// event decodes the transaction's event, requiring its name.
func event(t testing.TB, stub *stubtest.Stub, name string) billing.Event {
	t.Helper()
	var v billing.Event
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

// invoke runs a transaction through contractapi, as the peer would.
func (w *world) invoke(cc *contractapi.ContractChaincode, who *stubtest.Identity, fn string, args ...string) *peer.Response {
	w.t.Helper()
	stub := w.stub(who, append([]string{fn}, args...)...)
	resp := cc.Invoke(stub)
	if resp.Status == 200 {
		stub.Commit()
	}
	return resp
}

// stored decodes the committed record of a period.
func (w *world) stored(meterID, period string) *agreement.Record {
	w.t.Helper()
	b := w.ledger.State[agreement.Key(meterID, period)]
	if b == nil {
		return nil
	}
	rec := new(agreement.Record)
	if err := json.Unmarshal(b, rec); err != nil {
		w.t.Fatal(err)
	}
	return rec
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sign(t testing.TB, key *meter.PrivateKey, statement any) string {
	t.Helper()
	sig, err := agreement.Sign(key, statement)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

const (
	meterID = "PTB-0001"
	period  = "2026-11-20"
)

// tariffHash is the hash of the agreed tariff.
var tariffHash = sha("tariff")

func periodStatement(meterID, period string) agreement.PeriodStatement {
	return agreement.PeriodStatement{Type: agreement.TypePeriod, MeterID: meterID, Period: period,
		Start: "2026-11-20T00:00:00Z", Interval: "15m0s", Slots: 96, Group: 2048,
		MaxReading: 100000, MaxWeight: 1000, PublicKeySHA256: sha("functional public key")}
}

// The requests of each step, signed as the parties would.

func (w *world) bindRequest(st agreement.PeriodStatement) agreement.PeriodRequest {
	if st.CustomerKeySHA256 == "" {
		st.CustomerKeySHA256 = w.customer.Public().Fingerprint()
	}
	mk := w.meterKeys[st.MeterID]
	if mk == nil {
		mk = newKey(w.t)
	}
	return agreement.PeriodRequest{Statement: st, CustomerKey: w.customer.Public().PEM(), CustomerSignature: sign(w.t, w.customer, st),
		MeterSignature: sign(w.t, mk, st)}
}

// parties fills in the fingerprints of the world's customer and utility
// where a statement names none.
func (w *world) parties(customer, utility string) (string, string) {
	if customer == "" {
		customer = w.customer.Public().Fingerprint()
	}
	if utility == "" {
		utility = w.utility.Public().Fingerprint()
	}
	return customer, utility
}

func tariffStatement(meterID, period, hash string) agreement.TariffStatement {
	return agreement.TariffStatement{Type: agreement.TypeTariff, MeterID: meterID, Period: period, TariffSHA256: hash}
}

func (w *world) tariffRequest(st agreement.TariffStatement) agreement.TariffRequest {
	st.CustomerKeySHA256, st.UtilityKeySHA256 = w.parties(st.CustomerKeySHA256, st.UtilityKeySHA256)
	return agreement.TariffRequest{Statement: st, UtilityKey: w.utility.Public().PEM(),
		CustomerSignature: sign(w.t, w.customer, st), UtilitySignature: sign(w.t, w.utility, st)}
}

func keyStatement(meterID, period, hash string) agreement.KeyStatement {
	return agreement.KeyStatement{Type: agreement.TypeKey, MeterID: meterID, Period: period, TariffSHA256: hash}
}

func (w *world) keyRequest(st agreement.KeyStatement) agreement.KeyRequest {
	st.CustomerKeySHA256, st.UtilityKeySHA256 = w.parties(st.CustomerKeySHA256, st.UtilityKeySHA256)
	return agreement.KeyRequest{Statement: st, CustomerSignature: sign(w.t, w.customer, st)}
}

func billStatement(meterID, period, hash string, slots int) agreement.BillStatement {
	return agreement.BillStatement{Type: agreement.TypeBill, MeterID: meterID, Period: period, TariffSHA256: hash,
		Amount: 1234567, Slots: slots}
}

func (w *world) billRequest(st agreement.BillStatement) agreement.BillRequest {
	st.CustomerKeySHA256, st.UtilityKeySHA256 = w.parties(st.CustomerKeySHA256, st.UtilityKeySHA256)
	return agreement.BillRequest{Statement: st, UtilitySignature: sign(w.t, w.utility, st)}
}

// Each step as a transaction of the contract, for run, ok and refused.

func (w *world) bind(req string) func(contractapi.TransactionContextInterface) (*agreement.Record, error) {
	return func(ctx contractapi.TransactionContextInterface) (*agreement.Record, error) {
		return w.cc.BindPeriod(ctx, req)
	}
}

func (w *world) agree(meterID, period, req string) func(contractapi.TransactionContextInterface) (*agreement.Record, error) {
	return func(ctx contractapi.TransactionContextInterface) (*agreement.Record, error) {
		return w.cc.AgreeTariff(ctx, meterID, period, req)
	}
}

func (w *world) keyIssued(meterID, period, req string) func(contractapi.TransactionContextInterface) (*agreement.Record, error) {
	return func(ctx contractapi.TransactionContextInterface) (*agreement.Record, error) {
		return w.cc.RecordKeyIssued(ctx, meterID, period, req)
	}
}

func (w *world) bill(meterID, period, req string) func(contractapi.TransactionContextInterface) (*agreement.Record, error) {
	return func(ctx contractapi.TransactionContextInterface) (*agreement.Record, error) {
		return w.cc.RecordBill(ctx, meterID, period, req)
	}
}

func (w *world) read(meterID, period string) func(contractapi.TransactionContextInterface) (*agreement.Record, error) {
	return func(ctx contractapi.TransactionContextInterface) (*agreement.Record, error) {
		return w.cc.GetBillingPeriod(ctx, meterID, period)
	}
}

// Shortcuts that take the period through its steps.

func (w *world) bound() {
	w.t.Helper()
	ok(w, w.ingest, w.bind(mustJSON(w.t, w.bindRequest(periodStatement(meterID, period)))))
}

func (w *world) agreed() {
	w.t.Helper()
	w.bound()
	ok(w, w.ingest, w.agree(meterID, period, mustJSON(w.t, w.tariffRequest(tariffStatement(meterID, period, tariffHash)))))
}

// in returns a view of the world that reports to t, for a subtest.
func (w *world) in(t testing.TB) *world {
	v := *w
	v.t = t
	return &v
}
