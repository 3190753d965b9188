// Package follow keeps the explorer's index in step with the channel: it
// reads the peer's blocks from the index's checkpoint on (package
// network/pkg/follow, which reconnects when the stream breaks), checks
// each block's integrity from the pinned genesis block on, and indexes it.
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

	"github.com/hyperledger/fabric-protos-go-apiv2/common"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/channel"
	blockfollow "github.com/inter-nmi/pki/network/pkg/follow"
)

// ErrGenesis means the channel's block 0, as the peer serves it or as the
// index was built from, is not the genesis block the configuration pins.
var ErrGenesis = errors.New("not the pinned genesis block")

// Follower indexes blocks as they come.
type Follower struct {
	// Blocks is the channel's blocks (FromNetwork of network/pkg/follow).
	Blocks blockfollow.Blocks
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
// indexed nothing more, if block 0 is not the pinned genesis block. A block
// the index fails to store is tried again until it can be: the explorer
// falls behind, it does not stop.
func (f *Follower) Run(ctx context.Context) error {
	if len(f.Genesis) != sha256.Size {
		return fmt.Errorf("the genesis block hash is not pinned: %d bytes, want %d", len(f.Genesis), sha256.Size)
	}
	s := &sink{f: f}
	if err := s.load(); err != nil {
		return err
	}
	if s.next > 0 {
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
	return blockfollow.Run(ctx, f.Blocks, s, blockfollow.Options{OnBlock: f.OnBlock, Backoff: time.Second, MaxBackoff: 30 * time.Second, Log: f.Log})
}

// sink checks and indexes the blocks Run reads. Its verifier and verdict
// are those of the index's checkpoint, next.
type sink struct {
	f         *Follower
	next      uint64
	verifier  *chain.Verifier
	integrity index.Integrity
}

// load takes the checkpoint, the verifier's state and the verdict from the
// index.
func (s *sink) load() error {
	next, saved, err := s.f.Store.Checkpoint()
	if err != nil {
		return err
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
	integrity, err := s.f.Store.Integrity()
	if err != nil {
		return err
	}
	s.next, s.verifier, s.integrity = next, verifier, integrity
	return nil
}

func (s *sink) Next() uint64 { return s.next }

// Add checks and indexes a block. When the index fails to store it, the
// verifier and the verdict, which took the block in, go back to the
// index's, so that the block is checked again when it comes again.
func (s *sink) Add(raw *common.Block, b *chain.Block, perr error) error {
	err := s.add(raw, b, perr)
	if err == nil {
		return nil
	}
	if _, fatal := errors.AsType[*blockfollow.FatalError](err); fatal {
		return err
	}
	if lerr := s.load(); lerr != nil {
		return blockfollow.Fatal(fmt.Errorf("%w; and the index cannot be read again: %w", err, lerr))
	}
	return err
}

// add checks and indexes one block, parsed as b or not parsed (perr). The
// first integrity failure is kept as the verdict; later blocks are still
// indexed, so auditors can look at what came after it.
func (s *sink) add(raw *common.Block, b *chain.Block, perr error) error {
	f := s.f
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
			return blockfollow.Fatal(fmt.Errorf("%w: the peer's block 0 has header hash %x, the configuration pins %x; block 0 not indexed, indexing stopped",
				ErrGenesis, got, f.Genesis))
		}
	}
	if perr != nil {
		// Keep the block's place in the index with what its header says.
		b = &chain.Block{Number: n, PreviousHash: raw.GetHeader().GetPreviousHash(), DataHash: raw.GetHeader().GetDataHash()}
		b.HeaderHash, _ = chain.HeaderHash(raw.GetHeader())
	}
	verr := s.verifier.Verify(raw, b)
	if verr == nil && perr != nil {
		verr = fmt.Errorf("block %d cannot be read: %w", n, perr)
	}
	s.integrity.Checked, s.integrity.CheckedThrough = true, n
	if verr != nil && s.integrity.Broken == nil {
		s.integrity.Broken = &index.Break{Block: n, Reason: verr.Error()}
		f.Log.Error("chain integrity broken", "block", n, "err", verr)
	}
	var cfg *channel.Config
	if b.Config && perr == nil {
		var err error
		if cfg, err = channel.FromBlock(raw); err != nil {
			f.Log.Warn("config block unreadable", "block", n, "err", err)
		}
	}
	state, err := json.Marshal(s.verifier.State())
	if err != nil {
		return err
	}
	if err := f.Store.Add(b, s.integrity, state, cfg); err != nil {
		return fmt.Errorf("index block %d: %w", n, err)
	}
	s.next = n + 1
	findings, err := f.Store.FindingsIn(n)
	if err != nil {
		// The block is indexed; its findings are there for auditors.
		f.Log.Warn("the findings of the block indexed cannot be read", "block", n, "err", err)
	}
	for _, x := range findings {
		f.Log.Error("integrity finding: a valid transaction wrote what the chaincode never would", "block", n, "tx", x.TxID,
			"kind", x.Kind, "key", x.Key, "submitter", x.Submitter, "endorsers", x.Endorsers, "problem", x.Problem)
	}
	return nil
}
