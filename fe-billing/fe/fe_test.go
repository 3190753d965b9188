package fe_test

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/inter-nmi/pki/fe-billing/fe"
)

func params(slots int) fe.Params {
	return fe.Params{
		Period:     fe.Period{ID: "2026-11-20", Start: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), Interval: 15 * time.Minute, Slots: slots},
		Group:      fe.DefaultGroup,
		MaxReading: fe.DefaultMaxReading,
		MaxWeight:  fe.DefaultMaxWeight,
	}
}

// keys are made once: a 96-slot key pair takes seconds.
var (
	testMK *fe.MasterKey
	testPK *fe.PublicKey
)

func keys(t *testing.T) (*fe.MasterKey, *fe.PublicKey) {
	t.Helper()
	if testMK == nil {
		var err error
		if testMK, testPK, err = fe.GenerateKeys(params(96)); err != nil {
			t.Fatal(err)
		}
	}
	// Each test gets its own record of issued keys.
	mk := *testMK
	mk.Issued = nil
	return &mk, testPK
}

// encrypt streams readings through a meter's Stream and collects them as
// the utility would from the ledger.
func encrypt(t *testing.T, pk *fe.PublicKey, readings []uint64) *fe.Ciphertext {
	t.Helper()
	s, err := fe.NewStream(pk)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	envs := []fe.Envelope{fe.HeaderEnvelope(pk.Params.Period.ID, s.Header())}
	for i, x := range readings {
		c, err := s.Encrypt(i, x)
		if err != nil {
			t.Fatal(err)
		}
		// Through the ledger's encoding and back.
		env, err := fe.DecodeEnvelope(fe.ReadingEnvelope(pk.Params.Period.ID, i, c).Encode())
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, env)
	}
	ct, err := fe.Collect(pk.Params, envs)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func dot(x, y []uint64) uint64 {
	var s uint64
	for i := range x {
		s += x[i] * y[i]
	}
	return s
}

// TestBillEqualsPlaintext is the property: for random readings and
// tariffs the bill equals the plaintext inner product.
func TestBillEqualsPlaintext(t *testing.T) {
	mk, pk := keys(t)
	rng := rand.New(rand.NewPCG(7, 11))
	tables := fe.NewTables()
	for round := range 3 {
		readings := make([]uint64, 96)
		for i := range readings {
			readings[i] = rng.Uint64N(fe.DefaultMaxReading + 1)
		}
		tariff := fe.Tariff{MeterID: "PTB-0001", Period: pk.Params.Period.ID, Currency: "EUR", Weights: make([]uint64, 96)}
		// Up to four random rates, each hour (4 slots) at one of them, so
		// every run of a rate is whole hours as the privacy guard asks.
		rates := make([]uint64, 1+rng.IntN(4))
		for i := range rates {
			rates[i] = 1 + rng.Uint64N(8000)
		}
		for h := range 24 {
			rate := rates[rng.IntN(len(rates))]
			for i := range 4 {
				tariff.Weights[h*4+i] = rate
			}
		}
		mk.Issued = nil
		fk, err := mk.Derive(tariff, false)
		if err != nil {
			t.Fatal(err)
		}
		bill, err := fe.Bill(encrypt(t, pk, readings), fk, tariff, tables)
		if err != nil {
			t.Fatal(err)
		}
		if want := dot(readings, tariff.Weights); bill != want {
			t.Fatalf("round %d: bill %d, plaintext %d", round, bill, want)
		}
	}
}

// TestKeyForAnotherTariff: the key opens only its own tariff, even when
// the hash check is bypassed.
func TestKeyForAnotherTariff(t *testing.T) {
	mk, pk := keys(t)
	p := pk.Params.Period
	tou := fe.TimeOfUse("PTB-0001", p, "EUR", 7, 21, 40, 25)
	fk, err := mk.Derive(tou, false)
	if err != nil {
		t.Fatal(err)
	}
	readings := make([]uint64, 96)
	for i := range readings {
		readings[i] = uint64(100 + i)
	}
	ct := encrypt(t, pk, readings)
	other := fe.TimeOfUse("PTB-0001", p, "EUR", 6, 22, 40, 25)
	if _, err := fe.Bill(ct, fk, other, fe.NewTables()); !errors.Is(err, fe.ErrNoBill) {
		t.Fatalf("bill with another tariff: %v", err)
	}
	if _, err := fe.Evaluate(ct, fk, other.Weights, fe.NewTables()); !errors.Is(err, fe.ErrNoBill) {
		t.Fatalf("the key evaluated another tariff: %v", err)
	}
	// A single reading, which a unit vector would ask for, is not a bill either.
	unit := make([]uint64, 96)
	unit[5] = 1
	if _, err := fe.Evaluate(ct, fk, unit, fe.NewTables()); !errors.Is(err, fe.ErrNoBill) {
		t.Fatalf("the key revealed a single reading: %v", err)
	}
}

func TestEncryptionRefusesOutOfBound(t *testing.T) {
	_, pk := keys(t)
	s, err := fe.NewStream(pk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Encrypt(0, fe.DefaultMaxReading+1); !errors.Is(err, fe.ErrOutOfBound) {
		t.Fatalf("reading above the bound: %v", err)
	}
	if _, err := s.Encrypt(96, 1); err == nil {
		t.Fatal("slot beyond the period accepted")
	}
	if _, err := s.Encrypt(3, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Encrypt(3, 1); err == nil {
		t.Fatal("a slot encrypted twice")
	}
	s.Close()
	if _, err := s.Encrypt(4, 1); !errors.Is(err, fe.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestCustomerReadsEachReading(t *testing.T) {
	mk, pk := keys(t)
	readings := []uint64{0, 1, 250, fe.DefaultMaxReading}
	readings = append(readings, make([]uint64, 92)...)
	ct := encrypt(t, pk, readings)
	tables := fe.NewTables()
	for slot, want := range readings[:4] {
		got, err := mk.Reading(ct.Header, slot, ct.Readings[slot], tables)
		if err != nil || got != want {
			t.Errorf("slot %d: %d %v, want %d", slot, got, err, want)
		}
	}
}

func TestCollectNamesSlots(t *testing.T) {
	_, pk := keys(t)
	s, _ := fe.NewStream(pk)
	id := pk.Params.Period.ID
	var envs []fe.Envelope
	for i := range 96 {
		if i == 5 || i == 40 || i == 41 {
			continue // withheld
		}
		c, _ := s.Encrypt(i, 1)
		envs = append(envs, fe.ReadingEnvelope(id, i, c))
	}
	envs = append(envs, envs[10]) // slot 11 again (slot 5 is withheld)
	_, err := fe.Collect(pk.Params, envs)
	var se *fe.SlotError
	if !errors.As(err, &se) || !se.NoHeader || len(se.Missing) != 3 || len(se.Duplicate) != 1 {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"no ciphertext header", "missing slots 5, 40-41", "duplicated slots 11"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
}

func TestPrivacyGuard(t *testing.T) {
	mk, pk := keys(t)
	p := pk.Params.Period
	flat := fe.TimeOfUse("PTB-0001", p, "EUR", 0, 0, 30, 30)
	unit := fe.Tariff{MeterID: "PTB-0001", Period: p.ID, Weights: make([]uint64, 96)}
	unit.Weights[17] = 1
	prefix := fe.TimeOfUse("PTB-0001", p, "EUR", 0, 12, 30, 0) // the morning only
	near := fe.TimeOfUse("PTB-0001", p, "EUR", 0, 0, 30, 30)
	near.Weights[17] = 30 * 100
	for name, tariff := range map[string]fe.Tariff{"unit vector": unit, "prefix padded with zeros": prefix, "near-unit vector": near} {
		if _, err := mk.Derive(tariff, false); !errors.Is(err, fe.ErrRevealing) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := mk.Derive(flat, false); err != nil {
		t.Fatal(err)
	}
	if _, err := mk.Derive(flat, false); err != nil {
		t.Fatalf("the same tariff again: %v", err)
	}
	if _, err := mk.Derive(fe.TimeOfUse("PTB-0001", p, "EUR", 7, 21, 40, 25), false); !errors.Is(err, fe.ErrRevealing) {
		t.Fatalf("a second tariff in the same period: %v", err)
	}
	if _, err := mk.Derive(unit, true); err != nil {
		t.Fatalf("explicit override: %v", err)
	}
}

func TestEnvelopeRejectsGarbage(t *testing.T) {
	good := fe.ReadingEnvelope("2026-11", 7, big.NewInt(12345)).Encode()
	if e, err := fe.DecodeEnvelope(good); err != nil || e.Slot != 7 || e.Values[0].Int64() != 12345 {
		t.Fatalf("round trip: %+v %v", e, err)
	}
	for _, bad := range []string{"", "AAAA", good[:len(good)-4], "!!!"} {
		if _, err := fe.DecodeEnvelope(bad); !errors.Is(err, fe.ErrNotFE) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestNoGoroutineLeft: unlike gofe's Decrypt, a bill leaves nothing running.
func TestNoGoroutineLeft(t *testing.T) {
	mk, pk := keys(t)
	tariff := fe.TimeOfUse("PTB-0001", pk.Params.Period, "EUR", 7, 21, 40, 25)
	fk, err := mk.Derive(tariff, false)
	if err != nil {
		t.Fatal(err)
	}
	ct := encrypt(t, pk, make([]uint64, 96))
	before := runtime.NumGoroutine()
	for range 3 {
		if _, err := fe.Bill(ct, fk, tariff, fe.NewTables()); err != nil {
			t.Fatal(err)
		}
	}
	if after := runtime.NumGoroutine(); after != before {
		t.Fatalf("goroutines: %d before, %d after", before, after)
	}
}
