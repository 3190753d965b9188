package chain

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/attrmgr"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset/kvrwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// ParseBytes decodes a block as the peer returns it (protobuf common.Block)
// and parses it.
func ParseBytes(data []byte) (*Block, error) {
	var b common.Block
	if err := proto.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("decode block: %w", err)
	}
	return Parse(&b)
}

// Parse reads a committed block: its header, the orderers' signatures (not
// yet verified: see Verifier) and every transaction.
//
// A transaction the peers committed as VALID must parse completely, or Parse
// fails naming it. A transaction they refused is kept with what could be read
// and Tx.Problem set: the ordering service does not look inside endorser
// transactions, so any client of the channel can get a malformed one into a
// block, and that must not stop the explorer.
func Parse(b *common.Block) (*Block, error) {
	h := b.GetHeader()
	if h == nil {
		return nil, errors.New("block has no header")
	}
	n := h.GetNumber()
	hash, err := HeaderHash(h)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", n, err)
	}
	out := &Block{
		Number:       n,
		HeaderHash:   hash,
		PreviousHash: h.GetPreviousHash(),
		DataHash:     h.GetDataHash(),
		Size:         proto.Size(b),
	}
	out.Signatures = parseSignatures(b)
	var commit common.Metadata
	if proto.Unmarshal(metadata(b, common.BlockMetadataIndex_COMMIT_HASH), &commit) == nil {
		out.CommitHash = commit.GetValue()
	}
	data := b.GetData().GetData()
	filter := metadata(b, common.BlockMetadataIndex_TRANSACTIONS_FILTER)
	if len(filter) != len(data) {
		return nil, fmt.Errorf("block %d: %d validation codes for %d transactions", n, len(filter), len(data))
	}
	out.Txs = make([]Tx, len(data))
	for i, raw := range data {
		tx := &out.Txs[i]
		tx.Index = i
		tx.Code = peer.TxValidationCode(filter[i]).String()
		if err := parseTx(raw, tx); err != nil {
			if tx.Valid() {
				if tx.ID != "" {
					return nil, fmt.Errorf("block %d tx %d (%s): %w", n, i, tx.ID, err)
				}
				return nil, fmt.Errorf("block %d tx %d: %w", n, i, err)
			}
			tx.Problem = err.Error()
		}
	}
	if len(out.Txs) > 0 {
		out.Time = out.Txs[0].Time
	}
	// As for the Verifier: a configuration transaction is alone in its block.
	out.Config = len(out.Txs) == 1 && out.Txs[0].Type == common.HeaderType_CONFIG.String()
	return out, nil
}

// headerASN1 is the block header as it is hashed and signed: the DER of a
// SEQUENCE of the number as an INTEGER and the two hashes as OCTET STRINGs.
type headerASN1 struct {
	Number       *big.Int
	PreviousHash []byte
	DataHash     []byte
}

// HeaderBytes is the encoding of a block header that its hash and the
// orderers' signatures cover.
func HeaderBytes(h *common.BlockHeader) ([]byte, error) {
	der, err := asn1.Marshal(headerASN1{
		Number:       new(big.Int).SetUint64(h.GetNumber()),
		PreviousHash: h.GetPreviousHash(),
		DataHash:     h.GetDataHash(),
	})
	if err != nil {
		return nil, fmt.Errorf("encode block header: %w", err)
	}
	return der, nil
}

// HeaderHash is the hash of a block header, which the next block's header
// links to.
func HeaderHash(h *common.BlockHeader) ([]byte, error) {
	der, err := HeaderBytes(h)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return sum[:], nil
}

// metadata returns one entry of a block's metadata, nil when absent.
func metadata(b *common.Block, i common.BlockMetadataIndex) []byte {
	md := b.GetMetadata().GetMetadata()
	if int(i) >= len(md) {
		return nil
	}
	return md[i]
}

// parseSignatures reads who signed the block, as far as it can be read:
// block metadata is covered by neither the hash chain nor the signatures, so
// whether a signature counts is for the Verifier to say, not for Parse.
// Identities named by consenter ID are resolved by the Verifier, which knows
// the consenter set.
func parseSignatures(b *common.Block) []Signature {
	md, err := signaturesMetadata(b)
	if err != nil || len(md.GetSignatures()) == 0 {
		return nil
	}
	sigs := make([]Signature, len(md.GetSignatures()))
	for i, ms := range md.GetSignatures() {
		sigs[i] = unverified(ms)
	}
	return sigs
}

// identity is a serialized Fabric identity, read.
type identity struct {
	mspID   string
	subject string
	role    string
	cert    *x509.Certificate // nil unless the identity is an X.509 certificate
}

// parseIdentity reads a msp.SerializedIdentity. Identities that are not X.509
// certificates (Idemix) keep only their MSP ID.
func parseIdentity(raw []byte) (identity, error) {
	var si msp.SerializedIdentity
	if err := proto.Unmarshal(raw, &si); err != nil {
		return identity{}, fmt.Errorf("serialized identity: %w", err)
	}
	id := identity{mspID: si.GetMspid()}
	block, _ := pem.Decode(si.GetIdBytes())
	if block == nil {
		return id, nil
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return id, fmt.Errorf("certificate of %s: %w", id.mspID, err)
	}
	id.cert, id.subject = cert, cert.Subject.String()
	attrs, err := attrmgr.New().GetAttributesFromCert(cert)
	if err != nil {
		return id, fmt.Errorf("attributes of %s: %w", id.subject, err)
	}
	id.role, _, _ = attrs.Value(wire.RoleAttribute)
	return id, nil
}

// parseTx fills tx from one envelope of the block's data.
func parseTx(raw []byte, tx *Tx) error {
	var env common.Envelope
	if err := proto.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("envelope: %w", err)
	}
	var payload common.Payload
	if err := proto.Unmarshal(env.GetPayload(), &payload); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	var ch common.ChannelHeader
	if err := proto.Unmarshal(payload.GetHeader().GetChannelHeader(), &ch); err != nil {
		return fmt.Errorf("channel header: %w", err)
	}
	tx.ID = ch.GetTxId()
	tx.Type = common.HeaderType(ch.GetType()).String()
	if ts := ch.GetTimestamp(); ts != nil {
		tx.Time = ts.AsTime()
	}
	var sh common.SignatureHeader
	if err := proto.Unmarshal(payload.GetHeader().GetSignatureHeader(), &sh); err != nil {
		return fmt.Errorf("signature header: %w", err)
	}
	// The genesis block's configuration transaction has no creator.
	if len(sh.GetCreator()) > 0 {
		creator, err := parseIdentity(sh.GetCreator())
		if err != nil {
			return fmt.Errorf("creator: %w", err)
		}
		tx.CreatorMSP, tx.CreatorSubject, tx.CreatorRole = creator.mspID, creator.subject, creator.role
	}
	if ch.GetType() != int32(common.HeaderType_ENDORSER_TRANSACTION) {
		return nil
	}
	return parseEndorserTx(payload.GetData(), tx)
}

// parseEndorserTx reads a chaincode invocation: what was called, who
// endorsed it, and what it answered, read, wrote and emitted.
func parseEndorserTx(data []byte, tx *Tx) error {
	var t peer.Transaction
	if err := proto.Unmarshal(data, &t); err != nil {
		return fmt.Errorf("transaction: %w", err)
	}
	// Fabric validates exactly one action per transaction.
	if n := len(t.GetActions()); n != 1 {
		return fmt.Errorf("transaction has %d actions, want 1", n)
	}
	var cap peer.ChaincodeActionPayload
	if err := proto.Unmarshal(t.GetActions()[0].GetPayload(), &cap); err != nil {
		return fmt.Errorf("chaincode action payload: %w", err)
	}
	var cpp peer.ChaincodeProposalPayload
	if err := proto.Unmarshal(cap.GetChaincodeProposalPayload(), &cpp); err != nil {
		return fmt.Errorf("chaincode proposal payload: %w", err)
	}
	var cis peer.ChaincodeInvocationSpec
	if err := proto.Unmarshal(cpp.GetInput(), &cis); err != nil {
		return fmt.Errorf("chaincode invocation: %w", err)
	}
	spec := cis.GetChaincodeSpec()
	tx.Chaincode = spec.GetChaincodeId().GetName()
	if args := spec.GetInput().GetArgs(); len(args) > 0 {
		tx.Function = string(args[0])
		tx.Args = make([]string, len(args)-1)
		for i, a := range args[1:] {
			tx.Args[i] = string(a)
		}
	}
	action := cap.GetAction()
	for i, e := range action.GetEndorsements() {
		endorser, err := parseIdentity(e.GetEndorser())
		if err != nil {
			return fmt.Errorf("endorsement %d: %w", i, err)
		}
		tx.Endorsers = append(tx.Endorsers, endorser.mspID)
	}
	var prp peer.ProposalResponsePayload
	if err := proto.Unmarshal(action.GetProposalResponsePayload(), &prp); err != nil {
		return fmt.Errorf("proposal response payload: %w", err)
	}
	var ca peer.ChaincodeAction
	if err := proto.Unmarshal(prp.GetExtension(), &ca); err != nil {
		return fmt.Errorf("chaincode action: %w", err)
	}
	if tx.Chaincode == "" {
		tx.Chaincode = ca.GetChaincodeId().GetName()
	}
	tx.ResponseStatus = ca.GetResponse().GetStatus()
	tx.ResponsePayload = ca.GetResponse().GetPayload()
	if len(ca.GetEvents()) > 0 {
		var ev peer.ChaincodeEvent
		if err := proto.Unmarshal(ca.GetEvents(), &ev); err != nil {
			return fmt.Errorf("chaincode event: %w", err)
		}
		if ev.GetEventName() != "" {
			tx.Events = append(tx.Events, Event{Name: ev.GetEventName(), Payload: ev.GetPayload()})
		}
	}
	return parseRWSet(ca.GetResults(), tx)
}

// parseRWSet reads the public read/write set of every namespace, including
// the peer's own (_lifecycle, read by every invocation to check the
// chaincode definition): an auditor sees all the transaction touched.
// Range-query summaries (only used for phantom-read checks) and private-data
// hashes (the pki chaincode has no collections) are not kept.
func parseRWSet(raw []byte, tx *Tx) error {
	var set rwset.TxReadWriteSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		return fmt.Errorf("read/write set: %w", err)
	}
	for _, ns := range set.GetNsRwset() {
		name := ns.GetNamespace()
		var kv kvrwset.KVRWSet
		if err := proto.Unmarshal(ns.GetRwset(), &kv); err != nil {
			return fmt.Errorf("read/write set of %s: %w", name, err)
		}
		for _, r := range kv.GetReads() {
			tx.Reads = append(tx.Reads, Read{
				Namespace: name, Key: r.GetKey(),
				Block: r.GetVersion().GetBlockNum(), Tx: r.GetVersion().GetTxNum(),
				Absent: r.GetVersion() == nil,
			})
		}
		for _, w := range kv.GetWrites() {
			tx.Writes = append(tx.Writes, Write{
				Namespace: name, Key: w.GetKey(), Value: w.GetValue(), Delete: w.GetIsDelete(),
			})
		}
		for _, m := range kv.GetMetadataWrites() {
			mw := MetadataWrite{Namespace: name, Key: m.GetKey()}
			for _, e := range m.GetEntries() {
				mw.Entries = append(mw.Entries, MetadataEntry{Name: e.GetName(), Value: e.GetValue()})
			}
			tx.MetadataWrites = append(tx.MetadataWrites, mw)
		}
	}
	return nil
}

// ParseProcessed reads one committed transaction as the peer's query
// system chaincode returns it (GetTransactionByID: a peer.ProcessedTransaction,
// the envelope with its validation code). Index is left 0: the transaction's
// place in its block is not part of it. As in Parse, a VALID transaction must
// parse completely.
func ParseProcessed(data []byte) (*Tx, error) {
	var pt peer.ProcessedTransaction
	if err := proto.Unmarshal(data, &pt); err != nil {
		return nil, fmt.Errorf("decode processed transaction: %w", err)
	}
	raw, err := proto.Marshal(pt.GetTransactionEnvelope())
	if err != nil {
		return nil, fmt.Errorf("transaction envelope: %w", err)
	}
	tx := &Tx{Code: peer.TxValidationCode(pt.GetValidationCode()).String()}
	if err := parseTx(raw, tx); err != nil {
		if tx.Valid() {
			return nil, fmt.Errorf("tx %s: %w", tx.ID, err)
		}
		tx.Problem = err.Error()
	}
	return tx, nil
}
