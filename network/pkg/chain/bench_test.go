package chain

import (
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"
)

// BenchmarkParseVerify decodes, parses and verifies one block as the explorer
// does for each block it reads: the largest of the test chain (the genesis
// block, whose configuration the verifier reads) and the largest signed one
// (three ECDSA verifications).
func BenchmarkParseVerify(b *testing.B) {
	raws := rawBlocks(b)
	largest := func(from int) int {
		n := from
		for i := from; i < len(raws); i++ {
			if len(raws[i]) > len(raws[n]) {
				n = i
			}
		}
		return n
	}
	for _, bc := range []struct {
		name  string
		block int
	}{{"genesis", largest(0)}, {"signed", largest(1)}} {
		b.Run(bc.name, func(b *testing.B) {
			raw := raws[bc.block]
			state := verifierAt(b, bc.block).State()
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				v, err := NewVerifierFrom(state)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				var cb common.Block
				if err := proto.Unmarshal(raw, &cb); err != nil {
					b.Fatal(err)
				}
				parsed, err := Parse(&cb)
				if err != nil {
					b.Fatal(err)
				}
				if err := v.Verify(&cb, parsed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
