package proof

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/inter-nmi/pki/network/pkg/chain"
)

// Options are what the relying party brings to a verification.
type Options struct {
	// GenesisHash is the SHA-256 header hash of the channel's genesis block
	// (chain.GenesisHash), obtained out of band: the one trust anchor.
	// Required.
	GenesisHash []byte
	// Chain is an earlier bundle whose genesis block and configuration chain
	// the relying party holds (it is verified again, from GenesisHash). It
	// is used when the bundle carries no chain; a bundle that carries one
	// must agree with it, and the longer of the two is used, so that a
	// bundle may add the configuration blocks made since.
	Chain *Bundle
	// Now is the relying party's time; zero means the clock's.
	Now time.Time
	// MaxAge refuses an attestation made longer ago than this before Now;
	// 0 accepts any age.
	MaxAge time.Duration
	// MeterID, if set, is the meter the relying party asked about: a bundle
	// attesting another meter is refused.
	MeterID string
}

// Verify checks an attestation bundle offline, from nothing but the genesis
// block hash, and returns what it proves. Each failure is a *Refusal whose
// Kind says which check failed (docs/attestation.md lists them):
//
//  1. The genesis block is the pinned one (ErrGenesis).
//  2. Each configuration block is one of the bundle's channel, its
//     sequence one above the previous one, its data as its header commits
//     to, and signed by a BFT quorum of the consenters in force before it,
//     naming itself as the last configuration (ErrChain).
//  3. The attestation's block has its data as its header commits to, only
//     well-formed transactions, and the signatures of a BFT quorum of the
//     consenters in force, who name the chain's last configuration block
//     before it as the one in force (ErrBlock; ErrChain when a
//     configuration block is missing).
//  4. The transaction with the bundle's ID is an AttestMeter invocation of
//     the bundle's meter on chaincode pki, signed by its creator, a
//     member's identity (ErrTransaction).
//  5. Peers of at least two member NMIs endorsed it, each once, with valid
//     signatures and identities (ErrEndorsement).
//  6. What they signed is a successful meterAttestation of the meter whose
//     read-write set read the meter's record and wrote only the
//     attestation's mark (ErrRecord; ErrMeter when it is not the meter
//     asked about).
//  7. The peers' validation flags carried with the block mark the
//     transaction valid (ErrInvalid): an attestation endorsed while the
//     meter was active, held back and ordered after a revocation, is
//     invalidated by every peer. The flags are the peers' verdict, which
//     the orderers do not sign (docs/attestation.md says what bounds that).
//  8. The attestation is no older than MaxAge (ErrAge).
func Verify(b *Bundle, opts Options) (*Statement, error) {
	if b == nil {
		return nil, errors.New("verify: no bundle")
	}
	if len(opts.GenesisHash) != sha256.Size {
		return nil, fmt.Errorf("verify: the genesis hash has %d bytes, a SHA-256 hash has %d", len(opts.GenesisHash), sha256.Size)
	}
	if err := checkFields(b); err != nil {
		return nil, err
	}
	if opts.MeterID != "" && opts.MeterID != b.MeterID {
		return nil, refuse(ErrMeter, "the bundle", "the bundle attests meter %s, not %s", b.MeterID, opts.MeterID)
	}
	raw, err := decodeBlock(b.Block)
	if err != nil {
		return nil, refuse(ErrBundle, "the attestation's block", "%v", err)
	}
	n := raw.GetHeader().GetNumber()
	anchors, err := configChain(b, opts, n)
	if err != nil {
		return nil, err
	}
	return verifyBlock(b, raw, anchors, opts)
}

// verifyBlock checks the attestation's block and transaction against the
// verified configuration chain (checks 3 to 7 of Verify).
func verifyBlock(b *Bundle, raw *common.Block, anchors []*chain.Anchor, opts Options) (*Statement, error) {
	n := raw.GetHeader().GetNumber()
	anchor, err := inForce(anchors, raw)
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("block %d", n)
	marks, err := anchor.VerifyBlock(raw)
	if err != nil {
		var ie *chain.IntegrityError
		if errors.As(err, &ie) {
			return nil, refuseCause(ErrBlock, where, err, "%s", ie.Reason)
		}
		return nil, refuseCause(ErrBlock, where, err, "%v", err)
	}
	att, err := verifyTx(raw, b, anchor)
	if err != nil {
		return nil, err
	}
	flags := raw.GetMetadata().GetMetadata()
	filter := []byte(nil)
	if len(flags) > int(common.BlockMetadataIndex_TRANSACTIONS_FILTER) {
		filter = flags[common.BlockMetadataIndex_TRANSACTIONS_FILTER]
	}
	switch {
	case len(filter) != len(raw.GetData().GetData()):
		return nil, refuse(ErrInvalid, where, "the block carries %d validation flags for %d transactions: whether the peers found the attestation valid is not known", len(filter), len(raw.GetData().GetData()))
	case peer.TxValidationCode(filter[att.index]) != peer.TxValidationCode_VALID:
		return nil, refuse(ErrInvalid, where, "the peers marked the attestation transaction %s: it took no effect (endorsed, then ordered after what it read had changed, or invalid otherwise), and attests nothing",
			peer.TxValidationCode(filter[att.index]))
	}
	if opts.MaxAge > 0 {
		now := opts.Now
		if now.IsZero() {
			now = time.Now()
		}
		if oldest := now.Add(-opts.MaxAge); att.time.Before(oldest) {
			return nil, refuse(ErrAge, where, "the attestation was made at %s, more than %s before %s (at most %s old is accepted)",
				att.time.UTC().Format(time.RFC3339), opts.MaxAge, now.UTC().Format(time.RFC3339), opts.MaxAge)
		}
	}
	return statement(b, n, att, marks, anchor, opts.GenesisHash), nil
}

// checkFields requires what Parse requires of a bundle, for a bundle built
// in memory.
func checkFields(b *Bundle) error {
	switch {
	case b.Format != Format:
		return refuse(ErrBundle, "the bundle", "format %q: this verifier reads %q", b.Format, Format)
	case b.Channel == "":
		return refuse(ErrBundle, "the bundle", "it names no channel")
	case b.MeterID == "":
		return refuse(ErrBundle, "the bundle", "it names no meter")
	case b.TxID == "":
		return refuse(ErrBundle, "the bundle", "it names no attestation transaction")
	case len(b.Block) == 0:
		return refuse(ErrBundle, "the bundle", "it carries no block")
	case len(b.Genesis) == 0 && len(b.Config) > 0:
		return refuse(ErrBundle, "the bundle", "it carries configuration blocks but not the genesis block")
	}
	return nil
}

// decodeBlock reads a block of a bundle. Every byte of it must be covered by
// a hash or a signature the verification checks, or be the validation
// flags it checks: the encoding must be the canonical one (no unknown
// fields, nothing encoded twice), and the metadata may hold nothing but the
// orderers' signatures and the peers' validation flags.
func decodeBlock(data []byte) (*common.Block, error) {
	var raw common.Block
	if err := proto.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("it does not decode as a block: %w", err)
	}
	if raw.GetHeader() == nil {
		return nil, errors.New("it has no header")
	}
	for i, m := range raw.GetMetadata().GetMetadata() {
		if i != int(common.BlockMetadataIndex_SIGNATURES) && i != int(common.BlockMetadataIndex_TRANSACTIONS_FILTER) && len(m) > 0 {
			return nil, fmt.Errorf("it carries block metadata %s, which no one signs (a bundle carries only signed data and the validation flags)", common.BlockMetadataIndex(i))
		}
	}
	canonical, err := proto.MarshalOptions{Deterministic: true}.Marshal(&raw)
	if err != nil || !bytes.Equal(canonical, data) || hasUnknown(raw.ProtoReflect()) {
		return nil, errors.New("it is not canonically encoded: the same block would encode differently")
	}
	return &raw, nil
}

// hasUnknown reports whether a message or one inside it holds fields its
// type does not define, which decoding keeps and encoding writes back.
func hasUnknown(m protoreflect.Message) bool {
	if len(m.GetUnknown()) > 0 {
		return true
	}
	unknown := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() != nil && !fd.IsList() && !fd.IsMap() {
			unknown = hasUnknown(v.Message())
		}
		return !unknown
	})
	return unknown
}

// configChain verifies the configuration chain the attestation's block n is
// checked with: the bundle's own, Options.Chain's, or the longer of the two
// when both are there and agree.
func configChain(b *Bundle, opts Options, n uint64) ([]*chain.Anchor, error) {
	var own, trusted []*chain.Anchor
	var err error
	if len(b.Genesis) > 0 {
		if own, err = verifyChain("the bundle", b.Genesis, b.Config, b.Channel, opts.GenesisHash); err != nil {
			return nil, err
		}
		if last := own[len(own)-1]; last.Number >= n {
			return nil, refuse(ErrBundle, fmt.Sprintf("configuration block %d", last.Number),
				"the bundle's configuration blocks must precede its block %d", n)
		}
	}
	if opts.Chain != nil {
		c := opts.Chain
		switch {
		case len(c.Genesis) == 0:
			return nil, refuse(ErrChain, "the chain given", "the earlier bundle given as the chain carries no configuration chain")
		case c.Channel != b.Channel:
			return nil, refuse(ErrChain, "the chain given", "the earlier bundle is of channel %q, this one of %q", c.Channel, b.Channel)
		}
		if trusted, err = verifyChain("the chain given", c.Genesis, c.Config, b.Channel, opts.GenesisHash); err != nil {
			return nil, err
		}
	}
	switch {
	case own == nil && trusted == nil:
		return nil, refuse(ErrChain, "the bundle", "it carries no configuration chain, and no chain was given to verify it with (an earlier bundle of the channel that carries one)")
	case own == nil:
		return trusted, nil
	case trusted == nil:
		return own, nil
	}
	for i := range min(len(own), len(trusted)) {
		if !bytes.Equal(own[i].HeaderHash, trusted[i].HeaderHash) {
			return nil, refuse(ErrChain, fmt.Sprintf("configuration block %d", own[i].Number),
				"the bundle's configuration at sequence %d (block %d, header hash %x) is not the chain given's (block %d, header hash %x)",
				own[i].Config.Sequence, own[i].Number, own[i].HeaderHash, trusted[i].Number, trusted[i].HeaderHash)
		}
	}
	if len(trusted) > len(own) {
		return trusted, nil
	}
	return own, nil
}

// verifyChain verifies a genesis block against the pinned hash and the
// configuration blocks after it, and returns the anchors they make. source
// names where they come from: the bundle, or the chain given.
func verifyChain(source string, genesis []byte, config [][]byte, channelID string, pinned []byte) ([]*chain.Anchor, error) {
	where := "genesis block of " + source
	g, err := decodeBlock(genesis)
	if err != nil {
		return nil, refuse(ErrGenesis, where, "%v", err)
	}
	hash, err := chain.GenesisHash(g)
	if err != nil {
		return nil, refuseCause(ErrGenesis, where, err, "%v", err)
	}
	if !bytes.Equal(hash, pinned) {
		return nil, refuse(ErrGenesis, where, "%s's genesis block is not the channel's: hash %x, pinned %x", source, hash, pinned)
	}
	a, err := chain.GenesisAnchor(g)
	if err != nil {
		return nil, refuseCause(ErrGenesis, where, err, "%s", integrityReason(err))
	}
	if a.Channel != channelID {
		return nil, refuse(ErrGenesis, where, "the genesis block is of channel %q, the bundle names channel %q", a.Channel, channelID)
	}
	anchors := []*chain.Anchor{a}
	for i, data := range config {
		raw, err := decodeBlock(data)
		if err != nil {
			return nil, refuse(ErrChain, fmt.Sprintf("configuration block %d of %s", i+1, source), "%v", err)
		}
		next, err := a.NextConfig(raw)
		if err != nil {
			return nil, refuseCause(ErrChain, fmt.Sprintf("configuration block %d", raw.GetHeader().GetNumber()), err, "%s", integrityReason(err))
		}
		anchors = append(anchors, next)
		a = next
	}
	return anchors, nil
}

// inForce returns the anchor of the configuration in force at the block:
// the last configuration block before it, which the block's orderers must
// name. One they name beyond the chain means configuration blocks are
// missing from it: the block cannot be checked against the consenters the
// chain knows.
func inForce(anchors []*chain.Anchor, raw *common.Block) (*chain.Anchor, error) {
	n := raw.GetHeader().GetNumber()
	var a *chain.Anchor
	for _, c := range anchors {
		if c.Number < n {
			a = c
		}
	}
	where := fmt.Sprintf("block %d", n)
	if a == nil {
		return nil, refuse(ErrBlock, where, "block %d cannot hold an attestation: it is the genesis block", n)
	}
	if signed, err := chain.SignedLastConfig(raw); err == nil && signed > a.Number {
		return nil, refuse(ErrChain, where,
			"its orderers name configuration block %d as in force, but the configuration chain ends at block %d: a configuration block is left out (verify with a chain that reaches block %d)",
			signed, a.Number, signed)
	}
	return a, nil
}

// integrityReason is an integrity failure's reason without the block prefix
// (the refusal names the block).
func integrityReason(err error) string {
	var ie *chain.IntegrityError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return err.Error()
}

// statement assembles what the verified bundle proves.
func statement(b *Bundle, n uint64, att *attested, marks []chain.Signature, anchor *chain.Anchor, genesisHash []byte) *Statement {
	m := att.record.Meter
	s := &Statement{
		MeterID: m.ID, Channel: b.Channel, Block: n, TxID: b.TxID, Time: att.time.UTC(),
		Fingerprint: m.Fingerprint, Curve: string(m.Curve), KeyVersion: m.KeyVersion, PublicKey: m.PublicKey,
		Status: string(m.Status), Owner: m.NMI, Record: att.version, AttestedBy: att.endorsers,
		GenesisHash: hex.EncodeToString(genesisHash),
	}
	if r := m.Revocation; r != nil {
		s.Revocation = &Revocation{Reason: string(r.Reason), RevokedAt: r.RevokedAt, InvalidityDate: r.InvalidityDate, DecidedBy: r.DecidedBy}
	}
	seen := map[uint32]bool{}
	for _, sig := range marks {
		if sig.Valid && !seen[sig.ConsenterID] {
			seen[sig.ConsenterID] = true
			s.Ordering.Signers = append(s.Ordering.Signers, Consenter{ID: sig.ConsenterID, MSPID: sig.MSPID})
		}
	}
	s.Ordering.Signed, s.Ordering.Consenters = len(s.Ordering.Signers), anchor.Consenters()
	return s
}
