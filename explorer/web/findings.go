package web

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/inter-nmi/pki/explorer/index"
)

// findingsPerPage is the length of the findings list.
const findingsPerPage = 100

type findingsPage struct {
	Total uint64
	Rows  []index.Finding
	// Before is the block the list starts below (0: the newest); Older
	// continues it (0: no more).
	Before, Older uint64
	// Cut says one block had more findings than a page shows.
	Cut bool
}

// findings lists the integrity findings: writes of valid transactions the
// index did not apply, and measurement transactions it could not read.
func (s *Server) findings(w http.ResponseWriter, r *http.Request) error {
	var before uint64
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return badRequest("before must be a block number above 0, not %q.", v)
		}
		before = n
	}
	totals, err := s.store.Totals()
	if err != nil {
		return fmt.Errorf("totals: %w", err)
	}
	// One more than a page tells whether there are older ones.
	rows, err := s.store.Findings(before, findingsPerPage+1)
	if err != nil {
		return fmt.Errorf("integrity findings: %w", err)
	}
	p := findingsPage{Total: totals.Findings, Rows: rows, Before: before}
	if len(rows) > findingsPerPage {
		// The next page starts at a block boundary, so no block's findings
		// are split; a block with more findings than a page is cut.
		p.Rows = rows[:findingsPerPage]
		last := p.Rows[findingsPerPage-1].Block
		switch {
		case rows[findingsPerPage].Block != last:
			p.Older = last
		case p.Rows[0].Block == last:
			p.Cut, p.Older = true, last
		default:
			for len(p.Rows) > 0 && p.Rows[len(p.Rows)-1].Block == last {
				p.Rows = p.Rows[:len(p.Rows)-1]
			}
			p.Older = last + 1
		}
	}
	s.render(w, r, http.StatusOK, "findings", view{Title: "Integrity findings", Nav: "findings", Body: p})
	return nil
}
