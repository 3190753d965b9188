package chain

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"
)

func FuzzParse(f *testing.F) {
	for _, raw := range rawBlocks(f) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBytes(data)
		if err != nil {
			return
		}
		for i := range b.Txs {
			b.Txs[i].ArgsForDisplay()
		}
		if _, err := json.Marshal(b); err != nil {
			t.Fatal(err)
		}
		var raw common.Block
		if err := proto.Unmarshal(data, &raw); err != nil {
			t.Fatalf("ParseBytes accepted what does not decode: %v", err)
		}
		// A fresh verifier takes any block as a candidate genesis block.
		_ = NewVerifier().Verify(&raw, b)
	})
}

// FuzzVerify mutates block 5: whatever Verify accepts must have the header
// and transactions of the real block 5 (only unsigned metadata may differ).
func FuzzVerify(f *testing.F) {
	raws := rawBlocks(f)
	f.Add(raws[5])
	genuine := realChain(f)[5]
	state := verifierAt(f, 5).State()
	f.Fuzz(func(t *testing.T, data []byte) {
		var b common.Block
		if proto.Unmarshal(data, &b) != nil {
			return
		}
		v, err := NewVerifierFrom(state)
		if err != nil {
			t.Fatal(err)
		}
		if v.Verify(&b, nil) != nil {
			return
		}
		if !proto.Equal(b.Header, genuine.Header) || len(b.Data.GetData()) != len(genuine.Data.Data) {
			t.Fatalf("accepted a block with another header or transaction count")
		}
		for i, d := range b.Data.Data {
			if !bytes.Equal(d, genuine.Data.Data[i]) {
				t.Fatalf("accepted a block with another transaction %d", i)
			}
		}
	})
}
