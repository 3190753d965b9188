package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/idempotency"
	"github.com/inter-nmi/pki/registry-api/ledger"
)

// pendingRef is what the Idempotency-Key store keeps of one part of a
// request before its transaction is sent: the transaction (whose bytes the
// store keeps once, however many requests it carries) and where in it the
// request's items are.
type pendingRef struct {
	Role api.Role `json:"role"`
	TxID string   `json:"txId"`
	// Item is the request's item in a grouped transaction of single
	// deliveries; -1 when the transaction is the request's alone.
	Item int `json:"item"`
	// Sent are the indexes of the request's items the transaction carries,
	// when it carries only some (the others were answered from the index).
	Sent []int `json:"sent,omitempty"`
}

// submit sends the one transaction a write request makes and answers with
// its outcome. See submitAll.
func (s *Server) submit(c *gin.Context, role api.Role, tx string, args ...string) (*ledger.Receipt, error) {
	receipts, err := s.submitAll(c, role, tx, [][]string{args})
	var part *ledger.PartError
	if errors.As(err, &part) {
		err = part.Err
	}
	if err != nil {
		return nil, err
	}
	return receipts[0], nil
}

// submitAll sends a write request's transactions (one per part). With an
// Idempotency-Key, each is recorded before it is sent; a retry of the
// request then learns the outcome of those (sending the same transaction
// again if it never arrived) and sends no other, unless one was committed as
// invalid, which wrote nothing.
func (s *Server) submitAll(c *gin.Context, role api.Role, tx string, parts [][]string) ([]*ledger.Receipt, error) {
	return s.submitParts(c, role, tx, parts, pendingRef{Item: -1})
}

// submitParts is submitAll, with what the record of each part says besides
// its transaction.
func (s *Server) submitParts(c *gin.Context, role api.Role, tx string, parts [][]string, ref pendingRef) ([]*ledger.Receipt, error) {
	ctx := c.Request.Context()
	claim := claimOf(c)
	if claim == nil {
		return s.submitLedger(ctx, role, tx, parts, nil)
	}
	if len(claim.pending) == 0 {
		return s.submitLedger(ctx, role, tx, parts, claim.record(0, ref))
	}
	// A retry: settle what the earlier attempt sent, part by part; send
	// anew only parts never sent or committed as invalid.
	receipts := make([]*ledger.Receipt, len(parts))
	var redo []int
	for i := range parts {
		if _, ok := claim.pending[i]; !ok {
			redo = append(redo, i)
			continue
		}
		r, _, err := s.settle(c, tx, claim, i)
		var invalid *ledger.InvalidError
		switch {
		case err == nil:
			receipts[i] = r
		case errors.As(err, &invalid):
			s.log.Info("a retried request's transaction was committed as invalid; sending it anew",
				"tx", tx, "txId", invalid.TxID, "code", invalid.Code.String())
			redo = append(redo, i)
		default:
			return receipts, &ledger.PartError{Part: i, Err: err, Committed: true}
		}
	}
	for _, i := range redo {
		r, err := s.submitLedger(ctx, role, tx, [][]string{parts[i]}, claim.record(i, ref))
		if err != nil {
			return receipts, &ledger.PartError{Part: i, Err: err, Committed: true}
		}
		receipts[i] = r[0]
	}
	return receipts, nil
}

// settle learns the outcome of a transaction a previous attempt of the
// request recorded for part, and returns the record too.
func (s *Server) settle(c *gin.Context, tx string, claim *idempotencyClaim, part int) (*ledger.Receipt, pendingRef, error) {
	var ref pendingRef
	if err := json.Unmarshal(claim.pending[part], &ref); err != nil {
		return nil, ref, fmt.Errorf("recorded transaction of part %d: %w", part, err)
	}
	b, err := claim.store.Transaction(ref.TxID)
	if err != nil {
		return nil, ref, err
	}
	r, err := s.opts.Ledger.Settle(c.Request.Context(), tx, ledger.Pending{Role: ref.Role, TxID: ref.TxID, Transaction: b})
	return r, ref, err
}

// submitLedger sends transactions through the ledger and notes the
// highest block they were committed in.
func (s *Server) submitLedger(ctx context.Context, role api.Role, tx string, parts [][]string, record ledger.Recorder) ([]*ledger.Receipt, error) {
	if tx == wire.TxSubmitPacked {
		record = s.vetReplays(ctx, record)
	}
	receipts, err := s.opts.Ledger.SubmitAll(ctx, role, tx, parts, record)
	for _, r := range receipts {
		for r != nil && !r.ReadOnly {
			last := s.committed.Load()
			if r.Block <= last || s.committed.CompareAndSwap(last, r.Block) {
				break
			}
		}
	}
	return receipts, err
}

// indexBehindError refuses to send readings the chaincode calls replays
// while the registry's index cannot tell whether they are re-deliveries of
// readings accepted before.
type indexBehindError struct {
	read, height uint64
	sent         bool // the transaction was sent already (and committed)
}

func (e *indexBehindError) Error() string {
	msg := fmt.Sprintf("the registry's index of the blocks has read %d of the peer's %d blocks, so it cannot tell yet "+
		"whether a reading the chaincode calls a replay is one it accepted before", e.read, e.height)
	if !e.sent {
		msg += "; nothing was sent"
	}
	return msg
}

// indexReadsPeer waits, at most IndexWait, until the index has read every
// block the peer holds; an *indexBehindError if it has not by then.
func (s *Server) indexReadsPeer(ctx context.Context, sent bool) error {
	height, err := s.opts.Ledger.Height(ctx)
	if err != nil || height == 0 {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, s.opts.IndexWait)
	defer cancel()
	if err := s.opts.Readings.Await(wctx, height-1); err != nil {
		return &indexBehindError{read: s.opts.Readings.Next(), height: height, sent: sent}
	}
	return nil
}
func (e *indexBehindError) Unwrap() error { return ledger.ErrUnavailable }

// vetReplays checks a readings transaction, endorsed and about to be sent,
// before record: if the chaincode refuses an item as a replay while the
// index has not read every block of the peer (rebuilding after its loss,
// or just restarted), nothing is sent. The index would have recognised a
// re-delivery of an accepted reading before it was endorsed; sending it
// would put a REPLAY refusal of an accepted reading on the ledger, for a
// request that is then answered 503.
func (s *Server) vetReplays(ctx context.Context, record ledger.Recorder) ledger.Recorder {
	return func(part int, p ledger.Pending) error {
		var o wire.Outcome
		if err := json.Unmarshal(p.Result, &o); err != nil {
			return fmt.Errorf("decode the batch outcome at endorsement: %w", err)
		}
		if slices.ContainsFunc(o.Exceptions, func(e meter.ItemResult) bool { return e.Code == meter.CodeReplay }) {
			if err := s.indexReadsPeer(ctx, false); err != nil {
				return err
			}
		}
		if record == nil {
			return nil
		}
		return record(part, p)
	}
}

// indexCaughtUp waits, briefly, until the registry's index has read every
// block in which this registry's own transactions were committed: a
// re-delivery that arrives right after its acceptance is then recognised
// from the index, not left to the replay guard, which remembers only a
// meter's last few readings by their bytes.
func (s *Server) indexCaughtUp(ctx context.Context) {
	committed := s.committed.Load()
	if committed == 0 {
		return // nothing committed since the registry started (block 0 is the channel's genesis)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.IndexWait)
	defer cancel()
	if err := s.opts.Readings.Await(ctx, committed); err != nil {
		s.log.Warn("the index has not read this registry's last commits", "err", err)
	}
}

// claimOf is the request's claim on its Idempotency-Key, nil without one.
func claimOf(c *gin.Context) *idempotencyClaim {
	if v, ok := c.Get(keyIdempotency); ok {
		return v.(*idempotencyClaim)
	}
	return nil
}

// record stores a request's transaction under its key before it is sent;
// offset maps the part index of the call to the request's.
func (claim *idempotencyClaim) record(offset int, ref pendingRef) ledger.Recorder {
	return func(part int, p ledger.Pending) error {
		r := ref
		r.Role, r.TxID = p.Role, p.TxID
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return claim.store.Record([]idempotency.Entry{{Key: claim.key, Fingerprint: claim.fingerprint, Part: offset + part, Ref: b}},
			p.TxID, p.Transaction)
	}
}
