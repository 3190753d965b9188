package server

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gin-gonic/gin"

	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/ledger"
)

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
	ctx := c.Request.Context()
	v, ok := c.Get(keyIdempotency)
	if !ok {
		return s.opts.Ledger.SubmitAll(ctx, role, tx, parts, nil)
	}
	claim := v.(*idempotencyClaim)
	if len(claim.pending) == 0 {
		return s.opts.Ledger.SubmitAll(ctx, role, tx, parts, claim.record(0))
	}
	// A retry: settle what the earlier attempt sent, part by part; send
	// anew only parts never sent or committed as invalid.
	receipts := make([]*ledger.Receipt, len(parts))
	var redo []int
	for i := range parts {
		recorded, ok := claim.pending[i]
		if !ok {
			redo = append(redo, i)
			continue
		}
		var p ledger.Pending
		if err := json.Unmarshal(recorded, &p); err != nil {
			return nil, fmt.Errorf("recorded transaction of part %d: %w", i, err)
		}
		r, err := s.opts.Ledger.Settle(ctx, tx, p)
		var invalid *ledger.InvalidError
		switch {
		case err == nil:
			receipts[i] = r
		case errors.As(err, &invalid):
			s.log.Info("a retried request's transaction was committed as invalid; sending it anew",
				"tx", tx, "txId", p.TxID, "code", invalid.Code.String())
			redo = append(redo, i)
		default:
			return receipts, &ledger.PartError{Part: i, Err: err, Committed: true}
		}
	}
	for _, i := range redo {
		r, err := s.opts.Ledger.SubmitAll(ctx, role, tx, [][]string{parts[i]}, claim.record(i))
		if err != nil {
			return receipts, &ledger.PartError{Part: i, Err: err, Committed: true}
		}
		receipts[i] = r[0]
	}
	return receipts, nil
}

// record stores a request's transaction under its key before it is sent;
// offset maps the part index of the call to the request's.
func (claim *idempotencyClaim) record(offset int) ledger.Recorder {
	return func(part int, p ledger.Pending) error {
		b, err := json.Marshal(p)
		if err != nil {
			return err
		}
		return claim.store.Record(claim.key, claim.fingerprint, offset+part, b)
	}
}
