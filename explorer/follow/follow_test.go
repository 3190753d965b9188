package follow_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/explorer/follow"
	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/chain/chaintest"
	blockfollow "github.com/inter-nmi/pki/network/pkg/follow"
)

// realBlocks are blocks 0-12 of a fresh channel (testdata/blocks at the repository root).
func realBlocks(t *testing.T) []*common.Block {
	t.Helper()
	out := chaintest.Blocks(t)
	if len(out) < 10 {
		t.Fatalf("only %d testdata blocks", len(out))
	}
	return out
}

// feed serves blocks from a slice, as a peer's deliver service would, and
// stops the follower once the last one is indexed.
func feed(blocks []*common.Block, cancel context.CancelFunc) blockfollow.Blocks {
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

// genesisHash is the hash a configuration pins for the testdata chain.
func genesisHash(t *testing.T) []byte {
	t.Helper()
	h, err := chain.GenesisHash(realBlocks(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// follow1 runs a follower pinned to genesis over blocks, and returns the
// blocks it indexed and the error it stopped with.
func follow1(store *index.Store, genesis []byte, blocks []*common.Block) ([]uint64, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var seen []uint64
	f := &follow.Follower{Blocks: feed(blocks, cancel), Store: store, Genesis: genesis, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnBlock: func(n uint64) { seen = append(seen, n) }}
	return seen, f.Run(ctx)
}

func run(t *testing.T, store *index.Store, blocks []*common.Block) []uint64 {
	t.Helper()
	seen, err := follow1(store, genesisHash(t), blocks)
	if err != nil {
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
	// What the real chaincode wrote (registrations, a rotation, a
	// revocation) raises no integrity finding. The one finding is block 7's
	// concentrator batch: written by an earlier chaincode version, whose
	// result package wire no longer reads, so its measurements cannot be
	// indexed, and auditors are told so.
	all, err := store.Findings(0, 10)
	if err != nil || totals.Findings != 1 || len(all) != 1 || all[0].Kind != index.FindingMeasurements || all[0].Block != 7 ||
		all[0].Function != "SubmitMeasurements" {
		t.Fatalf("findings on the real chain: %d %+v %v", totals.Findings, all, err)
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

// forgeGenesis returns block 0 with a changed configuration transaction
// (its timestamp) and a header that commits to it: a block 0 the verifier
// cannot tell from the real one, since nothing signs a genesis block.
func forgeGenesis(t *testing.T, b *common.Block) *common.Block {
	t.Helper()
	f := proto.Clone(b).(*common.Block)
	var env common.Envelope
	var payload common.Payload
	var ch common.ChannelHeader
	if err := proto.Unmarshal(f.Data.Data[0], &env); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(env.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(payload.Header.ChannelHeader, &ch); err != nil {
		t.Fatal(err)
	}
	ch.Timestamp.Seconds++
	var err error
	if payload.Header.ChannelHeader, err = proto.Marshal(&ch); err != nil {
		t.Fatal(err)
	}
	if env.Payload, err = proto.Marshal(&payload); err != nil {
		t.Fatal(err)
	}
	if f.Data.Data[0], err = proto.Marshal(&env); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(f.Data.Data[0])
	f.Header.DataHash = sum[:]
	if _, err := chain.GenesisHash(f); err != nil {
		t.Fatalf("the forged block 0 is not self-consistent: %v", err)
	}
	return f
}

// A peer serving a block 0 other than the pinned one stops the follower
// before block 0 is indexed, with an error naming both hashes; the pinned
// one proceeds.
func TestFollowForeignGenesis(t *testing.T) {
	blocks := realBlocks(t)
	pinned := genesisHash(t)
	changedHeader := proto.Clone(blocks[0]).(*common.Block)
	changedHeader.Header.DataHash[0] ^= 1
	for name, b0 := range map[string]*common.Block{
		"a self-consistent block 0 of another chain":  forgeGenesis(t, blocks[0]),
		"the real block 0 with a header byte changed": changedHeader,
	} {
		t.Run(name, func(t *testing.T) {
			store, err := index.Open(filepath.Join(t.TempDir(), "index.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			got, _ := chain.HeaderHash(b0.Header)
			seen, err := follow1(store, pinned, append([]*common.Block{b0}, blocks[1:]...))
			if !errors.Is(err, follow.ErrGenesis) || !strings.Contains(err.Error(), hex.EncodeToString(got)) ||
				!strings.Contains(err.Error(), hex.EncodeToString(pinned)) {
				t.Fatalf("Run returned %v; want ErrGenesis naming %x and %x", err, got, pinned)
			}
			t.Logf("stopped: %v", err)
			if next, _, _ := store.Checkpoint(); next != 0 || len(seen) != 0 {
				t.Fatalf("indexed %v, checkpoint %d", seen, next)
			}
			if _, err := store.Block(0); !errors.Is(err, index.ErrNotFound) {
				t.Fatalf("block 0 in the index: %v", err)
			}
		})
	}
	t.Run("the pinned block 0", func(t *testing.T) {
		store, err := index.Open(filepath.Join(t.TempDir(), "index.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		if seen, err := follow1(store, pinned, blocks); err != nil || len(seen) != len(blocks) {
			t.Fatalf("indexed %v: %v", seen, err)
		}
	})
}

// An index built from another block 0 (before the pin existed, or for
// another channel) is not resumed; nor does a follower run unpinned.
func TestFollowResumeChecksGenesis(t *testing.T) {
	blocks := realBlocks(t)
	store, err := index.Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	run(t, store, blocks[:3])
	other := sha256.Sum256([]byte("another channel's genesis block"))
	seen, err := follow1(store, other[:], blocks)
	if !errors.Is(err, follow.ErrGenesis) || !strings.Contains(err.Error(), hex.EncodeToString(other[:])) ||
		!strings.Contains(err.Error(), hex.EncodeToString(genesisHash(t))) || len(seen) != 0 {
		t.Fatalf("resumed with another pin: indexed %v, %v", seen, err)
	}
	if next, _, _ := store.Checkpoint(); next != 3 {
		t.Fatalf("checkpoint %d", next)
	}
	if _, err := follow1(store, nil, blocks); err == nil || !strings.Contains(err.Error(), "not pinned") {
		t.Fatalf("unpinned: %v", err)
	}
	if seen := run(t, store, blocks); len(seen) != len(blocks)-3 {
		t.Fatalf("resumed with the right pin: indexed %v", seen)
	}
}

// A block the index fails to store is checked again when it comes again:
// the verifier and the verdict, which took it in, go back to the index's.
// Here the index moved on without the follower (another follower stored
// the block); a full disk leaves it where it was, which is the same.
func TestFailedStoreRewindsTheChecks(t *testing.T) {
	blocks := realBlocks(t)
	store, err := index.Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	run(t, store, blocks[:6])
	f := &follow.Follower{Store: store, Genesis: genesisHash(t), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	add := func(s blockfollow.Sink, n int) error {
		b, err := chain.Parse(blocks[n])
		if err != nil {
			t.Fatal(err)
		}
		return s.Add(blocks[n], b, nil)
	}
	behind, err := f.Sink()
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.Sink()
	if err != nil {
		t.Fatal(err)
	}
	if err := add(other, 6); err != nil {
		t.Fatal(err)
	}
	err = add(behind, 6)
	if _, fatal := errors.AsType[*blockfollow.FatalError](err); err == nil || fatal {
		t.Fatalf("block 6 stored twice: %v", err)
	}
	if next := behind.Next(); next != 7 {
		t.Fatalf("after a block not stored, the follower expects block %d; the index is at 7", next)
	}
	if err := add(behind, 7); err != nil {
		t.Fatal(err)
	}
	if in, err := store.Integrity(); err != nil || !in.Intact() || in.CheckedThrough != 7 {
		t.Fatalf("integrity %+v, %v", in, err)
	}
}
