// Package billing is the workflow of privacy-preserving billing for each
// party, on top of the scheme (package fe), the ledger's statements (package
// agreement) and the registry API: the customer binds a period's public key
// and agrees a tariff, the meter streams encrypted, signed readings, the
// utility fetches the period's ciphertexts from the ledger, checks that every
// slot is there, computes the bill and records it, and the customer checks
// it against his own plaintext.
package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/inter-nmi/pki/fe-billing/fe"
	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/loadprofile"
)

// Unit is the unit of the encrypted readings: energy per slot.
const Unit = "Wh"

// PeriodStatement is the statement binding pk to a meter, for the customer
// whose key is customer.
func PeriodStatement(meterID string, pk *fe.PublicKey, customer *meter.PublicKey) agreement.PeriodStatement {
	p := pk.Params
	return agreement.PeriodStatement{
		Type: agreement.TypePeriod, MeterID: meterID, Period: p.Period.ID,
		Start: p.Period.Start.UTC().Format(time.RFC3339), Interval: p.Period.Interval.String(), Slots: p.Period.Slots,
		Group: p.Group, MaxReading: p.MaxReading, MaxWeight: p.MaxWeight, PublicKeySHA256: pk.Hash(),
		CustomerKeySHA256: customer.Fingerprint(),
	}
}

// ParamsOf reads the scheme's parameters back from a bound period.
func ParamsOf(s agreement.PeriodStatement) (fe.Params, error) {
	start, err := time.Parse(time.RFC3339, s.Start)
	if err != nil {
		return fe.Params{}, err
	}
	interval, err := time.ParseDuration(s.Interval)
	if err != nil {
		return fe.Params{}, err
	}
	p := fe.Params{Period: fe.Period{ID: s.Period, Start: start, Interval: interval, Slots: s.Slots},
		Group: s.Group, MaxReading: s.MaxReading, MaxWeight: s.MaxWeight}
	return p, p.Validate()
}

// BindRequest makes the customer's request binding pk to the meter, with
// the meter's consent: its signature over the same statement with the key
// registered for it.
func BindRequest(meterID string, pk *fe.PublicKey, customer, meterKey *meter.PrivateKey) (api.BillingPeriodRequest, error) {
	st := PeriodStatement(meterID, pk, customer.Public())
	sig, err := agreement.Sign(customer, st)
	if err != nil {
		return api.BillingPeriodRequest{}, err
	}
	consent, err := agreement.Sign(meterKey, st)
	if err != nil {
		return api.BillingPeriodRequest{}, err
	}
	return api.BillingPeriodRequest{Statement: st, CustomerKey: customer.Public().PEM(), CustomerSignature: sig, MeterSignature: consent}, nil
}

// TariffStatement is the agreement statement for a tariff between the
// customer and the utility, named by their keys.
func TariffStatement(t fe.Tariff, customer, utility *meter.PublicKey) agreement.TariffStatement {
	return agreement.TariffStatement{Type: agreement.TypeTariff, MeterID: t.MeterID, Period: t.Period, TariffSHA256: t.Hash(),
		CustomerKeySHA256: customer.Fingerprint(), UtilityKeySHA256: utility.Fingerprint()}
}

// SignTariff is the utility's signature on a tariff it offers the customer
// whose key is bound with the period.
func SignTariff(t fe.Tariff, customer *meter.PublicKey, utility *meter.PrivateKey) (string, error) {
	return agreement.Sign(utility, TariffStatement(t, customer, utility.Public()))
}

// AgreeRequest is the customer's side of a tariff agreement: the privacy
// guard first, then the customer's signature beside the utility's.
func AgreeRequest(t fe.Tariff, p fe.Params, customer *meter.PrivateKey, utilityKey, utilitySignature string) (api.TariffAgreementRequest, error) {
	if err := fe.CheckTariff(t, p); err != nil {
		return api.TariffAgreementRequest{}, err
	}
	uk, err := meter.ParsePublicKeyPEM(utilityKey)
	if err != nil {
		return api.TariffAgreementRequest{}, fmt.Errorf("utility key: %w", err)
	}
	st := TariffStatement(t, customer.Public(), uk)
	if err := agreement.Verify(uk, st, utilitySignature); err != nil {
		return api.TariffAgreementRequest{}, fmt.Errorf("the utility's signature does not cover this tariff: %w", err)
	}
	sig, err := agreement.Sign(customer, st)
	if err != nil {
		return api.TariffAgreementRequest{}, err
	}
	return api.TariffAgreementRequest{Statement: st, UtilityKey: utilityKey, CustomerSignature: sig, UtilitySignature: utilitySignature}, nil
}

// KeyRequest derives the functional key for the agreed tariff (the privacy
// guard applies unless override) and the request recording that it was
// issued to the utility whose key is utility; the key itself goes to the
// utility, never to the ledger.
func KeyRequest(mk *fe.MasterKey, t fe.Tariff, customer *meter.PrivateKey, utility *meter.PublicKey, override bool) (*fe.FunctionKey, api.KeyIssuedRequest, error) {
	fk, err := mk.Derive(t, override)
	if err != nil {
		return nil, api.KeyIssuedRequest{}, err
	}
	st := agreement.KeyStatement{Type: agreement.TypeKey, MeterID: t.MeterID, Period: t.Period, TariffSHA256: t.Hash(),
		CustomerKeySHA256: customer.Public().Fingerprint(), UtilityKeySHA256: utility.Fingerprint()}
	sig, err := agreement.Sign(customer, st)
	if err != nil {
		return nil, api.KeyIssuedRequest{}, err
	}
	return fk, api.KeyIssuedRequest{Statement: st, CustomerSignature: sig}, nil
}

// Meter is a meter's side of one billing period: its signing key and the
// period's encryption stream.
type Meter struct {
	ID     string
	Key    *meter.PrivateKey
	stream *fe.Stream
	params fe.Params
}

// NewMeter starts a period's encryption with the customer's public key.
func NewMeter(id string, key *meter.PrivateKey, pk *fe.PublicKey) (*Meter, error) {
	s, err := fe.NewStream(pk)
	if err != nil {
		return nil, err
	}
	return &Meter{ID: id, Key: key, stream: s, params: pk.Params}, nil
}

// Header is the signed measurement publishing the period's ciphertext
// header, taken at the period's start.
func (m *Meter) Header(seq uint64) (meter.SignedMeasurement, error) {
	env := fe.HeaderEnvelope(m.params.Period.ID, m.stream.Header())
	return meter.Sign(m.Key, meter.Measurement{MeterID: m.ID, Seq: seq, Unit: Unit,
		Time: m.params.Period.Start.UTC().Format(time.RFC3339), Ciphertext: env.Encode()})
}

// Reading is the signed measurement of slot's encrypted reading, taken at
// the slot's end: the ciphertext is in the payload the meter signs, and no
// plaintext value is.
func (m *Meter) Reading(seq uint64, slot int, wh uint64) (meter.SignedMeasurement, error) {
	c, err := m.stream.Encrypt(slot, wh)
	if err != nil {
		return meter.SignedMeasurement{}, err
	}
	env := fe.ReadingEnvelope(m.params.Period.ID, slot, c)
	return meter.Sign(m.Key, meter.Measurement{MeterID: m.ID, Seq: seq, Unit: Unit,
		Time: m.params.Period.SlotEnd(slot).Format(time.RFC3339), Ciphertext: env.Encode()})
}

// Close ends the period: its randomness is erased.
func (m *Meter) Close() { m.stream.Close() }

// Consumption is a household's energy per slot over the period (Wh), from
// the London household load shape.
func Consumption(seed uint64, meterID string, p fe.Period) ([]uint64, error) {
	prof := loadprofile.London()
	sched := loadprofile.Schedule{Start: p.Start.Add(-p.Interval), Interval: p.Interval, Slots: p.Slots + 1}
	readings, err := prof.Readings(prof.Household(seed, meterID), sched)
	if err != nil {
		return nil, err
	}
	out := make([]uint64, p.Slots)
	for i := range out {
		out[i] = uint64(readings[i+1].RegisterWh - readings[i].RegisterWh)
	}
	return out, nil
}

// Fetch reads a period's envelopes from the ledger through the registry:
// every measurement of the meter between the period's start and end whose
// ciphertext is a billing envelope of the period. Measurements accepted on
// the ledger are authenticated: the chaincode verified the meter's
// signature over each.
func Fetch(ctx context.Context, c *client.Client, meterID string, p fe.Params, minBlock uint64) ([]fe.Envelope, error) {
	var out []fe.Envelope
	q := client.MeasurementQuery{Read: client.Read{MinBlock: minBlock}, Limit: 1000,
		From: p.Period.Start.UTC().Format(time.RFC3339), To: p.Period.End().Format(time.RFC3339)}
	for {
		page, err := c.Measurements(ctx, meterID, q)
		if err != nil {
			return nil, err
		}
		for _, m := range page.Measurements {
			if m.Ciphertext == "" {
				continue
			}
			env, err := fe.DecodeEnvelope(m.Ciphertext)
			if errors.Is(err, fe.ErrNotFE) || err == nil && env.Period != p.Period.ID {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("measurement seq %d: %w", m.Seq, err)
			}
			out = append(out, env)
		}
		if page.Next == "" {
			return out, nil
		}
		q.Cursor, q.MinBlock = page.Next, 0
	}
}

// Bill is the utility's computation: every slot present exactly once (the
// error names missing or doubled slots), then the tariff-weighted sum.
func Bill(envs []fe.Envelope, fk *fe.FunctionKey, t fe.Tariff, tables *fe.Tables) (uint64, error) {
	ct, err := fe.Collect(fk.Params, envs)
	if err != nil {
		return 0, err
	}
	return fe.Bill(ct, fk, t, tables)
}

// BillRequest is the utility's signed bill to the customer whose key is
// customer, for the ledger.
func BillRequest(t fe.Tariff, amount uint64, slots int, customer *meter.PublicKey, utility *meter.PrivateKey) (api.BillRequest, error) {
	st := agreement.BillStatement{Type: agreement.TypeBill, MeterID: t.MeterID, Period: t.Period,
		TariffSHA256: t.Hash(), CustomerKeySHA256: customer.Fingerprint(), UtilityKeySHA256: utility.Public().Fingerprint(),
		Amount: amount, Slots: slots}
	sig, err := agreement.Sign(utility, st)
	if err != nil {
		return api.BillRequest{}, err
	}
	return api.BillRequest{Statement: st, UtilitySignature: sig}, nil
}

// CustomerBill is the customer's own computation: he decrypts every reading
// with his master key and applies the tariff in plaintext.
func CustomerBill(mk *fe.MasterKey, envs []fe.Envelope, t fe.Tariff, tables *fe.Tables) (amount uint64, readings []uint64, err error) {
	ct, err := fe.Collect(mk.Params, envs)
	if err != nil {
		return 0, nil, err
	}
	readings = make([]uint64, len(ct.Readings))
	for i, c := range ct.Readings {
		if readings[i], err = mk.Reading(ct.Header, i, c, tables); err != nil {
			return 0, nil, err
		}
		amount += readings[i] * t.Weights[i]
	}
	return amount, readings, nil
}
