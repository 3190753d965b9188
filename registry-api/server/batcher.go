package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/idempotency"
	"github.com/inter-nmi/pki/registry-api/ledger"
)

// Group commit: single deliveries that arrive within a short window go to
// the ledger together, as one batch transaction, and each request is
// answered with its own item's outcome once that transaction is committed.
// The ledger's cost is per transaction and per meter far more than per
// measurement, so 64 meters delivering at once cost about one transaction,
// not 64. A refused single delivery is then an item the transaction's
// outcome lists as refused, with its code and reason: evidence in the block,
// like a refused item of a concentrator's batch.

// batcher collects single deliveries. A group is sent as soon as one of
// a few transaction slots is free; while every slot is busy, deliveries
// gather into the next group. An idle registry so sends a delivery at once,
// and a busy one sends few, large transactions: the ledger's cost is per
// transaction, so at any rate the groups are as large as the load allows
// and no larger than the wait for a slot.
type batcher struct {
	s      *Server
	in     chan *single
	slots  chan struct{}
	window time.Duration
	// gathered, if set, is told the size of the group being gathered each
	// time it grows (for tests).
	gathered func(n int)
}

// single is one delivery waiting for its group's outcome.
type single struct {
	sm    meter.SignedMeasurement
	claim *idempotencyClaim
	done  chan singleResult
}

type singleResult struct {
	item    meter.ItemResult
	receipt *ledger.Receipt
	err     error
}

func newBatcher(s *Server, inFlight int, window time.Duration) *batcher {
	return &batcher{s: s, in: make(chan *single), slots: make(chan struct{}, inFlight), window: window}
}

// run groups deliveries until ctx ends.
func (b *batcher) run(ctx context.Context) {
	for {
		var group []*single
		select {
		case <-ctx.Done():
			return
		case first := <-b.in:
			group = append(group, first)
		}
		// Gather for at least the window, then until a slot is free.
		window := time.After(b.window)
		slots := chan struct{}(nil)
	gather:
		for len(group) < meter.MaxBatch {
			select {
			case sg := <-b.in:
				group = append(group, sg)
				if b.gathered != nil {
					b.gathered(len(group))
				}
			case <-window:
				slots = b.slots
			case slots <- struct{}{}:
				break gather
			}
		}
		if len(group) == meter.MaxBatch {
			b.slots <- struct{}{}
		}
		go func() {
			defer func() { <-b.slots }()
			b.send(ctx, group)
		}()
	}
}

// deliver joins a group and waits for its outcome.
func (b *batcher) deliver(ctx context.Context, sm meter.SignedMeasurement, claim *idempotencyClaim) (meter.ItemResult, *ledger.Receipt, error) {
	sg := &single{sm: sm, claim: claim, done: make(chan singleResult, 1)}
	select {
	case b.in <- sg:
	case <-ctx.Done():
		return meter.ItemResult{}, nil, ctx.Err()
	}
	r := <-sg.done
	return r.item, r.receipt, r.err
}

// send submits a group as one packed batch and answers each member.
func (b *batcher) send(ctx context.Context, group []*single) {
	items := make([]meter.SignedMeasurement, len(group))
	for i, sg := range group {
		items[i] = sg.sm
	}
	answer := func(r []singleResult) {
		for i, sg := range group {
			sg.done <- r[i]
		}
	}
	fail := func(err error) {
		r := make([]singleResult, len(group))
		for i := range r {
			r[i].err = err
		}
		answer(r)
	}
	packed, err := wire.Pack(items)
	if err != nil {
		fail(err)
		return
	}
	// The group's work ends before its members' requests do, so that each
	// hears the outcome, even one not known yet, with the transaction's ID.
	ctx, cancel := context.WithTimeout(ctx, max(b.s.opts.WriteTimeout-2*time.Second, time.Second))
	defer cancel()
	meters := metersOf(items)
	if err := b.s.locks.lock(ctx, meters); err != nil {
		fail(fmt.Errorf("%w: another transaction of the same meters is still in flight: %w", ledger.ErrUnavailable, err))
		return
	}
	receipts, err := b.s.submitLedger(ctx, api.RoleIngest, wire.TxSubmitPacked, [][]string{{string(packed)}}, b.record(group))
	b.s.locks.unlock(meters)
	var part *ledger.PartError
	if errors.As(err, &part) {
		err = part.Err
	}
	if err != nil && len(group) > 1 && wroteNothing(err) {
		// The transaction failed as a whole and wrote nothing. The chaincode
		// judges every item on its own, so that happens only when the
		// registry would not send it (a replay while its index is behind);
		// one member's bytes must not decide the others' answers: each is
		// sent on its own before anyone hears a refusal.
		b.s.log.Warn("a group transaction failed as a whole; sending its members one by one", "members", len(group), "err", err)
		b.alone(ctx, group)
		return
	}
	if err != nil {
		fail(err)
		return
	}
	results, err := expand(receipts[0], items)
	if err != nil {
		fail(err)
		return
	}
	r := make([]singleResult, len(group))
	for i := range group {
		r[i] = singleResult{item: results[i], receipt: receipts[0]}
	}
	answer(r)
}

// metersOf lists the meters of items.
func metersOf(items []meter.SignedMeasurement) []string {
	ids := make([]string, len(items))
	for i, sm := range items {
		ids[i] = sm.MeterID
	}
	return ids
}

// wroteNothing tells a failure after which nothing of the transaction can
// be on the ledger: a refusal at endorsement, a commit as invalid, or the
// registry's own refusal to send it (vetReplays).
// Outcomes not known (a timeout after the transaction was sent) are not:
// sending the items again could write them twice.
func wroteNothing(err error) bool {
	var invalid *ledger.InvalidError
	var behind *indexBehindError
	return meter.CodeOf(err) != "" || errors.As(err, &invalid) || errors.As(err, &behind)
}

// alone sends each member of a failed group as a group of its own, a few
// at a time.
func (b *batcher) alone(ctx context.Context, group []*single) {
	limit := make(chan struct{}, cap(b.slots))
	var wg sync.WaitGroup
	for _, sg := range group {
		limit <- struct{}{}
		wg.Go(func() {
			defer func() { <-limit }()
			b.send(ctx, []*single{sg})
		})
	}
	wg.Wait()
}

// record notes the group's transaction under the Idempotency-Key of every
// member that has one, in one write, before it is sent.
func (b *batcher) record(group []*single) ledger.Recorder {
	return func(_ int, p ledger.Pending) error {
		var entries []idempotency.Entry
		var store *idempotency.Store
		for i, sg := range group {
			if sg.claim == nil {
				continue
			}
			ref, err := json.Marshal(pendingRef{Role: p.Role, TxID: p.TxID, Item: i})
			if err != nil {
				return err
			}
			store = sg.claim.store
			entries = append(entries, idempotency.Entry{Key: sg.claim.key, Fingerprint: sg.claim.fingerprint, Part: 0, Ref: ref})
		}
		if store == nil {
			return nil
		}
		return store.Record(entries, p.TxID, p.Transaction)
	}
}

// expand reads a batch transaction's outcome for each of its items.
func expand(r *ledger.Receipt, items []meter.SignedMeasurement) ([]meter.ItemResult, error) {
	var o wire.Outcome
	if err := json.Unmarshal(r.Result, &o); err != nil {
		return nil, fmt.Errorf("decode the batch outcome: %w", err)
	}
	return o.Expand(items)
}
