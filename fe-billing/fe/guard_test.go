package fe_test

import (
	"errors"
	"fmt"
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
		if want := fmt.Sprintf("weight %d is used on 1 slot (slot 7)", w+1); !strings.Contains(err.Error(), want) {
			t.Errorf("w=%d: %q does not say %q", w, err, want)
		}
	}
}

// TestGuardAdmitsTimeOfUse: the tariffs the code builds — TimeOfUse with a
// peak window of whole hours, as febill, the end-to-end test and the
// benchmarks use it — pass the guard for a day and a 30-day month, whatever
// slot of the hour the period starts on, and on hourly slots.
func TestGuardAdmitsTimeOfUse(t *testing.T) {
	windows := [][2]int{{7, 21}, {6, 22}, {17, 20}, {0, 0}, {0, 24}, {23, 24}}
	for _, slots := range []int{96, 2880} {
		for offset := range 4 {
			p := params(slots)
			p.Period.Start = p.Period.Start.Add(time.Duration(offset) * p.Period.Interval)
			for _, win := range windows {
				tariff := fe.TimeOfUse("PTB-0001", p.Period, "EUR", win[0], win[1], 40, 25)
				if err := fe.CheckTariff(tariff, p); err != nil {
					t.Errorf("%d slots from %s, peak %d-%d: %v", slots, p.Period.Start.Format("15:04"), win[0], win[1], err)
				}
			}
		}
	}
	hourly := params(24)
	hourly.Period.Interval = time.Hour
	if err := fe.CheckTariff(fe.TimeOfUse("PTB-0001", hourly.Period, "EUR", 7, 21, 40, 25), hourly); err != nil {
		t.Errorf("hourly slots, peak 7-21: %v", err)
	}
	// A peak of fewer hours than MinBandSlots on hourly slots is a band of
	// fewer slots: refused (the rule counts slots, not hours).
	if err := fe.CheckTariff(fe.TimeOfUse("PTB-0001", hourly.Period, "EUR", 17, 20, 40, 25), hourly); !errors.Is(err, fe.ErrRevealing) {
		t.Errorf("hourly slots, peak 17-20: %v", err)
	}
}
