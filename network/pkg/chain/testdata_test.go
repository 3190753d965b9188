package chain

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"
)

// chainLength is the number of blocks in testdata/blocks.
const chainLength = 13

func blockPath(n int) string {
	return filepath.Join("..", "..", "..", "testdata", "blocks", fmt.Sprintf("%04d.block", n))
}

// rawBlocks reads the bytes of the real blocks 0-12.
func rawBlocks(tb testing.TB) [][]byte {
	tb.Helper()
	out := make([][]byte, chainLength)
	for n := range out {
		b, err := os.ReadFile(blockPath(n))
		if err != nil {
			tb.Fatal(err)
		}
		out[n] = b
	}
	return out
}

// realChain decodes the real blocks 0-12; each call returns fresh copies
// that a test may tamper with.
func realChain(tb testing.TB) []*common.Block {
	tb.Helper()
	var out []*common.Block
	for n, raw := range rawBlocks(tb) {
		var b common.Block
		if err := proto.Unmarshal(raw, &b); err != nil {
			tb.Fatalf("block %d: %v", n, err)
		}
		out = append(out, &b)
	}
	return out
}

// parsedChain parses the real blocks 0-12.
func parsedChain(tb testing.TB) []*Block {
	tb.Helper()
	var out []*Block
	for _, raw := range realChain(tb) {
		b, err := Parse(raw)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}
