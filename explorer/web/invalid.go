package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/inter-nmi/pki/explorer/index"
)

// Paging of the invalid transactions, as of the refusals.
const invalidPerPage = 100

type invalidPage struct {
	Filter invalidForm
	Rows   []index.InvalidTx
	// Codes are the validation codes seen, the most frequent first.
	Codes     []codeCount
	Totals    index.Totals
	Before    uint64
	OlderLink string
	Cut       bool
}

// invalidForm is the filter as the auditor typed it.
type invalidForm struct {
	NMI, Code string
}

// invalid lists the transactions the peers marked invalid: operational
// events, not refusals. The peers kept nothing of them; most were
// invalidated by a concurrent write and their request carried by a later
// transaction, which each row links to.
func (s *Server) invalid(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	form := invalidForm{NMI: strings.TrimSpace(q.Get("nmi")), Code: strings.TrimSpace(q.Get("code"))}
	f := index.InvalidFilter{NMI: form.NMI, Code: form.Code, Limit: invalidPerPage}
	if f.NMI != "" && !nmiRE.MatchString(f.NMI) {
		return badRequest("%q is not an NMI's MSP ID.", f.NMI)
	}
	if f.Code != "" && !codeRE.MatchString(f.Code) {
		return badRequest("%q is not a validation code: codes are capitals and underscores, like MVCC_READ_CONFLICT.", f.Code)
	}
	if before := q.Get("before"); before != "" {
		n, err := strconv.ParseUint(before, 10, 64)
		if err != nil || n == 0 {
			return badRequest("before must be a block number above 0, not %q.", before)
		}
		f.Before = n
	}
	p := invalidPage{Filter: form, Before: f.Before}
	var err error
	if p.Totals, err = s.store.Totals(); err != nil {
		return fmt.Errorf("totals: %w", err)
	}
	p.Codes = invalidByCode(p.Totals)
	rows, err := s.store.InvalidTxs(f)
	if err != nil {
		return fmt.Errorf("invalid transactions: %w", err)
	}
	var older uint64
	p.Rows, p.Cut, older, err = s.invalidBlockBoundary(f, rows)
	if err != nil {
		return err
	}
	if older > 0 {
		next := url.Values{}
		if form.NMI != "" {
			next.Set("nmi", form.NMI)
		}
		if form.Code != "" {
			next.Set("code", form.Code)
		}
		next.Set("before", strconv.FormatUint(older, 10))
		p.OlderLink = "/invalid?" + next.Encode()
	}
	s.render(w, r, http.StatusOK, "invalid", view{Title: "Invalid transactions", Nav: "invalid", Body: p})
	return nil
}

// invalidBlockBoundary ends a full page at a block boundary, as
// refusalPage does, so that the next page (the blocks below older) misses
// no transaction.
func (s *Server) invalidBlockBoundary(f index.InvalidFilter, rows []index.InvalidTx) (out []index.InvalidTx, cut bool, older uint64, err error) {
	if len(rows) < f.Limit {
		return rows, false, 0, nil
	}
	last := rows[len(rows)-1].Block
	if rows[0].Block != last {
		for len(rows) > 0 && rows[len(rows)-1].Block == last {
			rows = rows[:len(rows)-1]
		}
		return rows, false, last + 1, nil
	}
	f.Before, f.Limit = last+1, maxBlockRefusals+1
	all, err := s.store.InvalidTxs(f)
	if err != nil {
		return nil, false, 0, fmt.Errorf("invalid transactions of block %d: %w", last, err)
	}
	for _, r := range all {
		if r.Block != last {
			break
		}
		out = append(out, r)
	}
	if len(out) > maxBlockRefusals {
		out, cut = out[:maxBlockRefusals], true
	}
	if last > 0 {
		older = last
	}
	return out, cut, older, nil
}
