// Package loadprofile models a household's electricity use as a smart
// meter records it: the load shape of a day (London's smart meter data), the
// households drawn around it, the schedule of reading times and the strictly
// increasing energy register read at each, with its sequence number (minutes
// since Epoch). The load simulator delivers these readings to a registry;
// the billing workflow encrypts them.
package loadprofile

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// Epoch is when the simulated meters were installed: their registers start
// there, and sequence numbers count minutes from it. No reading is older.
var Epoch = time.Date(2020, time.January, 1, 0, 0, 0, 0, time.UTC)

// MinInterval is the shortest reading interval; a register must advance by at
// least 1 Wh per interval, even at night.
const MinInterval = 5 * time.Minute

// Unit is the unit of every simulated reading.
const Unit = "kWh"

// Profile is a household's electricity use over a day, modelled on the London
// smart meter data (Low Carbon London, 5,567 households, half-hourly kWh,
// 2011-2014; seed 004): a low night base, a morning peak around 07:00-09:00
// and the day's highest peak in the evening, 17:00-21:00.
type Profile struct {
	// HalfHours is the relative mean load of each half hour of the day from
	// 00:00 UTC (London is on UTC or one hour off it); only ratios matter.
	HalfHours [48]float64
	// DailyKWh is the median household's energy per day.
	DailyKWh float64
	// Spread is the sigma of the lognormal spread of daily energy across
	// households.
	Spread float64
	// Noise is the sigma of the lognormal noise on one interval's energy.
	Noise float64
	// DayNoise (0 to 0.2) bounds how far one day's energy strays from the
	// household's mean.
	DayNoise float64
}

// London is the profile of a London household: about 8.5 kWh a day for the
// median home (3,100 kWh a year), a night base near half the mean and an
// evening peak of 3.5 times the night base.
func London() Profile {
	return Profile{
		HalfHours: [48]float64{
			0.72, 0.64, 0.58, 0.54, 0.52, 0.50, 0.49, 0.48, 0.48, 0.48, 0.50, 0.54, // 00:00-05:30
			0.62, 0.76, 0.92, 1.04, 1.10, 1.10, 1.06, 1.02, 0.99, 0.97, 0.96, 0.96, // 06:00-11:30
			0.98, 0.97, 0.94, 0.91, 0.89, 0.89, 0.92, 0.98, 1.08, 1.22, 1.40, 1.55, // 12:00-17:30
			1.66, 1.72, 1.70, 1.64, 1.56, 1.48, 1.38, 1.27, 1.14, 1.00, 0.88, 0.79, // 18:00-23:30
		},
		DailyKWh: 8.5,
		Spread:   0.45,
		Noise:    0.35,
		DayNoise: 0.12,
	}
}

// Validate checks that the profile can drive strictly increasing registers.
func (p Profile) Validate() error {
	for i, v := range p.HalfHours {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("profile: half hour %d has load %v; every half hour needs a positive load", i, v)
		}
	}
	switch {
	case !(p.DailyKWh >= 1 && p.DailyKWh <= 100):
		return fmt.Errorf("profile: daily energy %v kWh is outside 1 to 100", p.DailyKWh)
	case !(p.Spread >= 0 && p.Spread <= 2):
		return fmt.Errorf("profile: spread %v is outside 0 to 2", p.Spread)
	case !(p.Noise >= 0 && p.Noise <= 2):
		return fmt.Errorf("profile: noise %v is outside 0 to 2", p.Noise)
	case !(p.DayNoise >= 0 && p.DayNoise <= 0.2):
		return fmt.Errorf("profile: day noise %v is outside 0 to 0.2", p.DayNoise)
	}
	return nil
}

// Household is one simulated home behind a meter.
type Household struct {
	MeterID string
	// DailyWh is the home's mean energy per day.
	DailyWh float64
	// BaseWh is the register at Epoch.
	BaseWh int64
	seed   uint64
}

// Bounds of a household's mean daily energy; the lower one keeps every
// interval of the shortest length at 1 Wh or more.
const (
	minDailyWh = 1_000
	maxDailyWh = 100_000
)

// Household draws the home behind a meter. It depends only on seed and the
// meter ID, so a meter behaves the same in every run with the same seed.
func (p Profile) Household(seed uint64, meterID string) Household {
	h := fnv.New64a()
	h.Write([]byte(meterID))
	s := mix(seed, h.Sum64())
	rng := rand.New(rand.NewPCG(s, 0x9e3779b97f4a7c15))
	daily := p.DailyKWh * 1000 * math.Exp(p.Spread*rng.NormFloat64())
	return Household{
		MeterID: meterID,
		DailyWh: min(max(daily, minDailyWh), maxDailyWh),
		BaseWh:  rng.Int64N(5_000_000), // up to 5,000 kWh on the register at installation
		seed:    s,
	}
}

// Schedule is when a run's readings are taken: one at the end of each of
// Slots intervals from Start.
type Schedule struct {
	// Start begins the first interval; it lies on an interval boundary
	// counted from midnight UTC.
	Start    time.Time
	Interval time.Duration
	Slots    int
	// SeqOffset raises every sequence number, to stay above the seqs of an
	// earlier run over the same period.
	SeqOffset uint64
}

// MaxSlots bounds a schedule: a year of 5-minute readings.
const MaxSlots = 366 * 24 * 12

// LastSlots is the schedule of slots intervals that ends at the last full
// interval before now, so that every reading time is plausible.
func LastSlots(now time.Time, interval time.Duration, slots int) Schedule {
	end := now.UTC().Truncate(interval)
	return Schedule{Start: end.Add(-time.Duration(slots) * interval), Interval: interval, Slots: slots}
}

// Validate checks the interval, the alignment of Start and the number of slots.
func (s Schedule) Validate() error {
	switch {
	case s.Interval < MinInterval || s.Interval%time.Minute != 0 || (24*time.Hour)%s.Interval != 0:
		return fmt.Errorf("interval %s must be whole minutes, at least %s, and divide a day", s.Interval, MinInterval)
	case s.Slots < 1 || s.Slots > MaxSlots:
		return fmt.Errorf("slots %d must be between 1 and %d", s.Slots, MaxSlots)
	case s.Start.Before(Epoch):
		return fmt.Errorf("start %s is before the simulated meters were installed (%s)", s.Start.UTC().Format(time.RFC3339), Epoch.Format(time.RFC3339))
	case s.Start.Sub(Epoch)%s.Interval != 0:
		return fmt.Errorf("start %s is not on a %s boundary (counted from midnight UTC)", s.Start.UTC().Format(time.RFC3339), s.Interval)
	}
	return nil
}

// Time is the time of reading slot (0-based): the end of its interval.
func (s Schedule) Time(slot int) time.Time {
	return s.Start.Add(time.Duration(slot+1) * s.Interval).UTC()
}

// End is the time of the last reading.
func (s Schedule) End() time.Time { return s.Time(s.Slots - 1) }

// SeqAt is the sequence number of a reading taken at t: minutes since Epoch.
// It grows with time whatever the interval, so a later run over later times
// continues above an earlier one.
func SeqAt(t time.Time) uint64 {
	return uint64(t.Sub(Epoch) / time.Minute)
}

// Reading is one register reading of a meter.
type Reading struct {
	Time time.Time
	Seq  uint64
	// RegisterWh is the cumulative energy register.
	RegisterWh int64
}

// Value is the register in kWh with three decimals, as the meter sends it.
func (r Reading) Value() string {
	return fmt.Sprintf("%d.%03d", r.RegisterWh/1000, r.RegisterWh%1000)
}

// Measurement is the payload the meter signs for this reading.
func (r Reading) Measurement(meterID string) meter.Measurement {
	return meter.Measurement{MeterID: meterID, Seq: r.Seq, Time: r.Time.UTC().Format(time.RFC3339), Value: r.Value(), Unit: Unit}
}

// Readings are a household's register readings over a schedule. The register
// is a function of time alone (given the household), so two runs over
// overlapping periods read the same values, and it strictly increases.
func (p Profile) Readings(h Household, s Schedule) ([]Reading, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	perDay := int(24 * time.Hour / s.Interval)
	out := make([]Reading, s.Slots)
	day, energy := -1, []int64(nil)
	var register int64
	for i := range out {
		t := s.Time(i)
		since := t.Sub(Epoch)
		d, slot := int(since/(24*time.Hour)), int(since%(24*time.Hour)/s.Interval)
		if d != day {
			day, energy = d, p.dayEnergy(h, d, perDay)
			register = p.dayStart(h, d)
			for _, e := range energy[:slot] {
				register += e
			}
		} else {
			register += energy[slot-1]
		}
		out[i] = Reading{Time: t, Seq: SeqAt(t) + s.SeqOffset, RegisterWh: register}
	}
	return out, nil
}

// dayStart is the register at midnight starting day d (days since Epoch).
// Days deviate from the mean by dayDeviation(d) - dayDeviation(d-1), so the
// deviations telescope and the register needs no sum over past days.
func (p Profile) dayStart(h Household, d int) int64 {
	if d == 0 {
		return h.BaseWh
	}
	return h.BaseWh + int64(math.Round(h.DailyWh*(float64(d)+p.dayDeviation(h, d-1))))
}

func (p Profile) dayDeviation(h Household, d int) float64 {
	u := float64(mix(h.seed^0x6a09e667f3bcc908, uint64(d))>>11) / (1 << 53)
	return p.DayNoise * (2*u - 1)
}

// dayEnergy splits day d's energy over its slots, in Wh: each slot gets 1 Wh
// (the register must move) plus a share by the profile's load and the noise,
// rounded so that the day's total is exact.
func (p Profile) dayEnergy(h Household, d, slots int) []int64 {
	total := p.dayStart(h, d+1) - p.dayStart(h, d)
	rng := rand.New(rand.NewPCG(h.seed, uint64(d)))
	weights := make([]float64, slots)
	var sum float64
	for j := range weights {
		w := p.shape(j, slots) * math.Exp(p.Noise*rng.NormFloat64()-p.Noise*p.Noise/2)
		weights[j] = w
		sum += w
	}
	rest := total - int64(slots)
	out := make([]int64, slots)
	frac := make([]float64, slots)
	left := rest
	for j, w := range weights {
		share := float64(rest) * w / sum
		whole := math.Floor(share)
		out[j] = 1 + int64(whole)
		frac[j] = share - whole
		left -= int64(whole)
	}
	// Largest remainders take the Wh that rounding down left over.
	order := make([]int, slots)
	for j := range order {
		order[j] = j
	}
	sort.SliceStable(order, func(a, b int) bool { return frac[order[a]] > frac[order[b]] })
	for _, j := range order[:left] {
		out[j]++
	}
	return out
}

// shape is the profile's mean load over slot j of a day cut into slots
// equal intervals, relative to the day's mean.
func (p Profile) shape(j, slots int) float64 {
	const halfHours = 48
	from, to := float64(j)*halfHours/float64(slots), float64(j+1)*halfHours/float64(slots)
	var sum, mean float64
	for _, v := range p.HalfHours {
		mean += v / halfHours
	}
	for i, v := range p.HalfHours {
		overlap := math.Min(to, float64(i+1)) - math.Max(from, float64(i))
		if overlap > 0 {
			sum += v * overlap
		}
	}
	return sum / (to - from) / mean
}

// mix hashes two words into one (splitmix64 finalizer).
func mix(a, b uint64) uint64 {
	z := a ^ (b + 0x9e3779b97f4a7c15 + (a << 6) + (a >> 2))
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
