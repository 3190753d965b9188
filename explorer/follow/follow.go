// Package follow keeps the explorer's index in step with the channel: it
// reads blocks from the peer's deliver service (fabric-gateway block events)
// from the index's checkpoint on, checks each block's integrity, parses it
// and indexes it, and reconnects when the stream breaks.
package follow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/channel"
)

// Blocks opens a stream of blocks from a block number on; a
// *client.Network's BlockEvents is one.
type Blocks func(ctx context.Context, from uint64) (<-chan *common.Block, error)

// FromNetwork streams a gateway network's blocks.
func FromNetwork(nw *client.Network) Blocks {
	return func(ctx context.Context, from uint64) (<-chan *common.Block, error) {
		return nw.BlockEvents(ctx, client.WithStartBlock(from))
	}
}

// ErrGenesis means the channel's block 0, as the peer serves it or as the
// index was built from, is not the genesis block the configuration pins.
var ErrGenesis = errors.New("not the pinned genesis block")

// Follower indexes blocks as they come.
type Follower struct {
	Blocks Blocks
	Store  *index.Store
	// Genesis is the pinned header hash of the channel's genesis block
	// (chain.GenesisHash), required. Block 0 names the orderers whose
	// signatures every later block is checked against; taken from the peer
	// unchecked, it would let that peer serve a whole chain signed by
	// orderers it made up.
	Genesis []byte
	// OnBlock, if set, is called after each block is indexed.
	OnBlock func(number uint64)
	Log     *slog.Logger
}

// Run follows the channel until ctx ends. It stops with ErrGenesis, having
// indexed nothing more, if block 0 is not the pinned genesis block.
func (f *Follower) Run(ctx context.Context) error {
	if len(f.Genesis) != sha256.Size {
		return fmt.Errorf("the genesis block hash is not pinned: %d bytes, want %d", len(f.Genesis), sha256.Size)
	}
	next, saved, err := f.Store.Checkpoint()
	if err != nil {
		return err
	}
	if next > 0 {
		// An index built before the pin, or from another channel, is not
		// resumed: everything in it rests on its block 0.
		b0, err := f.Store.Block(0)
		if err != nil {
			return fmt.Errorf("block 0 in the index: %w", err)
		}
		if want := hex.EncodeToString(f.Genesis); b0.HeaderHash != want {
			return fmt.Errorf("%w: the index was built from a block 0 with header hash %s, the configuration pins %s; "+
				"move the index away to rebuild it from the pinned chain", ErrGenesis, b0.HeaderHash, want)
		}
	}
	verifier := chain.NewVerifier()
	if saved != nil {
		var st chain.VerifierState
		if err := json.Unmarshal(saved, &st); err != nil {
			return fmt.Errorf("verifier state in the index: %w", err)
		}
		if verifier, err = chain.NewVerifierFrom(st); err != nil {
			return err
		}
	}
	integrity, err := f.Store.Integrity()
	if err != nil {
		return err
	}
	backoff := time.Second
	for {
		f.Log.Info("following the channel", "from", next)
		blocks, err := f.Blocks(ctx, next)
		if err == nil {
			for raw := range blocks {
				if err = f.add(raw, verifier, &integrity); err != nil {
					return err
				}
				next = raw.GetHeader().GetNumber() + 1
				backoff = time.Second
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		f.Log.Warn("block stream ended; reconnecting", "next", next, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// add checks, parses and indexes one block. The first integrity failure is
// kept as the verdict; later blocks are still indexed, so auditors can look
// at what came after it.
func (f *Follower) add(raw *common.Block, verifier *chain.Verifier, integrity *index.Integrity) error {
	n := raw.GetHeader().GetNumber()
	if n == 0 {
		// Before anything of block 0 is trusted or indexed. The pinned hash
		// covers the header, which commits to the data the verifier then
		// checks.
		got, err := chain.HeaderHash(raw.GetHeader())
		if err != nil {
			return fmt.Errorf("block 0: %w", err)
		}
		if !bytes.Equal(got, f.Genesis) {
			return fmt.Errorf("%w: the peer's block 0 has header hash %x, the configuration pins %x; block 0 not indexed, indexing stopped",
				ErrGenesis, got, f.Genesis)
		}
	}
	b, perr := chain.Parse(raw)
	if perr != nil {
		// Keep the block's place in the index with what its header says.
		b = &chain.Block{Number: n, PreviousHash: raw.GetHeader().GetPreviousHash(), DataHash: raw.GetHeader().GetDataHash()}
		b.HeaderHash, _ = chain.HeaderHash(raw.GetHeader())
	}
	verr := verifier.Verify(raw, b)
	if verr == nil && perr != nil {
		verr = fmt.Errorf("block %d cannot be read: %w", n, perr)
	}
	integrity.Checked, integrity.CheckedThrough = true, n
	if verr != nil && integrity.Broken == nil {
		integrity.Broken = &index.Break{Block: n, Reason: verr.Error()}
		f.Log.Error("chain integrity broken", "block", n, "err", verr)
	}
	var cfg *channel.Config
	if b.Config && perr == nil {
		var err error
		if cfg, err = channel.FromBlock(raw); err != nil {
			f.Log.Warn("config block unreadable", "block", n, "err", err)
		}
	}
	state, err := json.Marshal(verifier.State())
	if err != nil {
		return err
	}
	if err := f.Store.Add(b, *integrity, state, cfg); err != nil {
		return fmt.Errorf("index block %d: %w", n, err)
	}
	findings, err := f.Store.FindingsIn(n)
	if err != nil {
		return fmt.Errorf("findings of block %d: %w", n, err)
	}
	for _, x := range findings {
		f.Log.Error("integrity finding: a valid transaction wrote what the chaincode never would", "block", n, "tx", x.TxID,
			"kind", x.Kind, "key", x.Key, "submitter", x.Submitter, "endorsers", x.Endorsers, "problem", x.Problem)
	}
	if f.OnBlock != nil {
		f.OnBlock(n)
	}
	return nil
}
