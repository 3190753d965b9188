//go:build e2e

package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/inter-nmi/pki/fe-billing/billing"
	"github.com/inter-nmi/pki/fe-billing/fe"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/loadprofile"
)

// billedMeter registers a meter at PTB and binds a day's billing period of
// its customer to it, with an agreed time-of-use tariff and the issued
// functional key.
type billedMeter struct {
	id       string
	key      *meter.PrivateKey
	mk       *fe.MasterKey
	pk       *fe.PublicKey
	fk       *fe.FunctionKey
	tariff   fe.Tariff
	wh       []uint64
	utility  *meter.PrivateKey
	customer *meter.PublicKey
}

func newBilledMeter(t *testing.T, period fe.Period) *billedMeter {
	t.Helper()
	ctx := context.Background()
	b := &billedMeter{id: uniqueID("PTB-FE")}
	var err error
	if b.key, err = meter.GenerateKey(meter.P256); err != nil {
		t.Fatal(err)
	}
	reg, err := registry(t, "PTB", api.RoleOperator).RegisterMeter(ctx, proved(t, "PTBMSP", b.key, meter.Registration{MeterID: b.id, PublicKey: b.key.Public().PEM(),
		Metadata: meter.Metadata{Manufacturer: "Example Metering GmbH", Model: "EM-3000 FE", SerialNumber: "SN-" + b.id,
			SoftwareID: "EM-FW 4.2.1", SoftwareChecksum: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}))
	if err != nil {
		t.Fatal(err)
	}
	customer, _ := meter.GenerateKey(meter.P256)
	b.customer = customer.Public()
	b.utility, _ = meter.GenerateKey(meter.P256)
	params := fe.Params{Period: period, Group: fe.DefaultGroup, MaxReading: fe.DefaultMaxReading, MaxWeight: fe.DefaultMaxWeight}
	if b.mk, b.pk, err = fe.GenerateKeys(params); err != nil {
		t.Fatal(err)
	}
	// The customer's registry is PTB's: it waits for the meter's block.
	customerAPI := registry(t, "PTB", api.RoleCustomer)
	if _, err := customerAPI.GetMeter(ctx, b.id, client.Read{MinBlock: reg.Block}); err != nil {
		t.Fatal(err)
	}
	bind, err := billing.BindRequest(b.id, b.pk, customer, b.key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := customerAPI.BindBillingPeriod(ctx, bind); err != nil {
		t.Fatalf("bind the period: %v", err)
	}
	b.tariff = fe.TimeOfUse(b.id, period, "EUR", 7, 21, 40, 25)
	utilitySig, err := billing.SignTariff(b.tariff, customer.Public(), b.utility)
	if err != nil {
		t.Fatal(err)
	}
	agree, err := billing.AgreeRequest(b.tariff, params, customer, b.utility.Public().PEM(), utilitySig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := customerAPI.AgreeTariff(ctx, b.id, period.ID, agree); err != nil {
		t.Fatalf("agree the tariff: %v", err)
	}
	fk, issued, err := billing.KeyRequest(b.mk, b.tariff, customer, b.utility.Public(), false)
	if err != nil {
		t.Fatal(err)
	}
	b.fk = fk
	if _, err := customerAPI.RecordKeyIssued(ctx, b.id, period.ID, issued); err != nil {
		t.Fatalf("record the key: %v", err)
	}
	if b.wh, err = billing.Consumption(3, b.id, period); err != nil {
		t.Fatal(err)
	}
	return b
}

// stream delivers the period's encrypted, signed readings through NMIJ's
// registry in concentrator batches, leaving out the withheld slots, and
// returns the block of the last batch.
func (b *billedMeter) stream(t *testing.T, withhold ...int) uint64 {
	t.Helper()
	m, err := billing.NewMeter(b.id, b.key, b.pk)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	period := b.pk.Params.Period
	head, err := m.Header(loadprofile.SeqAt(period.Start))
	if err != nil {
		t.Fatal(err)
	}
	items := []meter.SignedMeasurement{head}
	skip := map[int]bool{}
	for _, s := range withhold {
		skip[s] = true
	}
	for slot, x := range b.wh {
		if skip[slot] {
			continue
		}
		sm, err := m.Reading(loadprofile.SeqAt(period.SlotEnd(slot)), slot, x)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, sm)
	}
	ingest := registry(t, "NMIJ", api.RoleIngest)
	var block uint64
	for len(items) > 0 {
		n := min(50, len(items))
		r, err := ingest.SubmitBatch(context.Background(), items[:n])
		if err != nil {
			t.Fatal(err)
		}
		if r.Rejected != 0 {
			t.Fatalf("encrypted readings refused: %+v", r.Items)
		}
		block, items = r.Block, items[n:]
	}
	return block
}

// TestBillingDay: a meter streams a day of encrypted, signed readings
// through the registry; the utility's bill from the ledger equals the
// customer's plaintext bill; the utility cannot read single readings; with
// a slot withheld the utility's bill is an error naming it.
func TestBillingDay(t *testing.T) {
	ctx := context.Background()
	// The day starts on a whole hour, as the tariff's peak (07:00-21:00)
	// does: a period starting at 20:30 would put 2 peak slots before the
	// off-peak, which the key refuses as revealing those slots.
	start := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Hour)
	period := fe.Period{ID: "day-" + start.Format("20060102T1504"), Start: start, Interval: 15 * time.Minute, Slots: 96}
	b := newBilledMeter(t, period)
	block := b.stream(t)

	utilityAPI := registry(t, "PTB", api.RoleUtility)
	envs, err := billing.Fetch(ctx, utilityAPI, b.id, b.fk.Params, block)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != 97 {
		t.Fatalf("%d billing envelopes on the ledger, want the header and 96 readings", len(envs))
	}
	began := time.Now()
	amount, err := billing.Bill(envs, b.fk, b.tariff, fe.NewTables())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the utility's bill: %d milli-cents (%.2f EUR), decrypted in %s", amount, float64(amount)/1e5, time.Since(began).Round(time.Millisecond))
	own, readings, err := billing.CustomerBill(b.mk, envs, b.tariff, fe.NewTables())
	if err != nil {
		t.Fatal(err)
	}
	var plain uint64
	for i, x := range b.wh {
		plain += x * b.tariff.Weights[i]
		if readings[i] != x {
			t.Fatalf("slot %d: the customer decrypts %d, the meter encrypted %d", i, readings[i], x)
		}
	}
	if amount != own || amount != plain {
		t.Fatalf("utility %d, customer %d, plaintext %d", amount, own, plain)
	}

	bill, err := billing.BillRequest(b.tariff, amount, period.Slots, b.customer, b.utility)
	if err != nil {
		t.Fatal(err)
	}
	r, err := utilityAPI.RecordBill(ctx, b.id, period.ID, bill)
	if err != nil {
		t.Fatalf("record the bill: %v", err)
	}
	rec, err := registry(t, "CMI", api.RoleAuditor).BillingPeriod(ctx, b.id, period.ID, client.Read{MinBlock: r.Block})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Bill == nil || rec.Bill.Amount != own || rec.Bill.TariffSHA256 != b.tariff.Hash() || rec.Key == nil {
		t.Fatalf("the record seen from CMI: %+v", rec)
	}

	t.Run("the utility cannot read single readings", func(t *testing.T) {
		list, err := utilityAPI.Measurements(ctx, b.id, client.MeasurementQuery{Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range list.Measurements {
			if m.Value != "" || m.Ciphertext == "" {
				t.Fatalf("a billing reading on the ledger carries a value: %+v", m)
			}
		}
		ct, err := fe.Collect(b.fk.Params, envs)
		if err != nil {
			t.Fatal(err)
		}
		unit := make([]uint64, period.Slots)
		unit[40] = 1
		if _, err := fe.Evaluate(ct, b.fk, unit, fe.NewTables()); !errors.Is(err, fe.ErrNoBill) {
			t.Fatalf("the functional key opened slot 40 alone: %v", err)
		}
	})

	t.Run("a withheld slot is named, not billed", func(t *testing.T) {
		other := newBilledMeter(t, period)
		block := other.stream(t, 57)
		envs, err := billing.Fetch(ctx, utilityAPI, other.id, other.fk.Params, block)
		if err != nil {
			t.Fatal(err)
		}
		_, err = billing.Bill(envs, other.fk, other.tariff, fe.NewTables())
		var slots *fe.SlotError
		if !errors.As(err, &slots) || len(slots.Missing) != 1 || slots.Missing[0] != 57 {
			t.Fatalf("bill with slot 57 withheld: %v", err)
		}
		t.Logf("refused as expected: %v", err)
	})
}
