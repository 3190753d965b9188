package fe_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/inter-nmi/pki/fe-billing/fe"
)

// TestGuardRefusesOneSlotApart is the review finding's attack: weight w on
// every slot and w+1 on one slot j. The bill is w·S + x_j, so bill mod w is
// x_j mod w — the whole reading once w exceeds it (w = 1000 for household
// readings), its residue at realistic prices (w = 7). The old ratio rule
// (weights at most 8 times apart) admitted both.
func TestGuardRefusesOneSlotApart(t *testing.T) {
	p := params(96)
	for _, w := range []uint64{1000, 7} {
		tariff := fe.TimeOfUse("PTB-0001", p.Period, "EUR", 0, 0, w, w)
		tariff.Weights[7] = w + 1
		err := fe.CheckTariff(tariff, p)
		if !errors.Is(err, fe.ErrRevealing) {
			t.Errorf("w=%d, w+1 on slot 7: admitted (%v)", w, err)
			continue
		}
		// The refusal names the weight, how many slots carry it, and which.
		if want := fmt.Sprintf("weight %d is used on 1 slot (slot 7)", w+1); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "4 consecutive slots (1h0m0s)") {
			t.Errorf("w=%d: %q does not say %q", w, err, want)
		}
	}
}

// TestGuardAdmitsTimeOfUse: the tariffs the code builds — TimeOfUse with a
// peak window of whole hours, as febill, the end-to-end test and the
// benchmarks use it — pass the guard for a day and a 30-day month starting
// on the hour, and on hourly slots. A period that starts mid-hour cuts the
// hour at its end short: a tariff that changes rate within the last hour
// of such a period prices less than an hour on its own, and is refused.
func TestGuardAdmitsTimeOfUse(t *testing.T) {
	windows := [][2]int{{7, 21}, {6, 22}, {17, 20}, {0, 0}, {0, 24}, {23, 24}}
	for _, slots := range []int{96, 2880} {
		for offset := range 4 {
			p := params(slots)
			p.Period.Start = p.Period.Start.Add(time.Duration(offset) * p.Period.Interval)
			for _, win := range windows {
				tariff := fe.TimeOfUse("PTB-0001", p.Period, "EUR", win[0], win[1], 40, 25)
				err := fe.CheckTariff(tariff, p)
				peak := func(h int) bool { return h >= win[0] && h < win[1] }
				cut := offset > 0 && peak(23) != peak(0)
				switch {
				case !cut && err != nil:
					t.Errorf("%d slots from %s, peak %d-%d: %v", slots, p.Period.Start.Format("15:04"), win[0], win[1], err)
				case cut && !errors.Is(err, fe.ErrRevealing):
					t.Errorf("%d slots from %s, peak %d-%d (the last off-peak run is %d slots): %v", slots, p.Period.Start.Format("15:04"), win[0], win[1], offset, err)
				}
			}
		}
	}
	hourly := params(24)
	hourly.Period.Interval = time.Hour
	if err := fe.CheckTariff(fe.TimeOfUse("PTB-0001", hourly.Period, "EUR", 7, 21, 40, 25), hourly); err != nil {
		t.Errorf("hourly slots, peak 7-21: %v", err)
	}
	// On hourly slots a run takes two slots: a peak of three hours is
	// admitted, one of a single hour is not.
	if err := fe.CheckTariff(fe.TimeOfUse("PTB-0001", hourly.Period, "EUR", 17, 20, 40, 25), hourly); err != nil {
		t.Errorf("hourly slots, peak 17-20: %v", err)
	}
	if err := fe.CheckTariff(fe.TimeOfUse("PTB-0001", hourly.Period, "EUR", 17, 18, 40, 25), hourly); !errors.Is(err, fe.ErrRevealing) {
		t.Errorf("hourly slots, peak 17-18: %v", err)
	}
}

// TestAttackScatteredBand is the review's attack: weight 1 on slots
// {0, 1, 2, 40} and 4001 everywhere else. Every band had 4 slots or more,
// so it was admitted, and the bill modulo 4001 told reading 40 plus three
// night readings. Refused now: slot 40 alone, and 0-2, are runs shorter
// than an hour. With 1-minute slots four slots are four minutes: refused
// too, where the old rule (4 slots) admitted a band of them.
func TestAttackScatteredBand(t *testing.T) {
	p := params(96)
	p.MaxWeight = 5000
	tariff := fe.TimeOfUse("PTB-0001", p.Period, "EUR", 0, 0, 4001, 4001)
	for _, slot := range []int{0, 1, 2, 40} {
		tariff.Weights[slot] = 1
	}
	if err := fe.CheckTariff(tariff, p); !errors.Is(err, fe.ErrRevealing) {
		t.Errorf("weight 1 on slots {0,1,2,40}: %v", err)
	}
	minute := params(1440)
	minute.Period.Interval = time.Minute
	short := fe.TimeOfUse("PTB-0001", minute.Period, "EUR", 0, 0, 25, 25)
	for slot := 600; slot < 604; slot++ {
		short.Weights[slot] = 40
	}
	if err := fe.CheckTariff(short, minute); !errors.Is(err, fe.ErrRevealing) {
		t.Errorf("four 1-minute slots of their own weight: %v", err)
	}
	for slot := 600; slot < 660; slot++ {
		short.Weights[slot] = 40
	}
	if err := fe.CheckTariff(short, minute); err != nil {
		t.Errorf("an hour of 1-minute slots of their own weight: %v", err)
	}
}

// TestGuardProperty checks the guard's promise on periods of real sizes,
// with random tariffs of random runs: it admits a tariff exactly when every
// maximal run of consecutive slots of one weight lasts MinRunDuration (and
// two slots) or more, and for every tariff it admits, every reading and
// every window of consecutive slots shorter than a run can change while
// the bill stays the same: one unit moves to a slot of the same run outside
// the window, which exists (readings strictly between 0 and the bound).
func TestGuardProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 19))
	for _, size := range []struct {
		slots    int
		interval time.Duration
	}{{96, 15 * time.Minute}, {2880, 15 * time.Minute}, {2880, time.Minute}} {
		p := params(size.slots)
		p.Period.Interval = size.interval
		minRun := fe.MinRunSlots(size.interval)
		admitted, refused := 0, 0
		for range 300 {
			weights := make([]uint64, size.slots)
			rates := []uint64{1 + rng.Uint64N(p.MaxWeight), 1 + rng.Uint64N(p.MaxWeight), 1 + rng.Uint64N(p.MaxWeight)}
			// Half the tariffs may have short runs, rarely.
			shortRuns := rng.IntN(2) == 0
			for i := 0; i < size.slots; {
				n := minRun + rng.IntN(4*minRun)
				if shortRuns && rng.IntN(20) == 0 {
					n = 1 + rng.IntN(minRun)
				}
				rate := rates[rng.IntN(len(rates))]
				for ; n > 0 && i < size.slots; n-- {
					weights[i] = rate
					i++
				}
			}
			runs := maximalRuns(weights)
			ok := true
			for _, r := range runs {
				ok = ok && r[1]-r[0] >= minRun
			}
			tariff := fe.Tariff{MeterID: "PTB-0001", Period: p.Period.ID, Currency: "EUR", Weights: weights}
			err := fe.CheckTariff(tariff, p)
			if ok != (err == nil) {
				t.Fatalf("%d slots of %s: runs all at least %d: %v, guard: %v", size.slots, size.interval, minRun, ok, err)
			}
			if !ok {
				refused++
				continue
			}
			admitted++
			// Readings strictly inside (0, bound); for random windows
			// shorter than a run, a unit moved to a slot of the same run
			// outside the window keeps the bill and changes the window.
			x := make([]uint64, size.slots)
			for i := range x {
				x[i] = 1 + rng.Uint64N(p.MaxReading-1)
			}
			bill := func() (b uint64) {
				for i := range x {
					b += weights[i] * x[i]
				}
				return b
			}
			before := bill()
			for range 50 {
				r := runs[rng.IntN(len(runs))]
				length := 1 + rng.IntN(minRun-1)
				from := r[0] + rng.IntN(r[1]-r[0]-length+1)
				to := r[0]
				if to == from {
					to = from + length
				}
				if to < r[0] || to >= r[1] || (to >= from && to < from+length) {
					t.Fatalf("run %v has no slot outside window %d+%d", r, from, length)
				}
				x[from]--
				x[to]++
				if bill() != before {
					t.Fatalf("moving a unit within run %v changed the bill", r)
				}
				x[from]++
				x[to]--
			}
		}
		if admitted == 0 || refused == 0 {
			t.Errorf("%d slots of %s: %d admitted, %d refused: the search is one-sided", size.slots, size.interval, admitted, refused)
		}
	}
}

// maximalRuns returns [from, to) of each run of consecutive equal weights.
func maximalRuns(w []uint64) [][2]int {
	var out [][2]int
	for from := 0; from < len(w); {
		to := from
		for to < len(w) && w[to] == w[from] {
			to++
		}
		out = append(out, [2]int{from, to})
		from = to
	}
	return out
}
