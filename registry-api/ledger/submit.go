package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	gatewaypb "github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset/kvrwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/network/pkg/gateway"
	"github.com/inter-nmi/pki/registry-api/api"
)

// A write is one transaction, and the registry answers with its outcome.
// Endorsing is safe to repeat: nothing has left the registry. Once the
// endorsed transaction is handed to the ordering service it may commit, so
// from then on the registry only asks about that transaction's ID (sending
// the same signed transaction again if the hand-over failed: a second copy
// of one ID is marked DUPLICATE_TXID and writes nothing). It endorses a new
// transaction only once the first is committed as invalid, which writes
// nothing. If it cannot learn the outcome in time it says so with the ID
// (OutcomeUnknownError) rather than guess.

// Pending is a transaction that may have reached the ordering service:
// enough to learn its outcome later and to answer as if it had been waited
// for, even from another process (the Idempotency-Key store keeps it).
type Pending struct {
	Role api.Role `json:"role"`
	TxID string   `json:"txId"`
	// Transaction is the endorsed transaction as fabric-gateway serializes
	// it, with the chaincode's result.
	Transaction []byte `json:"transaction"`
	// Result is the chaincode's answer at endorsement, what the
	// transaction will answer once committed (not stored).
	Result []byte `json:"-"`
}

// OutcomeUnknownError is a transaction that was handed to the ordering
// service, or may have been, whose outcome could not be learnt in time. It
// may still commit; ask about TxID (Status) or Settle it later.
type OutcomeUnknownError struct {
	TxID  string
	Cause error
}

func (e *OutcomeUnknownError) Error() string {
	return fmt.Sprintf("the outcome of transaction %s is not known yet: %v", e.TxID, e.Cause)
}

func (e *OutcomeUnknownError) Unwrap() error { return e.Cause }

// redo reports whether an invalidated transaction should be endorsed again:
// a concurrent transaction wrote what it read first (MVCC, phantom), or
// set the key-level policy it was checked against (a registration racing
// another of the same meter). Endorsing again reads the state now, and
// answers with the refusal that state calls for (METER_EXISTS, say).
func (e *InvalidError) redo() bool {
	switch e.Code {
	case peer.TxValidationCode_MVCC_READ_CONFLICT, peer.TxValidationCode_PHANTOM_READ_CONFLICT,
		peer.TxValidationCode_ENDORSEMENT_POLICY_FAILURE:
		return true
	}
	return false
}

// Recorder is called with each transaction (part: its index in SubmitAll)
// right before it is first handed to the ordering service, and again with
// its replacement if it is invalidated and endorsed anew. If it fails,
// nothing is sent. It may be nil.
type Recorder func(part int, p Pending) error

// Submit endorses a transaction, hands it to the ordering service and
// answers once it is committed as valid. A chaincode refusal at endorsement
// is returned as such (nothing was sent); a transaction whose answer needs
// no write (a repeated request) is answered from its endorsement, with
// Receipt.ReadOnly set, and never ordered.
func (f *Fabric) Submit(ctx context.Context, role api.Role, tx string, args []string, record Recorder) (*Receipt, error) {
	t, err := f.endorseRetrying(ctx, role, tx, args)
	if err != nil {
		return nil, err
	}
	return f.run(ctx, role, tx, args, 0, t, record)
}

// SubmitAll submits several transactions of one kind as a unit as far as the
// ledger allows: every one is endorsed first, and only if all endorsements
// succeed are they handed to the ordering service, so a refusal of any
// leaves the ledger untouched. A failure after that (rare: a concurrent
// write) is reported with the receipts of those that committed.
func (f *Fabric) SubmitAll(ctx context.Context, role api.Role, tx string, argsList [][]string, record Recorder) ([]*Receipt, error) {
	endorsed := make([]*client.Transaction, len(argsList))
	for i, args := range argsList {
		t, err := f.endorseRetrying(ctx, role, tx, args)
		if err != nil {
			return nil, &PartError{Part: i, Err: err}
		}
		endorsed[i] = t
	}
	receipts := make([]*Receipt, len(endorsed))
	errs := make([]error, len(endorsed))
	var wg sync.WaitGroup
	for i, t := range endorsed {
		wg.Go(func() { receipts[i], errs[i] = f.run(ctx, role, tx, argsList[i], i, t, record) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return receipts, &PartError{Part: i, Err: err, Committed: true}
		}
	}
	return receipts, nil
}

// run delivers an endorsed transaction and, while it is invalidated by
// concurrent writes, endorses and delivers it anew.
func (f *Fabric) run(ctx context.Context, role api.Role, tx string, args []string, part int, t *client.Transaction, record Recorder) (*Receipt, error) {
	policyRedone := false
	for attempt := 1; ; attempt++ {
		if ro, err := readOnly(t); err != nil {
			return nil, err
		} else if ro {
			f.metrics.commit.WithLabelValues(tx, "read-only").Observe(0)
			return &Receipt{Result: t.Result(), TxID: t.TransactionID(), ReadOnly: true}, nil
		}
		if record != nil {
			b, err := t.Bytes()
			if err != nil {
				return nil, err
			}
			if err := record(part, Pending{Role: role, TxID: t.TransactionID(), Transaction: b, Result: t.Result()}); err != nil {
				return nil, fmt.Errorf("record transaction %s before sending it: %w", t.TransactionID(), err)
			}
		}
		r, err := f.deliver(ctx, tx, t)
		var invalid *InvalidError
		if !errors.As(err, &invalid) || !invalid.redo() {
			return r, err
		}
		if attempt >= f.retry.attempts || (invalid.Code == peer.TxValidationCode_ENDORSEMENT_POLICY_FAILURE && policyRedone) {
			if invalid.Code == peer.TxValidationCode_ENDORSEMENT_POLICY_FAILURE {
				return nil, err
			}
			return nil, fmt.Errorf("%w: transaction %s: %s", ErrConflict, invalid.TxID, invalid.Code)
		}
		policyRedone = policyRedone || invalid.Code == peer.TxValidationCode_ENDORSEMENT_POLICY_FAILURE
		f.metrics.retries.WithLabelValues(tx, "invalidated").Inc()
		f.log.Info("transaction invalidated by a concurrent write; endorsing anew to read the state now",
			"tx", tx, "txId", invalid.TxID, "code", invalid.Code.String())
		if t, err = f.endorseRetrying(ctx, role, tx, args); err != nil {
			return nil, err
		}
	}
}

// endorseRetrying endorses until it succeeds, is refused, or the attempts
// or the context run out; nothing has been sent to the ordering service.
func (f *Fabric) endorseRetrying(ctx context.Context, role api.Role, tx string, args []string) (*client.Transaction, error) {
	var t *client.Transaction
	err := f.withRetry(ctx, tx, func() error {
		var err error
		t, err = f.endorse(ctx, role, tx, args)
		return err
	})
	return t, err
}

// deliver hands the endorsed transaction to the ordering service and waits
// for its commit status (gateway.Submit: a failed hand-over is repeated with
// the same transaction, after asking whether it commits, until one succeeds
// or the context ends).
func (f *Fabric) deliver(ctx context.Context, tx string, t *client.Transaction) (*Receipt, error) {
	start := time.Now()
	st, err := gateway.Submit(ctx, f.gateways[api.RoleAuditor], f.cfg.Channel, t, gateway.Backoff{Base: f.retry.base, Max: f.retry.max}, gateway.Hooks{
		Handed: func(took time.Duration, err error) {
			f.metrics.submit.WithLabelValues(tx, outcome(err)).Observe(took.Seconds())
		},
		Resending: func(_ int, err error) {
			f.metrics.retries.WithLabelValues(tx, "resend").Inc()
			f.log.Warn("handing the transaction to the ordering service failed; waiting for it, then sending the same transaction again",
				"tx", tx, "txId", t.TransactionID(), "err", firstLine(err.Error()))
		},
		Asking: func(int, error) { f.metrics.retries.WithLabelValues(tx, "commit status").Inc() },
	})
	var refused *gateway.RefusedError
	var unknown *gateway.UnknownError
	switch {
	case errors.As(err, &refused):
		return nil, refused
	case errors.As(err, &unknown):
		f.metrics.commit.WithLabelValues(tx, "unknown").Observe(time.Since(start).Seconds())
		return nil, &OutcomeUnknownError{TxID: unknown.TxID, Cause: unknown.Cause}
	case err != nil:
		return nil, err
	}
	f.metrics.commit.WithLabelValues(tx, st.Code.String()).Observe(time.Since(start).Seconds())
	if st.Code != peer.TxValidationCode_VALID {
		return nil, &InvalidError{TxID: t.TransactionID(), Code: st.Code}
	}
	return &Receipt{Result: t.Result(), TxID: t.TransactionID(), Block: st.BlockNumber}, nil
}

// Settle learns the outcome of a transaction recorded before it was sent
// (by a Recorder), as a retry of the same request after a lost answer or a
// restart must: committed, the answer is built from its recorded result; not
// committed yet, the same transaction is sent again and waited for.
func (f *Fabric) Settle(ctx context.Context, tx string, p Pending) (*Receipt, error) {
	gw, ok := f.gateways[p.Role]
	if !ok {
		return nil, fmt.Errorf("transaction %s: no identity for role %q", p.TxID, p.Role)
	}
	t, err := gw.NewTransaction(p.Transaction)
	if err != nil {
		return nil, fmt.Errorf("recorded transaction %s: %w", p.TxID, err)
	}
	if st, err := f.Status(ctx, p.TxID, time.Second); err == nil && st.Committed {
		if !st.Valid {
			return nil, &InvalidError{TxID: p.TxID, Code: st.code}
		}
		return &Receipt{Result: t.Result(), TxID: p.TxID, Block: st.Block}, nil
	}
	return f.deliver(ctx, tx, t)
}

// TxStatus is what the NMI's peer knows of a transaction ID.
type TxStatus struct {
	TxID      string
	Committed bool
	Valid     bool
	// Code is the validation code of a committed transaction.
	Code  string
	Block uint64
	code  peer.TxValidationCode
}

// Status asks the NMI's peer about a transaction, waiting at most wait for
// it to commit: Committed is false if it has not (it may never have reached
// the ordering service, or not yet).
func (f *Fabric) Status(ctx context.Context, txID string, wait time.Duration) (*TxStatus, error) {
	st, err := gateway.StatusOf(ctx, f.gateways[api.RoleAuditor], f.cfg.Channel, txID, wait)
	switch {
	case err != nil:
		return nil, classify(err)
	case st == nil:
		return &TxStatus{TxID: txID}, nil
	}
	return &TxStatus{TxID: txID, Committed: true, Valid: st.Code == peer.TxValidationCode_VALID, Code: st.Code.String(),
		Block: st.BlockNumber, code: st.Code}, nil
}

// readOnly reports whether an endorsed transaction writes nothing and emits
// no event: then ordering it would change nothing, and its endorsement by
// the policy's peers is the answer.
func readOnly(t *client.Transaction) (bool, error) {
	b, err := t.Bytes()
	if err != nil {
		return false, err
	}
	var prepared gatewaypb.PreparedTransaction
	if err := proto.Unmarshal(b, &prepared); err != nil {
		return false, fmt.Errorf("endorsed transaction: %w", err)
	}
	var payload common.Payload
	if err := proto.Unmarshal(prepared.GetEnvelope().GetPayload(), &payload); err != nil {
		return false, fmt.Errorf("endorsed transaction payload: %w", err)
	}
	var txn peer.Transaction
	if err := proto.Unmarshal(payload.GetData(), &txn); err != nil {
		return false, fmt.Errorf("endorsed transaction: %w", err)
	}
	for _, action := range txn.GetActions() {
		var cap peer.ChaincodeActionPayload
		if err := proto.Unmarshal(action.GetPayload(), &cap); err != nil {
			return false, fmt.Errorf("endorsed action: %w", err)
		}
		var prp peer.ProposalResponsePayload
		if err := proto.Unmarshal(cap.GetAction().GetProposalResponsePayload(), &prp); err != nil {
			return false, fmt.Errorf("endorsed response: %w", err)
		}
		var cca peer.ChaincodeAction
		if err := proto.Unmarshal(prp.GetExtension(), &cca); err != nil {
			return false, fmt.Errorf("endorsed chaincode action: %w", err)
		}
		if len(cca.GetEvents()) > 0 {
			var ev peer.ChaincodeEvent
			if err := proto.Unmarshal(cca.GetEvents(), &ev); err != nil || ev.GetEventName() != "" {
				return false, err
			}
		}
		var rws rwset.TxReadWriteSet
		if err := proto.Unmarshal(cca.GetResults(), &rws); err != nil {
			return false, fmt.Errorf("endorsed read-write set: %w", err)
		}
		for _, ns := range rws.GetNsRwset() {
			var kv kvrwset.KVRWSet
			if err := proto.Unmarshal(ns.GetRwset(), &kv); err != nil {
				return false, fmt.Errorf("endorsed read-write set of %s: %w", ns.GetNamespace(), err)
			}
			if len(kv.GetWrites()) > 0 || len(kv.GetMetadataWrites()) > 0 || len(ns.GetCollectionHashedRwset()) > 0 {
				return false, nil
			}
		}
	}
	return true, nil
}
