package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/inter-nmi/pki/explorer/index"
)

// blocksPerPage is the length of the block list.
const blocksPerPage = 50

type blocksPage struct {
	Height uint64
	Blocks []index.BlockSummary
	// Newest is set on the first page, which live updates refresh.
	Newest bool
	// Older and Newer continue the list (0: no such page); NewerFirst
	// means the newer page is the first.
	Older, Newer uint64
	NewerFirst   bool
}

func (s *Server) blocks(w http.ResponseWriter, r *http.Request) error {
	var before uint64
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return badRequest("before must be a block number above 0, not %q.", v)
		}
		before = n
	}
	height, err := s.store.Height()
	if err != nil {
		return fmt.Errorf("height: %w", err)
	}
	list, err := s.store.Blocks(before, blocksPerPage)
	if err != nil {
		return fmt.Errorf("blocks before %d: %w", before, err)
	}
	p := blocksPage{Height: height, Blocks: list, Newest: before == 0 || before >= height}
	if n := len(list); n > 0 {
		if last := list[n-1].Number; last > 0 {
			p.Older = last
		}
		if first := list[0].Number; first+1 < height {
			p.Newer = first + 1 + blocksPerPage
			p.NewerFirst = p.Newer >= height
		}
	}
	s.render(w, r, http.StatusOK, "blocks", view{Title: "Blocks", Nav: "blocks", Live: true, Body: p})
	return nil
}

type blockPage struct {
	B *index.BlockSummary
	// Previous is the number of the previous block, if there is one.
	Previous   uint64
	HasPrev    bool
	Height     uint64
	HasNext    bool
	NextNumber uint64
}

func (s *Server) block(w http.ResponseWriter, r *http.Request) error {
	n, err := strconv.ParseUint(r.PathValue("n"), 10, 64)
	if err != nil {
		return badRequest("%q is not a block number.", r.PathValue("n"))
	}
	b, err := s.store.Block(n)
	if errors.Is(err, index.ErrNotFound) {
		return notFound("Block %d is not in the index.", n)
	}
	if err != nil {
		return fmt.Errorf("block %d: %w", n, err)
	}
	height, err := s.store.Height()
	if err != nil {
		return fmt.Errorf("height: %w", err)
	}
	p := blockPage{B: b, HasPrev: n > 0, Height: height, HasNext: n+1 < height, NextNumber: n + 1}
	if n > 0 {
		p.Previous = n - 1
	}
	s.render(w, r, http.StatusOK, "block", view{Title: fmt.Sprintf("Block %d", n), Nav: "blocks", Body: p})
	return nil
}
