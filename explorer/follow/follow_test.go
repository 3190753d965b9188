package follow_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/explorer/follow"
	"github.com/inter-nmi/pki/explorer/index"
)

// realBlocks are blocks 0-12 of a fresh channel (see ../chain/testdata).
func realBlocks(t *testing.T) []*common.Block {
	t.Helper()
	var out []*common.Block
	for i := 0; ; i++ {
		raw, err := os.ReadFile(filepath.Join("..", "chain", "testdata", "blocks", fmt.Sprintf("%04d.block", i)))
		if os.IsNotExist(err) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b := new(common.Block)
		if err := proto.Unmarshal(raw, b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	if len(out) < 10 {
		t.Fatalf("only %d testdata blocks", len(out))
	}
	return out
}

// feed serves blocks from a slice, as a peer's deliver service would, and
// stops the follower once the last one is indexed.
func feed(blocks []*common.Block, cancel context.CancelFunc) follow.Blocks {
	return func(ctx context.Context, from uint64) (<-chan *common.Block, error) {
		ch := make(chan *common.Block)
		go func() {
			defer close(ch)
			for _, b := range blocks[from:] {
				select {
				case ch <- b:
				case <-ctx.Done():
					return
				}
			}
			cancel()
		}()
		return ch, nil
	}
}

func run(t *testing.T, store *index.Store, blocks []*common.Block) []uint64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var seen []uint64
	f := &follow.Follower{Blocks: feed(blocks, cancel), Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnBlock: func(n uint64) { seen = append(seen, n) }}
	if err := f.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return seen
}

func TestFollowRealChainAndResume(t *testing.T) {
	blocks := realBlocks(t)
	path := filepath.Join(t.TempDir(), "index.db")
	store, err := index.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := run(t, store, blocks[:6])
	if len(seen) != 6 || seen[5] != 5 {
		t.Fatalf("indexed %v", seen)
	}
	store.Close()

	// Restarted, the follower asks for block 6 on and keeps verifying.
	store, err = index.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	seen = run(t, store, blocks)
	if len(seen) != len(blocks)-6 || seen[0] != 6 {
		t.Fatalf("after restart indexed %v", seen)
	}
	in, err := store.Integrity()
	if err != nil {
		t.Fatal(err)
	}
	if !in.Intact() || in.CheckedThrough != uint64(len(blocks)-1) {
		t.Fatalf("integrity %+v", in)
	}
	totals, _ := store.Totals()
	if totals.Blocks != uint64(len(blocks)) || totals.Invalid != 1 || totals.ByNMI["PTBMSP"] == nil {
		t.Fatalf("totals %+v", totals)
	}
	cfg, err := store.Config()
	if err != nil || len(cfg.Members) != 5 || len(cfg.Consenters) != 4 {
		t.Fatalf("config %+v %v", cfg, err)
	}
}

func TestFollowTamperedChain(t *testing.T) {
	blocks := realBlocks(t)
	tampered := proto.Clone(blocks[7]).(*common.Block)
	tampered.Data.Data[0][len(tampered.Data.Data[0])-1] ^= 0xff
	chainWithTamper := append(append(append([]*common.Block(nil), blocks[:7]...), tampered), blocks[8:]...)
	store, err := index.Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	run(t, store, chainWithTamper)
	in, err := store.Integrity()
	if err != nil {
		t.Fatal(err)
	}
	if in.Intact() || in.Broken.Block != 7 {
		t.Fatalf("integrity %+v, want broken at block 7", in)
	}
	t.Logf("verdict: broken at %d: %s", in.Broken.Block, in.Broken.Reason)
	if next, _, _ := store.Checkpoint(); next != uint64(len(blocks)) {
		t.Fatalf("the blocks after the break were not indexed: next %d", next)
	}
}
