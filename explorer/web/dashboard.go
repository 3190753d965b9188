package web

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/network/pkg/health"
)

// Windows of the dashboard's statistics.
const (
	rateWindow   = 5 * time.Minute
	minuteWindow = time.Hour
	chartWindow  = 48 * time.Hour
)

type dashboardPage struct {
	Height uint64
	Latest uint64 // the newest block, when Height > 0
	Totals index.Totals
	Rate   rates
	// Invalid counts the invalid transactions by validation code, the
	// most frequent first.
	Invalid []codeCount
	NMIs    []nmiRow
	All     *index.Count
	// Chart is the measurements per hour of chartWindow, Minutes those
	// per minute of minuteWindow.
	Chart     barChart
	Minutes   barChart
	PerMinute []index.MinuteStat
	// Config is nil until a configuration block is indexed.
	Config    *channel.Config
	Nodes     []health.NodeStatus
	HasHealth bool
	Integrity index.Integrity
	// Genesis is the pinned genesis block hash (hex).
	Genesis string
	// Findings are the newest integrity findings (Totals.Findings counts all).
	Findings []index.Finding
	// Software is where the meters in service stand with their software
	// now; Untyped counts those of no recorded type.
	Software index.SoftwareStatus
	Untyped  uint64
	Now      time.Time
}

// rates are the measurements and transactions per second over rateWindow.
type rates struct {
	Accepted, Refused, Transactions float64
}

// newRates averages the newest minutes over rateWindow: the current minute,
// which has only begun, and those before it.
func newRates(minutes []index.MinuteStat) rates {
	n := int(rateWindow / time.Minute)
	var r rates
	for _, m := range minutes[max(len(minutes)-n, 0):] {
		r.Accepted += float64(m.Accepted)
		r.Refused += float64(m.Refused)
		r.Transactions += float64(m.Transactions)
	}
	secs := rateWindow.Seconds()
	return rates{Accepted: r.Accepted / secs, Refused: r.Refused / secs, Transactions: r.Transactions / secs}
}

// codeCount is how many invalid transactions had one validation code.
type codeCount struct {
	Code  string
	Count uint64
}

func invalidByCode(t index.Totals) []codeCount {
	var out []codeCount
	for code, n := range t.InvalidByCode {
		out = append(out, codeCount{Code: code, Count: n})
	}
	slices.SortFunc(out, func(a, b codeCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Code, b.Code))
	})
	return out
}

// dashboardFindings is how many of the newest findings the dashboard lists.
const dashboardFindings = 5

// nmiRow is one NMI's meters.
type nmiRow struct {
	MSPID, Name string
	Count       *index.Count
	// Former: the NMI has meters but is no longer a member.
	Former bool
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) error {
	now := s.now()
	d := dashboardPage{Now: now, Genesis: s.genesis}
	var err error
	if d.Height, err = s.store.Height(); err != nil {
		return fmt.Errorf("height: %w", err)
	}
	if d.Height > 0 {
		d.Latest = d.Height - 1
	}
	if d.Totals, err = s.store.Totals(); err != nil {
		return fmt.Errorf("totals: %w", err)
	}
	if d.Integrity, err = s.store.Integrity(); err != nil {
		return fmt.Errorf("integrity: %w", err)
	}
	if d.Totals.Findings > 0 {
		if d.Findings, err = s.store.Findings(0, dashboardFindings); err != nil {
			return fmt.Errorf("integrity findings: %w", err)
		}
	}
	switch d.Config, err = s.store.Config(); {
	case errors.Is(err, index.ErrNotFound):
		d.Config = nil
	case err != nil:
		return fmt.Errorf("channel configuration: %w", err)
	}
	if d.PerMinute, err = s.store.Minutes(now.Add(-minuteWindow+time.Minute), now); err != nil {
		return fmt.Errorf("statistics per minute: %w", err)
	}
	d.Rate, d.Minutes = newRates(d.PerMinute), newMinuteChart(d.PerMinute)
	hours, err := s.store.Hours(now.Add(-chartWindow+time.Hour), now)
	if err != nil {
		return fmt.Errorf("hourly statistics: %w", err)
	}
	d.Chart = newHourChart(hours)
	d.Invalid = invalidByCode(d.Totals)
	d.NMIs, d.All = nmiRows(d.Totals, d.Config)
	if d.Software, err = s.store.Software(now); err != nil {
		return fmt.Errorf("software of the meters: %w", err)
	}
	if active := d.All.Active(); active > d.Software.Typed {
		d.Untyped = active - d.Software.Typed
	}
	if s.health != nil {
		d.HasHealth, d.Nodes = true, s.health.Nodes()
	}
	s.render(w, r, http.StatusOK, "dashboard", view{Title: "Dashboard", Nav: "dashboard", Live: true, Body: d})
	return nil
}

// nmiRows lists every NMI that is a member or has meters, by MSP ID, and
// the consortium's total.
func nmiRows(t index.Totals, cfg *channel.Config) ([]nmiRow, *index.Count) {
	names := map[string]string{}
	if cfg != nil {
		for _, m := range cfg.Members {
			names[m.MSPID] = m.Name
			if t.ByNMI[m.MSPID] == nil {
				t.ByNMI[m.MSPID] = &index.Count{}
			}
		}
	}
	var rows []nmiRow
	all := &index.Count{}
	for msp, c := range t.ByNMI {
		_, member := names[msp]
		rows = append(rows, nmiRow{MSPID: msp, Name: names[msp], Count: c, Former: cfg != nil && !member})
		all.Registered += c.Registered
		all.Revoked += c.Revoked
	}
	slices.SortFunc(rows, func(a, b nmiRow) int { return cmp.Compare(a.MSPID, b.MSPID) })
	return rows, all
}
