package fe

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
)

// TestGuardBandsHideReadings searches small periods exhaustively: n = 2..5
// slots, weights 1..5 (1..3 for 6 slots), readings bounded by B = 2 or 3.
// For every tariff the guard admits it enumerates [0,B]^n, groups the
// reading vectors by bill, and asserts what the guard promises: whenever
// all vectors of one bill agree on x_j mod m (m = 2..B+1; m = B+1 is the
// reading itself), or on the sum over a window of consecutive slots
// shorter than a run, every one of them has the total of a band the window
// touches at an extreme, 0 or |band|·B — the one case no tariff can hide.
//
// It runs the rule with the least run the argument allows (2) and with 3.
func TestGuardBandsHideReadings(t *testing.T) {
	for _, minRun := range []int{2, 3} {
		for _, bound := range []int{2, 3} {
			for n := 2; n <= 6; n++ {
				maxW := uint64(5)
				if n == 6 {
					maxW = 3
				}
				admitted, nonFlat, refusedHidden, refusedRevealing := 0, 0, 0, 0
				forEachTariff(n, maxW, func(w []uint64) {
					err := checkWeights(w, maxW, minRun, 0)
					if err != nil && !errors.Is(err, ErrRevealing) {
						t.Fatalf("weights %v: %v", w, err)
					}
					bad := counterexample(w, bound)
					if bad == "" {
						bad = windowLeak(w, bound, minRun)
					}
					switch {
					case err == nil && bad != "":
						t.Errorf("minRun %d, B=%d: the guard admits %v, but %s", minRun, bound, w, bad)
					case err == nil:
						admitted++
						if !flat(w) {
							nonFlat++
						}
					case bad == "":
						refusedHidden++
					default:
						refusedRevealing++
					}
				})
				// The search is not vacuous: tariffs of two rates are
				// admitted from 2·minRun slots on.
				if n >= 2*minRun && nonFlat == 0 {
					t.Errorf("minRun %d, B=%d, n=%d: no tariff of two rates admitted", minRun, bound, n)
				}
				t.Logf("minRun %d, B=%d, n=%d: %d admitted (%d of several rates), %d refused that fix a reading, a residue or a short window, %d refused though none is fixed here (the guard is conservative)",
					minRun, bound, n, admitted, nonFlat, refusedRevealing, refusedHidden)
			}
		}
	}
	// The converse: the attack's family (w everywhere, w+1 on one slot) is
	// refused throughout the search space.
	const maxW = 5
	for n := 2; n <= 4; n++ {
		for w := uint64(1); w < maxW; w++ {
			for j := range n {
				weights := make([]uint64, n)
				for i := range weights {
					weights[i] = w
				}
				weights[j] = w + 1
				if err := checkWeights(weights, maxW, 2, 0); !errors.Is(err, ErrRevealing) {
					t.Errorf("weights %v admitted: %v", weights, err)
				}
				// From w = 2 on, bill mod w is x_j mod w: the search must
				// see it, or it could not have caught the old guard's hole.
				// (w = 1, w+1 = 2 fixes no residue in this exact search —
				// a bill of S + x_j — and is refused all the same: near
				// single readings under realistic readings, see the docs.)
				for _, bound := range []int{2, 3} {
					if w >= 2 && counterexample(weights, bound) == "" {
						t.Errorf("weights %v, B=%d: the search finds no leak, so it would not catch the attack", weights, bound)
					}
				}
			}
		}
	}
}

// forEachTariff calls f with every vector of n weights in 1..maxW (f must
// not keep it).
func forEachTariff(n int, maxW uint64, f func([]uint64)) {
	w := make([]uint64, n)
	for i := range w {
		w[i] = 1
	}
	for {
		f(w)
		i := 0
		for i < n && w[i] == maxW {
			w[i] = 1
			i++
		}
		if i == n {
			return
		}
		w[i]++
	}
}

func flat(w []uint64) bool {
	for _, x := range w {
		if x != w[0] {
			return false
		}
	}
	return true
}

// counterexample enumerates the readings in [0,bound]^n, groups them by
// bill, and describes a bill that fixes some x_j mod m while j's band
// total is not at an extreme for every reading vector of that bill; "" if
// there is none.
func counterexample(w []uint64, bound int) string {
	n := len(w)
	total := 1
	for range n {
		total *= bound + 1
	}
	// Every reading vector, as its index in base bound+1.
	vec := func(k int) []int {
		x := make([]int, n)
		for i := range x {
			x[i] = k % (bound + 1)
			k /= bound + 1
		}
		return x
	}
	byBill := map[uint64][][]int{}
	for k := range total {
		x := vec(k)
		var bill uint64
		for i := range x {
			bill += w[i] * uint64(x[i])
		}
		byBill[bill] = append(byBill[bill], x)
	}
	bandOf := func(j int) []int {
		var band []int
		for i := range w {
			if w[i] == w[j] {
				band = append(band, i)
			}
		}
		return band
	}
	bills := slices.Sorted(maps.Keys(byBill))
	for _, bill := range bills {
		xs := byBill[bill]
		for j := range n {
			band := bandOf(j)
			for m := bound + 1; m >= 2; m-- {
				fixed := true
				for _, x := range xs[1:] {
					if x[j]%m != xs[0][j]%m {
						fixed = false
						break
					}
				}
				if !fixed {
					continue
				}
				for _, x := range xs {
					sum := 0
					for _, i := range band {
						sum += x[i]
					}
					if sum != 0 && sum != len(band)*bound {
						return fmtLeak(bill, j, m, bound, xs[0][j]%m, x, sum)
					}
				}
			}
		}
	}
	return ""
}

// windowLeak enumerates the readings in [0,bound]^n, groups them by bill,
// and describes a bill that fixes the sum over a window of consecutive
// slots shorter than minRun while some reading vector of that bill has the
// totals of the bands the window touches away from the extremes; "" if
// there is none.
func windowLeak(w []uint64, bound, minRun int) string {
	n := len(w)
	total := 1
	for range n {
		total *= bound + 1
	}
	byBill := map[uint64][][]int{}
	for k := range total {
		x := make([]int, n)
		for i := range n {
			x[i] = k % (bound + 1)
			k /= bound + 1
		}
		var bill uint64
		for i := range x {
			bill += w[i] * uint64(x[i])
		}
		byBill[bill] = append(byBill[bill], x)
	}
	interior := func(x []int, from, to int) bool {
		for _, wt := range slices.Compact(slices.Sorted(slices.Values(w[from:to]))) {
			sum, size := 0, 0
			for i := range w {
				if w[i] == wt {
					sum += x[i]
					size++
				}
			}
			if sum == 0 || sum == size*bound {
				return false
			}
		}
		return true
	}
	for _, bill := range slices.Sorted(maps.Keys(byBill)) {
		xs := byBill[bill]
		for length := 1; length < minRun; length++ {
			for from := 0; from+length <= n; from++ {
				sum := func(x []int) int {
					s := 0
					for _, v := range x[from : from+length] {
						s += v
					}
					return s
				}
				fixed := true
				for _, x := range xs[1:] {
					if sum(x) != sum(xs[0]) {
						fixed = false
						break
					}
				}
				if !fixed {
					continue
				}
				for _, x := range xs {
					if interior(x, from, from+length) {
						return fmt.Sprintf("bill %d fixes the sum %d over slots %d-%d although readings %v of that bill have the bands' totals away from the extremes",
							bill, sum(x), from, from+length-1, x)
					}
				}
			}
		}
	}
	return ""
}

func fmtLeak(bill uint64, j, m, bound, r int, x []int, sum int) string {
	what := fmt.Sprintf("x_%d mod %d = %d", j, m, r)
	if m == bound+1 {
		what = fmt.Sprintf("x_%d = %d (the reading itself)", j, r)
	}
	return fmt.Sprintf("bill %d fixes %s although readings %v of that bill have band total %d, not at an extreme", bill, what, x, sum)
}
