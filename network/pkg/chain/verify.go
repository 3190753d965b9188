package chain

import (
	"bytes"
	"cmp"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/network/pkg/channel"
)

// Verifier checks the integrity of the channel's blocks, fed in order from
// the genesis block: that each block's data is what its header commits to,
// that its header links to the previous one, and that a BFT quorum of the
// consenters in force signed it. The genesis block is the trust anchor: it is
// unsigned, and its configuration names the first consenter set; each later
// configuration block, once verified, replaces the set.
//
// A Verifier is not safe for concurrent use.
type Verifier struct {
	next       uint64
	prevHash   []byte
	lastConfig uint64
	consenters map[uint32]*consenter
}

// consenter is one ordering node allowed to sign blocks.
type consenter struct {
	id       uint32
	mspID    string
	identity []byte // PEM certificate, as the channel configuration has it
	cert     *x509.Certificate
}

// NewVerifier returns a verifier that expects the genesis block. It trusts
// the genesis block it is given; an explorer must compare that block's
// HeaderHash with the one pinned in its configuration (GenesisHash) before
// it trusts anything else, as package follow does.
func NewVerifier() *Verifier {
	return &Verifier{consenters: map[uint32]*consenter{}}
}

// VerifierState is what a Verifier knows after the blocks it has verified,
// so that an explorer can resume after a restart without re-reading the
// chain. It is a trust anchor: keep it where the explorer's own index is.
type VerifierState struct {
	// Next is the number of the next block to verify.
	Next uint64 `json:"next"`
	// PreviousHash is the header hash of block Next-1.
	PreviousHash []byte `json:"previousHash"`
	// LastConfig is the number of the last configuration block.
	LastConfig uint64 `json:"lastConfig"`
	// Consenters are the ordering nodes whose signatures count.
	Consenters []ConsenterState `json:"consenters"`
}

// ConsenterState is one ordering node of a VerifierState.
type ConsenterState struct {
	ID    uint32 `json:"id"`
	MSPID string `json:"mspId"`
	// Identity is the node's certificate (PEM), which signs blocks.
	Identity string `json:"identity"`
}

// State returns what the verifier knows, to resume from with NewVerifierFrom.
func (v *Verifier) State() VerifierState {
	s := VerifierState{Next: v.next, PreviousHash: slices.Clone(v.prevHash), LastConfig: v.lastConfig}
	for _, c := range v.consenters {
		s.Consenters = append(s.Consenters, ConsenterState{ID: c.id, MSPID: c.mspID, Identity: string(c.identity)})
	}
	slices.SortFunc(s.Consenters, func(a, b ConsenterState) int { return cmp.Compare(a.ID, b.ID) })
	return s
}

// NewVerifierFrom returns a verifier that resumes from a saved state. The
// zero state is that of NewVerifier.
func NewVerifierFrom(s VerifierState) (*Verifier, error) {
	v := NewVerifier()
	if s.Next == 0 {
		return v, nil
	}
	if len(s.PreviousHash) != sha256.Size {
		return nil, fmt.Errorf("verifier state at block %d: previous hash has %d bytes, want %d", s.Next, len(s.PreviousHash), sha256.Size)
	}
	if s.LastConfig >= s.Next {
		return nil, fmt.Errorf("verifier state at block %d: last configuration block %d is not behind it", s.Next, s.LastConfig)
	}
	cs := make([]channel.Consenter, len(s.Consenters))
	for i, c := range s.Consenters {
		cs[i] = channel.Consenter{ID: c.ID, MSPID: c.MSPID, Identity: []byte(c.Identity)}
	}
	consenters, err := consenterSet(cs)
	if err != nil {
		return nil, fmt.Errorf("verifier state at block %d: %w", s.Next, err)
	}
	v.next, v.prevHash, v.lastConfig, v.consenters = s.Next, slices.Clone(s.PreviousHash), s.LastConfig, consenters
	return v, nil
}

// Quorum is the number of distinct consenters of a set of n that must sign
// a block: ceil((n+f+1)/2) with f = (n-1)/3 faulty nodes tolerated.
func Quorum(n int) int {
	f := (n - 1) / 3
	return (n + f + 2) / 2
}

// Verify checks the next block, raw as the peer returned it. If b is not nil
// it must be Parse(raw): its signatures are then marked valid or not, and
// signatures that name their consenter by ID get its MSP ID and subject.
// On failure it returns an *IntegrityError and the verifier stays where it
// was, expecting the same block number again.
//
// Verify does not need a parsed block, so a block can be verified before it
// is parsed: one that fails to parse can be told apart from one that was
// tampered with.
func (v *Verifier) Verify(raw *common.Block, b *Block) error {
	h := raw.GetHeader()
	if h == nil {
		return integrity(v.next, ErrHeader, "the block has no header; expected block %d", v.next)
	}
	n := h.GetNumber()
	if b != nil && b.Number != n {
		return fmt.Errorf("verify block %d: the parsed block given is block %d", n, b.Number)
	}
	if n != v.next {
		return integrity(n, ErrOrder, "expected block %d, got block %d", v.next, n)
	}
	headerBytes, err := HeaderBytes(h)
	if err != nil {
		return integrity(n, ErrHeader, "%v", err)
	}
	if n > 0 && !bytes.Equal(h.GetPreviousHash(), v.prevHash) {
		return integrity(n, ErrPreviousHash, "previous hash mismatch: header links to %x, block %d has header hash %x", h.GetPreviousHash(), n-1, v.prevHash)
	}
	if got := dataHash(raw); !bytes.Equal(got, h.GetDataHash()) {
		return integrity(n, ErrDataHash, "data hash mismatch: header says %x, the %d transactions hash to %x", h.GetDataHash(), len(raw.GetData().GetData()), got)
	}
	config := isConfigBlock(raw)
	if !config {
		if err := wellFormed(raw.GetData().GetData()); err != nil {
			return integrity(n, ErrData, "%v", err)
		}
	}
	lastConfig := v.lastConfig
	if config {
		lastConfig = n
	}
	var marks []Signature
	if n == 0 {
		if !config {
			return integrity(n, ErrConfig, "the genesis block is not a configuration block")
		}
		// The genesis block is trusted as it is: nothing signs it.
		marks = parseSignatures(raw)
	} else {
		var signed uint64
		if marks, signed, err = checkSignatures(v.consenters, raw, headerBytes); err != nil {
			return err
		}
		// The orderers sign which configuration is in force; it must be the
		// one the verifier is using.
		if signed != lastConfig {
			return integrity(n, ErrConfig, "the orderers signed last configuration block %d, the verifier knows block %d", signed, lastConfig)
		}
	}
	consenters := v.consenters
	if config {
		if _, consenters, err = readConfig(raw); err != nil {
			return err
		}
	}
	if b != nil {
		if len(b.Signatures) != len(marks) {
			return fmt.Errorf("verify block %d: the parsed block has %d signatures, the block %d", n, len(b.Signatures), len(marks))
		}
		copy(b.Signatures, marks)
	}
	v.next, v.prevHash, v.lastConfig, v.consenters = n+1, hashOf(headerBytes), lastConfig, consenters
	return nil
}

// GenesisHash returns the header hash of a channel's genesis block, as a
// block file holds it (configtxgen -outputBlock, peer channel fetch 0): the
// value an explorer pins so that no peer can hand it another block 0, and
// with it another set of orderers to check signatures against. It refuses
// a block that is not block 0, not a configuration block, or whose header
// does not commit to its data, since the hash would then pin a header
// without the configuration the verifier reads.
func GenesisHash(b *common.Block) ([]byte, error) {
	h := b.GetHeader()
	switch {
	case h == nil:
		return nil, errors.New("the block has no header")
	case h.GetNumber() != 0:
		return nil, fmt.Errorf("block %d is not a genesis block", h.GetNumber())
	case !bytes.Equal(dataHash(b), h.GetDataHash()):
		return nil, fmt.Errorf("the genesis block's header says data hash %x, its data hashes to %x", h.GetDataHash(), dataHash(b))
	case !isConfigBlock(b):
		return nil, errors.New("block 0 is not a configuration block")
	}
	return HeaderHash(h)
}

func hashOf(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

// dataHash is what a header's data hash must be: the SHA-256 of the block's
// transactions, concatenated.
func dataHash(b *common.Block) []byte {
	h := sha256.New()
	for _, d := range b.GetData().GetData() {
		h.Write(d)
	}
	return h.Sum(nil)
}

// wellFormed requires each transaction to be an envelope with a payload and
// a signature, encoded canonically. The data hash covers the transactions'
// concatenation only, and two concatenated protobuf messages decode as one:
// without this check a peer could merge two transactions of a signed block
// into one, hiding the first, and the hashes would still match. A
// configuration block is exempt, as in Fabric: the orderers put a
// configuration transaction in a block of its own, so there is nothing to
// merge it with.
func wellFormed(data [][]byte) error {
	if len(data) == 0 {
		return errors.New("the block has no transactions")
	}
	for i, d := range data {
		var env common.Envelope
		if err := proto.Unmarshal(d, &env); err != nil {
			return fmt.Errorf("transaction %d is not an envelope: %w", i, err)
		}
		if len(env.GetPayload()) == 0 || len(env.GetSignature()) == 0 {
			return fmt.Errorf("transaction %d lacks a payload or a signature", i)
		}
		canonical, err := proto.MarshalOptions{Deterministic: true}.Marshal(&env)
		if err != nil {
			return fmt.Errorf("transaction %d: re-encode: %w", i, err)
		}
		if !bytes.Equal(canonical, d) {
			return fmt.Errorf("transaction %d is not canonically encoded (%d bytes, %d when re-encoded)", i, len(d), len(canonical))
		}
	}
	return nil
}

// isConfigBlock reports whether the block carries a channel configuration.
func isConfigBlock(b *common.Block) bool {
	data := b.GetData().GetData()
	if len(data) != 1 {
		return false
	}
	var env common.Envelope
	var payload common.Payload
	var ch common.ChannelHeader
	if proto.Unmarshal(data[0], &env) != nil || proto.Unmarshal(env.GetPayload(), &payload) != nil ||
		proto.Unmarshal(payload.GetHeader().GetChannelHeader(), &ch) != nil {
		return false
	}
	return ch.GetType() == int32(common.HeaderType_CONFIG)
}

// checkSignatures verifies every orderer signature on the block against the
// consenter set and requires a quorum of distinct consenters. It returns
// each signature as verified and the last configuration block the orderers
// signed as in force, for the caller to compare with the one it knows.
func checkSignatures(consenters map[uint32]*consenter, raw *common.Block, headerBytes []byte) ([]Signature, uint64, error) {
	n := raw.GetHeader().GetNumber()
	md, err := signaturesMetadata(raw)
	if err != nil {
		return nil, 0, integrity(n, ErrQuorum, "signatures unreadable: %v", err)
	}
	marks := make([]Signature, len(md.GetSignatures()))
	signers := map[uint32]bool{}
	var problems []string
	for i, ms := range md.GetSignatures() {
		c, signed, err := signer(consenters, ms)
		if err == nil {
			payload := slices.Concat(md.GetValue(), signed, headerBytes)
			err = verifySignature(c.cert, payload, ms.GetSignature())
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("signature %d: %v", i, err))
			marks[i] = unverified(ms)
			continue
		}
		marks[i] = Signature{ConsenterID: c.id, MSPID: c.mspID, Subject: c.cert.Subject.String(), Valid: true}
		signers[c.id] = true
	}
	if need := Quorum(len(consenters)); len(signers) < need {
		reason := fmt.Sprintf("%d distinct consenters of %d validly signed, a BFT quorum is %d", len(signers), len(consenters), need)
		if len(problems) > 0 {
			reason += " (" + strings.Join(problems, "; ") + ")"
		}
		return nil, 0, integrity(n, ErrQuorum, "%s", reason)
	}
	var obm common.OrdererBlockMetadata
	if err := proto.Unmarshal(md.GetValue(), &obm); err != nil {
		return nil, 0, integrity(n, ErrConfig, "orderer metadata unreadable: %v", err)
	}
	return marks, obm.GetLastConfig().GetIndex(), nil
}

// readConfig reads the configuration a configuration block carries and the
// consenter set it puts in force.
func readConfig(raw *common.Block) (*channel.Config, map[uint32]*consenter, error) {
	n := raw.GetHeader().GetNumber()
	cfg, err := channel.FromBlock(raw)
	if err != nil {
		return nil, nil, integrity(n, ErrConfig, "read the configuration: %v", err)
	}
	if cfg.ConsensusType != "BFT" {
		return nil, nil, integrity(n, ErrConfig, "consensus type is %q: only the signatures of a BFT ordering service can be verified", cfg.ConsensusType)
	}
	consenters, err := consenterSet(cfg.Consenters)
	if err != nil {
		return nil, nil, integrity(n, ErrConfig, "%v", err)
	}
	return cfg, consenters, nil
}

// signaturesMetadata reads the SIGNATURES entry of a block's metadata.
func signaturesMetadata(b *common.Block) (*common.Metadata, error) {
	var md common.Metadata
	if err := proto.Unmarshal(metadata(b, common.BlockMetadataIndex_SIGNATURES), &md); err != nil {
		return nil, err
	}
	return &md, nil
}

// signer finds the consenter of the set a signature claims to be from, and
// the header bytes the signature covers besides the metadata value and
// block header.
func signer(consenters map[uint32]*consenter, ms *common.MetadataSignature) (*consenter, []byte, error) {
	if len(ms.GetSignatureHeader()) == 0 {
		var ih common.IdentifierHeader
		if err := proto.Unmarshal(ms.GetIdentifierHeader(), &ih); err != nil {
			return nil, nil, fmt.Errorf("identifier header: %w", err)
		}
		c := consenters[ih.GetIdentifier()]
		if c == nil {
			return nil, nil, fmt.Errorf("consenter %d is not in the consenter set", ih.GetIdentifier())
		}
		return c, ms.GetIdentifierHeader(), nil
	}
	var sh common.SignatureHeader
	if err := proto.Unmarshal(ms.GetSignatureHeader(), &sh); err != nil {
		return nil, nil, fmt.Errorf("signature header: %w", err)
	}
	id, err := parseIdentity(sh.GetCreator())
	if err != nil {
		return nil, nil, fmt.Errorf("signer: %w", err)
	}
	for _, c := range consenters {
		if c.mspID == id.mspID && id.cert != nil && bytes.Equal(c.cert.Raw, id.cert.Raw) {
			return c, ms.GetSignatureHeader(), nil
		}
	}
	return nil, nil, fmt.Errorf("signer %s of %s is not a consenter", id.subject, id.mspID)
}

// unverified describes a signature that did not verify, as far as it can be
// read.
func unverified(ms *common.MetadataSignature) Signature {
	var s Signature
	if len(ms.GetSignatureHeader()) == 0 {
		var ih common.IdentifierHeader
		if proto.Unmarshal(ms.GetIdentifierHeader(), &ih) == nil {
			s.ConsenterID = ih.GetIdentifier()
		}
		return s
	}
	var sh common.SignatureHeader
	if proto.Unmarshal(ms.GetSignatureHeader(), &sh) == nil {
		if id, err := parseIdentity(sh.GetCreator()); err == nil {
			s.MSPID, s.Subject = id.mspID, id.subject
		}
	}
	return s
}

// verifySignature checks a signature over payload by the certificate's key:
// ECDSA over SHA-256 with a DER signature, or Ed25519.
func verifySignature(cert *x509.Certificate, payload, sig []byte) error {
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if err := lowS(pub, sig); err != nil {
			return err
		}
		digest := sha256.Sum256(payload)
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			return errors.New("ECDSA signature does not verify")
		}
	case ed25519.PublicKey:
		if !ed25519.Verify(pub, payload, sig) {
			return errors.New("Ed25519 signature does not verify")
		}
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
	return nil
}

// lowS refuses an ECDSA signature whose S is in the upper half of the group
// order, as Fabric's own verification does: (r, n-s) is as valid as (r, s),
// and a peer must not accept what the orderers' peers would refuse.
func lowS(pub *ecdsa.PublicKey, sig []byte) error {
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(sig, &rs)
	if err != nil || len(rest) > 0 || rs.R == nil || rs.S == nil {
		return errors.New("signature is not a DER ECDSA signature")
	}
	half := new(big.Int).Rsh(pub.Curve.Params().N, 1)
	if rs.S.Sign() <= 0 || rs.S.Cmp(half) > 0 {
		return errors.New("ECDSA signature has a high S value")
	}
	return nil
}

// consenterSet reads the consenters' certificates.
func consenterSet(cs []channel.Consenter) (map[uint32]*consenter, error) {
	if len(cs) == 0 {
		return nil, errors.New("the configuration names no consenters")
	}
	set := make(map[uint32]*consenter, len(cs))
	for _, c := range cs {
		if set[c.ID] != nil {
			return nil, fmt.Errorf("consenter ID %d appears twice", c.ID)
		}
		block, _ := pem.Decode(c.Identity)
		if block == nil {
			return nil, fmt.Errorf("consenter %d (%s): identity is not a PEM certificate", c.ID, c.MSPID)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("consenter %d (%s): %w", c.ID, c.MSPID, err)
		}
		switch cert.PublicKey.(type) {
		case *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			return nil, fmt.Errorf("consenter %d (%s): unsupported key type %T", c.ID, c.MSPID, cert.PublicKey)
		}
		set[c.ID] = &consenter{id: c.ID, mspID: c.MSPID, identity: slices.Clone(c.Identity), cert: cert}
	}
	return set, nil
}
