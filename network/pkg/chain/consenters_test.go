package chain

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/orderer"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"
)

// The real blocks never change their consenter set and only use identifier
// headers, so these tests build small chains whose orderers' keys they hold.

// fakeOrderer is a consenter whose key the test holds.
type fakeOrderer struct {
	id   uint32
	msp  string
	key  crypto.Signer
	cert []byte // PEM
}

func newFakeOrderer(t testing.TB, id uint32, ed bool) *fakeOrderer {
	t.Helper()
	var key crypto.Signer
	var err error
	if ed {
		_, key, err = ed25519.GenerateKey(rand.Reader)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(id)),
		Subject:      pkix.Name{CommonName: fmt.Sprintf("orderer%d", id), Organization: []string{"test"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeOrderer{id: id, msp: fmt.Sprintf("Org%dMSP", id), key: key,
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func fakeOrderers(t testing.TB, ids ...uint32) []*fakeOrderer {
	var out []*fakeOrderer
	for _, id := range ids {
		out = append(out, newFakeOrderer(t, id, false))
	}
	return out
}

// sign signs like Fabric: ECDSA over SHA-256 with a low S, or Ed25519.
func (o *fakeOrderer) sign(t testing.TB, payload []byte) []byte {
	t.Helper()
	key, ok := o.key.(*ecdsa.PrivateKey)
	if !ok {
		sig, err := o.key.Sign(rand.Reader, payload, crypto.Hash(0))
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	digest := sha256.Sum256(payload)
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if n := key.Curve.Params().N; s.Cmp(new(big.Int).Rsh(n, 1)) > 0 {
		s.Sub(n, s)
	}
	sig, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// envelope is a transaction of the given type with the given data.
func envelope(t testing.TB, typ common.HeaderType, txID string, data []byte) []byte {
	return mustMarshal(t, &common.Envelope{
		Payload: mustMarshal(t, &common.Payload{
			Header: &common.Header{
				ChannelHeader:   mustMarshal(t, &common.ChannelHeader{Type: int32(typ), ChannelId: "metrology", TxId: txID}),
				SignatureHeader: mustMarshal(t, &common.SignatureHeader{}),
			},
			Data: data,
		}),
		Signature: []byte("client signature"),
	})
}

// endorserTx is a chaincode invocation with nothing in it.
func endorserTx(t testing.TB, txID string) []byte {
	tx := &peer.Transaction{Actions: []*peer.TransactionAction{{Payload: mustMarshal(t, &peer.ChaincodeActionPayload{})}}}
	return envelope(t, common.HeaderType_ENDORSER_TRANSACTION, txID, mustMarshal(t, tx))
}

// configTx is a channel configuration naming the consenters.
func configTx(t testing.TB, consensusType string, consenters []*fakeOrderer) []byte {
	var mapping []*common.Consenter
	for _, o := range consenters {
		mapping = append(mapping, &common.Consenter{Id: o.id, Host: "127.0.0.1", Port: 7050, MspId: o.msp, Identity: o.cert})
	}
	cfg := &common.Config{ChannelGroup: &common.ConfigGroup{Groups: map[string]*common.ConfigGroup{
		"Application": {},
		"Orderer": {Values: map[string]*common.ConfigValue{
			"ConsensusType": {Value: mustMarshal(t, &orderer.ConsensusType{Type: consensusType})},
			"Orderers":      {Value: mustMarshal(t, &common.Orderers{ConsenterMapping: mapping})},
		}},
	}}}
	return envelope(t, common.HeaderType_CONFIG, "config", mustMarshal(t, &common.ConfigEnvelope{Config: cfg}))
}

// fakeChain builds a chain block by block.
type fakeChain struct {
	t      testing.TB
	blocks []*common.Block
}

// next returns the next block, unsigned, holding data.
func (c *fakeChain) next(data ...[]byte) *common.Block {
	b := &common.Block{
		Header:   &common.BlockHeader{Number: uint64(len(c.blocks))},
		Data:     &common.BlockData{Data: data},
		Metadata: &common.BlockMetadata{Metadata: make([][]byte, 5)},
	}
	if n := len(c.blocks); n > 0 {
		prev, err := HeaderHash(c.blocks[n-1].Header)
		if err != nil {
			c.t.Fatal(err)
		}
		b.Header.PreviousHash = prev
	}
	b.Header.DataHash = dataHash(b)
	b.Metadata.Metadata[common.BlockMetadataIndex_TRANSACTIONS_FILTER] = make([]byte, len(data))
	return b
}

// sign has the signers sign b as they would with lastConfig in force, naming
// themselves by consenter ID or, with fullHeaders, by their certificate.
func (c *fakeChain) sign(b *common.Block, lastConfig uint64, fullHeaders bool, signers ...*fakeOrderer) {
	header, err := HeaderBytes(b.Header)
	if err != nil {
		c.t.Fatal(err)
	}
	md := &common.Metadata{Value: mustMarshal(c.t, &common.OrdererBlockMetadata{LastConfig: &common.LastConfig{Index: lastConfig}})}
	for _, o := range signers {
		ms := &common.MetadataSignature{}
		signed := mustMarshal(c.t, &common.IdentifierHeader{Identifier: o.id, Nonce: []byte("nonce")})
		if fullHeaders {
			signed = mustMarshal(c.t, &common.SignatureHeader{
				Creator: mustMarshal(c.t, &msp.SerializedIdentity{Mspid: o.msp, IdBytes: o.cert}), Nonce: []byte("nonce"),
			})
			ms.SignatureHeader = signed
		} else {
			ms.IdentifierHeader = signed
		}
		ms.Signature = o.sign(c.t, slices.Concat(md.Value, signed, header))
		md.Signatures = append(md.Signatures, ms)
	}
	b.Metadata.Metadata[common.BlockMetadataIndex_SIGNATURES] = mustMarshal(c.t, md)
}

// add appends b to the chain the next blocks link to.
func (c *fakeChain) add(b *common.Block) *common.Block {
	c.blocks = append(c.blocks, b)
	return b
}

func newFakeChain(t testing.TB, consenters []*fakeOrderer) *fakeChain {
	c := &fakeChain{t: t}
	c.add(c.next(configTx(t, "BFT", consenters)))
	return c
}

func wantIntegrity(t *testing.T, err error, block uint64, kind error, reason string) {
	t.Helper()
	var ie *IntegrityError
	if !errors.As(err, &ie) || ie.Block != block || !errors.Is(err, kind) || !strings.Contains(ie.Reason, reason) {
		t.Fatalf("got %v, want block %d to fail with %v: %q", err, block, kind, reason)
	}
}

func TestVerifyConsenterSetChange(t *testing.T) {
	oldSet, newSet := fakeOrderers(t, 1, 2, 3, 4), fakeOrderers(t, 5, 6, 7, 8)
	c := newFakeChain(t, oldSet)
	v := NewVerifier()
	if err := v.Verify(c.blocks[0], nil); err != nil {
		t.Fatal(err)
	}
	b1 := c.add(c.next(endorserTx(t, "tx1")))
	c.sign(b1, 0, false, oldSet[0], oldSet[1], oldSet[2])
	if err := v.Verify(b1, nil); err != nil {
		t.Fatal(err)
	}

	// The configuration block that replaces the set is signed by the old one.
	b2 := c.add(c.next(configTx(t, "BFT", newSet)))
	c.sign(b2, 2, false, newSet[0], newSet[1], newSet[2])
	wantIntegrity(t, v.Verify(b2, nil), 2, ErrQuorum, "consenter 5 is not in the consenter set")
	c.sign(b2, 0, false, oldSet[1], oldSet[2], oldSet[3])
	wantIntegrity(t, v.Verify(b2, nil), 2, ErrConfig, "the orderers signed last configuration block 0, the verifier knows block 2")
	c.sign(b2, 2, false, oldSet[1], oldSet[2], oldSet[3])
	if err := v.Verify(b2, nil); err != nil {
		t.Fatal(err)
	}

	// From then on, only the new set's signatures count.
	b3 := c.add(c.next(endorserTx(t, "tx3")))
	c.sign(b3, 2, false, oldSet[0], oldSet[1], oldSet[2], newSet[3])
	wantIntegrity(t, v.Verify(b3, nil), 3, ErrQuorum, "1 distinct consenters of 4 validly signed")
	c.sign(b3, 2, false, newSet[0], newSet[2], newSet[3])
	if err := v.Verify(b3, nil); err != nil {
		t.Fatal(err)
	}
	s := v.State()
	ids := []uint32{}
	for _, c := range s.Consenters {
		ids = append(ids, c.ID)
	}
	if s.LastConfig != 2 || s.Next != 4 || !slices.Equal(ids, []uint32{5, 6, 7, 8}) {
		t.Errorf("state: last config %d, next %d, consenters %v", s.LastConfig, s.Next, ids)
	}

	// A verifier resumed after the change knows the new set.
	resumed, err := NewVerifierFrom(s)
	if err != nil {
		t.Fatal(err)
	}
	b4 := c.add(c.next(endorserTx(t, "tx4")))
	c.sign(b4, 2, false, newSet[1], newSet[2], newSet[3])
	if err := resumed.Verify(b4, nil); err != nil {
		t.Fatal(err)
	}
}

func TestVerifySignatureHeaders(t *testing.T) {
	set := fakeOrderers(t, 1, 2, 3, 4)
	impostor := newFakeOrderer(t, 2, false) // consenter 2's MSP and ID, another key
	impostor.msp = set[1].msp
	c := newFakeChain(t, set)
	b1 := c.add(c.next(endorserTx(t, "tx1")))

	c.sign(b1, 0, true, set[3], set[0], set[2])
	v := NewVerifier()
	if err := v.Verify(c.blocks[0], nil); err != nil {
		t.Fatal(err)
	}
	for _, fake := range []*fakeOrderer{impostor, newFakeOrderer(t, 9, false)} {
		c.sign(b1, 0, true, set[3], set[0], fake)
		wantIntegrity(t, v.Verify(b1, nil), 1, ErrQuorum, "signature 2: signer CN=orderer")
	}

	c.sign(b1, 0, true, set[3], set[0], set[2])
	parsed, err := Parse(b1)
	if err != nil {
		t.Fatal(err)
	}
	if s := parsed.Signatures[0]; s.ConsenterID != 0 || s.MSPID != "Org4MSP" || s.Subject != "CN=orderer4,O=test" {
		t.Errorf("parsed signature 0: %+v", s)
	}
	if err := v.Verify(b1, parsed); err != nil {
		t.Fatal(err)
	}
	var got []uint32
	for _, s := range parsed.Signatures {
		if !s.Valid {
			t.Errorf("signature %+v not valid", s)
		}
		got = append(got, s.ConsenterID)
	}
	if !slices.Equal(got, []uint32{4, 1, 3}) {
		t.Errorf("consenter IDs %v, want [4 1 3]", got)
	}
}

func TestVerifyEd25519Consenters(t *testing.T) {
	var set []*fakeOrderer
	for id := uint32(1); id <= 4; id++ {
		set = append(set, newFakeOrderer(t, id, true))
	}
	c := newFakeChain(t, set)
	b1 := c.add(c.next(endorserTx(t, "tx1")))
	c.sign(b1, 0, false, set[0], set[1], set[2])
	v := NewVerifier()
	for _, b := range c.blocks {
		if err := v.Verify(b, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerifyUnusableGenesis(t *testing.T) {
	tests := []struct {
		name    string
		genesis func(*fakeChain) *common.Block
		reason  string
	}{
		{"not BFT", func(c *fakeChain) *common.Block {
			return c.next(configTx(c.t, "etcdraft", fakeOrderers(c.t, 1)))
		}, `consensus type is "etcdraft"`},
		{"no consenters", func(c *fakeChain) *common.Block { return c.next(configTx(c.t, "BFT", nil)) }, "names no consenters"},
		{"consenter identity not a certificate", func(c *fakeChain) *common.Block {
			o := newFakeOrderer(c.t, 1, false)
			o.cert = []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
			return c.next(configTx(c.t, "BFT", []*fakeOrderer{o}))
		}, "consenter 1 (Org1MSP)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeChain{t: t}
			wantIntegrity(t, NewVerifier().Verify(tt.genesis(c), nil), 0, ErrConfig, tt.reason)
		})
	}
}
