package fe

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/fentec-project/gofe/data"
	"github.com/fentec-project/gofe/innerprod/fullysec"
)

// Tariff is the agreed price of each slot of a period: the function the
// utility may evaluate. Weights are in milli-cents per Wh, so the bill
// (the inner product with the readings in Wh) is in milli-cents.
type Tariff struct {
	MeterID  string   `json:"meterId"`
	Period   string   `json:"period"`
	Currency string   `json:"currency"`
	Weights  []uint64 `json:"weights"`
}

// Hash is the SHA-256 (hex) of the tariff's canonical JSON: what the ledger
// records of the agreement.
func (t Tariff) Hash() string {
	b, _ := json.Marshal(t)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TimeOfUse builds a two-rate tariff: peak rate in the hours [peakFrom,
// peakTo) UTC, off-peak otherwise.
func TimeOfUse(meterID string, p Period, currency string, peakFrom, peakTo int, peak, offPeak uint64) Tariff {
	t := Tariff{MeterID: meterID, Period: p.ID, Currency: currency, Weights: make([]uint64, p.Slots)}
	for i := range t.Weights {
		start := p.Start.Add(time.Duration(i) * p.Interval).UTC()
		if h := start.Hour(); h >= peakFrom && h < peakTo {
			t.Weights[i] = peak
		} else {
			t.Weights[i] = offPeak
		}
	}
	return t
}

// MaxWeightRatio bounds how much more one slot may weigh than another in a
// tariff the privacy guard admits. Time-of-use tariffs stay far below it; a
// tariff that weighs one slot hundreds of times more than the rest tells
// the utility, through the bill, nearly that slot's reading.
const MaxWeightRatio = 8

// ErrRevealing is the privacy guard's refusal.
var ErrRevealing = errors.New("the key would reveal more than the bill")

// CheckTariff is the customer's privacy guard: it refuses tariffs whose
// functional key would reveal more than a bill — a zero weight (a unit
// vector, or a prefix of the period padded with zeros, gives the utility
// single readings or partial sums), weights of very different size (near
// unit vectors), or weights out of the scheme's bound.
func CheckTariff(t Tariff, p Params) error {
	if len(t.Weights) != p.Period.Slots {
		return fmt.Errorf("the tariff has %d weights for a period of %d slots", len(t.Weights), p.Period.Slots)
	}
	if t.Period != p.Period.ID {
		return fmt.Errorf("the tariff is for period %q, the keys for %q", t.Period, p.Period.ID)
	}
	lo, hi := slices.Min(t.Weights), slices.Max(t.Weights)
	switch {
	case hi > p.MaxWeight:
		return fmt.Errorf("weight %d exceeds the period's bound %d", hi, p.MaxWeight)
	case lo == 0:
		zero := slices.Index(t.Weights, 0)
		return fmt.Errorf("%w: slot %d has weight 0, so the bill would leave readings out (a unit vector or a partial sum)", ErrRevealing, zero)
	case hi > MaxWeightRatio*lo:
		return fmt.Errorf("%w: the largest weight (%d) is more than %d times the smallest (%d): the bill would be close to single readings", ErrRevealing, hi, MaxWeightRatio, lo)
	}
	return nil
}

// Derive makes the functional key for a tariff. The privacy guard refuses
// revealing tariffs, and a second key for another tariff in the same period
// (two bills would let the utility solve for readings), unless override.
func (mk *MasterKey) Derive(t Tariff, override bool) (*FunctionKey, error) {
	if !override {
		if err := CheckTariff(t, mk.Params); err != nil {
			return nil, err
		}
		h := t.Hash()
		for _, issued := range mk.Issued {
			if issued != h {
				return nil, fmt.Errorf("%w: a key for another tariff (%s) was already derived for period %s", ErrRevealing, issued, mk.Params.Period.ID)
			}
		}
	} else if len(t.Weights) != mk.Params.Period.Slots {
		return nil, fmt.Errorf("the tariff has %d weights for a period of %d slots", len(t.Weights), mk.Params.Period.Slots)
	}
	d, err := mk.Params.scheme()
	if err != nil {
		return nil, err
	}
	key, err := d.DeriveKey(&fullysec.DamgardSecKey{S: mk.S, T: mk.T}, vector(t.Weights))
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	h := t.Hash()
	if !slices.Contains(mk.Issued, h) {
		mk.Issued = append(mk.Issued, h)
	}
	return &FunctionKey{Params: mk.Params, TariffHash: h, Key1: key.Key1, Key2: key.Key2}, nil
}

func vector(v []uint64) data.Vector {
	out := make(data.Vector, len(v))
	for i, x := range v {
		out[i] = new(big.Int).SetUint64(x)
	}
	return out
}
