// Package billing is the billing contract, served beside the meter-PKI
// contract in the same chaincode: it records the statements of
// privacy-preserving billing (package agreement) — a meter's period bound to
// the customer's functional public key, the tariff both parties agreed to,
// the issue of the functional key, and the bill — and checks that each is
// signed by the party it speaks for. It never sees a key or a reading.
//
// Any client of the consortium but an auditor may submit a statement; the
// statements' signatures carry the parties' authority.
package billing

import (
	"strings"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-contract-api-go/v2/metadata"

	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/contract"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/state"
)

// Version is the contract's version, reported in its metadata.
const Version = "1.0.0"

// Event names.
const (
	EventPeriodBound  = "BillingPeriodBound"
	EventTariffAgreed = "TariffAgreed"
	EventKeyIssued    = "FunctionalKeyIssued"
	EventBillRecorded = "BillRecorded"
)

// Event is the payload of every billing event: whose period changed. Its
// record is read with GetBillingPeriod.
type Event struct {
	MeterID string `json:"meterId"`
	Period  string `json:"period"`
}

// Billing is the billing contract. Its exported methods are the chaincode's
// transactions.
type Billing struct {
	contractapi.Contract
	meters *contract.Registry
	clock  func() time.Time
}

// Option sets up a Billing contract.
type Option func(*Billing)

// WithClock sets the clock proposal timestamps are checked against; nil
// checks none (tests whose transactions carry a fixed time).
func WithClock(now func() time.Time) Option {
	return func(b *Billing) { b.clock, b.meters = now, contract.New(contract.WithClock(now)) }
}

// New returns the contract with its metadata set.
func New(opts ...Option) *Billing {
	b := &Billing{meters: contract.New(), clock: time.Now}
	for _, o := range opts {
		o(b)
	}
	b.Name = agreement.Contract
	b.BeforeTransaction = state.ExactName(agreement.Transactions)
	b.Info = metadata.InfoMetadata{
		Title:       "Inter-NMI privacy-preserving billing",
		Description: "Signed statements of functional-encryption billing: period keys, tariff agreements, key issue, bills",
		Version:     Version,
	}
	return b
}

// GetEvaluateTransactions marks the read-only transactions in the metadata.
func (b *Billing) GetEvaluateTransactions() []string {
	var names []string
	for _, tx := range agreement.EvaluateTransactions {
		names = append(names, strings.TrimPrefix(tx, agreement.Contract+":"))
	}
	return names
}

// BindPeriod binds the customer's functional public key (by its hash) to an
// active meter and a billing period. request is a JSON agreement.PeriodRequest; the
// customer's signature over the statement must verify against customerKey,
// which the period's later statements are then checked against, and the
// meter's against its registered key (the meter consents: no one else can
// take its period first). A period is bound once.
func (b *Billing) BindPeriod(ctx contractapi.TransactionContextInterface, request string) (*agreement.Record, error) {
	if err := writer(ctx, "bind billing periods"); err != nil {
		return nil, err
	}
	var req agreement.PeriodRequest
	if err := decodeStrict(request, &req); err != nil {
		return nil, err
	}
	customer, err := req.Check()
	if err != nil {
		return nil, err
	}
	st := req.Statement
	m, err := b.meters.GetMeter(ctx, st.MeterID)
	if err != nil {
		return nil, err
	}
	if m.Status != meter.StatusActive {
		return nil, meter.Errorf(meter.CodeMeterRevoked, "meter %s is revoked (%s): its readings cannot be billed", m.ID, m.Revocation.Reason)
	}
	mk, err := meter.ParsePublicKeyPEM(m.PublicKey)
	if err != nil {
		return nil, state.Internal("stored key of "+m.ID, err)
	}
	if err := agreement.VerifyField(mk, st, "meterSignature", req.MeterSignature, "meter "+m.ID+"'s registered key: only the meter itself may consent to binding its billing period"); err != nil {
		return nil, err
	}
	key := agreement.Key(st.MeterID, st.Period)
	if _, found, err := state.Get[agreement.Record](ctx, key); err != nil {
		return nil, err
	} else if found {
		return nil, meter.Errorf(agreement.CodePeriodExists, "period %s of meter %s is bound already", st.Period, st.MeterID)
	}
	t, err := b.newTx(ctx)
	if err != nil {
		return nil, err
	}
	rec := &agreement.Record{Period: st, CustomerKey: customer.PEM(), CustomerSignature: req.CustomerSignature, PeriodTx: t.id}
	if err := state.Put(ctx, key, rec); err != nil {
		return nil, err
	}
	return rec, state.Emit(ctx, EventPeriodBound, Event{MeterID: st.MeterID, Period: st.Period})
}

// AgreeTariff records the tariff (by its hash) customer and utility agreed
// for a bound period. request is a JSON agreement.TariffRequest; the customer's
// signature must verify against the key bound with the period, the utility's
// against utilityKey, which the bill is then checked against. A period has
// one agreement.
func (b *Billing) AgreeTariff(ctx contractapi.TransactionContextInterface, meterID, period, request string) (*agreement.Record, error) {
	if err := writer(ctx, "agree tariffs"); err != nil {
		return nil, err
	}
	var req agreement.TariffRequest
	if err := decodeStrict(request, &req); err != nil {
		return nil, err
	}
	utility, err := req.Check(meterID, period)
	if err != nil {
		return nil, err
	}
	st := req.Statement
	rec, customer, err := load(ctx, meterID, period)
	if err != nil {
		return nil, err
	}
	if rec.Tariff != nil {
		return nil, meter.Errorf(agreement.CodeAgreementExists, "period %s of meter %s has an agreed tariff already (%s, tx %s)", period, meterID, rec.Tariff.TariffSHA256, rec.Tariff.TxID)
	}
	if utility.Equal(customer) {
		return nil, malformed("utilityKey is the customer's own key: a tariff is agreed by two parties")
	}
	if err := agreement.BindsKey("customerKeySha256", st.CustomerKeySHA256, customer, "the customer key bound with the period"); err != nil {
		return nil, err
	}
	if err := agreement.VerifyField(customer, st, "customerSignature", req.CustomerSignature, "the customer key bound with the period"); err != nil {
		return nil, err
	}
	t, err := b.newTx(ctx)
	if err != nil {
		return nil, err
	}
	rec.Tariff = &agreement.TariffRecord{TariffSHA256: st.TariffSHA256, UtilityKey: utility.PEM(),
		CustomerSignature: req.CustomerSignature, UtilitySignature: req.UtilitySignature, TxID: t.id, At: t.at}
	if err := state.Put(ctx, agreement.Key(meterID, period), rec); err != nil {
		return nil, err
	}
	return rec, state.Emit(ctx, EventTariffAgreed, Event{MeterID: meterID, Period: period})
}

// RecordKeyIssued records that the customer issued the functional key for
// the agreed tariff. request is a JSON agreement.KeyRequest, signed by the customer.
// It is recorded once.
func (b *Billing) RecordKeyIssued(ctx contractapi.TransactionContextInterface, meterID, period, request string) (*agreement.Record, error) {
	if err := writer(ctx, "record functional keys"); err != nil {
		return nil, err
	}
	var req agreement.KeyRequest
	if err := decodeStrict(request, &req); err != nil {
		return nil, err
	}
	if err := req.Check(meterID, period); err != nil {
		return nil, err
	}
	st := req.Statement
	rec, customer, err := loadAgreed(ctx, meterID, period, st.TariffSHA256)
	if err != nil {
		return nil, err
	}
	if rec.Key != nil {
		return nil, meter.Errorf(agreement.CodeKeyIssued, "the functional key of period %s of meter %s is recorded already (tx %s)", period, meterID, rec.Key.TxID)
	}
	if _, err := parties(rec, customer, st.CustomerKeySHA256, st.UtilityKeySHA256); err != nil {
		return nil, err
	}
	if err := agreement.VerifyField(customer, st, "customerSignature", req.CustomerSignature, "the customer key bound with the period"); err != nil {
		return nil, err
	}
	t, err := b.newTx(ctx)
	if err != nil {
		return nil, err
	}
	rec.Key = &agreement.KeyRecord{TariffSHA256: st.TariffSHA256, CustomerSignature: req.CustomerSignature, TxID: t.id, At: t.at}
	if err := state.Put(ctx, agreement.Key(meterID, period), rec); err != nil {
		return nil, err
	}
	return rec, state.Emit(ctx, EventKeyIssued, Event{MeterID: meterID, Period: period})
}

// RecordBill records the utility's bill for the period. request is a JSON
// agreement.BillRequest, signed with the utility key of the agreement, over the agreed
// tariff and every slot of the period. A period has one bill.
func (b *Billing) RecordBill(ctx contractapi.TransactionContextInterface, meterID, period, request string) (*agreement.Record, error) {
	if err := writer(ctx, "record bills"); err != nil {
		return nil, err
	}
	var req agreement.BillRequest
	if err := decodeStrict(request, &req); err != nil {
		return nil, err
	}
	if err := req.Check(meterID, period); err != nil {
		return nil, err
	}
	st := req.Statement
	rec, customer, err := loadAgreed(ctx, meterID, period, st.TariffSHA256)
	if err != nil {
		return nil, err
	}
	if rec.Bill != nil {
		return nil, meter.Errorf(agreement.CodeBillExists, "period %s of meter %s is billed already (tx %s)", period, meterID, rec.Bill.TxID)
	}
	if st.Slots != rec.Period.Slots {
		return nil, meter.Errorf(agreement.CodeSlotsMismatch, "the bill counts %d slots; period %s of meter %s has %d", st.Slots, period, meterID, rec.Period.Slots)
	}
	utility, err := parties(rec, customer, st.CustomerKeySHA256, st.UtilityKeySHA256)
	if err != nil {
		return nil, err
	}
	if err := agreement.VerifyField(utility, st, "utilitySignature", req.UtilitySignature, "the utility key of the agreed tariff"); err != nil {
		return nil, err
	}
	t, err := b.newTx(ctx)
	if err != nil {
		return nil, err
	}
	rec.Bill = &agreement.BillRecord{Amount: st.Amount, TariffSHA256: st.TariffSHA256, Slots: st.Slots,
		UtilitySignature: req.UtilitySignature, TxID: t.id, At: t.at}
	if err := state.Put(ctx, agreement.Key(meterID, period), rec); err != nil {
		return nil, err
	}
	return rec, state.Emit(ctx, EventBillRecorded, Event{MeterID: meterID, Period: period})
}

// parties checks that a statement names the period's customer and the
// utility of its agreed tariff by their keys' fingerprints, and returns the
// utility's key.
func parties(rec *agreement.Record, customer *meter.PublicKey, customerFP, utilityFP string) (*meter.PublicKey, error) {
	utility, err := meter.ParsePublicKeyPEM(rec.Tariff.UtilityKey)
	if err != nil {
		return nil, state.Internal("stored utility key of "+agreement.Key(rec.Period.MeterID, rec.Period.Period), err)
	}
	if err := agreement.BindsKey("customerKeySha256", customerFP, customer, "the customer key bound with the period"); err != nil {
		return nil, err
	}
	if err := agreement.BindsKey("utilityKeySha256", utilityFP, utility, "the utility key of the agreed tariff"); err != nil {
		return nil, err
	}
	return utility, nil
}

// GetBillingPeriod returns everything the ledger holds of a meter's period.
func (b *Billing) GetBillingPeriod(ctx contractapi.TransactionContextInterface, meterID, period string) (*agreement.Record, error) {
	if err := agreement.ValidateIDs(meterID, period); err != nil {
		return nil, err
	}
	rec, _, err := load(ctx, meterID, period)
	return rec, err
}

// load reads a bound period and the customer key bound with it.
func load(ctx contractapi.TransactionContextInterface, meterID, period string) (*agreement.Record, *meter.PublicKey, error) {
	key := agreement.Key(meterID, period)
	rec, found, err := state.Get[agreement.Record](ctx, key)
	if err != nil {
		return nil, nil, err
	}
	if !found {
		return nil, nil, meter.Errorf(agreement.CodePeriodNotFound, "period %s of meter %s is not bound", period, meterID)
	}
	customer, err := meter.ParsePublicKeyPEM(rec.CustomerKey)
	if err != nil {
		return nil, nil, state.Internal("stored customer key of "+key, err)
	}
	return &rec, customer, nil
}

// loadAgreed reads a period whose tariff is agreed, and refuses a statement
// about another tariff.
func loadAgreed(ctx contractapi.TransactionContextInterface, meterID, period, tariffHash string) (*agreement.Record, *meter.PublicKey, error) {
	rec, customer, err := load(ctx, meterID, period)
	if err != nil {
		return nil, nil, err
	}
	if rec.Tariff == nil {
		return nil, nil, meter.Errorf(agreement.CodeNoAgreement, "period %s of meter %s has no agreed tariff yet", period, meterID)
	}
	if tariffHash != rec.Tariff.TariffSHA256 {
		return nil, nil, meter.Errorf(agreement.CodeTariffMismatch, "the statement names tariff %s; the agreed tariff of period %s of meter %s is %s", tariffHash, period, meterID, rec.Tariff.TariffSHA256)
	}
	return rec, customer, nil
}
