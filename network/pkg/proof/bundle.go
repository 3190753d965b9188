// Package proof is the meter certificate anyone can check offline: an
// attestation bundle, and its verification with nothing but the channel's
// genesis block hash.
//
// A bundle carries the block holding an AttestMeter transaction (whose
// endorsing NMIs signed the meter's record as they read it), and the
// channel's configuration blocks from the genesis block to the one in
// force at that block: the genesis block, pinned by its hash, names the
// first orderers and NMIs; each configuration block after it is signed by a
// BFT quorum of the orderers in force before it; the attestation's block is
// signed by a quorum of those in force at it and commits to the
// transaction by its data hash. The format is documented field by field in
// docs/attestation.md.
package proof

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"
)

// Format names the bundle format and its version.
const Format = "inter-nmi/meter-attestation/1"

// MaxBundleBytes bounds a bundle a verifier reads: the configuration chain
// and one block (at most a few MiB at the channel's block size limit).
const MaxBundleBytes = 256 << 20

// Bundle is an attestation bundle. Blocks are the protobuf encoding of
// common.Block as the peers store them (header, data, metadata with the
// orderers' signatures); in JSON they are standard base64.
type Bundle struct {
	Format string `json:"format"`
	// Channel is the channel the blocks belong to.
	Channel string `json:"channel"`
	// MeterID is the meter attested.
	MeterID string `json:"meterId"`
	// TxID is the attestation transaction in Block.
	TxID string `json:"txId"`
	// Genesis is block 0. A bundle without its configuration chain (made
	// for a verifier that holds the chain already) has no Genesis and no
	// Config.
	Genesis []byte `json:"genesis,omitempty"`
	// Config are the configuration blocks after block 0, ascending, up to
	// and including the last one before Block (the one in force at it).
	Config [][]byte `json:"config,omitempty"`
	// Block is the block that holds the attestation transaction.
	Block []byte `json:"block"`
}

// Build makes a bundle of the attestation transaction txID in block. With
// a nil genesis the bundle carries no configuration chain (config must be
// empty then).
func Build(channel, meterID, txID string, genesis *common.Block, config []*common.Block, block *common.Block) (*Bundle, error) {
	if genesis == nil && len(config) > 0 {
		return nil, errors.New("configuration blocks without the genesis block")
	}
	b := &Bundle{Format: Format, Channel: channel, MeterID: meterID, TxID: txID}
	var err error
	if genesis != nil {
		if b.Genesis, err = marshal(genesis); err != nil {
			return nil, fmt.Errorf("genesis block: %w", err)
		}
	}
	for _, c := range config {
		raw, err := marshal(c)
		if err != nil {
			return nil, fmt.Errorf("configuration block %d: %w", c.GetHeader().GetNumber(), err)
		}
		b.Config = append(b.Config, raw)
	}
	if b.Block, err = marshal(block); err != nil {
		return nil, fmt.Errorf("block %d: %w", block.GetHeader().GetNumber(), err)
	}
	return b, nil
}

// marshal encodes a block for a bundle: what is signed, and the peers'
// validation flags. The flags (one code per transaction) are the peers'
// verdict, which Fabric's orderers do not sign, but the verifier needs it:
// an endorsed attestation held back and ordered after the meter changed is
// invalidated by every peer, and proves nothing. The rest of the metadata
// (the peer's commit hash) is left out; Verify refuses a block carrying it.
func marshal(b *common.Block) ([]byte, error) {
	signed := &common.Block{Header: b.GetHeader(), Data: b.GetData(), Metadata: &common.BlockMetadata{}}
	for i, m := range b.GetMetadata().GetMetadata() {
		if i == int(common.BlockMetadataIndex_SIGNATURES) || i == int(common.BlockMetadataIndex_TRANSACTIONS_FILTER) {
			signed.Metadata.Metadata = append(signed.Metadata.Metadata, m)
		} else {
			signed.Metadata.Metadata = append(signed.Metadata.Metadata, nil)
		}
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(signed)
}

// WithoutChain returns the bundle without its configuration chain.
func (b *Bundle) WithoutChain() *Bundle {
	c := *b
	c.Genesis, c.Config = nil, nil
	return &c
}

// Marshal encodes the bundle as JSON.
func (b *Bundle) Marshal() ([]byte, error) { return json.MarshalIndent(b, "", "  ") }

// Parse decodes a bundle strictly: JSON with exactly the fields of Bundle,
// nothing after it, the format this package reads, and every block field
// present where it must be. It does not verify anything (Verify does).
func Parse(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleBytes {
		return nil, fmt.Errorf("the bundle is %d bytes, at most %d are read", len(data), MaxBundleBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Bundle
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("the bundle is not an attestation bundle: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("the bundle has data after its JSON value")
	}
	switch {
	case b.Format != Format:
		return nil, fmt.Errorf("bundle format %q: this verifier reads %q", b.Format, Format)
	case b.Channel == "":
		return nil, errors.New("the bundle names no channel")
	case b.MeterID == "":
		return nil, errors.New("the bundle names no meter")
	case b.TxID == "":
		return nil, errors.New("the bundle names no attestation transaction")
	case len(b.Block) == 0:
		return nil, errors.New("the bundle carries no block")
	case len(b.Genesis) == 0 && len(b.Config) > 0:
		return nil, errors.New("the bundle carries configuration blocks but not the genesis block")
	}
	for i, c := range b.Config {
		if len(c) == 0 {
			return nil, fmt.Errorf("configuration block %d of the bundle is empty", i)
		}
	}
	return &b, nil
}
