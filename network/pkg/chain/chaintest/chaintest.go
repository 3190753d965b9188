// Package chaintest gives tests the real blocks of a fresh channel as a
// peer served them: testdata/blocks at the repository root (made by
// testdata/generate.sh ledger).
package chaintest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"
)

// Dir is the directory of the blocks, whichever package's test asks.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "testdata", "blocks")
}

// Blocks decodes every block of Dir, from block 0 on; each call returns
// fresh copies that a test may tamper with.
func Blocks(tb testing.TB) []*common.Block {
	tb.Helper()
	var out []*common.Block
	for n := 0; ; n++ {
		raw, err := os.ReadFile(filepath.Join(Dir(), fmt.Sprintf("%04d.block", n)))
		if os.IsNotExist(err) {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		b := new(common.Block)
		if err := proto.Unmarshal(raw, b); err != nil {
			tb.Fatalf("block %d: %v", n, err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		tb.Fatalf("no blocks in %s", Dir())
	}
	return out
}
