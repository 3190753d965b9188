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

// MinBandSlots is the fewest slots that may share a weight in a tariff the
// privacy guard admits. The bill depends on the readings only through the
// total of each band (the slots that share a weight), so it tells at most
// those totals; a band of one slot is a single reading. Two slots are the
// least for which no reading, nor any residue of it, is fixed by the bill
// (see CheckTariff); four are one hour of 15-minute slots, the finest time
// of use a tariff prices (TimeOfUse takes whole hours), so no band total is
// finer than an hour's consumption.
const MinBandSlots = 4

// ErrRevealing is the privacy guard's refusal.
var ErrRevealing = errors.New("the key would reveal more than the bill")

// CheckTariff is the customer's privacy guard: it refuses tariffs whose
// functional key would reveal more than a bill. It groups the slots into
// bands by weight and refuses a band of fewer than MinBandSlots slots, a
// zero weight (the bill would leave readings out: a unit vector, or a
// prefix padded with zeros, gives single readings or partial sums), and
// weights out of the scheme's bound.
//
// Why bands: the bill is Σ_c w_c·S_c over the bands c, S_c the band's
// total, so reading vectors with the same band totals have the same bill.
// Within a band of two slots or more one unit can move from one reading to
// another without changing any total, so whenever a band's total is
// strictly between 0 and |c|·B each of its readings takes at least two
// consecutive values among the vectors consistent with the bill: neither
// the reading nor any residue of it is fixed. This holds for any bound B
// the utility may assume of the readings, not only the period's. What a bill
// still tells, by design, is at most each band's total; a total of 0 or
// |c|·B fixes its band's readings, which no tariff can avoid.
func CheckTariff(t Tariff, p Params) error {
	if len(t.Weights) != p.Period.Slots {
		return fmt.Errorf("the tariff has %d weights for a period of %d slots", len(t.Weights), p.Period.Slots)
	}
	if t.Period != p.Period.ID {
		return fmt.Errorf("the tariff is for period %q, the keys for %q", t.Period, p.Period.ID)
	}
	return checkWeights(t.Weights, p.MaxWeight, MinBandSlots)
}

// checkWeights is the guard's rule on the weights alone: every weight in
// 1..maxWeight, and every weight shared by at least minBand slots.
func checkWeights(weights []uint64, maxWeight uint64, minBand int) error {
	if len(weights) == 0 {
		return errors.New("the tariff has no weights")
	}
	bands := map[uint64][]int{}
	for i, w := range weights {
		bands[w] = append(bands[w], i)
	}
	if hi := slices.Max(weights); hi > maxWeight {
		return fmt.Errorf("weight %d, used on %s, exceeds the period's bound %d", hi, onSlots(bands[hi]), maxWeight)
	}
	if zero, ok := bands[0]; ok {
		return fmt.Errorf("%w: weight 0 is used on %s; every weight must be at least 1, or the bill leaves those readings out and tells the sum of the others (a partial sum, or with one slot left its reading)",
			ErrRevealing, onSlots(zero))
	}
	// The bands too small, in the order of their first slot.
	var small []uint64
	for w, slots := range bands {
		if len(slots) < minBand {
			small = append(small, w)
		}
	}
	if len(small) == 0 {
		return nil
	}
	slices.SortFunc(small, func(a, b uint64) int { return bands[a][0] - bands[b][0] })
	w, slots := small[0], bands[small[0]]
	reveals := "that slot's reading"
	if len(slots) > 1 {
		reveals = fmt.Sprintf("the total consumption of those %d slots", len(slots))
	}
	msg := fmt.Sprintf("weight %d is used on %s; every weight must be shared by at least %d slots, or the bill reveals %s",
		w, onSlots(slots), minBand, reveals)
	if more := len(small) - 1; more == 1 {
		msg += fmt.Sprintf(" (1 more weight, %d, is used on fewer than %d slots)", small[1], minBand)
	} else if more > 1 {
		msg += fmt.Sprintf(" (%d more weights are used on fewer than %d slots)", more, minBand)
	}
	return fmt.Errorf("%w: %s", ErrRevealing, msg)
}

// onSlots renders a band's slots: "1 slot (slot 7)", "3 slots (slots 7-8, 12)".
func onSlots(slots []int) string {
	if len(slots) == 1 {
		return fmt.Sprintf("1 slot (slot %d)", slots[0])
	}
	return fmt.Sprintf("%d slots (slots %s)", len(slots), ranges(slices.Clone(slots)))
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
