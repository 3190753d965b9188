package web

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/inter-nmi/pki/explorer/index"
)

// The charts are SVG drawn on the server: coordinates are computed here,
// the templates only place them.

// sparkline is a small line of counts per minute.
type sparkline struct {
	W, H   int
	Points string // polyline points
	Dots   []dot
}

type dot struct {
	X, Y  float64
	Title string
}

// newSparkline draws counts (oldest first), one per minute ending at the
// minute of now.
func newSparkline(counts []uint64, now time.Time) sparkline {
	const w, h, pad = 160, 36, 4
	sp := sparkline{W: w, H: h}
	var top uint64 = 1
	for _, c := range counts {
		top = max(top, c)
	}
	var pts []string
	first := now.Truncate(time.Minute).Add(-time.Duration(len(counts)-1) * time.Minute)
	for i, c := range counts {
		x := float64(pad)
		if len(counts) > 1 {
			x += float64(i) * float64(w-2*pad) / float64(len(counts)-1)
		}
		y := float64(h-pad) - float64(c)*float64(h-2*pad)/float64(top)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		at := first.Add(time.Duration(i) * time.Minute).UTC()
		sp.Dots = append(sp.Dots, dot{X: x, Y: y, Title: fmt.Sprintf("%s: %d transactions", at.Format("15:04Z"), c)})
	}
	sp.Points = strings.Join(pts, " ")
	return sp
}

// barChart is accepted and refused measurements per hour, stacked.
type barChart struct {
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

func newBarChart(hours []index.HourStat) barChart {
	c := barChart{W: 960, H: 260, Left: 56, Right: 944, Top: 28, Bottom: 224}
	c.AcceptedLegendX, c.RefusedLegendX = c.Left, c.Left+110
	var top uint64
	for _, h := range hours {
		top = max(top, h.Accepted+h.Refused)
		c.AcceptedTotal += h.Accepted
		c.RefusedTotal += h.Refused
	}
	c.HasData = top > 0
	if all := c.AcceptedTotal + c.RefusedTotal; all > 0 {
		c.RefusedShare = strconv.FormatFloat(100*float64(c.RefusedTotal)/float64(all), 'f', 2, 64)
	}
	if len(hours) > 0 {
		c.First, c.Last = hours[0].Hour, hours[len(hours)-1].Hour.Add(time.Hour)
	}
	const ticks = 4
	step := niceStep(top, ticks)
	ymax := float64(step * ticks)
	height := c.Bottom - c.Top
	for i := 0; i <= ticks; i++ {
		v := step * uint64(i)
		c.YTicks = append(c.YTicks, tick{X: c.Left - 6, Y: c.Bottom - float64(v)/ymax*height, Label: compact(v)})
	}
	slot := (c.Right - c.Left) / float64(max(len(hours), 1))
	for i, h := range hours {
		x := c.Left + float64(i)*slot
		b := bar{X: x + slot*0.1, W: slot * 0.8}
		b.AccH = float64(h.Accepted) / ymax * height
		b.AccY = c.Bottom - b.AccH
		b.RefH = float64(h.Refused) / ymax * height
		if h.Refused > 0 && b.RefH < 2 {
			b.RefH = 2 // a refusal stays visible next to thousands of accepted readings
		}
		b.RefY = b.AccY - b.RefH
		b.Title = fmt.Sprintf("%s to %s: %d accepted, %d refused", h.Hour.UTC().Format("2006-01-02 15:04"),
			h.Hour.Add(time.Hour).UTC().Format("15:04 UTC"), h.Accepted, h.Refused)
		c.Bars = append(c.Bars, b)
		if hr := h.Hour.UTC().Hour(); hr%6 == 0 {
			label := h.Hour.UTC().Format("15:04")
			if hr == 0 {
				label = h.Hour.UTC().Format("Jan 02")
			}
			c.XTicks = append(c.XTicks, tick{X: x, Y: c.Bottom + 18, Label: label})
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
