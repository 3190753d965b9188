package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/inter-nmi/pki/explorer/index"
)

type searchPage struct {
	Query   string
	Message string
}

// search sends the auditor to the block, transaction, meter or meter type
// the query names.
func (s *Server) search(w http.ResponseWriter, r *http.Request) error {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	v := view{Title: "Search", Query: q}
	if q == "" {
		v.Body = searchPage{}
		s.render(w, r, http.StatusOK, "search", v)
		return nil
	}
	if len(q) > maxIDLen {
		return badRequest("A search is at most %d characters: a block number or hash, a transaction ID or a meter ID.", maxIDLen)
	}
	hit, err := s.store.Search(q)
	if errors.Is(err, index.ErrNotFound) {
		v.Body = searchPage{Query: q, Message: "Nothing in the index matches “" + q + "”: enter a block number or header hash, a transaction ID, a meter ID or a meter type ID."}
		s.render(w, r, http.StatusNotFound, "search", v)
		return nil
	}
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	var to string
	switch hit.Kind {
	case "block":
		to = "/blocks/" + hit.ID
	case "tx":
		to = "/tx/" + url.PathEscape(hit.ID)
	case "meter":
		to = "/meters/" + url.PathEscape(hit.ID)
	case "type":
		to = "/types/" + url.PathEscape(hit.ID)
	default:
		return fmt.Errorf("search %q: unknown kind of hit %q", q, hit.Kind)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}
