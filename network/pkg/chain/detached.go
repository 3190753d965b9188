package chain

import (
	"bytes"
	"crypto/x509"
	"fmt"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/network/pkg/channel"
)

// Anchor is a verified configuration block: the channel configuration it
// put in force and with it the consenters whose signatures count from the
// block after it on. A Verifier needs every block in order; an Anchor
// verifies blocks on their own, without the blocks between (no previous-hash
// link is available then), which is what an offline proof carries: the
// genesis block, pinned by its header hash, the configuration blocks after
// it, and one block.
//
// What links a detached block to its anchor is what the orderers sign
// besides its header: the number of the last configuration block in force
// (OrdererBlockMetadata.LastConfig). Each configuration block must name
// itself there and carry the configuration sequence one above the previous
// one, so a chain of anchors leaves no configuration block out; any other
// block must name its anchor, so that no configuration block between them
// was left out either.
type Anchor struct {
	// Number is the configuration block's number.
	Number uint64
	// HeaderHash is the hash of its header.
	HeaderHash []byte
	// Channel is the channel its configuration transaction names.
	Channel string
	// Config is the configuration it put in force.
	Config *channel.Config

	consenters map[uint32]*consenter
}

// GenesisAnchor reads a genesis block as the first anchor. The genesis block
// is unsigned: it is only as good as the hash it is checked against, so the
// caller must compare HeaderHash with the hash it pins (GenesisHash) before
// it trusts anything the anchor verifies. Failures are *IntegrityError.
func GenesisAnchor(raw *common.Block) (*Anchor, error) {
	h := raw.GetHeader()
	if h == nil {
		return nil, integrity(0, ErrHeader, "the genesis block has no header")
	}
	if n := h.GetNumber(); n != 0 {
		return nil, integrity(n, ErrOrder, "block %d is not a genesis block", n)
	}
	if got := dataHash(raw); !bytes.Equal(got, h.GetDataHash()) {
		return nil, integrity(0, ErrDataHash, "data hash mismatch: header says %x, the %d transactions hash to %x", h.GetDataHash(), len(raw.GetData().GetData()), got)
	}
	if !isConfigBlock(raw) {
		return nil, integrity(0, ErrConfig, "the genesis block is not a configuration block")
	}
	return newAnchor(raw)
}

// newAnchor reads a configuration block whose integrity is established.
func newAnchor(raw *common.Block) (*Anchor, error) {
	n := raw.GetHeader().GetNumber()
	hash, err := HeaderHash(raw.GetHeader())
	if err != nil {
		return nil, integrity(n, ErrHeader, "%v", err)
	}
	ch, err := blockChannel(raw)
	if err != nil {
		return nil, integrity(n, ErrConfig, "%v", err)
	}
	cfg, consenters, err := readConfig(raw)
	if err != nil {
		return nil, err
	}
	return &Anchor{Number: n, HeaderHash: hash, Channel: ch, Config: cfg, consenters: consenters}, nil
}

// NextConfig verifies a configuration block after the anchor and returns the
// anchor it makes: the block must be a configuration block of the anchor's
// channel whose data is what its header commits to, its configuration
// sequence must be the anchor's plus one (so that no configuration block is
// left out between them), and a BFT quorum of the anchor's consenters must
// have signed it, naming it as the last configuration block. Failures are
// *IntegrityError.
func (a *Anchor) NextConfig(raw *common.Block) (*Anchor, error) {
	h := raw.GetHeader()
	if h == nil {
		return nil, integrity(a.Number+1, ErrHeader, "the configuration block after block %d has no header", a.Number)
	}
	n := h.GetNumber()
	if n <= a.Number {
		return nil, integrity(n, ErrOrder, "configuration block %d does not follow configuration block %d", n, a.Number)
	}
	headerBytes, err := HeaderBytes(h)
	if err != nil {
		return nil, integrity(n, ErrHeader, "%v", err)
	}
	if got := dataHash(raw); !bytes.Equal(got, h.GetDataHash()) {
		return nil, integrity(n, ErrDataHash, "data hash mismatch: header says %x, the %d transactions hash to %x", h.GetDataHash(), len(raw.GetData().GetData()), got)
	}
	if !isConfigBlock(raw) {
		return nil, integrity(n, ErrConfig, "block %d is not a configuration block", n)
	}
	next, err := newAnchor(raw)
	if err != nil {
		return nil, err
	}
	if next.Channel != a.Channel {
		return nil, integrity(n, ErrConfig, "the configuration is of channel %q, not %q", next.Channel, a.Channel)
	}
	switch want := a.Config.Sequence + 1; {
	case next.Config.Sequence > want:
		return nil, integrity(n, ErrConfig, "configuration sequence %d follows sequence %d of block %d: %d configuration blocks between them are left out", next.Config.Sequence, a.Config.Sequence, a.Number, next.Config.Sequence-want)
	case next.Config.Sequence < want:
		return nil, integrity(n, ErrConfig, "configuration sequence %d does not follow sequence %d of block %d", next.Config.Sequence, a.Config.Sequence, a.Number)
	}
	_, signed, err := checkSignatures(a.consenters, raw, headerBytes)
	if err != nil {
		return nil, err
	}
	if signed != n {
		return nil, integrity(n, ErrConfig, "the orderers signed last configuration block %d, not the configuration block itself", signed)
	}
	return next, nil
}

// VerifyBlock verifies a block after the anchor that is not a configuration
// block, with the anchor's configuration in force: its data is what its
// header commits to, every transaction is a canonically encoded envelope, a
// BFT quorum of the anchor's consenters signed it, and they signed the
// anchor as the last configuration block, so no configuration block lies
// between them. It returns the block's signatures as verified. Failures
// are *IntegrityError.
func (a *Anchor) VerifyBlock(raw *common.Block) ([]Signature, error) {
	h := raw.GetHeader()
	if h == nil {
		return nil, integrity(a.Number+1, ErrHeader, "the block has no header")
	}
	n := h.GetNumber()
	if n <= a.Number {
		return nil, integrity(n, ErrOrder, "block %d is not after configuration block %d", n, a.Number)
	}
	headerBytes, err := HeaderBytes(h)
	if err != nil {
		return nil, integrity(n, ErrHeader, "%v", err)
	}
	if got := dataHash(raw); !bytes.Equal(got, h.GetDataHash()) {
		return nil, integrity(n, ErrDataHash, "data hash mismatch: header says %x, the %d transactions hash to %x", h.GetDataHash(), len(raw.GetData().GetData()), got)
	}
	if isConfigBlock(raw) {
		return nil, integrity(n, ErrConfig, "block %d is a configuration block", n)
	}
	if err := wellFormed(raw.GetData().GetData()); err != nil {
		return nil, integrity(n, ErrData, "%v", err)
	}
	marks, signed, err := checkSignatures(a.consenters, raw, headerBytes)
	if err != nil {
		return nil, err
	}
	switch {
	case signed > a.Number:
		return nil, integrity(n, ErrConfig, "the orderers signed last configuration block %d, the chain given ends at configuration block %d: the configuration blocks up to block %d are left out", signed, a.Number, signed)
	case signed < a.Number:
		return nil, integrity(n, ErrConfig, "the orderers signed last configuration block %d, but configuration block %d precedes block %d", signed, a.Number, n)
	}
	return marks, nil
}

// Consenters returns the number of consenters of the anchor's set.
func (a *Anchor) Consenters() int { return len(a.consenters) }

// SignedLastConfig returns the last configuration block a block's orderers
// name as in force, without verifying their signatures: it tells which
// anchor to verify the block with (Anchor.VerifyBlock then checks it).
func SignedLastConfig(raw *common.Block) (uint64, error) {
	md, err := signaturesMetadata(raw)
	if err != nil {
		return 0, fmt.Errorf("signatures unreadable: %w", err)
	}
	var obm common.OrdererBlockMetadata
	if err := proto.Unmarshal(md.GetValue(), &obm); err != nil {
		return 0, fmt.Errorf("orderer metadata unreadable: %w", err)
	}
	return obm.GetLastConfig().GetIndex(), nil
}

// VerifySignature checks a signature over payload by the certificate's key
// as the orderers' signatures are checked, and as Fabric checks a client's
// or a peer's: ECDSA over SHA-256 with a DER signature and a low S, or
// Ed25519.
func VerifySignature(cert *x509.Certificate, payload, sig []byte) error {
	return verifySignature(cert, payload, sig)
}

// blockChannel returns the channel named by the channel header of a
// configuration block's transaction.
func blockChannel(raw *common.Block) (string, error) {
	var env common.Envelope
	var payload common.Payload
	var ch common.ChannelHeader
	data := raw.GetData().GetData()
	if len(data) != 1 {
		return "", fmt.Errorf("%d transactions in a configuration block", len(data))
	}
	if err := proto.Unmarshal(data[0], &env); err != nil {
		return "", fmt.Errorf("configuration envelope: %w", err)
	}
	if err := proto.Unmarshal(env.GetPayload(), &payload); err != nil {
		return "", fmt.Errorf("configuration payload: %w", err)
	}
	if err := proto.Unmarshal(payload.GetHeader().GetChannelHeader(), &ch); err != nil {
		return "", fmt.Errorf("configuration channel header: %w", err)
	}
	return ch.GetChannelId(), nil
}
