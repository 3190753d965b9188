package chain

import (
	"bytes"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"
)

// verifierAt returns a verifier that has verified the real blocks 0..n-1.
func verifierAt(t testing.TB, n int) *Verifier {
	t.Helper()
	v := NewVerifier()
	for _, b := range realChain(t)[:n] {
		if err := v.Verify(b, nil); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

func signatures(t testing.TB, b *common.Block) *common.Metadata {
	t.Helper()
	var md common.Metadata
	if err := proto.Unmarshal(b.Metadata.Metadata[common.BlockMetadataIndex_SIGNATURES], &md); err != nil {
		t.Fatal(err)
	}
	return &md
}

func setSignatures(t testing.TB, b *common.Block, md *common.Metadata) {
	t.Helper()
	raw, err := proto.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	b.Metadata.Metadata[common.BlockMetadataIndex_SIGNATURES] = raw
}

func identifierHeader(t testing.TB, id uint32) []byte {
	t.Helper()
	raw, err := proto.Marshal(&common.IdentifierHeader{Identifier: id, Nonce: []byte("nonce")})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// flipIn changes one byte of what inside data.
func flipIn(t testing.TB, data []byte, what string) {
	t.Helper()
	i := bytes.Index(data, []byte(what))
	if i < 0 {
		t.Fatalf("%q not found", what)
	}
	data[i] ^= 0x01
}

// highS turns an ECDSA P-256 signature (r, s) into the equally valid (r, n-s).
func highS(t testing.TB, sig []byte) []byte {
	t.Helper()
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &rs); err != nil {
		t.Fatal(err)
	}
	rs.S.Sub(elliptic.P256().Params().N, rs.S)
	out, err := asn1.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerifyRealChain(t *testing.T) {
	v := NewVerifier()
	signers := map[string]int{}
	for n, raw := range realChain(t) {
		b, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(raw, b); err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
		if n == 0 {
			continue
		}
		if len(b.Signatures) != 3 {
			t.Errorf("block %d: %d signatures", n, len(b.Signatures))
		}
		for i, s := range b.Signatures {
			if !s.Valid || s.MSPID == "" || !strings.HasPrefix(s.Subject, "CN=orderer0.") {
				t.Errorf("block %d signature %d: %+v", n, i, s)
			}
			signers[s.MSPID]++
		}
	}
	// Four of the five NMIs run an orderer; the fifth (NMIM) has none.
	if _, ok := signers["NMIMMSP"]; ok || len(signers) != 4 {
		t.Errorf("signers: %v", signers)
	}
	s := v.State()
	if s.Next != chainLength || s.LastConfig != 0 || len(s.Consenters) != 4 {
		t.Errorf("state after the chain: next %d, last config %d, %d consenters", s.Next, s.LastConfig, len(s.Consenters))
	}
	if !bytes.Equal(s.PreviousHash, parsedChain(t)[chainLength-1].HeaderHash) {
		t.Errorf("state's previous hash is not block 12's header hash")
	}
}

func TestQuorum(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 2, 3: 2, 4: 3, 5: 4, 6: 4, 7: 5, 10: 7} {
		if got := Quorum(n); got != want {
			t.Errorf("Quorum(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestVerifyTampered(t *testing.T) {
	tests := []struct {
		name   string
		block  int // the block tampered with, fed after the genuine blocks before it
		tamper func(testing.TB, *common.Block)
		kind   error
		reason string
	}{
		{"transaction byte flipped", 5, func(t testing.TB, b *common.Block) { flipIn(t, b.Data.Data[0], "PTB-E2E") },
			ErrDataHash, "data hash mismatch"},
		{"transaction appended", 5, func(_ testing.TB, b *common.Block) { b.Data.Data = append(b.Data.Data, b.Data.Data[0]) },
			ErrDataHash, "data hash mismatch"},
		{"data re-hashed into the header", 5, func(t testing.TB, b *common.Block) {
			flipIn(t, b.Data.Data[0], "PTB-E2E")
			b.Header.DataHash = dataHash(b)
		}, ErrQuorum, "0 distinct consenters of 4 validly signed, a BFT quorum is 3"},
		{"two transactions merged into one", 1, func(_ testing.TB, b *common.Block) {
			b.Data.Data = [][]byte{slices.Concat(b.Data.Data...)}
		}, ErrData, "transaction 0 is not canonically encoded"},
		{"no transactions", 5, func(_ testing.TB, b *common.Block) {
			b.Data.Data = nil
			b.Header.DataHash = dataHash(b)
		}, ErrData, "no transactions"},
		{"previous hash changed", 5, func(_ testing.TB, b *common.Block) { b.Header.PreviousHash[0] ^= 1 },
			ErrPreviousHash, "previous hash mismatch"},
		{"number changed", 5, func(_ testing.TB, b *common.Block) { b.Header.Number = 6 },
			ErrOrder, "expected block 5, got block 6"},
		{"no header", 5, func(_ testing.TB, b *common.Block) { b.Header = nil },
			ErrHeader, "no header"},
		{"one of three signatures removed", 5, func(t testing.TB, b *common.Block) {
			md := signatures(t, b)
			md.Signatures = md.Signatures[1:]
			setSignatures(t, b, md)
		}, ErrQuorum, "2 distinct consenters of 4 validly signed, a BFT quorum is 3"},
		{"all signatures removed", 5, func(t testing.TB, b *common.Block) {
			md := signatures(t, b)
			md.Signatures = nil
			setSignatures(t, b, md)
		}, ErrQuorum, "0 distinct consenters"},
		{"signatures metadata removed", 5, func(_ testing.TB, b *common.Block) { b.Metadata.Metadata[0] = nil },
			ErrQuorum, "0 distinct consenters"},
		{"signatures metadata garbled", 5, func(_ testing.TB, b *common.Block) { b.Metadata.Metadata[0] = []byte{0xff} },
			ErrQuorum, "signatures unreadable"},
		{"signature forged", 5, func(t testing.TB, b *common.Block) {
			md := signatures(t, b)
			sig := md.Signatures[1].Signature
			sig[len(sig)-1] ^= 1
			setSignatures(t, b, md)
		}, ErrQuorum, "signature 1: ECDSA signature does not verify"},
		{"signature malleated to high S", 5, func(t testing.TB, b *common.Block) {
			md := signatures(t, b)
			md.Signatures[2].Signature = highS(t, md.Signatures[2].Signature)
			setSignatures(t, b, md)
		}, ErrQuorum, "signature 2: ECDSA signature has a high S value"},
		{"signature not DER", 5, func(t testing.TB, b *common.Block) {
			md := signatures(t, b)
			md.Signatures[0].Signature = []byte("forged")
			setSignatures(t, b, md)
		}, ErrQuorum, "signature 0: signature is not a DER ECDSA signature"},
		{"one consenter's signature twice", 5, func(t testing.TB, b *common.Block) {
			md := signatures(t, b)
			md.Signatures[1] = md.Signatures[0]
			setSignatures(t, b, md)
		}, ErrQuorum, "2 distinct consenters of 4 validly signed"},
		{"signature attributed to another consenter", 5, func(t testing.TB, b *common.Block) {
			md := signatures(t, b)
			md.Signatures[0].IdentifierHeader = identifierHeader(t, 3) // consenter 3 did not sign block 5
			setSignatures(t, b, md)
		}, ErrQuorum, "signature 0: ECDSA signature does not verify"},
		{"signer not a consenter", 5, func(t testing.TB, b *common.Block) {
			md := signatures(t, b)
			md.Signatures[0].IdentifierHeader = identifierHeader(t, 9)
			setSignatures(t, b, md)
		}, ErrQuorum, "signature 0: consenter 9 is not in the consenter set"},
		{"signature header from no consenter", 5, func(t testing.TB, b *common.Block) {
			md := signatures(t, b)
			_, payload := txOf(t, b)
			md.Signatures[0].SignatureHeader = payload.Header.SignatureHeader // the client's
			setSignatures(t, b, md)
		}, ErrQuorum, "signature 0: signer CN=registrar@ptb.nmi.test,OU=client,O=ptb.nmi.test,C=DE of PTBMSP is not a consenter"},
		{"signed metadata value changed", 5, func(t testing.TB, b *common.Block) {
			md := signatures(t, b)
			md.Value = append(md.Value, 0)
			setSignatures(t, b, md)
		}, ErrQuorum, "0 distinct consenters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := verifierAt(t, tt.block)
			before := v.State()
			b := realChain(t)[tt.block]
			tt.tamper(t, b)
			err := v.Verify(b, nil)
			var ie *IntegrityError
			if !errors.As(err, &ie) {
				t.Fatalf("Verify: %v, want an *IntegrityError", err)
			}
			if ie.Block != uint64(tt.block) && !errors.Is(err, ErrOrder) {
				t.Errorf("Block = %d, want %d", ie.Block, tt.block)
			}
			if !errors.Is(err, tt.kind) || !strings.Contains(ie.Reason, tt.reason) {
				t.Errorf("got %v (kind %v), want kind %v and a reason with %q", err, ie.Err, tt.kind, tt.reason)
			}
			// A refused block changes nothing: the genuine one is still expected.
			if !reflect.DeepEqual(v.State(), before) {
				t.Errorf("state changed by a refused block")
			}
			if err := v.Verify(realChain(t)[tt.block], nil); err != nil {
				t.Errorf("genuine block after the tampered one: %v", err)
			}
		})
	}
}

func TestVerifyOutOfOrder(t *testing.T) {
	chain := realChain(t)
	tests := []struct {
		name   string
		fed    []int // genuine blocks fed successfully first
		next   int
		reason string
	}{
		{"skipped block", []int{0, 1, 2, 3, 4}, 6, "expected block 5, got block 6"},
		{"replayed block", []int{0, 1, 2, 3, 4}, 4, "expected block 5, got block 4"},
		{"no genesis", nil, 1, "expected block 0, got block 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewVerifier()
			for _, n := range tt.fed {
				if err := v.Verify(chain[n], nil); err != nil {
					t.Fatal(err)
				}
			}
			err := v.Verify(chain[tt.next], nil)
			var ie *IntegrityError
			if !errors.As(err, &ie) || !errors.Is(err, ErrOrder) || ie.Block != uint64(tt.next) || !strings.Contains(ie.Reason, tt.reason) {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestVerifyGenesisMustBeConfig(t *testing.T) {
	b := realChain(t)[5]
	b.Header.Number = 0
	err := NewVerifier().Verify(b, nil)
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "block 0 fails integrity: the genesis block is not a configuration block") {
		t.Fatalf("Verify: %v", err)
	}
}

// Extra signatures neither help nor harm: a forged one is marked invalid,
// and a repeated one counts once.
func TestVerifyExtraSignatures(t *testing.T) {
	tests := []struct {
		name  string
		extra func(testing.TB, *common.Metadata) *common.MetadataSignature
		valid bool
	}{
		{"forged", func(t testing.TB, md *common.Metadata) *common.MetadataSignature {
			return &common.MetadataSignature{IdentifierHeader: identifierHeader(t, 3), Signature: md.Signatures[0].Signature}
		}, false},
		{"repeated", func(_ testing.TB, md *common.Metadata) *common.MetadataSignature { return md.Signatures[0] }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := realChain(t)[5]
			md := signatures(t, raw)
			md.Signatures = append(md.Signatures, tt.extra(t, md))
			setSignatures(t, raw, md)
			b, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := verifierAt(t, 5).Verify(raw, b); err != nil {
				t.Fatal(err)
			}
			for i, s := range b.Signatures {
				if want := i < 3 || tt.valid; s.Valid != want {
					t.Errorf("signature %d: %+v, want valid %v", i, s, want)
				}
			}
		})
	}
}

// The validation codes are the committing peer's, in metadata that neither
// the hash chain nor the orderers' signatures cover: a peer can misreport
// them and Verify cannot tell. Block.CommitHash lets peers be compared.
func TestVerifyDoesNotCoverValidationCodes(t *testing.T) {
	raw := realChain(t)[12]
	raw.Metadata.Metadata[common.BlockMetadataIndex_TRANSACTIONS_FILTER][0] = 0 // ENDORSEMENT_POLICY_FAILURE → VALID
	b, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifierAt(t, 12).Verify(raw, b); err != nil || !b.Txs[0].Valid() {
		t.Fatalf("Verify: %v, valid %v", err, b.Txs[0].Valid())
	}
}

func TestVerifyParsedBlockMismatch(t *testing.T) {
	chain := realChain(t)
	other, err := Parse(chain[6])
	if err != nil {
		t.Fatal(err)
	}
	err = verifierAt(t, 5).Verify(chain[5], other)
	var ie *IntegrityError
	if err == nil || errors.As(err, &ie) {
		t.Fatalf("Verify with another block's parse: %v, want a plain error", err)
	}
}

func TestVerifierResume(t *testing.T) {
	chain := realChain(t)
	v := verifierAt(t, 7)
	saved, err := json.Marshal(v.State())
	if err != nil {
		t.Fatal(err)
	}
	var state VerifierState
	if err := json.Unmarshal(saved, &state); err != nil {
		t.Fatal(err)
	}
	resumed, err := NewVerifierFrom(state)
	if err != nil {
		t.Fatal(err)
	}

	tampered := realChain(t)[7]
	flipIn(t, tampered.Data.Data[0], "PTB-E2E")
	if err := resumed.Verify(tampered, nil); !errors.Is(err, ErrDataHash) {
		t.Errorf("resumed verifier on a tampered block 7: %v", err)
	}
	if err := resumed.Verify(chain[8], nil); !errors.Is(err, ErrOrder) {
		t.Errorf("resumed verifier on block 8 before 7: %v", err)
	}
	for _, b := range chain[7:] {
		if err := resumed.Verify(b, nil); err != nil {
			t.Fatalf("resumed verifier: %v", err)
		}
	}
	if !reflect.DeepEqual(resumed.State(), verifierAt(t, chainLength).State()) {
		t.Errorf("resumed verifier ends in another state than one that read the whole chain")
	}

	fresh, err := NewVerifierFrom(VerifierState{})
	if err != nil || fresh.Verify(chain[0], nil) != nil {
		t.Errorf("the zero state does not start from the genesis block: %v", err)
	}
}

func TestNewVerifierFromBadState(t *testing.T) {
	good := verifierAt(t, 3).State()
	tests := []struct {
		name   string
		change func(*VerifierState)
		want   string
	}{
		{"short previous hash", func(s *VerifierState) { s.PreviousHash = s.PreviousHash[:5] }, "previous hash has 5 bytes"},
		{"no consenters", func(s *VerifierState) { s.Consenters = nil }, "names no consenters"},
		{"identity not PEM", func(s *VerifierState) { s.Consenters[1].Identity = "orderer" }, "consenter 2 (CMIMSP): identity is not a PEM certificate"},
		{"consenter twice", func(s *VerifierState) { s.Consenters[1].ID = s.Consenters[0].ID }, "consenter ID 1 appears twice"},
		{"last config ahead", func(s *VerifierState) { s.LastConfig = 3 }, "last configuration block 3 is not behind it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			s.PreviousHash = slices.Clone(good.PreviousHash)
			s.Consenters = slices.Clone(good.Consenters)
			tt.change(&s)
			if _, err := NewVerifierFrom(s); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewVerifierFrom: %v, want %q", err, tt.want)
			}
		})
	}
}

// The header hash is the SHA-256 of the header's DER encoding, which the
// next block's header links to.
func TestHeaderHash(t *testing.T) {
	chain := realChain(t)
	for n := 1; n < chainLength; n++ {
		der, err := HeaderBytes(chain[n-1].Header)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(der); !bytes.Equal(sum[:], chain[n].Header.PreviousHash) {
			t.Errorf("block %d does not link to the hash of block %d's header", n, n-1)
		}
		// SEQUENCE { INTEGER number, OCTET STRING previous, OCTET STRING data }
		var h struct {
			Number         int64
			Previous, Data []byte
		}
		if rest, err := asn1.Unmarshal(der, &h); err != nil || len(rest) > 0 || h.Number != int64(n-1) {
			t.Errorf("header of block %d: %v, number %d", n-1, err, h.Number)
		}
	}
}

func TestGenesisHash(t *testing.T) {
	blocks := realChain(t)
	got, err := GenesisHash(blocks[0])
	if err != nil {
		t.Fatal(err)
	}
	want, _ := HeaderHash(blocks[0].GetHeader())
	if !bytes.Equal(got, want) || !bytes.Equal(blocks[1].GetHeader().GetPreviousHash(), got) {
		t.Fatalf("genesis hash %x, header hash %x, block 1 links to %x", got, want, blocks[1].GetHeader().GetPreviousHash())
	}
	tampered := realChain(t)[0]
	tampered.Data.Data[0][len(tampered.Data.Data[0])-1] ^= 1
	for name, b := range map[string]*common.Block{"block 1": blocks[1], "tampered data": tampered, "no header": {}} {
		if h, err := GenesisHash(b); err == nil {
			t.Errorf("%s: genesis hash %x", name, h)
		}
	}
}
