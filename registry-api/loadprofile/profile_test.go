package loadprofile_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inter-nmi/pki/registry-api/loadprofile"
)

var day0 = time.Date(2026, time.March, 2, 0, 0, 0, 0, time.UTC)

func readings(t *testing.T, p loadprofile.Profile, seed uint64, id string, s loadprofile.Schedule) []loadprofile.Reading {
	t.Helper()
	rs, err := p.Readings(p.Household(seed, id), s)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// meanLoad is the mean energy of each 15-minute slot of the day over many
// households and days, in Wh.
func meanLoad(t *testing.T) [96]float64 {
	var sum [96]float64
	p := loadprofile.London()
	const homes, days = 100, 7
	for h := range homes {
		rs := readings(t, p, 1, fmt.Sprintf("H-%03d", h), loadprofile.Schedule{Start: day0, Interval: 15 * time.Minute, Slots: 96 * days})
		prev := rs[0].RegisterWh
		for i, r := range rs[1:] {
			sum[(i+1)%96] += float64(r.RegisterWh - prev)
			prev = r.RegisterWh
		}
	}
	for i := range sum {
		sum[i] /= homes * days
	}
	return sum
}

// slot is the index of the 15-minute interval that ends at hh:mm; readings
// are taken at the end of their interval.
func slot(hhmm string) int {
	var h, m int
	fmt.Sscanf(hhmm, "%d:%d", &h, &m)
	return ((h*60+m)/15 - 1 + 96) % 96
}

func maxIn(load [96]float64, from, to string) (float64, int) {
	best, at := -1.0, -1
	for i := slot(from); i <= slot(to); i++ {
		if load[i] > best {
			best, at = load[i], i
		}
	}
	return best, at
}

func meanIn(load [96]float64, from, to string) float64 {
	var sum float64
	n := 0
	for i := slot(from); i <= slot(to); i++ {
		sum += load[i]
		n++
	}
	return sum / float64(n)
}

func TestLoadShapePeaks(t *testing.T) {
	load := meanLoad(t)
	_, peak := maxIn(load, "00:15", "24:00")
	if peak < slot("17:15") || peak > slot("21:00") {
		t.Errorf("the day's peak ends at slot %d; want it in the evening, 17:00-21:00", peak)
	}
	morning, _ := maxIn(load, "07:15", "09:00")
	evening, _ := maxIn(load, "17:15", "21:00")
	night := meanIn(load, "01:15", "05:00")
	midday := meanIn(load, "11:15", "15:00")
	if !(morning > midday && midday > night) {
		t.Errorf("morning peak %.0f Wh, midday %.0f Wh, night %.0f Wh: want morning > midday > night", morning, midday, night)
	}
	if !(evening > 1.3*morning) {
		t.Errorf("evening peak %.0f Wh is not clearly above the morning peak %.0f Wh", evening, morning)
	}
	if evening/night < 2.5 || evening/night > 5 {
		t.Errorf("evening peak / night base = %.2f; the London households show about 3.5", evening/night)
	}
}

func TestDailyEnergyPlausible(t *testing.T) {
	p := loadprofile.London()
	var daily []float64
	for h := range 400 {
		rs := readings(t, p, 7, fmt.Sprintf("H-%03d", h), loadprofile.Schedule{Start: day0.Add(-15 * time.Minute), Interval: 15 * time.Minute, Slots: 1 + 96*3})
		kwh := float64(rs[len(rs)-1].RegisterWh-rs[0].RegisterWh) / 1000 / 3
		if kwh < 1 || kwh > 100 {
			t.Errorf("household %d uses %.1f kWh a day", h, kwh)
		}
		daily = append(daily, kwh)
	}
	slices.Sort(daily)
	var mean float64
	for _, d := range daily {
		mean += d / float64(len(daily))
	}
	median := daily[len(daily)/2]
	if median < 5 || median > 15 || mean < 5 || mean > 15 {
		t.Errorf("median %.1f kWh/day, mean %.1f kWh/day; want both between 5 and 15", median, mean)
	}
}

var valueRE = regexp.MustCompile(`^[0-9]+\.[0-9]{3}$`)

func TestRegisterStrictlyIncreasing(t *testing.T) {
	p := loadprofile.London()
	for _, interval := range []time.Duration{5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 24 * time.Hour} {
		t.Run(interval.String(), func(t *testing.T) {
			start := day0.Add(-interval * 7) // crosses midnight
			s := loadprofile.Schedule{Start: start, Interval: interval, Slots: 300}
			for h := range 20 {
				id := fmt.Sprintf("H-%02d", h)
				rs := readings(t, p, 3, id, s)
				if len(rs) != s.Slots {
					t.Fatalf("%d readings, want %d", len(rs), s.Slots)
				}
				for i, r := range rs {
					if want := start.Add(time.Duration(i+1) * interval); !r.Time.Equal(want) {
						t.Fatalf("reading %d at %s, want %s", i, r.Time, want)
					}
					if !valueRE.MatchString(r.Value()) {
						t.Fatalf("value %q is not kWh with 3 decimals", r.Value())
					}
					if _, err := r.Measurement(id).Payload(); err != nil {
						t.Fatalf("reading %d: %v", i, err)
					}
					if i == 0 {
						continue
					}
					if prev := rs[i-1]; r.RegisterWh <= prev.RegisterWh || r.Seq <= prev.Seq {
						t.Fatalf("%s: reading %d (%s, seq %d) does not advance on reading %d (%s, seq %d)",
							id, i, r.Value(), r.Seq, i-1, prev.Value(), prev.Seq)
					}
				}
			}
		})
	}
}

func TestReadingsDeterministic(t *testing.T) {
	p := loadprofile.London()
	s := loadprofile.Schedule{Start: day0, Interval: 15 * time.Minute, Slots: 200}
	a, b := readings(t, p, 42, "M-1", s), readings(t, p, 42, "M-1", s)
	if !slices.Equal(a, b) {
		t.Error("the same seed gave different readings")
	}
	if c := readings(t, p, 43, "M-1", s); slices.Equal(a, c) {
		t.Error("another seed gave the same readings")
	}
	if c := readings(t, p, 42, "M-2", s); slices.Equal(a, c) {
		t.Error("another meter gave the same readings")
	}
	// The register is a function of time: a later, overlapping run reads
	// the same values at the same times.
	later := loadprofile.Schedule{Start: day0.Add(37 * 15 * time.Minute), Interval: 15 * time.Minute, Slots: 200}
	for _, r := range readings(t, p, 42, "M-1", later) {
		for _, q := range a {
			if q.Time.Equal(r.Time) && q.RegisterWh != r.RegisterWh {
				t.Fatalf("at %s the register reads %s in one run and %s in another", r.Time, q.Value(), r.Value())
			}
		}
	}
}

func TestScheduleValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    loadprofile.Schedule
		want string
	}{
		{"good", loadprofile.Schedule{Start: day0, Interval: 15 * time.Minute, Slots: 96}, ""},
		{"too short", loadprofile.Schedule{Start: day0, Interval: 4 * time.Minute, Slots: 96}, "interval"},
		{"not whole minutes", loadprofile.Schedule{Start: day0, Interval: 450 * time.Second, Slots: 96}, "interval"},
		{"does not divide a day", loadprofile.Schedule{Start: day0, Interval: 7 * time.Minute, Slots: 96}, "interval"},
		{"no slots", loadprofile.Schedule{Start: day0, Interval: 15 * time.Minute}, "slots"},
		{"before epoch", loadprofile.Schedule{Start: loadprofile.Epoch.Add(-24 * time.Hour), Interval: 15 * time.Minute, Slots: 1}, "installed"},
		{"misaligned", loadprofile.Schedule{Start: day0.Add(time.Minute), Interval: 15 * time.Minute, Slots: 1}, "boundary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestLastSlots(t *testing.T) {
	now := time.Date(2026, 5, 21, 10, 7, 30, 0, time.UTC)
	s := loadprofile.LastSlots(now, 15*time.Minute, 96)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 5, 21, 10, 0, 0, 0, time.UTC); !s.End().Equal(want) {
		t.Errorf("last reading at %s, want %s", s.End(), want)
	}
	if want := time.Date(2026, 5, 20, 10, 15, 0, 0, time.UTC); !s.Time(0).Equal(want) {
		t.Errorf("first reading at %s, want %s", s.Time(0), want)
	}
	for i := range s.Slots {
		m := loadprofile.Reading{Time: s.Time(i), Seq: 1, RegisterWh: 1}.Measurement("M-1")
		if err := m.CheckPlausible(now); err != nil {
			t.Fatalf("reading %d: %v", i, err)
		}
	}
}

func TestProfileValidate(t *testing.T) {
	p := loadprofile.London()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*loadprofile.Profile){
		func(p *loadprofile.Profile) { p.HalfHours[3] = 0 },
		func(p *loadprofile.Profile) { p.DailyKWh = 0.5 },
		func(p *loadprofile.Profile) { p.Spread = -1 },
		func(p *loadprofile.Profile) { p.DayNoise = 0.5 },
	}
	for i, f := range bad {
		q := loadprofile.London()
		f(&q)
		if err := q.Validate(); err == nil {
			t.Errorf("case %d: Validate accepted %+v", i, q)
		}
	}
}
