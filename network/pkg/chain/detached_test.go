package chain

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/orderer"
)

func wantDetached(t *testing.T, err error, block uint64, kind error, reason string) {
	t.Helper()
	var ie *IntegrityError
	if !errors.As(err, &ie) || ie.Block != block || !errors.Is(err, kind) || !strings.Contains(ie.Reason, reason) {
		t.Fatalf("got %v, want block %d to fail with %v: %q", err, block, kind, reason)
	}
}

// Every real block verifies on its own against the genesis block's
// configuration, in any order, as a sequential verifier verifies it.
func TestAnchorVerifiesRealBlocks(t *testing.T) {
	blocks := realChain(t)
	a, err := GenesisAnchor(blocks[0])
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := GenesisHash(blocks[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.HeaderHash, pinned) || a.Number != 0 || a.Channel != "metrology" || a.Consenters() != 4 || a.Config.Sequence != 0 {
		t.Fatalf("anchor: number %d, channel %q, %d consenters, sequence %d, hash %x (pinned %x)", a.Number, a.Channel, a.Consenters(), a.Config.Sequence, a.HeaderHash, pinned)
	}
	for n := chainLength - 1; n >= 1; n-- {
		marks, err := a.VerifyBlock(blocks[n])
		if err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
		parsed, err := Parse(blocks[n])
		if err != nil {
			t.Fatal(err)
		}
		if err := verifierAt(t, n).Verify(blocks[n], parsed); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(marks, parsed.Signatures) {
			t.Errorf("block %d: detached signatures %+v, sequential %+v", n, marks, parsed.Signatures)
		}
		if last, err := SignedLastConfig(blocks[n]); err != nil || last != 0 {
			t.Errorf("block %d: signed last configuration %d, %v", n, last, err)
		}
	}
}

func TestAnchorRefusesTamperedBlocks(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(testing.TB, *common.Block)
		kind   error
		reason string
	}{
		{"transaction byte flipped", func(t testing.TB, b *common.Block) { flipIn(t, b.Data.Data[0], "PTB-E2E") },
			ErrDataHash, "data hash mismatch"},
		{"data re-hashed into the header", func(t testing.TB, b *common.Block) {
			flipIn(t, b.Data.Data[0], "PTB-E2E")
			b.Header.DataHash = dataHash(b)
		}, ErrQuorum, "0 distinct consenters of 4 validly signed"},
		{"previous hash changed", func(_ testing.TB, b *common.Block) { b.Header.PreviousHash[0] ^= 1 },
			ErrQuorum, "0 distinct consenters of 4 validly signed"},
		{"number changed", func(_ testing.TB, b *common.Block) { b.Header.Number = 9 },
			ErrQuorum, "0 distinct consenters of 4 validly signed"},
		{"one of three signatures removed", func(t testing.TB, b *common.Block) {
			md := signatures(t, b)
			md.Signatures = md.Signatures[1:]
			setSignatures(t, b, md)
		}, ErrQuorum, "2 distinct consenters of 4 validly signed, a BFT quorum is 3"},
		{"signer not a consenter", func(t testing.TB, b *common.Block) {
			md := signatures(t, b)
			md.Signatures[0].IdentifierHeader = identifierHeader(t, 9)
			setSignatures(t, b, md)
		}, ErrQuorum, "consenter 9 is not in the consenter set"},
		{"two transactions merged into one", func(_ testing.TB, b *common.Block) {
			b.Data.Data = [][]byte{slices.Concat(b.Data.Data...)}
			b.Header.DataHash = dataHash(b)
		}, ErrData, "not canonically encoded"},
		{"no header", func(_ testing.TB, b *common.Block) { b.Header = nil }, ErrHeader, "no header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks := realChain(t)
			a, err := GenesisAnchor(blocks[0])
			if err != nil {
				t.Fatal(err)
			}
			b := blocks[5]
			if tt.name == "two transactions merged into one" {
				b = blocks[1] // two transactions
			}
			tt.tamper(t, b)
			n := uint64(1) // a block without a header is reported as the anchor's next
			if b.Header != nil {
				n = b.Header.Number
			}
			_, err = a.VerifyBlock(b)
			wantDetached(t, err, n, tt.kind, tt.reason)
		})
	}
	blocks := realChain(t)
	a, err := GenesisAnchor(blocks[0])
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.VerifyBlock(blocks[0])
	wantDetached(t, err, 0, ErrOrder, "block 0 is not after configuration block 0")
	_, err = GenesisAnchor(blocks[3])
	wantDetached(t, err, 3, ErrOrder, "block 3 is not a genesis block")
	blocks[0].Data.Data[0][len(blocks[0].Data.Data[0])-1] ^= 1
	_, err = GenesisAnchor(blocks[0])
	wantDetached(t, err, 0, ErrDataHash, "data hash mismatch")
}

// configBlockTx is a configuration transaction of a channel at a sequence.
func configBlockTx(t testing.TB, channelID string, seq uint64, consenters []*fakeOrderer) []byte {
	var mapping []*common.Consenter
	for _, o := range consenters {
		mapping = append(mapping, &common.Consenter{Id: o.id, Host: "127.0.0.1", Port: 7050, MspId: o.msp, Identity: o.cert})
	}
	cfg := &common.Config{Sequence: seq, ChannelGroup: &common.ConfigGroup{Groups: map[string]*common.ConfigGroup{
		"Application": {},
		"Orderer": {Values: map[string]*common.ConfigValue{
			"ConsensusType": {Value: mustMarshal(t, &orderer.ConsensusType{Type: "BFT"})},
			"Orderers":      {Value: mustMarshal(t, &common.Orderers{ConsenterMapping: mapping})},
		}},
	}}}
	return mustMarshal(t, &common.Envelope{
		Payload: mustMarshal(t, &common.Payload{
			Header: &common.Header{
				ChannelHeader:   mustMarshal(t, &common.ChannelHeader{Type: int32(common.HeaderType_CONFIG), ChannelId: channelID, TxId: "config"}),
				SignatureHeader: mustMarshal(t, &common.SignatureHeader{}),
			},
			Data: mustMarshal(t, &common.ConfigEnvelope{Config: cfg}),
		}),
	})
}

// A chain of configuration blocks verified detached: each one signed by the
// consenters before it, its sequence one more, its own number signed as the
// last configuration; blocks after it need its consenters and its number.
func TestAnchorConfigChain(t *testing.T) {
	setA, setB, setC := fakeOrderers(t, 1, 2, 3, 4), fakeOrderers(t, 5, 6, 7, 8), fakeOrderers(t, 9, 10, 11, 12)
	c := &fakeChain{t: t}
	genesis := c.add(c.next(configBlockTx(t, "metrology", 0, setA)))
	c.sign(c.add(c.next(endorserTx(t, "tx1"))), 0, false, setA[0], setA[1], setA[2])
	cfg2 := c.add(c.next(configBlockTx(t, "metrology", 1, setB)))
	c.sign(cfg2, 2, false, setA[1], setA[2], setA[3])
	c.sign(c.add(c.next(endorserTx(t, "tx3"))), 2, false, setB[0], setB[1], setB[2])
	cfg4 := c.add(c.next(configBlockTx(t, "metrology", 2, setC)))
	c.sign(cfg4, 4, true, setB[0], setB[2], setB[3])
	b5 := c.add(c.next(endorserTx(t, "tx5")))
	c.sign(b5, 4, false, setC[0], setC[1], setC[3])

	// The sequential verifier agrees with the chain.
	v := NewVerifier()
	for _, b := range c.blocks {
		if err := v.Verify(b, nil); err != nil {
			t.Fatal(err)
		}
	}

	a0, err := GenesisAnchor(genesis)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := a0.NextConfig(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	a4, err := a2.NextConfig(cfg4)
	if err != nil {
		t.Fatal(err)
	}
	if a4.Number != 4 || a4.Config.Sequence != 2 || a4.Channel != "metrology" {
		t.Fatalf("anchor 4: number %d, sequence %d, channel %q", a4.Number, a4.Config.Sequence, a4.Channel)
	}
	marks, err := a4.VerifyBlock(b5)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint32
	for _, m := range marks {
		ids = append(ids, m.ConsenterID)
	}
	if !slices.Equal(ids, []uint32{9, 10, 12}) {
		t.Errorf("block 5 signed by %v", ids)
	}
	if _, err := a2.VerifyBlock(c.blocks[3]); err != nil {
		t.Errorf("block 3 with configuration block 2: %v", err)
	}

	// Configuration block 2 left out: block 4's sequence gives it away.
	_, err = a0.NextConfig(cfg4)
	wantDetached(t, err, 4, ErrConfig, "configuration sequence 2 follows sequence 0 of block 0: 1 configuration blocks between them are left out")
	// Configuration block 4 left out: block 5's orderers name it.
	_, err = a2.VerifyBlock(b5)
	wantDetached(t, err, 5, ErrQuorum, "0 distinct consenters of 4 validly signed")
	c.sign(b5, 4, false, setB[0], setB[1], setB[3])
	_, err = a2.VerifyBlock(b5)
	wantDetached(t, err, 5, ErrConfig, "the orderers signed last configuration block 4, the chain given ends at configuration block 2: the configuration blocks up to block 4 are left out")
	// A block that names an older configuration than the anchor before it.
	c.sign(b5, 2, false, setC[0], setC[1], setC[3])
	_, err = a4.VerifyBlock(b5)
	wantDetached(t, err, 5, ErrConfig, "the orderers signed last configuration block 2, but configuration block 4 precedes block 5")

	// The same configuration block twice, or one before the anchor.
	_, err = a2.NextConfig(cfg2)
	wantDetached(t, err, 2, ErrOrder, "configuration block 2 does not follow configuration block 2")
	// Not a configuration block.
	_, err = a2.NextConfig(c.blocks[3])
	wantDetached(t, err, 3, ErrConfig, "block 3 is not a configuration block")
	_, err = a0.VerifyBlock(cfg2)
	wantDetached(t, err, 2, ErrConfig, "block 2 is a configuration block")

	tests := []struct {
		name   string
		block  func() *common.Block
		kind   error
		reason string
	}{
		{"signed by the new consenters", func() *common.Block {
			b := c.next(configBlockTx(t, "metrology", 1, setB))
			b.Header.Number = 2
			b.Header.PreviousHash = cfg2.Header.PreviousHash
			c.sign(b, 2, false, setB[0], setB[1], setB[2])
			return b
		}, ErrQuorum, "consenter 5 is not in the consenter set"},
		{"not naming itself as the last configuration", func() *common.Block {
			b := c.next(configBlockTx(t, "metrology", 1, setB))
			b.Header.Number = 2
			b.Header.PreviousHash = cfg2.Header.PreviousHash
			c.sign(b, 0, false, setA[0], setA[1], setA[2])
			return b
		}, ErrConfig, "the orderers signed last configuration block 0, not the configuration block itself"},
		{"of another channel", func() *common.Block {
			b := c.next(configBlockTx(t, "other", 1, setB))
			b.Header.Number = 2
			c.sign(b, 2, false, setA[0], setA[1], setA[2])
			return b
		}, ErrConfig, `the configuration is of channel "other", not "metrology"`},
		{"sequence not increased", func() *common.Block {
			b := c.next(configBlockTx(t, "metrology", 0, setB))
			b.Header.Number = 2
			c.sign(b, 2, false, setA[0], setA[1], setA[2])
			return b
		}, ErrConfig, "configuration sequence 0 does not follow sequence 0 of block 0"},
		{"data changed", func() *common.Block {
			b := c.next(configBlockTx(t, "metrology", 1, setB))
			b.Header.Number = 2
			c.sign(b, 2, false, setA[0], setA[1], setA[2])
			b.Data.Data[0][len(b.Data.Data[0])-3] ^= 1
			return b
		}, ErrDataHash, "data hash mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a0.NextConfig(tt.block())
			wantDetached(t, err, 2, tt.kind, tt.reason)
		})
	}
}
