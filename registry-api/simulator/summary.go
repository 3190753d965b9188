package simulator

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Summary is what a run did. Its JSON form goes into documents and tests.
type Summary struct {
	// Command is the command line that made the run, credentials removed;
	// the caller fills it in.
	Command string `json:"command,omitempty"`
	// Registered counts the meters enrolled before the run; the caller fills
	// it in when it registered them.
	Registered int `json:"registered"`
	// RegisterSeconds is how long the registration took.
	RegisterSeconds float64 `json:"registerSeconds,omitempty"`

	Mode        string  `json:"mode"` // "single" or "batch"
	BatchSize   int     `json:"batchSize,omitempty"`
	Concurrency int     `json:"concurrency"`
	RateLimit   float64 `json:"rateLimit"` // measurements per second; 0 is unlimited
	Meters      int     `json:"meters"`
	Slots       int     `json:"slots"`
	Interval    string  `json:"interval"`
	From        string  `json:"from"` // first reading time
	To          string  `json:"to"`   // last reading time
	Seed        uint64  `json:"seed"`

	Requests int `json:"requests"`
	// Sent counts measurements sent, whatever became of them.
	Sent     int `json:"sent"`
	Accepted int `json:"accepted"`
	// Duplicates are accepted measurements the registry answered as
	// accepted before (a re-delivery after a lost answer); they count in
	// Accepted.
	Duplicates int `json:"duplicates"`
	Rejected   int `json:"rejected"`
	// RejectedByCode counts refused measurements by refusal code.
	RejectedByCode map[string]int `json:"rejectedByCode"`
	// Failed counts measurements whose request got no verdict.
	Failed int `json:"failed"`
	// Errors counts failed requests by problem code; TRANSPORT when no
	// answer came, CANCELED when the run was stopped.
	Errors map[string]int `json:"errors"`

	WallSeconds       float64 `json:"wallSeconds"`
	PerSecond         float64 `json:"measurementsPerSecond"`
	AcceptedPerSecond float64 `json:"acceptedPerSecond"`
	// Latency is of requests; PerMeasurement, for batches, is each request's
	// latency divided by its measurements.
	Latency        Latency  `json:"requestLatencyMs"`
	PerMeasurement *Latency `json:"perMeasurementLatencyMs,omitempty"`

	Replay *Replay `json:"replay,omitempty"`
	// Updates is what became of the fleet's software update, if the run
	// had one.
	Updates *UpdateSummary `json:"updates,omitempty"`
}

// Latency are percentiles of a latency distribution, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Replay is the outcome of sending the last request once more.
type Replay struct {
	Items          int            `json:"items"`
	Accepted       int            `json:"accepted"`
	Duplicates     int            `json:"duplicates"`
	Rejected       int            `json:"rejected"`
	RejectedByCode map[string]int `json:"rejectedByCode"`
	// Error is the problem of the request, if it failed as a whole.
	Error string `json:"error,omitempty"`
}

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of sorted
// values: the smallest value with at least p% of the values at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// latencyOf sorts ds in place and summarises it.
func latencyOf(ds []time.Duration) Latency {
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*1000) / 1000 }
	l := Latency{Count: len(ds), P50: ms(percentile(ds, 50)), P95: ms(percentile(ds, 95)), P99: ms(percentile(ds, 99))}
	if len(ds) > 0 {
		l.Max = ms(ds[len(ds)-1])
	}
	return l
}

// WriteText writes the summary for a person.
func (s *Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "  %-14s %s\n", label, fmt.Sprintf(format, args...))
	}
	b.WriteString("metersim summary\n")
	if s.Command != "" {
		line("command", "%s", s.Command)
	}
	mode := "single measurements"
	if s.Mode == ModeBatch {
		mode = fmt.Sprintf("batches of up to %d measurements", s.BatchSize)
	}
	rate := "unlimited"
	if s.RateLimit > 0 {
		rate = fmt.Sprintf("%g measurements/s", s.RateLimit)
	}
	line("mode", "%s, concurrency %d, rate %s", mode, s.Concurrency, rate)
	line("meters", "%d (registered now: %d)", s.Meters, s.Registered)
	line("period", "%s .. %s, %d readings every %s, seed %d", s.From, s.To, s.Slots, s.Interval, s.Seed)
	line("requests", "%d", s.Requests)
	line("sent", "%d", s.Sent)
	line("accepted", "%d%s", s.Accepted, inParens(dupNote(s.Duplicates)))
	line("rejected", "%d%s", s.Rejected, inParens(byCode(s.RejectedByCode)))
	line("failed", "%d", s.Failed)
	if len(s.Errors) == 0 {
		line("errors", "none")
	} else {
		line("errors", "%s", byCode(s.Errors))
	}
	line("wall time", "%.2fs", s.WallSeconds)
	line("throughput", "%.1f measurements/s (accepted %.1f/s)", s.PerSecond, s.AcceptedPerSecond)
	line("latency", "requests %s", s.Latency)
	if s.PerMeasurement != nil {
		line("", "per measurement %s", *s.PerMeasurement)
	}
	if u := s.Updates; u != nil {
		line("update", "to %s after %d readings: %d statements, %d accepted%s, %d refused%s, %d failed%s",
			u.To, u.After, u.Sent, u.Accepted, inParens(dupNote(u.Duplicates)), u.Refused, inParens(byCode(u.RefusedByCode)),
			u.Failed, inParens(byCode(u.Errors)))
		line("", "statements %s", u.Latency)
	}
	if r := s.Replay; r != nil {
		if r.Error != "" {
			line("replay", "%d items: request failed: %s", r.Items, r.Error)
		} else {
			line("replay", "%d items: %d accepted%s, %d rejected%s", r.Items, r.Accepted, inParens(dupNote(r.Duplicates)), r.Rejected, inParens(byCode(r.RejectedByCode)))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// String renders the percentiles.
func (l Latency) String() string {
	return fmt.Sprintf("p50 %s p95 %s p99 %s max %s (n=%d)", msText(l.P50), msText(l.P95), msText(l.P99), msText(l.Max), l.Count)
}

func msText(ms float64) string {
	return time.Duration(ms * float64(time.Millisecond)).Round(10 * time.Microsecond).String()
}

// byCode renders counts as "CODE n, CODE n", most frequent first.
func byCode(counts map[string]int) string {
	codes := slices.Collect(maps.Keys(counts))
	slices.SortFunc(codes, func(a, b string) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s %d", c, counts[c])
	}
	return strings.Join(parts, ", ")
}

func inParens(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func dupNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d answered as duplicates of earlier deliveries", n)
}
