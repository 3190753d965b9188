package proof

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"
)

// bundles holds the attestation bundles made on a real consortium on
// 2026-12-07 (testdata/generate.sh); the tests verify them as of shortly
// after.
const bundles = "../../../testdata/attestations"

var madeAround = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func load(t testing.TB, name string) *Bundle {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(bundles, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func genesisHash(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(bundles, "genesis.hash"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func testMeter(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(bundles, "meter.id"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func opts(t testing.TB) Options {
	return Options{GenesisHash: genesisHash(t), Now: madeAround, MaxAge: 24 * time.Hour}
}

func TestVerifyRealBundles(t *testing.T) {
	id := testMeter(t)
	fresh, err := Verify(load(t, "fresh"), opts(t))
	if err != nil {
		t.Fatal(err)
	}
	if fresh.MeterID != id || fresh.Status != "active" || fresh.KeyVersion != 1 || fresh.Owner != "PTBMSP" || fresh.Revocation != nil ||
		len(fresh.AttestedBy) < 2 || fresh.Ordering.Signed < 3 || fresh.Ordering.Consenters != 4 || fresh.Curve != "P-256" || len(fresh.Fingerprint) != 64 {
		t.Fatalf("fresh: %+v", fresh)
	}
	t.Log(fresh)
	for _, want := range []string{"As of block ", "meter " + id + " is bound to key fingerprint " + fresh.Fingerprint, "curve P-256, key version 1", "status active", "owned by NMI PTBMSP", "attested by NMIs ", "ordered by "} {
		if !strings.Contains(fresh.String(), want) {
			t.Errorf("statement %q lacks %q", fresh, want)
		}
	}

	// Without its chain, a bundle verifies with an earlier one's.
	o := opts(t)
	o.Chain = load(t, "fresh")
	nochain, err := Verify(load(t, "fresh-nochain"), o)
	if err != nil {
		t.Fatal(err)
	}
	if nochain.String() != fresh.String() {
		t.Errorf("without the chain: %s, with it: %s", nochain, fresh)
	}

	rotated, err := Verify(load(t, "rotated"), o)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.KeyVersion != 2 || rotated.Fingerprint == fresh.Fingerprint || rotated.Status != "active" || rotated.Block <= fresh.Block || rotated.TxID == fresh.TxID {
		t.Fatalf("rotated: %+v (fresh %+v)", rotated, fresh)
	}

	revoked, err := Verify(load(t, "revoked"), opts(t))
	if err != nil {
		t.Fatal(err)
	}
	if revoked.Status != "revoked" || revoked.Revocation == nil || revoked.Revocation.Reason != "keyCompromise" || revoked.Fingerprint != rotated.Fingerprint {
		t.Fatalf("revoked: %+v", revoked)
	}
	if !strings.Contains(revoked.String(), "status revoked (revoked: keyCompromise at ") {
		t.Errorf("statement: %s", revoked)
	}
}

// wantRefusal requires a refusal of the kind whose message names every part
// of want.
func wantRefusal(t *testing.T, err error, kind Kind, want ...string) {
	t.Helper()
	var r *Refusal
	if !errors.As(err, &r) || !errors.Is(err, kind) {
		t.Fatalf("got %v, want a %s refusal", err, kind)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("refusal %q does not say %q", err, w)
		}
	}
}

func TestVerifyRefuses(t *testing.T) {
	tests := []struct {
		name   string
		change func(*testing.T, *Bundle, *Options)
		kind   Kind
		want   []string
	}{
		{"wrong genesis hash", func(_ *testing.T, _ *Bundle, o *Options) { o.GenesisHash[0] ^= 1 }, ErrGenesis, []string{"genesis block is not the channel's"}},
		{"genesis block byte changed", func(t *testing.T, b *Bundle, _ *Options) {
			b.Genesis = reencode(t, b.Genesis, func(g *common.Block) { g.Data.Data[0][len(g.Data.Data[0])/2] ^= 1 })
		}, ErrGenesis, []string{"data hash"}},
		{"too old", func(_ *testing.T, _ *Bundle, o *Options) { o.Now = madeAround.Add(48 * time.Hour) }, ErrAge, []string{"more than 24h0m0s before"}},
		{"another meter asked about", func(_ *testing.T, _ *Bundle, o *Options) { o.MeterID = "PTB-OTHER-1" }, ErrMeter, []string{"not PTB-OTHER-1"}},
		{"bundle names another meter", func(_ *testing.T, b *Bundle, _ *Options) { b.MeterID = "PTB-OTHER-1" }, ErrMeter, []string{`the bundle names "PTB-OTHER-1"`}},
		{"bundle names another transaction", func(_ *testing.T, b *Bundle, _ *Options) { b.TxID = strings.Repeat("ab", 32) }, ErrTransaction, []string{"holds no transaction"}},
		{"bundle names another channel", func(_ *testing.T, b *Bundle, _ *Options) { b.Channel = "other" }, ErrGenesis, []string{`the bundle names channel "other"`}},
		{"a configuration block left out", func(_ *testing.T, b *Bundle, _ *Options) { b.Config = append(b.Config[:1:1], b.Config[2:]...) }, ErrChain, []string{"left out"}},
		{"the last configuration block left out", func(_ *testing.T, b *Bundle, _ *Options) { b.Config = b.Config[:len(b.Config)-1] }, ErrChain, []string{"a configuration block is left out"}},
		{"configuration blocks swapped", func(_ *testing.T, b *Bundle, _ *Options) { b.Config[0], b.Config[1] = b.Config[1], b.Config[0] }, ErrChain, nil},
		{"configuration block byte changed", func(t *testing.T, b *Bundle, _ *Options) {
			b.Config[1] = reencode(t, b.Config[1], func(c *common.Block) { c.Data.Data[0][len(c.Data.Data[0])/2] ^= 1 })
		}, ErrChain, []string{"data hash mismatch"}},
		{"configuration block re-hashed", func(t *testing.T, b *Bundle, _ *Options) {
			b.Config[1] = reencode(t, b.Config[1], func(c *common.Block) {
				c.Data.Data[0][len(c.Data.Data[0])/2] ^= 1
				c.Header.DataHash = rehash(c)
			})
		}, ErrChain, []string{"validly signed"}},
		{"no chain and none given", func(_ *testing.T, b *Bundle, _ *Options) { b.Genesis, b.Config = nil, nil }, ErrChain, []string{"carries no configuration chain"}},
		{"record byte changed", func(t *testing.T, b *Bundle, _ *Options) {
			b.Block = reencode(t, b.Block, func(blk *common.Block) { flip(t, blk.Data.Data[0], `"status":"active"`) })
		}, ErrBlock, []string{"data hash mismatch"}},
		{"record changed and re-hashed", func(t *testing.T, b *Bundle, _ *Options) {
			b.Block = reencode(t, b.Block, func(blk *common.Block) {
				flip(t, blk.Data.Data[0], `"status":"active"`)
				blk.Header.DataHash = rehash(blk)
			})
		}, ErrBlock, []string{"0 distinct consenters of 4 validly signed"}},
		{"header number changed", func(t *testing.T, b *Bundle, _ *Options) {
			b.Block = reencode(t, b.Block, func(blk *common.Block) { blk.Header.Number++ })
		}, ErrBlock, []string{"validly signed"}},
		{"orderer signature changed", func(t *testing.T, b *Bundle, _ *Options) {
			b.Block = reencode(t, b.Block, func(blk *common.Block) {
				md := sigs(t, blk)
				md.Signatures[1].Signature[10] ^= 1
				setSigs(t, blk, md)
			})
		}, ErrBlock, []string{"2 distinct consenters of 4 validly signed"}},
		{"consenter not in the set in force", func(t *testing.T, b *Bundle, _ *Options) {
			b.Block = reencode(t, b.Block, func(blk *common.Block) {
				md := sigs(t, blk)
				ih, err := proto.Marshal(&common.IdentifierHeader{Identifier: 17, Nonce: []byte("n")})
				if err != nil {
					t.Fatal(err)
				}
				md.Signatures[0].IdentifierHeader = ih
				setSigs(t, blk, md)
			})
		}, ErrBlock, []string{"consenter 17 is not in the consenter set"}},
		{"the peers' commit hash added", func(t *testing.T, b *Bundle, _ *Options) {
			blk, err := decodeBlock(b.Block)
			if err != nil {
				t.Fatal(err)
			}
			blk.Metadata.Metadata[common.BlockMetadataIndex_COMMIT_HASH] = []byte{1, 2, 3}
			enc := proto.MarshalOptions{Deterministic: true}
			if b.Block, err = enc.Marshal(blk); err != nil {
				t.Fatal(err)
			}
		}, ErrBundle, []string{"COMMIT_HASH, which no one signs"}},
		// The review's finding: an AttestMeter endorsed while the meter
		// was active, held, and ordered after a revocation is marked
		// MVCC_READ_CONFLICT by every peer. Its bundle verified, since the
		// flags were stripped; now they are carried and checked.
		{"attestation invalidated by the peers", func(t *testing.T, b *Bundle, _ *Options) {
			blk, err := decodeBlock(b.Block)
			if err != nil {
				t.Fatal(err)
			}
			flags := blk.Metadata.Metadata[common.BlockMetadataIndex_TRANSACTIONS_FILTER]
			for i := range flags {
				flags[i] = byte(peer.TxValidationCode_MVCC_READ_CONFLICT)
			}
			enc := proto.MarshalOptions{Deterministic: true}
			if b.Block, err = enc.Marshal(blk); err != nil {
				t.Fatal(err)
			}
		}, ErrInvalid, []string{"MVCC_READ_CONFLICT", "attests nothing"}},
		{"validation flags stripped", func(t *testing.T, b *Bundle, _ *Options) {
			blk, err := decodeBlock(b.Block)
			if err != nil {
				t.Fatal(err)
			}
			blk.Metadata.Metadata[common.BlockMetadataIndex_TRANSACTIONS_FILTER] = nil
			enc := proto.MarshalOptions{Deterministic: true}
			if b.Block, err = enc.Marshal(blk); err != nil {
				t.Fatal(err)
			}
		}, ErrInvalid, []string{"0 validation flags"}},
		{"unknown field appended to the block", func(_ *testing.T, b *Bundle, _ *Options) {
			b.Block = append(b.Block, 0x28, 0x01) // field 5, varint 1
		}, ErrBundle, []string{"not canonically encoded"}},
		{"block of another attestation", func(t *testing.T, b *Bundle, _ *Options) { b.Block = load(t, "revoked").Block }, ErrTransaction, []string{"holds no transaction " + load(t, "fresh").TxID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, o := load(t, "fresh"), opts(t)
			tt.change(t, b, &o)
			_, err := Verify(b, o)
			wantRefusal(t, err, tt.kind, tt.want...)
		})
	}
}

// Every byte of the attestation transaction, the header and the orderers'
// signatures is covered: changing any one is refused.
func TestVerifyRefusesEveryByteChanged(t *testing.T) {
	b, o := load(t, "fresh"), opts(t)
	anchors, err := configChain(b, o, 0)
	if err == nil {
		t.Fatal("block 0 cannot be attested")
	}
	good, err := decodeBlock(b.Block)
	if err != nil {
		t.Fatal(err)
	}
	if anchors, err = configChain(b, o, good.Header.Number); err != nil {
		t.Fatal(err)
	}
	check := func(what string, i int, blk *common.Block) {
		t.Helper()
		if _, err := verifyBlock(b, blk, anchors, o); err == nil {
			t.Fatalf("%s byte %d changed: verified", what, i)
		}
	}
	n := 0
	for i := range good.Data.Data[0] {
		blk := proto.Clone(good).(*common.Block)
		blk.Data.Data[0][i] ^= 0x20
		check("transaction", i, blk)
		n++
	}
	header := func(blk *common.Block) [][]byte { return [][]byte{blk.Header.PreviousHash, blk.Header.DataHash} }
	for f := range 2 {
		for i := range header(good)[f] {
			blk := proto.Clone(good).(*common.Block)
			header(blk)[f][i] ^= 0x20
			check("header", i, blk)
			n++
		}
	}
	md := sigs(t, good)
	for s := range md.Signatures {
		for i := range md.Signatures[s].Signature {
			blk := proto.Clone(good).(*common.Block)
			m := sigs(t, blk)
			m.Signatures[s].Signature[i] ^= 0x20
			setSigs(t, blk, m)
			check("orderer signature", i, blk)
			n++
		}
	}
	t.Logf("%d single-byte changes refused", n)
}

// The transaction's own checks, on a block whose integrity is taken as
// established: a change to the transaction breaks the block's data hash
// first, so these show what the later checks catch on their own.
func TestVerifyTransaction(t *testing.T) {
	tests := []struct {
		name   string
		change func(*testing.T, *txParts)
		kind   Kind
		want   []string
	}{
		{"unchanged", func(*testing.T, *txParts) {}, "", nil},
		{"endorsements from one NMI only", func(_ *testing.T, p *txParts) {
			p.cap.Action.Endorsements = p.cap.Action.Endorsements[:1]
		}, ErrEndorsement, []string{"endorsed by 1 NMI", "at least 2 NMIs"}},
		{"one NMI's endorsement twice", func(_ *testing.T, p *txParts) {
			p.cap.Action.Endorsements[1] = p.cap.Action.Endorsements[0]
		}, ErrEndorsement, []string{"endorsed by 1 NMI"}},
		{"endorsement signature changed", func(_ *testing.T, p *txParts) {
			p.cap.Action.Endorsements[1].Signature[8] ^= 1
		}, ErrEndorsement, []string{"endorsement 2"}},
		{"endorser not a peer", func(_ *testing.T, p *txParts) {
			p.cap.Action.Endorsements[1].Endorser = p.sh.Creator
		}, ErrEndorsement, []string{"is a client, not a peer"}},
		{"record changed", func(t *testing.T, p *txParts) { flip(t, p.ca.Response.Payload, `"status":"active"`) },
			ErrEndorsement, []string{"signature"}},
		{"creator signature changed", func(_ *testing.T, p *txParts) { p.env.Signature[8] ^= 1 },
			ErrTransaction, []string{"the creator's signature"}},
		{"another function", func(_ *testing.T, p *txParts) { p.cis.ChaincodeSpec.Input.Args[0] = []byte("ReadMeter") },
			ErrTransaction, nil},
	}
	b, o := load(t, "fresh"), opts(t)
	good, err := decodeBlock(b.Block)
	if err != nil {
		t.Fatal(err)
	}
	anchors, err := configChain(b, o, good.Header.Number)
	if err != nil {
		t.Fatal(err)
	}
	anchor := anchors[len(anchors)-1]
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blk := proto.Clone(good).(*common.Block)
			p := openTx(t, blk.Data.Data[0])
			tt.change(t, p)
			blk.Data.Data[0] = p.seal(t)
			_, err := verifyTx(blk, b, anchor)
			if tt.kind == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantRefusal(t, err, tt.kind, tt.want...)
		})
	}
}

// txParts is an endorser transaction taken apart, to change one part and
// encode it again (seal).
type txParts struct {
	env     *common.Envelope
	payload *common.Payload
	sh      *common.SignatureHeader
	tx      *peer.Transaction
	cap     *peer.ChaincodeActionPayload
	cpp     *peer.ChaincodeProposalPayload
	cis     *peer.ChaincodeInvocationSpec
	prp     *peer.ProposalResponsePayload
	ca      *peer.ChaincodeAction
}

func openTx(t *testing.T, data []byte) *txParts {
	t.Helper()
	p := &txParts{env: &common.Envelope{}, payload: &common.Payload{}, sh: &common.SignatureHeader{}, tx: &peer.Transaction{},
		cap: &peer.ChaincodeActionPayload{}, cpp: &peer.ChaincodeProposalPayload{}, cis: &peer.ChaincodeInvocationSpec{},
		prp: &peer.ProposalResponsePayload{}, ca: &peer.ChaincodeAction{}}
	for _, step := range []struct {
		data func() []byte
		m    proto.Message
	}{
		{func() []byte { return data }, p.env},
		{func() []byte { return p.env.Payload }, p.payload},
		{func() []byte { return p.payload.Header.SignatureHeader }, p.sh},
		{func() []byte { return p.payload.Data }, p.tx},
		{func() []byte { return p.tx.Actions[0].Payload }, p.cap},
		{func() []byte { return p.cap.ChaincodeProposalPayload }, p.cpp},
		{func() []byte { return p.cpp.Input }, p.cis},
		{func() []byte { return p.cap.Action.ProposalResponsePayload }, p.prp},
		{func() []byte { return p.prp.Extension }, p.ca},
	} {
		if err := proto.Unmarshal(step.data(), step.m); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// seal encodes the parts again from the inside out. Only the parts a test
// changed differ from the original encoding (the signature header is kept
// as it was, so the transaction ID still matches).
func (p *txParts) seal(t *testing.T) []byte {
	t.Helper()
	enc := func(m proto.Message) []byte {
		raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	p.cpp.Input = enc(p.cis)
	p.cap.ChaincodeProposalPayload = enc(p.cpp)
	p.prp.Extension = enc(p.ca)
	p.cap.Action.ProposalResponsePayload = enc(p.prp)
	p.tx.Actions[0].Payload = enc(p.cap)
	p.payload.Data = enc(p.tx)
	p.env.Payload = enc(p.payload)
	return enc(p.env)
}

func reencode(t testing.TB, data []byte, change func(*common.Block)) []byte {
	t.Helper()
	blk, err := decodeBlock(data)
	if err != nil {
		t.Fatal(err)
	}
	change(blk)
	raw, err := marshal(blk)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// rehash is the data hash of a block: SHA-256 over its transactions.
func rehash(b *common.Block) []byte {
	h := sha256.New()
	for _, d := range b.Data.Data {
		h.Write(d)
	}
	return h.Sum(nil)
}

func flip(t testing.TB, data []byte, what string) {
	t.Helper()
	i := bytes.Index(data, []byte(what))
	if i < 0 {
		t.Fatalf("%q not found", what)
	}
	data[i+len(what)-2] ^= 1
}

func sigs(t testing.TB, b *common.Block) *common.Metadata {
	t.Helper()
	var md common.Metadata
	if err := proto.Unmarshal(b.Metadata.Metadata[common.BlockMetadataIndex_SIGNATURES], &md); err != nil {
		t.Fatal(err)
	}
	return &md
}

func setSigs(t testing.TB, b *common.Block, md *common.Metadata) {
	t.Helper()
	raw, err := proto.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	b.Metadata.Metadata[common.BlockMetadataIndex_SIGNATURES] = raw
}
