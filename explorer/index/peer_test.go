package index_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/chain/chaintest"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// realBlocks are blocks 0-12 of a fresh channel as a peer served them
// (testdata/blocks at the repository root).
func realBlocks(t *testing.T) []*common.Block {
	t.Helper()
	out := chaintest.Blocks(t)
	if len(out) < 10 {
		t.Fatalf("only %d testdata blocks", len(out))
	}
	return out
}

// realMeter is the meter whose readings the real blocks hold (blocks 6
// and 9, one before and one after a key rotation).
const realMeter = "PTB-E2E-909092945-1"

// The explorer's peer serves the blocks the index was built from: the
// transactions and readings read from them are those of the chain. A peer
// that serves anything else is caught, however it goes about it.
func TestFromPeer(t *testing.T) {
	raws := realBlocks(t)
	s, _ := open(t)
	for _, raw := range raws {
		b, err := chain.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		add(t, s, b)
	}
	served := map[uint64]*common.Block{}
	peerOf := func(ctx context.Context, n uint64) (*common.Block, error) {
		if b := served[n]; b != nil {
			return b, nil
		}
		if n < uint64(len(raws)) {
			return raws[n], nil
		}
		return nil, errNoBlock
	}
	src := s.FromPeer(peerOf)
	ctx := context.Background()
	for n := range raws {
		b, err := src.Block(ctx, uint64(n))
		if err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
		sum, _ := s.Block(uint64(n))
		if len(b.Txs) != len(sum.Txs) || b.Txs[0].ID != sum.Txs[0].ID {
			t.Fatalf("block %d read as %+v", n, b)
		}
	}

	v, err := s.Meter(realMeter, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Recent) != 2 || v.Recent[0].Block != 9 || v.Recent[1].Block != 6 {
		t.Fatalf("the real meter's readings: %+v", v.Recent)
	}
	if err := index.NewEvidence(src, 0).Readings(ctx, realMeter, v.Recent); err != nil {
		t.Fatal(err)
	}
	for _, r := range v.Recent {
		if !r.Read || r.Outcome != meter.OutcomeAccepted || r.Value == "" || r.Unit == "" || r.KeyVersion == 0 {
			t.Errorf("reading of block %d: %+v", r.Block, r)
		}
	}
	if v.Recent[0].KeyVersion != 2 || v.Recent[1].KeyVersion != 1 {
		t.Errorf("key versions %d and %d, want 2 after the rotation and 1 before", v.Recent[0].KeyVersion, v.Recent[1].KeyVersion)
	}

	tamper := func(n uint64, change func(b *common.Block)) *common.Block {
		b := proto.Clone(raws[n]).(*common.Block)
		change(b)
		return b
	}
	for _, tc := range []struct {
		name string
		n    uint64
		b    *common.Block
	}{
		{"a byte of a transaction changed", 6, tamper(6, func(b *common.Block) { b.Data.Data[0][len(b.Data.Data[0])-40] ^= 1 })},
		{"the data hash changed with it", 6, tamper(6, func(b *common.Block) {
			b.Data.Data[0][len(b.Data.Data[0])-40] ^= 1
			b.Header.DataHash = dataHash(b.Data.Data)
		})},
		{"the validation code changed", 6, tamper(6, func(b *common.Block) {
			b.Metadata.Metadata[common.BlockMetadataIndex_TRANSACTIONS_FILTER][0] = byte(peer.TxValidationCode_MVCC_READ_CONFLICT)
		})},
		{"another block", 6, raws[9]},
		{"a transaction dropped", 3, tamper(3, func(b *common.Block) {
			b.Data.Data = b.Data.Data[:1]
			b.Header.DataHash = dataHash(b.Data.Data)
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			served[tc.n] = tc.b
			defer delete(served, tc.n)
			if _, err := src.Block(ctx, tc.n); !errors.Is(err, index.ErrMismatch) {
				t.Errorf("block %d: %v, want ErrMismatch", tc.n, err)
			}
		})
	}
	if _, err := src.Block(ctx, 99); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("a block not indexed: %v", err)
	}
}

func dataHash(data [][]byte) []byte {
	h := sha256.New()
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}
