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

// MinRunDuration is the shortest time a tariff may price on its own: the
// slots that share a weight (a band) must come in runs of consecutive
// slots, each covering at least this long, and at least two slots. Four
// 15-minute slots, sixty 1-minute slots, two hourly slots.
const MinRunDuration = time.Hour

// MinRunSlots is the fewest consecutive slots of a run for slots of the
// given length: at least MinRunDuration, and at least 2.
func MinRunSlots(interval time.Duration) int {
	if interval <= 0 {
		return 2
	}
	return max(2, int((MinRunDuration+interval-1)/interval))
}

// ErrRevealing is the privacy guard's refusal.
var ErrRevealing = errors.New("the key would reveal more than the bill")

// CheckTariff is the customer's privacy guard: it refuses tariffs whose
// functional key would reveal more than a bill. It refuses a zero weight
// (the bill would leave readings out: a unit vector, or a prefix padded
// with zeros, gives single readings or partial sums), weights out of the
// scheme's bound, and any band (the slots sharing a weight) that is not
// made of runs of consecutive slots, each of at least MinRunSlots.
//
// What the utility can learn from the bill, and no more: for each band,
// the total consumption over the band's slots, in runs of at least an hour
// (and two slots) each. Nothing finer in time: no reading, and no sum over
// consecutive slots shorter than a run, is fixed by the bill.
//
// Why: the bill is Σ_c w_c·S_c over the bands c, S_c the band's total, so
// reading vectors with the same band totals have the same bill. Within a
// run one unit can move from one slot to a neighbour without changing any
// total; a window of consecutive slots shorter than its run has a
// neighbour in the run outside it, so whenever a band's total is strictly
// between 0 and |c|·B (the one case no tariff can hide) neither a reading,
// nor any residue of it, nor the sum over such a window is fixed. Bands
// need not be runs themselves: before, weight 1 on slots {0, 1, 2, 40} and
// another everywhere else was admitted, and told reading 40 plus three
// night readings, at any slot length.
func CheckTariff(t Tariff, p Params) error {
	if len(t.Weights) != p.Period.Slots {
		return fmt.Errorf("the tariff has %d weights for a period of %d slots", len(t.Weights), p.Period.Slots)
	}
	if t.Period != p.Period.ID {
		return fmt.Errorf("the tariff is for period %q, the keys for %q", t.Period, p.Period.ID)
	}
	return checkWeights(t.Weights, p.MaxWeight, MinRunSlots(p.Period.Interval), p.Period.Interval)
}

// checkWeights is the guard's rule on the weights alone: every weight in
// 1..maxWeight, and every run of consecutive slots of one weight at least
// minRun slots long (interval, if known, names the run's length in time).
func checkWeights(weights []uint64, maxWeight uint64, minRun int, interval time.Duration) error {
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
	// The first run too short, in slot order.
	for start := 0; start < len(weights); {
		end := start
		for end < len(weights) && weights[end] == weights[start] {
			end++
		}
		if n := end - start; n < minRun {
			run := fmt.Sprintf("%d consecutive slots", minRun)
			if interval > 0 {
				run += fmt.Sprintf(" (%s)", time.Duration(minRun)*interval)
			}
			reveals := "that slot's reading"
			if n > 1 {
				reveals = fmt.Sprintf("the consumption of those %d slots", n)
			}
			return fmt.Errorf("%w: weight %d is used on %s between other weights; every weight must run over at least %s at a time, or the bill reveals %s",
				ErrRevealing, weights[start], onSlots(seq(start, end)), run, reveals)
		}
		start = end
	}
	return nil
}

func seq(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
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
