package proof

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
)

// Blocks reads a block of the channel by number, from a peer (the
// registry's and the explorer's ledger connections) or a copy.
type Blocks func(ctx context.Context, n uint64) (*common.Block, error)

// Assembler makes the bundles of attestations from a channel's blocks. The
// configuration blocks never change once committed, so it keeps them: a
// bundle costs one block read plus the configuration blocks made since the
// last one.
type Assembler struct {
	channel string
	blocks  Blocks

	mu     sync.Mutex
	config map[uint64]*common.Block
}

// NewAssembler makes bundles of the channel from blocks.
func NewAssembler(channel string, blocks Blocks) *Assembler {
	return &Assembler{channel: channel, blocks: blocks, config: map[uint64]*common.Block{}}
}

// Bundle assembles the bundle of attestation txID of meterID in block. With
// the chain, configBlocks are the numbers of the channel's configuration
// blocks up to the attestation's block, ascending, starting with 0 (an
// index of the chain knows them); without it they are not read.
func (a *Assembler) Bundle(ctx context.Context, meterID, txID string, block uint64, configBlocks []uint64, withChain bool) (*Bundle, error) {
	b, err := a.blocks(ctx, block)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", block, err)
	}
	if !withChain {
		return Build(a.channel, meterID, txID, nil, nil, b)
	}
	if len(configBlocks) == 0 || configBlocks[0] != 0 {
		return nil, errors.New("the configuration blocks given do not start with the genesis block")
	}
	chain := make([]*common.Block, 0, len(configBlocks))
	for _, n := range configBlocks {
		if n >= block {
			break
		}
		c, err := a.configBlock(ctx, n)
		if err != nil {
			return nil, err
		}
		chain = append(chain, c)
	}
	return Build(a.channel, meterID, txID, chain[0], chain[1:], b)
}

func (a *Assembler) configBlock(ctx context.Context, n uint64) (*common.Block, error) {
	a.mu.Lock()
	b := a.config[n]
	a.mu.Unlock()
	if b != nil {
		return b, nil
	}
	b, err := a.blocks(ctx, n)
	if err != nil {
		return nil, fmt.Errorf("configuration block %d: %w", n, err)
	}
	if got := b.GetHeader().GetNumber(); got != n {
		return nil, fmt.Errorf("asked for block %d, got block %d", n, got)
	}
	a.mu.Lock()
	a.config[n] = b
	a.mu.Unlock()
	return b, nil
}
