package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/inter-nmi/pki/network/internal/consortium"
	"github.com/inter-nmi/pki/network/pkg/channel"
)

// Rebuild is the time an index took to be rebuilt from block 0 after the
// loss of its file.
type Rebuild struct {
	Index string `json:"index"`
	// Blocks is the peer's height the index caught up with.
	Blocks uint64 `json:"blocks"`
	// StartSeconds is from the start of its node until the node answered
	// its health check; Seconds until the index held every block.
	StartSeconds    float64 `json:"startSeconds"`
	Seconds         float64 `json:"seconds"`
	BlocksPerSecond float64 `json:"blocksPerSecond"`
	// SizeBefore is the index file's size on disk before it was deleted,
	// SizeAfter the rebuilt one's.
	SizeBefore int64 `json:"sizeBeforeBytes"`
	SizeAfter  int64 `json:"sizeAfterBytes"`
}

// rebuildIndex deletes an index's file while its node is stopped, starts
// the node and times it until the index has read every block of the peer.
func (b *bench) rebuildIndex(ctx context.Context, name, path string, stop, start func(context.Context) error, caughtUp func(context.Context, uint64) error) (Rebuild, error) {
	r := Rebuild{Index: name}
	height, err := channel.Height(ctx, b.ledger)
	if err != nil {
		return r, err
	}
	b.settle(ctx, height) // the whole index, before it is measured and lost
	r.Blocks = height
	r.SizeBefore = allocated(path)
	fmt.Fprintf(b.progress, "benchledger: rebuilding %s from block 0 (%d blocks)...\n", name, height)
	if err := stop(ctx); err != nil {
		return r, fmt.Errorf("stop the node of %s: %w", name, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return r, err
	}
	begin := time.Now()
	if err := start(ctx); err != nil {
		return r, fmt.Errorf("start the node of %s: %w", name, err)
	}
	r.StartSeconds = time.Since(begin).Seconds()
	if err := caughtUp(ctx, height); err != nil {
		return r, fmt.Errorf("rebuild %s: %w", name, err)
	}
	r.Seconds = time.Since(begin).Seconds()
	r.BlocksPerSecond = float64(height) / r.Seconds
	r.SizeAfter = allocated(path)
	return r, nil
}

// rebuildRegistryIndex rebuilds the readings index of the registry that
// served the load, which tells its position in its metrics.
func (b *bench) rebuildRegistryIndex(ctx context.Context) (Rebuild, error) {
	n, err := b.nw.Topology.NMI(b.via)
	if err != nil {
		return Rebuild{}, err
	}
	return b.rebuildIndex(ctx, b.via+"'s registry readings index", b.nw.RegistryIndex(n),
		func(ctx context.Context) error { return b.nw.Stop(ctx, b.via, consortium.NodeRegistry) },
		func(ctx context.Context) error { return b.nw.Start(ctx, b.via, consortium.NodeRegistry) },
		func(ctx context.Context, height uint64) error {
			return awaitRegistryIndex(ctx, b.nw, b.via, height, indexPoll, rebuildStall)
		})
}

// rebuildExplorerIndex rebuilds the explorer's index, which tells its
// position in its event stream.
func (b *bench) rebuildExplorerIndex(ctx context.Context) (Rebuild, error) {
	return b.rebuildIndex(ctx, "the explorer's index", b.nw.ExplorerIndex(), b.nw.StopExplorer, b.nw.StartExplorer,
		func(ctx context.Context, height uint64) error {
			_, err := b.explorer.await(ctx, height, rebuildStall)
			return err
		})
}

// allocated is the bytes a file takes on disk, 0 if it does not exist.
func allocated(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return 0
}
