package index_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/explorer/index/synth"
	"github.com/inter-nmi/pki/network/pkg/chain"
)

// source is a fake of the explorer's peer: it serves the blocks given,
// parsed, and counts the reads.
type source []*chain.Block

func (s source) Block(_ context.Context, n uint64) (*chain.Block, error) {
	for _, b := range s {
		if b.Number == n {
			return b, nil
		}
	}
	return nil, fmt.Errorf("block %d: %w", n, errNoBlock)
}

var errNoBlock = errors.New("the peer has no such block")

// counting counts the reads of a source, and the bytes of the blocks read.
type counting struct {
	src   source
	mu    sync.Mutex
	reads map[uint64]int
	bytes int
}

func (c *counting) Block(ctx context.Context, n uint64) (*chain.Block, error) {
	b, err := c.src.Block(ctx, n)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reads == nil {
		c.reads = map[uint64]int{}
	}
	c.reads[n]++
	if err == nil {
		c.bytes += b.Size
	}
	return b, err
}

func (c *counting) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.reads {
		n += r
	}
	return n
}

// Evidence reads each block once while it keeps it, once for callers that
// ask at the same time, and again once it has let it go.
func TestEvidenceCache(t *testing.T) {
	s, _ := open(t)
	c := synth.New(start)
	blocks := []*chain.Block{c.Register("PTBMSP", 4)}
	for range 6 {
		blocks = append(blocks, c.Measurements("CMIMSP", c.Meters(), 8, 0))
	}
	add(t, s, blocks...)
	id := synth.MeterID(3)
	v, err := s.Meter(id, 10)
	if err != nil || len(v.Recent) != 10 {
		t.Fatalf("%+v %v", v, err)
	}
	src := &counting{src: blocks}
	ev := index.NewEvidence(src, 0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			rs := slices.Clone(v.Recent)
			if err := ev.Readings(context.Background(), id, rs); err != nil {
				t.Error(err)
			}
			for _, r := range rs {
				if !r.Read || r.Unit != "kWh" || r.Time != start.Add(time.Duration(r.Seq)*15*time.Minute).Format(time.RFC3339) {
					t.Errorf("reading not read from its transaction: %+v", r)
				}
			}
		})
	}
	wg.Wait()
	if n := src.total(); n != 5 {
		t.Errorf("%d blocks read for readings in 5 blocks", n)
	}
	if _, err := ev.Tx(context.Background(), 6, 0); err != nil || src.total() != 5 {
		t.Errorf("a transaction of a block kept: %v, %d reads", err, src.total())
	}

	// A budget of about one block keeps only the newest one read.
	small := &counting{src: blocks}
	ev = index.NewEvidence(small, blocks[6].Size)
	for range 2 {
		if err := ev.Readings(context.Background(), id, slices.Clone(v.Recent)); err != nil {
			t.Fatal(err)
		}
	}
	if n := small.total(); n <= 5 {
		t.Errorf("%d blocks read twice over with a budget of one block: none was let go", n)
	}
}

// What the peer serves must be the reading the index placed there, and a
// transaction must exist; the peer's own failures are passed on as they
// are.
func TestEvidenceMismatch(t *testing.T) {
	s, _ := open(t)
	c := synth.New(start)
	blocks := []*chain.Block{c.Register("PTBMSP", 2), c.Measurements("CMIMSP", c.Meters(), 4, 0)}
	add(t, s, blocks...)
	v, err := s.Meter(synth.MeterID(1), 10)
	if err != nil {
		t.Fatal(err)
	}
	// A peer whose block 1 holds other readings: the same items, of the
	// meters the other way round.
	other := synth.New(start)
	other.Register("PTBMSP", 2)
	swapped := other.Measurements("CMIMSP", []string{synth.MeterID(2), synth.MeterID(1)}, 4, 0)
	ctx := context.Background()
	err = index.NewEvidence(source{blocks[0], swapped}, 0).Readings(ctx, synth.MeterID(1), v.Recent)
	if !errors.Is(err, index.ErrMismatch) {
		t.Errorf("readings of another meter in their place: %v", err)
	}
	if _, err := index.NewEvidence(source(blocks), 0).Tx(ctx, 1, 5); !errors.Is(err, index.ErrMismatch) {
		t.Errorf("a transaction the block does not have: %v", err)
	}
	if _, err := index.NewEvidence(source(blocks), 0).Tx(ctx, 9, 0); !errors.Is(err, errNoBlock) || errors.Is(err, index.ErrMismatch) {
		t.Errorf("the peer's failure: %v", err)
	}
}
