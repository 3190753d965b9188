package index

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// The index keeps where each transaction and reading is, not a copy of
// it: the transaction page and a meter's readings read them from the
// blocks, which the explorer's peer serves (Source), through Evidence.

// Source reads blocks of the channel, parsed. Store.FromPeer is the
// explorer's: its peer's blocks, checked against the index.
type Source interface {
	Block(ctx context.Context, number uint64) (*chain.Block, error)
}

// Peer reads a block of the channel from the explorer's peer as the peer
// stores it (gateway.BlockByNumber).
type Peer func(ctx context.Context, number uint64) (*common.Block, error)

// ErrMismatch means the peer served a block, or a transaction in it, that
// is not the one the index verified and indexed: the peer's copy changed,
// or the peer lies. What it served is not shown.
var ErrMismatch = errors.New("the peer's block is not the one the explorer verified")

// FromPeer reads blocks from the explorer's peer and checks each against
// what the index holds of it before it is parsed: its header hash, which
// the orderers' signatures covered when the block was indexed, its data
// hash over the transactions, each transaction canonically encoded (so
// that no two can be merged under the same hash), and each transaction's
// ID and validation code. Evidence served this way is the verified
// block's, not merely the peer's word; only a block the index itself found
// broken (Integrity) is no better than the peer's word.
func (s *Store) FromPeer(p Peer) Source { return &fromPeer{store: s, peer: p} }

type fromPeer struct {
	store *Store
	peer  Peer
}

func (f *fromPeer) Block(ctx context.Context, n uint64) (*chain.Block, error) {
	want, err := f.store.Block(n)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", n, err)
	}
	raw, err := f.peer(ctx, n)
	if err != nil {
		return nil, err
	}
	if err := matches(raw, want); err != nil {
		return nil, fmt.Errorf("block %d: %w: %v", n, ErrMismatch, err)
	}
	b, err := chain.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", n, err)
	}
	for i := range b.Txs {
		if got, want := b.Txs[i], want.Txs[i]; got.ID != want.ID || got.Code != want.Code {
			return nil, fmt.Errorf("block %d: %w: transaction %d is %s (%s), the index has %s (%s)", n, ErrMismatch, i, got.ID, got.Code, want.ID, want.Code)
		}
	}
	return b, nil
}

// matches checks a block the peer served against its summary in the index.
func matches(raw *common.Block, want *BlockSummary) error {
	h := raw.GetHeader()
	if h == nil {
		return errors.New("no header")
	}
	if h.GetNumber() != want.Number {
		return fmt.Errorf("the peer served block %d", h.GetNumber())
	}
	hash, err := chain.HeaderHash(h)
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(hash); got != want.HeaderHash {
		return fmt.Errorf("header hash %s, the index has %s", got, want.HeaderHash)
	}
	data := raw.GetData().GetData()
	sum := sha256.New()
	for _, d := range data {
		sum.Write(d)
	}
	if !bytes.Equal(sum.Sum(nil), h.GetDataHash()) {
		return errors.New("its transactions do not hash to its header's data hash")
	}
	if len(data) != len(want.Txs) {
		return fmt.Errorf("%d transactions, the index has %d", len(data), len(want.Txs))
	}
	if want.Config {
		return nil // alone in its block: nothing to merge it with
	}
	for i, d := range data {
		var env common.Envelope
		if err := proto.Unmarshal(d, &env); err != nil {
			return fmt.Errorf("transaction %d: %w", i, err)
		}
		canonical, err := proto.MarshalOptions{Deterministic: true}.Marshal(&env)
		if err != nil || !bytes.Equal(canonical, d) {
			return fmt.Errorf("transaction %d is not canonically encoded", i)
		}
	}
	return nil
}

// Evidence reads transactions and readings from a Source's blocks, and
// keeps the blocks it read most recently (up to a budget of their encoded
// size, and of their measurements once decoded), so that a meter's readings, most of them in the few newest
// batches, and a page asked for again cost no new read.
type Evidence struct {
	src    Source
	budget int

	mu      sync.Mutex
	used    int
	order   *list.List // of *held, most recently used first
	held    map[uint64]*list.Element
	pending map[uint64]*fetch
}

// DefaultEvidenceCache is the budget of the blocks Evidence keeps: some
// 120 blocks of one batch of 1,000 readings, with their readings decoded.
const DefaultEvidenceCache = 64 << 20

// held is a block Evidence keeps, with the measurements of its
// transactions decoded as they were asked for.
type held struct {
	b     *chain.Block
	cost  int
	items map[int][]wire.Item
}

// fetch is a block being read, which other callers wait for.
type fetch struct {
	done chan struct{}
	h    *held
	err  error
}

// NewEvidence reads from src, keeping up to budget bytes of blocks
// (DefaultEvidenceCache if 0).
func NewEvidence(src Source, budget int) *Evidence {
	if budget <= 0 {
		budget = DefaultEvidenceCache
	}
	return &Evidence{src: src, budget: budget, order: list.New(), held: map[uint64]*list.Element{}, pending: map[uint64]*fetch{}}
}

// block returns block n, from the cache or the source; callers asking for
// the same block at once share one read.
func (e *Evidence) block(ctx context.Context, n uint64) (*held, error) {
	e.mu.Lock()
	if el, ok := e.held[n]; ok {
		e.order.MoveToFront(el)
		e.mu.Unlock()
		return el.Value.(*held), nil
	}
	if f, ok := e.pending[n]; ok {
		e.mu.Unlock()
		select {
		case <-f.done:
			return f.h, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &fetch{done: make(chan struct{})}
	e.pending[n] = f
	e.mu.Unlock()

	b, err := e.src.Block(ctx, n)
	if err == nil && b.Number != n {
		err = fmt.Errorf("asked for block %d, read block %d", n, b.Number)
	}
	if err == nil {
		f.h = &held{b: b, cost: max(b.Size, 1), items: map[int][]wire.Item{}}
	}
	f.err = err
	e.mu.Lock()
	delete(e.pending, n)
	if err == nil && f.h.cost <= e.budget {
		e.held[n] = e.order.PushFront(f.h)
		e.used += f.h.cost
		e.evict()
	}
	e.mu.Unlock()
	close(f.done)
	return f.h, err
}

// evict lets the least recently used blocks go until the rest fit the
// budget; e.mu is held.
func (e *Evidence) evict() {
	for e.used > e.budget && e.order.Len() > 0 {
		last := e.order.Back()
		h := last.Value.(*held)
		e.order.Remove(last)
		delete(e.held, h.b.Number)
		e.used -= h.cost
	}
}

// Tx reads the transaction at index i of block n. The transaction is
// shared with other callers: read it, do not change it.
func (e *Evidence) Tx(ctx context.Context, n uint64, i int) (*chain.Tx, error) {
	h, err := e.block(ctx, n)
	if err != nil {
		return nil, err
	}
	if i < 0 || i >= len(h.b.Txs) {
		return nil, fmt.Errorf("block %d has no transaction %d: %w", n, i, ErrMismatch)
	}
	return &h.b.Txs[i], nil
}

// items decodes the measurements of transaction i of a held block, once.
func (e *Evidence) items(h *held, i int) ([]wire.Item, error) {
	e.mu.Lock()
	items, ok := h.items[i]
	e.mu.Unlock()
	if ok {
		return items, nil
	}
	t := &h.b.Txs[i]
	items, err := wire.Decode(t.Function, t.Args, t.ResponsePayload)
	if err != nil {
		return nil, fmt.Errorf("block %d transaction %d: %w: its measurements do not decode: %v", h.b.Number, i, ErrMismatch, err)
	}
	// Decoded, a batch takes about as much again as its arguments: the
	// block kept costs that much more.
	extra := 0
	for _, a := range t.Args {
		extra += len(a)
	}
	e.mu.Lock()
	h.items[i] = items
	if el, ok := e.held[h.b.Number]; ok && el.Value.(*held) == h {
		h.cost += extra
		e.used += extra
		e.evict()
	}
	e.mu.Unlock()
	return items, nil
}

// maxParallel bounds the blocks one call reads at once.
const maxParallel = 4

// Readings fills in what the index does not keep of a meter's readings
// (as Store.Meter lists them): the value, unit and exact meter time of an
// accepted one and the key version that verified it, the software a
// reading names, and the transaction's time, read from their transactions. Each must be the reading the index
// placed there, of that meter and seq. On an error the readings filled so
// far stay filled.
func (e *Evidence) Readings(ctx context.Context, meterID string, rs []Reading) error {
	blocks := map[uint64]bool{}
	for _, r := range rs {
		blocks[r.Block] = true
	}
	got := make(map[uint64]*held, len(blocks))
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for n := range blocks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			h, err := e.block(ctx, n)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			got[n] = h
		}()
	}
	wg.Wait()
	for i := range rs {
		r := &rs[i]
		h := got[r.Block]
		if h == nil {
			continue
		}
		if err := e.fill(h, meterID, r); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (e *Evidence) fill(h *held, meterID string, r *Reading) error {
	if r.TxIndex < 0 || r.TxIndex >= len(h.b.Txs) {
		return fmt.Errorf("block %d has no transaction %d: %w", r.Block, r.TxIndex, ErrMismatch)
	}
	items, err := e.items(h, r.TxIndex)
	if err != nil {
		return err
	}
	if r.Item < 0 || r.Item >= len(items) {
		return fmt.Errorf("block %d transaction %d has no item %d: %w", r.Block, r.TxIndex, r.Item, ErrMismatch)
	}
	it := items[r.Item]
	// The meter and seq as the index took them: an accepted reading's from
	// its signed item, a refusal's from the outcome.
	outcome, id, seq := it.Result.Outcome, it.Result.MeterID, it.Result.Seq
	if outcome == meter.OutcomeAccepted {
		id, seq = it.Signed.MeterID, it.Measurement.Seq
	}
	if id != meterID || seq != r.Seq || outcome != r.Outcome {
		return fmt.Errorf("block %d transaction %d item %d is %s seq %d %s, the index has %s seq %d %s: %w",
			r.Block, r.TxIndex, r.Item, id, seq, outcome, meterID, r.Seq, r.Outcome, ErrMismatch)
	}
	r.TxTime = h.b.Txs[r.TxIndex].Time
	r.SoftwareID = it.Measurement.SoftwareID
	if outcome == meter.OutcomeAccepted {
		m := it.Measurement
		r.Time, r.Value, r.Unit, r.KeyVersion = m.Time, m.Value, m.Unit, it.Result.KeyVersion
	}
	r.Read = true
	return nil
}
