package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/network/pkg/chain"
)

// maxIDLen bounds the IDs a URL or a search may carry.
const maxIDLen = 256

type txPage struct {
	Tx     *index.TxDetail
	Args   []string
	Events []eventView
	Writes []writeView
	// ReadsCut and WritesCut say the index kept only the first entries.
	ReadsCut, WritesCut bool
}

type eventView struct {
	Name, Payload string
	Hex           bool
}

type writeView struct {
	Namespace, Key, Value string
	Hex, Delete           bool
}

func (s *Server) tx(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if id == "" || len(id) > maxIDLen {
		return badRequest("A transaction ID is 1 to %d characters.", maxIDLen)
	}
	t, err := s.store.Tx(id)
	if lower := strings.ToLower(id); errors.Is(err, index.ErrNotFound) && lower != id {
		t, err = s.store.Tx(lower) // Fabric's IDs are lowercase hex
	}
	if errors.Is(err, index.ErrNotFound) {
		return notFound("Transaction %s is not in the index.", id)
	}
	if err != nil {
		return fmt.Errorf("transaction %s: %w", id, err)
	}
	args := t.ArgsForDisplay()
	for _, cut := range t.ArgSizes {
		if cut.Index < len(args) {
			args[cut.Index] = chain.DisplayArg(t.Args[cut.Index], cut.Bytes)
		}
	}
	p := txPage{Tx: t, Args: args, ReadsCut: t.ReadCount > len(t.Reads), WritesCut: t.WriteCount > len(t.Writes)}
	for _, e := range t.Events {
		v := eventView{Name: e.Name}
		v.Payload, v.Hex = preview(e.Payload)
		p.Events = append(p.Events, v)
	}
	for _, wr := range t.Writes {
		v := writeView{Namespace: wr.Namespace, Key: wr.Key, Delete: wr.Delete}
		v.Value, v.Hex = preview(wr.Value)
		p.Writes = append(p.Writes, v)
	}
	s.render(w, r, http.StatusOK, "tx", view{Title: "Transaction " + short(t.ID), Body: p})
	return nil
}
