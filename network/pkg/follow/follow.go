// Package follow keeps a local index in step with the channel: it reads the
// peer's blocks from the index's checkpoint on, parses each one (package
// chain) and hands it to the index, and reconnects when the stream breaks
// or the index fails to store a block. The registry's index of readings and
// the explorer's index both follow the channel this way, and keep alike
// what an attestation bundle needs (Attestations), the measurements of a
// transaction (Measurements), the software update statement it delivered
// (SoftwareUpdate) and the encoding of their keys (Key).
package follow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"

	"github.com/inter-nmi/pki/network/pkg/chain"
)

// Blocks opens a stream of the channel's blocks from a block number on. The
// stream ends when ctx does; it may end, or break, before.
type Blocks func(ctx context.Context, from uint64) (<-chan *common.Block, error)

// FromNetwork streams a gateway network's blocks (its BlockEvents).
func FromNetwork(nw *client.Network) Blocks {
	return func(ctx context.Context, from uint64) (<-chan *common.Block, error) {
		return nw.BlockEvents(ctx, client.WithStartBlock(from))
	}
}

// Sink is the index a follower keeps in step.
type Sink interface {
	// Next is the number of the next block to store: every block below it
	// is stored. A new stream starts there.
	Next() uint64
	// Add stores block Next: raw as the peer sent it and b as chain.Parse
	// read it, or, if it could not, b nil and the parse error perr. An
	// error marked Fatal stops the follower; any other is the block not
	// stored (a full disk, say), which is tried again from a new stream.
	Add(raw *common.Block, b *chain.Block, perr error) error
}

// Index is a store of parsed blocks, such as the registry's index of
// readings.
type Index interface {
	// Next is the number of the next block to store.
	Next() uint64
	// Add stores block Next.
	Add(b *chain.Block) error
}

// Parsed makes a Sink of an index that stores parsed blocks only: a block
// that cannot be parsed stops the follower, since skipping it would leave
// the index silently without what it holds.
func Parsed(x Index) Sink { return parsed{x} }

type parsed struct{ x Index }

func (p parsed) Next() uint64 { return p.x.Next() }

func (p parsed) Add(raw *common.Block, b *chain.Block, perr error) error {
	if perr != nil {
		return Fatal(fmt.Errorf("parse %w", perr))
	}
	return p.x.Add(b)
}

// FatalError is an error of a Sink that stops the follower instead of
// being tried again.
type FatalError struct{ Err error }

func (e *FatalError) Error() string { return e.Err.Error() }

func (e *FatalError) Unwrap() error { return e.Err }

// Fatal marks an error of a Sink's Add as one that stops the follower: the
// block cannot be stored however often it is tried.
func Fatal(err error) error { return &FatalError{Err: err} }

// Default waits before reconnecting (Options).
const (
	DefaultBackoff    = 200 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
)

// Options tune Run; the zero value is usable.
type Options struct {
	// OnBlock, if set, is called with each block's number once the sink
	// has stored it.
	OnBlock func(number uint64)
	// Backoff is the wait before reconnecting; it doubles with each
	// failure in a row, up to MaxBackoff, and is back to Backoff once a
	// block is stored. Zero means DefaultBackoff and DefaultMaxBackoff.
	Backoff, MaxBackoff time.Duration
	// Log is where reconnections are logged; nil means slog.Default().
	Log *slog.Logger
}

// errStreamEnded is a stream that ended while its context had not.
var errStreamEnded = errors.New("the block stream ended")

// Run follows the channel's blocks into sink until ctx ends, from
// sink.Next() on. When the stream breaks or ends, or the sink fails to
// store a block, it waits and opens a new stream from sink.Next(): an index
// that cannot store a block falls behind, it never stops. Run returns nil
// when ctx ends, and otherwise only the error of a block the sink marked
// Fatal.
func Run(ctx context.Context, blocks Blocks, sink Sink, opts Options) error {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	first, most := opts.Backoff, opts.MaxBackoff
	if first <= 0 {
		first = DefaultBackoff
	}
	if most <= 0 {
		most = DefaultMaxBackoff
	}
	most = max(most, first)
	backoff := first
	for {
		err := stream(ctx, blocks, sink, opts.OnBlock, log, func() { backoff = first })
		if fatal, ok := errors.AsType[*FatalError](err); ok {
			return fatal.Err
		}
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("following the channel: reconnecting", "next", sink.Next(), "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, most)
	}
}

// stream stores the blocks of one stream until it ends or a block is not
// stored; progress is called after each block stored.
func stream(ctx context.Context, blocks Blocks, sink Sink, onBlock func(uint64), log *slog.Logger, progress func()) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := sink.Next()
	log.Info("following the channel", "from", next)
	ch, err := blocks(sctx, next)
	if err != nil {
		return fmt.Errorf("open a block stream from block %d: %w", next, err)
	}
	for raw := range ch {
		if raw.GetHeader() == nil {
			return fmt.Errorf("the stream sent a block without header, block %d expected", next)
		}
		if n := raw.GetHeader().GetNumber(); n != next {
			return fmt.Errorf("the stream sent block %d, block %d expected", n, next)
		}
		b, perr := chain.Parse(raw)
		if perr != nil {
			b = nil
		}
		if err := sink.Add(raw, b, perr); err != nil {
			return fmt.Errorf("store block %d: %w", next, err)
		}
		progress()
		if onBlock != nil {
			onBlock(next)
		}
		next++
	}
	return errStreamEnded
}
