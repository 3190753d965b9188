package web

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// Paging of the refusals.
const (
	refusalsPerPage = 100
	// maxBlockRefusals bounds the refusals of one block a page shows when
	// that block alone fills the page.
	maxBlockRefusals = 10_000
)

var (
	codeRE = regexp.MustCompile(`^[A-Z0-9_]{1,64}$`)
	nmiRE  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

type refusalsPage struct {
	Filter refusalForm
	// Codes are the refusal codes, for the filter's list.
	Codes []meter.Code
	// Invalid counts the transactions the peers marked invalid, listed
	// apart (/invalid).
	Invalid uint64
	Rows    []index.Refusal
	// Older continues the list with the blocks below it (0: no more).
	Older     uint64
	OlderLink string
	// Cut says one block had more refusals than a page shows.
	Cut    bool
	NMIs   []string
	Before uint64
}

// refusalForm is the filter as the auditor typed it.
type refusalForm struct {
	Kind, NMI, Meter, Code, From, To string
}

func (s *Server) refusals(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	form := refusalForm{Kind: strings.TrimSpace(q.Get("kind")), NMI: strings.TrimSpace(q.Get("nmi")), Meter: strings.TrimSpace(q.Get("meter")),
		Code: strings.TrimSpace(q.Get("code")), From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to"))}
	f, err := parseRefusalFilter(form, q.Get("before"))
	if err != nil {
		return err
	}
	rows, cut, older, err := s.refusalPage(f)
	if err != nil {
		return err
	}
	p := refusalsPage{Filter: form, Rows: rows, Cut: cut, Older: older, Before: f.Before, Codes: meter.Codes}
	totals, err := s.store.Totals()
	if err != nil {
		return fmt.Errorf("totals: %w", err)
	}
	p.Invalid = totals.Invalid
	if older > 0 {
		next := url.Values{}
		for k, v := range map[string]string{"kind": form.Kind, "nmi": form.NMI, "meter": form.Meter, "code": form.Code, "from": form.From, "to": form.To} {
			if v != "" {
				next.Set(k, v)
			}
		}
		next.Set("before", strconv.FormatUint(older, 10))
		p.OlderLink = "/refusals?" + next.Encode()
	}
	if cfg, err := s.store.Config(); err == nil {
		for _, m := range cfg.Members {
			p.NMIs = append(p.NMIs, m.MSPID)
		}
	}
	s.render(w, r, http.StatusOK, "refusals", view{Title: "Refusals", Nav: "refusals", Body: p})
	return nil
}

func parseRefusalFilter(form refusalForm, before string) (index.RefusalFilter, error) {
	f := index.RefusalFilter{Kind: form.Kind, NMI: form.NMI, MeterID: form.Meter, Code: form.Code, Limit: refusalsPerPage}
	if f.Kind != "" && f.Kind != index.RefusedMeasurement && f.Kind != index.RefusedUpdate {
		return f, badRequest("%q is not a kind of refusal: %s or %s.", f.Kind, index.RefusedMeasurement, index.RefusedUpdate)
	}
	if f.NMI != "" && !nmiRE.MatchString(f.NMI) {
		return f, badRequest("%q is not an NMI's MSP ID.", f.NMI)
	}
	if f.MeterID != "" && meter.ValidateMeterID(f.MeterID) != nil {
		return f, badRequest("%q is not a meter ID.", f.MeterID)
	}
	if f.Code != "" && !codeRE.MatchString(f.Code) {
		return f, badRequest("%q is not a refusal code: codes are capitals and underscores, like REPLAY or BAD_SIGNATURE.", f.Code)
	}
	var err error
	if f.From, err = parseTime(form.From, false); err != nil {
		return f, err
	}
	if f.To, err = parseTime(form.To, true); err != nil {
		return f, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return f, badRequest("The period ends (%s) before it starts (%s).", form.To, form.From)
	}
	if before != "" {
		n, err := strconv.ParseUint(before, 10, 64)
		if err != nil || n == 0 {
			return f, badRequest("before must be a block number above 0, not %q.", before)
		}
		f.Before = n
	}
	return f, nil
}

// parseTime reads RFC 3339 or a date; a date that ends a period means the
// end of that day (UTC).
func parseTime(v string, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02T15:04", v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, badRequest("%q is neither a date (2026-11-01) nor an RFC 3339 time (2026-11-01T12:00:00Z).", v)
	}
	if end {
		t = t.Add(24*time.Hour - time.Nanosecond)
	}
	return t, nil
}

// refusalPage returns a page of refusals that ends at a block boundary, so
// that the next page (the blocks below older) misses none: the index pages
// by block, and a page full of rows may have cut the last block short.
func (s *Server) refusalPage(f index.RefusalFilter) (rows []index.Refusal, cut bool, older uint64, err error) {
	rows, err = s.store.Refusals(f)
	if err != nil {
		return nil, false, 0, fmt.Errorf("refusals: %w", err)
	}
	if len(rows) < f.Limit {
		return rows, false, 0, nil // the end of the list
	}
	last := rows[len(rows)-1].Block
	if rows[0].Block != last {
		// Drop the last block's rows; the next page starts with that block.
		for len(rows) > 0 && rows[len(rows)-1].Block == last {
			rows = rows[:len(rows)-1]
		}
		return rows, false, last + 1, nil
	}
	// One block fills the page: show all of it (up to a bound).
	f.Before, f.Limit = last+1, maxBlockRefusals+1
	all, err := s.store.Refusals(f)
	if err != nil {
		return nil, false, 0, fmt.Errorf("refusals of block %d: %w", last, err)
	}
	rows = rows[:0]
	for _, r := range all {
		if r.Block != last {
			break
		}
		rows = append(rows, r)
	}
	if len(rows) > maxBlockRefusals {
		rows, cut = rows[:maxBlockRefusals], true
	}
	if last > 0 {
		older = last
	}
	return rows, cut, older, nil
}
