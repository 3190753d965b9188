package gateway

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Hooks observe a hand-over; each may be nil.
type Hooks struct {
	// Handed is told how long each attempt to hand the transaction to the
	// ordering service took and how it ended.
	Handed func(took time.Duration, err error)
	// Resending is told of a failed hand-over before the transaction is
	// sent again.
	Resending func(attempt int, err error)
	// Asking is told of a failed commit status request before it is made
	// again.
	Asking func(attempt int, err error)
}

// Backoff is the pause between commit status requests: base, doubling up
// to max, plus up to half of it at random.
type Backoff struct{ Base, Max time.Duration }

// DefaultBackoff suits a client waiting on a BFT ordering service.
var DefaultBackoff = Backoff{Base: 50 * time.Millisecond, Max: 2 * time.Second}

// RefusedError is the ordering service's refusal of a transaction: it was
// not ordered, and sending it again changes nothing.
type RefusedError struct {
	TxID string
	Err  error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("the ordering service refused transaction %s: %v", e.TxID, e.Err)
}
func (e *RefusedError) Unwrap() error { return e.Err }

// UnknownError is a transaction that may have been handed over and whose
// commit was not seen before the context ended: it may still commit.
type UnknownError struct {
	TxID  string
	Cause error
}

func (e *UnknownError) Error() string {
	return fmt.Sprintf("transaction %s: outcome unknown: %v", e.TxID, e.Cause)
}
func (e *UnknownError) Unwrap() error { return e.Cause }

// Submit hands an endorsed transaction to the ordering service and waits
// for its commit status, until ctx ends.
//
// A BFT hand-over needs a quorum of the orderers to accept the
// transaction, and an orderer that has ordered it already answers "request
// already processed", which the gateway counts as a failure: across
// continents the near orderers may order a transaction before the far ones
// receive it. So a failed hand-over is no verdict. Submit asks whether the
// transaction commits (waiting a little longer each time) before it sends
// the same transaction again; only the ordering service's own refusal ends
// it at once (RefusedError). When ctx ends first, the error is an
// UnknownError.
func Submit(ctx context.Context, gw *client.Gateway, channel string, t *client.Transaction, backoff Backoff, hooks Hooks) (*client.Status, error) {
	txID := t.TransactionID()
	var commit *client.Commit
	for attempt := 0; commit == nil; attempt++ {
		start := time.Now()
		c, err := t.SubmitWithContext(ctx)
		if hooks.Handed != nil {
			hooks.Handed(time.Since(start), err)
		}
		if err == nil {
			commit = c
			break
		}
		if refused(err) {
			return nil, &RefusedError{TxID: txID, Err: err}
		}
		if hooks.Resending != nil {
			hooks.Resending(attempt, err)
		}
		if st, serr := StatusOf(ctx, gw, channel, txID, min(200*time.Millisecond<<min(attempt, 5), 5*time.Second)); serr == nil && st != nil {
			return st, nil
		}
		if ctx.Err() != nil {
			return nil, &UnknownError{TxID: txID, Cause: err}
		}
	}
	for attempt := 0; ; attempt++ {
		st, err := commit.StatusWithContext(ctx)
		if err == nil {
			return st, nil
		}
		if hooks.Asking != nil {
			hooks.Asking(attempt, err)
		}
		if !backoff.pause(ctx, attempt) {
			return nil, &UnknownError{TxID: txID, Cause: err}
		}
	}
}

// StatusOf asks the NMI's peer, for gw's identity, whether a transaction
// has committed, waiting at most wait for it to: nil if it has not.
func StatusOf(ctx context.Context, gw *client.Gateway, channel, txID string, wait time.Duration) (*client.Status, error) {
	commit, err := CommitOf(gw, channel, txID)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	st, err := commit.StatusWithContext(wctx)
	if err != nil {
		if wctx.Err() != nil && ctx.Err() == nil {
			return nil, nil
		}
		return nil, err
	}
	return st, nil
}

// CommitOf builds the commit status request of any transaction ID, for gw's
// identity: the peer answers any member about any transaction.
func CommitOf(gw *client.Gateway, channel, txID string) (*client.Commit, error) {
	id := gw.Identity()
	creator, err := proto.Marshal(&msp.SerializedIdentity{Mspid: id.MspID(), IdBytes: id.Credentials()})
	if err != nil {
		return nil, err
	}
	req, err := proto.Marshal(&gateway.CommitStatusRequest{ChannelId: channel, TransactionId: txID, Identity: creator})
	if err != nil {
		return nil, err
	}
	signed, err := proto.Marshal(&gateway.SignedCommitStatusRequest{Request: req})
	if err != nil {
		return nil, err
	}
	return gw.NewCommit(signed)
}

// refused tells the ordering service's refusal of a transaction (it is not
// ordered) from a failure that leaves it unknown.
func refused(err error) bool {
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.Aborted, codes.InvalidArgument, codes.FailedPrecondition, codes.PermissionDenied:
		return true
	}
	return false
}

// pause waits before the next attempt; false when the context ends first.
func (b Backoff) pause(ctx context.Context, attempt int) bool {
	if ctx.Err() != nil {
		return false
	}
	wait := min(b.Base<<min(attempt, 16), b.Max)
	wait += time.Duration(rand.Int64N(int64(wait)/2 + 1))
	select {
	case <-ctx.Done():
		return false
	case <-time.After(wait):
		return true
	}
}
