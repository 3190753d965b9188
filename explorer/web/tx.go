package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/network/pkg/chain"
)

// maxIDLen bounds the IDs a URL or a search may carry.
const maxIDLen = 256

// What a transaction's page shows of large sets and values: a
// concentrator batch reads and writes a key or two per meter, and carries
// megabytes of arguments.
const (
	maxSetEntries   = 50
	maxValueBytes   = 160
	maxPayloadBytes = 4096
	// A batch the chaincode refused whole has a refusal per reading.
	maxRefusalsShown = 1000
)

// evidenceTimeout bounds the reads from the peer one page waits for.
const evidenceTimeout = 10 * time.Second

type txPage struct {
	Ref *index.TxRef
	// Tx is the transaction as its block holds it; when it could not be
	// read, only what the index keeps of it, and Unread says why.
	Tx     *chain.Tx
	Unread *unread
	Args   []string
	Events []eventView
	Reads  []chain.Read
	Writes []writeView
	// ReadCount and WriteCount are the full sizes of the sets, of which
	// the page shows the first maxSetEntries.
	ReadCount, WriteCount int
	// MaxValue is the length values are cut to.
	MaxValue int
	// Invalid is the transaction as an invalid one, with the transaction
	// that carried its request, if the peers marked it invalid; Carried
	// are the invalid transactions whose request it carried.
	Invalid *index.InvalidTx
	Carried []index.InvalidTx
	// Refusals are its refused readings and update statements (the
	// first maxRefusalsShown of RefusalCount), with the chaincode's
	// reasons in full.
	Refusals     []index.Refusal
	RefusalCount int
}

type eventView struct {
	Name, Payload string
	Hex           bool
}

type writeView struct {
	Namespace, Key, Value string
	Hex, Delete           bool
}

// unread is why what the index does not keep could not be read from the
// peer. Mismatch is an integrity alarm: the peer served something else
// than the block the explorer verified.
type unread struct {
	Mismatch bool
	Reason   string
}

// readFailed logs why the evidence of a page could not be read and says it
// for the page.
func (s *Server) readFailed(r *http.Request, what string, err error) *unread {
	if errors.Is(err, index.ErrMismatch) {
		s.log.Error("the peer's copy differs from the block the explorer verified", "path", r.URL.Path, "what", what, "err", err)
		return &unread{Mismatch: true, Reason: err.Error()}
	}
	s.log.Warn("evidence not read from the peer", "path", r.URL.Path, "what", what, "err", err)
	return &unread{Reason: "the explorer's peer did not answer: " + err.Error()}
}

func (s *Server) tx(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if id == "" || len(id) > maxIDLen {
		return badRequest("A transaction ID is 1 to %d characters.", maxIDLen)
	}
	ref, err := s.store.Tx(id)
	if lower := strings.ToLower(id); errors.Is(err, index.ErrNotFound) && lower != id {
		ref, err = s.store.Tx(lower) // Fabric's IDs are lowercase hex
	}
	if errors.Is(err, index.ErrNotFound) {
		return notFound("Transaction %s is not in the index.", id)
	}
	if err != nil {
		return fmt.Errorf("transaction %s: %w", id, err)
	}
	p := txPage{Ref: ref, MaxValue: maxValueBytes}
	if p.Invalid, p.Carried, err = s.store.Carried(ref.Block, ref.Index); err != nil {
		return fmt.Errorf("transaction %s: %w", id, err)
	}
	if p.Refusals, err = s.store.RefusalsOf(ref.Block, ref.Index); err != nil {
		return fmt.Errorf("refusals of transaction %s: %w", id, err)
	}
	p.RefusalCount = len(p.Refusals)
	p.Refusals = p.Refusals[:min(len(p.Refusals), maxRefusalsShown)]
	if s.evidence == nil {
		p.Unread = &unread{Reason: "this explorer has no connection to a peer"}
	} else {
		ctx, cancel := context.WithTimeout(r.Context(), evidenceTimeout)
		defer cancel()
		if p.Tx, err = s.evidence.Tx(ctx, ref.Block, ref.Index); err != nil {
			p.Unread = s.readFailed(r, "transaction "+ref.ID, err)
		}
	}
	if p.Tx == nil {
		p.Tx = &chain.Tx{ID: ref.ID, Index: ref.Index, Code: ref.Code, Function: ref.Function, CreatorMSP: ref.CreatorMSP}
	}
	t := p.Tx
	p.Args = t.ArgsForDisplay()
	p.ReadCount, p.WriteCount = len(t.Reads), len(t.Writes)
	p.Reads = t.Reads[:min(len(t.Reads), maxSetEntries)]
	for _, e := range t.Events {
		v := eventView{Name: e.Name}
		v.Payload, v.Hex = preview(cut(e.Payload, maxPayloadBytes))
		p.Events = append(p.Events, v)
	}
	for _, wr := range t.Writes[:min(len(t.Writes), maxSetEntries)] {
		v := writeView{Namespace: wr.Namespace, Key: wr.Key, Delete: wr.Delete}
		v.Value, v.Hex = preview(cut(wr.Value, maxValueBytes))
		p.Writes = append(p.Writes, v)
	}
	s.render(w, r, http.StatusOK, "tx", view{Title: "Transaction " + short(ref.ID), Body: p})
	return nil
}

func cut(b []byte, n int) []byte { return b[:min(len(b), n)] }
