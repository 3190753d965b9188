package follow_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/follow"
)

// block is a block of no transactions, which chain.Parse reads.
func block(n uint64) *common.Block {
	return &common.Block{Header: &common.BlockHeader{Number: n}, Data: &common.BlockData{},
		Metadata: &common.BlockMetadata{Metadata: make([][]byte, len(common.BlockMetadataIndex_name))}}
}

// unparsable is a block chain.Parse refuses: a transaction without its
// validation code.
func unparsable(n uint64) *common.Block {
	b := block(n)
	b.Data.Data = [][]byte{[]byte("a transaction")}
	return b
}

// open is what the fake peer does when a stream is opened: fail, or serve
// up to n blocks of its chain (or the blocks of serve instead) and then end
// the stream (end) or keep it open until its context ends.
type open struct {
	fail  error
	n     int
	serve []*common.Block
	end   bool
}

// peer is a fake deliver service over a chain of blocks. Each stream opened
// follows the next entry of script; once the script is done, streams serve
// every block and stay open.
type peer struct {
	chain  []*common.Block
	script []open

	mu      sync.Mutex
	opens   []uint64          // the block each stream was asked to start at
	streams []context.Context // each stream's context
}

func (p *peer) blocks(ctx context.Context, from uint64) (<-chan *common.Block, error) {
	p.mu.Lock()
	o := open{n: len(p.chain)}
	if i := len(p.opens); i < len(p.script) {
		o = p.script[i]
	}
	p.opens = append(p.opens, from)
	p.streams = append(p.streams, ctx)
	p.mu.Unlock()
	if o.fail != nil {
		return nil, o.fail
	}
	serve := o.serve
	if serve == nil {
		serve = p.chain[min(from, uint64(len(p.chain))):]
		serve = serve[:min(o.n, len(serve))]
	}
	ch := make(chan *common.Block)
	go func() {
		defer close(ch)
		for _, b := range serve {
			select {
			case ch <- b:
			case <-ctx.Done():
				return
			}
		}
		if !o.end {
			<-ctx.Done()
		}
	}()
	return ch, nil
}

func (p *peer) opened() []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.opens)
}

func blocks(n int) []*common.Block {
	out := make([]*common.Block, n)
	for i := range out {
		out[i] = block(uint64(i))
	}
	return out
}

// sink is a fake index. fail says how often storing a block fails before
// it is stored; fatal, which block's Add fails for good.
type sink struct {
	next    uint64
	fail    map[uint64]int
	fatal   map[uint64]error
	stored  []uint64
	parseOK []bool
}

func (s *sink) Next() uint64 { return s.next }

func (s *sink) Add(raw *common.Block, b *chain.Block, perr error) error {
	n := raw.GetHeader().GetNumber()
	if err := s.fatal[n]; err != nil {
		return follow.Fatal(err)
	}
	if s.fail[n] > 0 {
		s.fail[n]--
		return fmt.Errorf("write block %d: no space left on device", n)
	}
	if (b == nil) == (perr == nil) || (b != nil && b.Number != n) {
		return fmt.Errorf("block %d handed over as %v, %v", n, b, perr)
	}
	s.stored = append(s.stored, n)
	s.parseOK = append(s.parseOK, perr == nil)
	s.next = n + 1
	return nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// until returns options that end ctx once block last is stored, and the
// numbers of the blocks OnBlock was called with.
func until(cancel context.CancelFunc, last uint64) (follow.Options, *[]uint64) {
	seen := new([]uint64)
	return follow.Options{Backoff: time.Millisecond, Log: quiet(), OnBlock: func(n uint64) {
		*seen = append(*seen, n)
		if n == last {
			cancel()
		}
	}}, seen
}

func run(t *testing.T, p *peer, s follow.Sink, opts follow.Options) error {
	t.Helper()
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- follow.Run(ctx, p.blocks, s, opts) }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("Run did not return; streams opened at %v", p.opened())
		return nil
	}
}

func span(from, to uint64) []uint64 {
	var out []uint64
	for n := from; n <= to; n++ {
		out = append(out, n)
	}
	return out
}

func TestResumesFromCheckpoint(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &peer{chain: blocks(6)}
	s := &sink{next: 3}
	opts, seen := until(cancel, 5)
	if err := follow.Run(ctx, p.blocks, s, opts); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.opened(), []uint64{3}) || !slices.Equal(s.stored, span(3, 5)) || !slices.Equal(*seen, span(3, 5)) {
		t.Fatalf("streams from %v, stored %v, OnBlock %v", p.opened(), s.stored, *seen)
	}
}

// A stream that ends, or cannot be opened, is opened again from the next
// block to store.
func TestReconnects(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &peer{chain: blocks(6), script: []open{{n: 2, end: true}, {fail: errors.New("connection refused")}, {n: 3, end: true}}}
	s := &sink{}
	opts, _ := until(cancel, 5)
	if err := follow.Run(ctx, p.blocks, s, opts); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.opened(), []uint64{0, 2, 2, 5}) || !slices.Equal(s.stored, span(0, 5)) {
		t.Fatalf("streams from %v, stored %v", p.opened(), s.stored)
	}
}

// A block the sink fails to store (a full disk) is tried again from a new
// stream that starts at it; the stream it came in is closed.
func TestSinkFailureRetried(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &peer{chain: blocks(5)}
	s := &sink{fail: map[uint64]int{2: 2}}
	opts, seen := until(cancel, 4)
	if err := follow.Run(ctx, p.blocks, s, opts); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.opened(), []uint64{0, 2, 2}) || !slices.Equal(s.stored, span(0, 4)) || !slices.Equal(*seen, span(0, 4)) {
		t.Fatalf("streams from %v, stored %v, OnBlock %v", p.opened(), s.stored, *seen)
	}
	for i, sctx := range p.streams[:2] {
		if sctx.Err() == nil {
			t.Errorf("stream %d was left open after its block failed", i)
		}
	}
}

// A block other than the next one (a peer that skips or repeats one) is
// not handed to the sink: the stream is opened again.
func TestBlockOutOfOrder(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	chain := blocks(3)
	p := &peer{chain: chain, script: []open{{serve: []*common.Block{chain[0], chain[2]}}, {serve: []*common.Block{chain[0]}}}}
	s := &sink{}
	opts, _ := until(cancel, 2)
	if err := follow.Run(ctx, p.blocks, s, opts); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.opened(), []uint64{0, 1, 1}) || !slices.Equal(s.stored, span(0, 2)) {
		t.Fatalf("streams from %v, stored %v", p.opened(), s.stored)
	}
}

// waits records the waits Run logs before reconnecting.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) Enabled(context.Context, slog.Level) bool { return true }
func (w *waits) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *waits) WithGroup(string) slog.Handler            { return w }
func (w *waits) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "in" {
			w.mu.Lock()
			w.d = append(w.d, a.Value.Duration())
			w.mu.Unlock()
		}
		return true
	})
	return nil
}

// The wait before reconnecting doubles with each failure in a row, up to
// its ceiling, and starts again once a block is stored.
func TestBackoff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	refused := open{fail: errors.New("connection refused")}
	p := &peer{chain: blocks(3), script: []open{refused, refused, refused, refused, refused, {n: 1, end: true}, refused}}
	s := &sink{}
	w := &waits{}
	opts, _ := until(cancel, 2)
	opts.Backoff, opts.MaxBackoff, opts.Log = time.Millisecond, 8*time.Millisecond, slog.New(w)
	if err := follow.Run(ctx, p.blocks, s, opts); err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	if want := []time.Duration{ms, 2 * ms, 4 * ms, 8 * ms, 8 * ms, ms, 2 * ms}; !slices.Equal(w.d, want) {
		t.Fatalf("waited %v, want %v", w.d, want)
	}
	if !slices.Equal(s.stored, span(0, 2)) {
		t.Fatalf("stored %v", s.stored)
	}
}

// An error the sink marks Fatal stops Run, which returns it; nothing after
// the block is read.
func TestFatalStops(t *testing.T) {
	errBad := errors.New("the block breaks the index")
	p := &peer{chain: blocks(5)}
	s := &sink{fatal: map[uint64]error{2: errBad}}
	err := run(t, p, s, follow.Options{Backoff: time.Millisecond, Log: quiet()})
	if !errors.Is(err, errBad) || !slices.Equal(s.stored, span(0, 1)) || len(p.opened()) != 1 {
		t.Fatalf("Run returned %v; stored %v, streams from %v", err, s.stored, p.opened())
	}
}

// index is a fake store of parsed blocks (the registry's).
type index struct {
	next  uint64
	added []uint64
}

func (x *index) Next() uint64 { return x.next }

func (x *index) Add(b *chain.Block) error {
	if b.Number != x.next {
		return fmt.Errorf("block %d given, %d expected", b.Number, x.next)
	}
	x.added = append(x.added, b.Number)
	x.next++
	return nil
}

// An index of parsed blocks stops at a block it cannot parse, naming it.
func TestParsedStopsAtUnparsableBlock(t *testing.T) {
	chain := blocks(5)
	chain[3] = unparsable(3)
	p := &peer{chain: chain}
	x := &index{next: 1}
	err := run(t, p, follow.Parsed(x), follow.Options{Backoff: time.Millisecond, Log: quiet()})
	if _, fatal := errors.AsType[*follow.FatalError](err); err == nil || fatal || !strings.Contains(err.Error(), "block 3") {
		t.Fatalf("Run returned %v", err)
	}
	if !slices.Equal(x.added, span(1, 2)) {
		t.Fatalf("added %v", x.added)
	}
}

// A sink that keeps what it can of a block it cannot parse (the explorer)
// gets the parse error, and the follower goes on.
func TestSinkGetsParseError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	chain := blocks(4)
	chain[1] = unparsable(1)
	p := &peer{chain: chain}
	s := &sink{}
	opts, _ := until(cancel, 3)
	if err := follow.Run(ctx, p.blocks, s, opts); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.stored, span(0, 3)) || !slices.Equal(s.parseOK, []bool{true, false, true, true}) {
		t.Fatalf("stored %v, parsed %v", s.stored, s.parseOK)
	}
}

// Run returns nil when its context ends, whether it waits for blocks or to
// reconnect.
func TestContextEnds(t *testing.T) {
	for name, p := range map[string]*peer{
		"waiting for blocks":   {chain: blocks(2)},
		"waiting to reconnect": {chain: blocks(2), script: []open{{fail: errors.New("connection refused")}}},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			s := &sink{}
			done := make(chan error, 1)
			go func() { done <- follow.Run(ctx, p.blocks, s, follow.Options{Backoff: time.Hour, Log: quiet()}) }()
			for len(p.opened()) == 0 {
				time.Sleep(time.Millisecond)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return once its context ended")
			}
		})
	}
}
