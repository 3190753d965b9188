package web

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/inter-nmi/pki/explorer/index"
)

// The charts are SVG drawn on the server: coordinates are computed here,
// the templates only place them.

// barChart is accepted and refused measurements per hour or per minute,
// stacked.
type barChart struct {
	// Label names the chart for those who do not see it.
	Label                           string
	W, H                            int
	Left, Right, Top, Bottom        float64 // the plot area
	Bars                            []bar
	YTicks, XTicks                  []tick
	AcceptedTotal, RefusedTotal     uint64
	RefusedShare                    string
	First, Last                     time.Time
	HasData                         bool
	AcceptedLegendX, RefusedLegendX float64
}

type bar struct {
	X, W       float64
	AccY, AccH float64
	RefY, RefH float64
	Title      string
}

type tick struct {
	X, Y  float64
	Label string
}

// slot is one bar of a chart: the counts of an hour or a minute.
type slot struct {
	Start             time.Time
	Accepted, Refused uint64
}

// newHourChart draws hours of measurements; the axis names every sixth
// hour, and the date at midnight.
func newHourChart(hours []index.HourStat) barChart {
	slots := make([]slot, len(hours))
	for i, h := range hours {
		slots[i] = slot{Start: h.Hour, Accepted: h.Accepted, Refused: h.Refused}
	}
	return newBarChart("measurements per hour, accepted and refused stacked", slots, time.Hour, func(t time.Time) (string, bool) {
		switch t.Hour() {
		case 0:
			return t.Format("Jan 02"), true
		case 6, 12, 18:
			return t.Format("15:04"), true
		}
		return "", false
	})
}

// newMinuteChart draws minutes of measurements; the axis names every
// tenth minute.
func newMinuteChart(minutes []index.MinuteStat) barChart {
	slots := make([]slot, len(minutes))
	for i, m := range minutes {
		slots[i] = slot{Start: m.Minute, Accepted: m.Accepted, Refused: m.Refused}
	}
	return newBarChart("measurements per minute, accepted and refused stacked", slots, time.Minute, func(t time.Time) (string, bool) {
		return t.Format("15:04"), t.Minute()%10 == 0
	})
}

// newBarChart draws slots of the given length, oldest first; label names
// the slots the x axis marks (times in UTC).
func newBarChart(name string, slots []slot, length time.Duration, label func(time.Time) (string, bool)) barChart {
	c := barChart{Label: name, W: 960, H: 260, Left: 56, Right: 944, Top: 28, Bottom: 224}
	c.AcceptedLegendX, c.RefusedLegendX = c.Left, c.Left+110
	var top uint64
	for _, h := range slots {
		top = max(top, h.Accepted+h.Refused)
		c.AcceptedTotal += h.Accepted
		c.RefusedTotal += h.Refused
	}
	c.HasData = top > 0
	if all := c.AcceptedTotal + c.RefusedTotal; all > 0 {
		c.RefusedShare = strconv.FormatFloat(100*float64(c.RefusedTotal)/float64(all), 'f', 2, 64)
	}
	if len(slots) > 0 {
		c.First, c.Last = slots[0].Start, slots[len(slots)-1].Start.Add(length)
	}
	const ticks = 4
	step := niceStep(top, ticks)
	ymax := float64(step * ticks)
	height := c.Bottom - c.Top
	for i := 0; i <= ticks; i++ {
		v := step * uint64(i)
		c.YTicks = append(c.YTicks, tick{X: c.Left - 6, Y: c.Bottom - float64(v)/ymax*height, Label: compact(v)})
	}
	width := (c.Right - c.Left) / float64(max(len(slots), 1))
	for i, h := range slots {
		x := c.Left + float64(i)*width
		b := bar{X: x + width*0.1, W: width * 0.8}
		b.AccH = float64(h.Accepted) / ymax * height
		b.AccY = c.Bottom - b.AccH
		b.RefH = float64(h.Refused) / ymax * height
		if h.Refused > 0 && b.RefH < 2 {
			b.RefH = 2 // a refusal stays visible next to thousands of accepted readings
		}
		b.RefY = b.AccY - b.RefH
		start := h.Start.UTC()
		b.Title = fmt.Sprintf("%s to %s: %d accepted, %d refused", start.Format("2006-01-02 15:04"),
			start.Add(length).Format("15:04 UTC"), h.Accepted, h.Refused)
		c.Bars = append(c.Bars, b)
		if l, ok := label(start); ok {
			c.XTicks = append(c.XTicks, tick{X: x, Y: c.Bottom + 18, Label: l})
		}
	}
	return c
}

// niceStep is the axis step, 1, 2 or 5 times a power of ten, that fits top
// in the given number of ticks.
func niceStep(top uint64, ticks int) uint64 {
	raw := float64(top) / float64(ticks)
	if raw <= 1 {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			return uint64(m * mag)
		}
	}
	return uint64(10 * mag)
}
