package simulator

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name   string
		values []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"two p50", ms(10, 20), 50, 10 * time.Millisecond},
		{"two p95", ms(10, 20), 95, 20 * time.Millisecond},
		{"hundred p50", ms(hundred...), 50, 50 * time.Millisecond},
		{"hundred p95", ms(hundred...), 95, 95 * time.Millisecond},
		{"hundred p99", ms(hundred...), 99, 99 * time.Millisecond},
		{"hundred p100", ms(hundred...), 100, 100 * time.Millisecond},
		{"ten p95", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 95, 10 * time.Millisecond},
	} {
		if got := percentile(tc.values, tc.p); got != tc.want {
			t.Errorf("%s: percentile(%v) = %v, want %v", tc.name, tc.p, got, tc.want)
		}
	}
	l := latencyOf(ms(30, 10, 20))
	if l.Count != 3 || l.P50 != 20 || l.P99 != 30 || l.Max != 30 {
		t.Errorf("latencyOf = %+v", l)
	}
}

func TestSummaryText(t *testing.T) {
	s := &Summary{Command: "metersim --meters 2", Mode: ModeBatch, BatchSize: 10, Concurrency: 2, Meters: 2, Slots: 4,
		Sent: 8, Accepted: 6, Rejected: 2, RejectedByCode: map[string]int{"REPLAY": 1, "BAD_SIGNATURE": 1},
		Errors: map[string]int{}, PerMeasurement: &Latency{}, Replay: &Replay{Items: 4, Rejected: 4, RejectedByCode: map[string]int{"REPLAY": 4}}}
	var b strings.Builder
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"metersim --meters 2", "batches of up to 10", "rejected       2 (BAD_SIGNATURE 1, REPLAY 1)",
		"errors         none", "per measurement", "replay         4 items: 0 accepted, 4 rejected (REPLAY 4)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

// fakeClock is a clock that only moves when the bucket sleeps.
type fakeClock struct {
	now   time.Time
	slept time.Duration
}

func (c *fakeClock) sleep(_ context.Context, d time.Duration) error {
	c.now = c.now.Add(d)
	c.slept += d
	return nil
}

func TestBucket(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rate      float64
		burst     int
		takes     []int
		wantSlept time.Duration
	}{
		// The first token is there; each further one waits 1/rate.
		{"one by one", 10, 1, []int{1, 1, 1, 1, 1}, 400 * time.Millisecond},
		// A batch of 100 at 50/s: the first passes on the burst, then each
		// waits until the bucket is paid back.
		{"batches", 50, 100, []int{100, 100, 100}, 4 * time.Second},
		{"within burst", 1, 5, []int{1, 1, 1, 1, 1}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeClock{now: time.Unix(1e9, 0)}
			b := newBucket(tc.rate, tc.burst)
			b.now, b.sleep, b.last = func() time.Time { return c.now }, c.sleep, c.now
			for _, n := range tc.takes {
				if err := b.wait(context.Background(), n); err != nil {
					t.Fatal(err)
				}
			}
			if d := c.slept - tc.wantSlept; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("slept %v, want %v", c.slept, tc.wantSlept)
			}
		})
	}
}
