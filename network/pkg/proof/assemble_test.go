package proof

import (
	"context"
	"errors"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
)

// A bundle assembled from a peer's blocks verifies, and the configuration
// blocks are read from the peer once.
func TestAssembler(t *testing.T) {
	src := load(t, "fresh")
	blocks := map[uint64]*common.Block{}
	var numbers []uint64
	for _, data := range append(append([][]byte{src.Genesis}, src.Config...), src.Block) {
		b, err := decodeBlock(data)
		if err != nil {
			t.Fatal(err)
		}
		blocks[b.Header.Number] = b
		if data != nil && b.Header.Number != blocksNumber(t, src.Block) {
			numbers = append(numbers, b.Header.Number)
		}
	}
	reads := map[uint64]int{}
	a := NewAssembler(src.Channel, func(_ context.Context, n uint64) (*common.Block, error) {
		reads[n]++
		if b := blocks[n]; b != nil {
			return b, nil
		}
		return nil, errors.New("no such block")
	})
	n := blocksNumber(t, src.Block)
	for range 2 {
		b, err := a.Bundle(context.Background(), src.MeterID, src.TxID, n, numbers, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(b, opts(t)); err != nil {
			t.Fatal(err)
		}
	}
	if reads[0] != 1 || reads[numbers[len(numbers)-1]] != 1 || reads[n] != 2 {
		t.Errorf("block reads %v: each configuration block once, the attestation's each time", reads)
	}
	bare, err := a.Bundle(context.Background(), src.MeterID, src.TxID, n, nil, false)
	if err != nil || bare.Genesis != nil || bare.Config != nil {
		t.Fatalf("without the chain: %v", err)
	}
	if _, err := a.Bundle(context.Background(), src.MeterID, src.TxID, n, numbers[1:], true); err == nil {
		t.Error("a chain without the genesis block was assembled")
	}
}

func blocksNumber(t *testing.T, data []byte) uint64 {
	t.Helper()
	b, err := decodeBlock(data)
	if err != nil {
		t.Fatal(err)
	}
	return b.Header.Number
}
