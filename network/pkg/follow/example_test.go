package follow_test

import (
	"context"
	"fmt"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/follow"
)

// store is an index of parsed blocks that keeps only its checkpoint.
type store struct{ next uint64 }

func (s *store) Next() uint64 { return s.next }

func (s *store) Add(b *chain.Block) error {
	s.next = b.Number + 1
	return nil
}

// An index resumes from its checkpoint, block 2; a peer's stream would come
// from follow.FromNetwork.
func Example() {
	peer := func(ctx context.Context, from uint64) (<-chan *common.Block, error) {
		ch := make(chan *common.Block)
		go func() {
			defer close(ch)
			for n := from; n < 5; n++ {
				b := &common.Block{Header: &common.BlockHeader{Number: n}, Data: &common.BlockData{},
					Metadata: &common.BlockMetadata{Metadata: make([][]byte, len(common.BlockMetadataIndex_name))}}
				select {
				case ch <- b:
				case <-ctx.Done():
					return
				}
			}
		}()
		return ch, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	x := &store{next: 2}
	err := follow.Run(ctx, peer, follow.Parsed(x), follow.Options{OnBlock: func(n uint64) {
		fmt.Println("indexed block", n)
		if n == 4 {
			cancel()
		}
	}})
	fmt.Println(err, x.Next())
	// Output:
	// indexed block 2
	// indexed block 3
	// indexed block 4
	// <nil> 5
}
