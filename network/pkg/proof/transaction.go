package proof

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset/kvrwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// minAttesters is how many distinct NMIs must have endorsed an attestation:
// the channel's endorsement policy for the pki chaincode (2 of the members).
const minAttesters = 2

// attested is what the transaction proves once verified.
type attested struct {
	// index is the transaction's position in its block.
	index     int
	record    wire.Attestation
	time      time.Time
	version   RecordVersion
	endorsers []string
}

// verifyTx finds the bundle's transaction in the verified block and checks
// that it is an attestation of the bundle's meter, signed by a member's
// client and endorsed by the peers of at least two member NMIs, with the
// configuration of anchor in force.
func verifyTx(raw *common.Block, b *Bundle, anchor *chain.Anchor) (*attested, error) {
	n := raw.GetHeader().GetNumber()
	where := fmt.Sprintf("transaction %s in block %d", b.TxID, n)
	var env *common.Envelope
	var payload *common.Payload
	var ch *common.ChannelHeader
	index := -1
	for i, data := range raw.GetData().GetData() {
		e, p, c, err := envelope(data)
		if err != nil || c.GetTxId() != b.TxID {
			continue
		}
		if env != nil {
			return nil, refuse(ErrTransaction, where, "the block holds the transaction twice (again at position %d): Fabric keeps only the first", i)
		}
		env, payload, ch, index = e, p, c, i
	}
	if env == nil {
		return nil, refuse(ErrTransaction, where, "block %d holds no transaction %s", n, b.TxID)
	}
	if t := common.HeaderType(ch.GetType()); t != common.HeaderType_ENDORSER_TRANSACTION {
		return nil, refuse(ErrTransaction, where, "it is a %s transaction, not a chaincode invocation", t)
	}
	if ch.GetChannelId() != b.Channel {
		return nil, refuse(ErrTransaction, where, "it is of channel %q, not %q", ch.GetChannelId(), b.Channel)
	}
	if ch.GetTimestamp() == nil {
		return nil, refuse(ErrTransaction, where, "it has no timestamp")
	}
	at := ch.GetTimestamp().AsTime()
	ms := membersOf(anchor.Config)

	// The creator: a member's identity (its signature over the payload is
	// checked last, so that the checks of what the endorsers signed are
	// reached, and tested, on their own).
	var sh common.SignatureHeader
	if err := proto.Unmarshal(payload.GetHeader().GetSignatureHeader(), &sh); err != nil {
		return nil, refuse(ErrTransaction, where, "its signature header does not decode: %v", err)
	}
	creator, err := ms.verifyIdentity(sh.GetCreator(), at, nodeAny)
	if err != nil {
		return nil, refuse(ErrTransaction, where, "its creator: %v", err)
	}

	// The invocation: AttestMeter(meter) on the pki chaincode.
	var t peer.Transaction
	if err := proto.Unmarshal(payload.GetData(), &t); err != nil {
		return nil, refuse(ErrTransaction, where, "it does not decode as a transaction: %v", err)
	}
	if len(t.GetActions()) != 1 {
		return nil, refuse(ErrTransaction, where, "it has %d actions; Fabric validates exactly one", len(t.GetActions()))
	}
	action := t.GetActions()[0]
	if !bytes.Equal(action.GetHeader(), payload.GetHeader().GetSignatureHeader()) {
		return nil, refuse(ErrTransaction, where, "its action's signature header is not the transaction's")
	}
	var cap peer.ChaincodeActionPayload
	if err := proto.Unmarshal(action.GetPayload(), &cap); err != nil {
		return nil, refuse(ErrTransaction, where, "its chaincode action does not decode: %v", err)
	}
	var cpp peer.ChaincodeProposalPayload
	if err := proto.Unmarshal(cap.GetChaincodeProposalPayload(), &cpp); err != nil {
		return nil, refuse(ErrTransaction, where, "its proposal does not decode: %v", err)
	}
	var cis peer.ChaincodeInvocationSpec
	if err := proto.Unmarshal(cpp.GetInput(), &cis); err != nil {
		return nil, refuse(ErrTransaction, where, "its invocation does not decode: %v", err)
	}
	spec := cis.GetChaincodeSpec()
	args := spec.GetInput().GetArgs()
	if name := spec.GetChaincodeId().GetName(); name != wire.Namespace {
		return nil, refuse(ErrTransaction, where, "it invokes chaincode %q, not %q", name, wire.Namespace)
	}
	if len(args) != 2 || string(args[0]) != wire.TxAttestMeter {
		fn := ""
		if len(args) > 0 {
			fn = string(args[0])
		}
		return nil, refuse(ErrTransaction, where, "it calls %q with %d arguments, not %s(meter ID)", fn, max(len(args)-1, 0), wire.TxAttestMeter)
	}
	if string(args[1]) != b.MeterID {
		return nil, refuse(ErrMeter, where, "it attests meter %q, the bundle names %q", args[1], b.MeterID)
	}

	// The endorsements: peers of at least two member NMIs signed what the
	// chaincode answered for this very proposal.
	endorsed := cap.GetAction()
	prpBytes := endorsed.GetProposalResponsePayload()
	var prp peer.ProposalResponsePayload
	if err := proto.Unmarshal(prpBytes, &prp); err != nil {
		return nil, refuse(ErrRecord, where, "the endorsed response does not decode: %v", err)
	}
	want := sha256.Sum256(slices.Concat(payload.GetHeader().GetChannelHeader(), payload.GetHeader().GetSignatureHeader(), cap.GetChaincodeProposalPayload()))
	if !bytes.Equal(prp.GetProposalHash(), want[:]) {
		return nil, refuse(ErrRecord, where, "the endorsed response is for another proposal (its proposal hash is not this transaction's)")
	}
	endorsers, err := verifyEndorsements(endorsed.GetEndorsements(), prpBytes, ms, at, where)
	if err != nil {
		return nil, err
	}

	// What they signed: a successful attestation of the meter, having read
	// its record and written only the attestation's mark.
	var ca peer.ChaincodeAction
	if err := proto.Unmarshal(prp.GetExtension(), &ca); err != nil {
		return nil, refuse(ErrRecord, where, "the chaincode's action does not decode: %v", err)
	}
	if name := ca.GetChaincodeId().GetName(); name != wire.Namespace {
		return nil, refuse(ErrRecord, where, "the endorsers ran chaincode %q, not %q", name, wire.Namespace)
	}
	if st := ca.GetResponse().GetStatus(); st != 200 {
		return nil, refuse(ErrRecord, where, "the chaincode answered status %d: %s", st, ca.GetResponse().GetMessage())
	}
	rec, err := decodeRecord(ca.GetResponse().GetPayload())
	if err != nil {
		return nil, refuse(ErrRecord, where, "the attested record: %v", err)
	}
	switch {
	case rec.Type != wire.AttestationType:
		return nil, refuse(ErrRecord, where, "the answer is of type %q, not %q", rec.Type, wire.AttestationType)
	case rec.Meter == nil:
		return nil, refuse(ErrRecord, where, "the answer carries no meter record")
	case rec.Meter.ID != b.MeterID:
		return nil, refuse(ErrMeter, where, "the attested record is of meter %q, the bundle names %q", rec.Meter.ID, b.MeterID)
	case rec.TxID != b.TxID:
		return nil, refuse(ErrRecord, where, "the answer names transaction %s", rec.TxID)
	}
	if ts, err := time.Parse(time.RFC3339Nano, rec.At); err != nil || !ts.Equal(at) {
		return nil, refuse(ErrRecord, where, "the answer's time %q is not the transaction's (%s)", rec.At, at.UTC().Format(time.RFC3339Nano))
	}
	version, err := checkRWSet(ca.GetResults(), b.MeterID, where)
	if err != nil {
		return nil, err
	}
	// The creator signed the whole transaction, and its nonce and
	// certificate make the transaction ID.
	if err := chain.VerifySignature(creator.cert, env.GetPayload(), env.GetSignature()); err != nil {
		return nil, refuse(ErrTransaction, where, "the creator's signature (%s of %s): %v", creator.cert.Subject, creator.mspID, err)
	}
	if id := sha256.Sum256(slices.Concat(sh.GetNonce(), sh.GetCreator())); hex.EncodeToString(id[:]) != b.TxID {
		return nil, refuse(ErrTransaction, where, "the transaction ID is not the hash of its nonce and creator")
	}
	return &attested{index: index, record: rec, time: at, version: version, endorsers: endorsers}, nil
}

// envelope decodes one transaction of a block down to its channel header.
func envelope(data []byte) (*common.Envelope, *common.Payload, *common.ChannelHeader, error) {
	var env common.Envelope
	if err := proto.Unmarshal(data, &env); err != nil {
		return nil, nil, nil, err
	}
	var p common.Payload
	if err := proto.Unmarshal(env.GetPayload(), &p); err != nil {
		return nil, nil, nil, err
	}
	var ch common.ChannelHeader
	if err := proto.Unmarshal(p.GetHeader().GetChannelHeader(), &ch); err != nil {
		return nil, nil, nil, err
	}
	return &env, &p, &ch, nil
}

// verifyEndorsements checks every endorsement: a peer of a member NMI, its
// certificate valid at the transaction's time, its signature over the
// response and its own identity. It returns the endorsing NMIs, sorted;
// fewer than minAttesters distinct NMIs is a refusal.
func verifyEndorsements(es []*peer.Endorsement, prp []byte, ms members, at time.Time, where string) ([]string, error) {
	var nmis []string
	for i, e := range es {
		id, err := ms.verifyIdentity(e.GetEndorser(), at, nodePeer)
		which := fmt.Sprintf("endorsement %d", i+1)
		if id != nil && id.mspID != "" {
			which += " (" + id.mspID + ")"
		}
		if err != nil {
			return nil, refuse(ErrEndorsement, where+", "+which, "%v", err)
		}
		if err := chain.VerifySignature(id.cert, slices.Concat(prp, e.GetEndorser()), e.GetSignature()); err != nil {
			return nil, refuse(ErrEndorsement, where+", "+which, "the signature of %s: %v", id.cert.Subject, err)
		}
		if !slices.Contains(nmis, id.mspID) {
			nmis = append(nmis, id.mspID)
		}
	}
	slices.Sort(nmis)
	if len(nmis) < minAttesters {
		return nil, refuse(ErrEndorsement, where, "endorsed by %d NMI (%s); an attestation needs the peers of at least %d NMIs", len(nmis), list(nmis), minAttesters)
	}
	return nmis, nil
}

// decodeRecord reads the chaincode's answer strictly: one JSON object of
// known fields.
func decodeRecord(data []byte) (wire.Attestation, error) {
	var r wire.Attestation
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("it does not decode: %w", err)
	}
	if dec.More() {
		return r, fmt.Errorf("data after the record")
	}
	return r, nil
}

// checkRWSet requires that the transaction read the meter's record (the
// version it returns) and wrote nothing but the attestation's mark. The
// peer's own reads of the chaincode definition (_lifecycle) are allowed.
func checkRWSet(raw []byte, meterID, where string) (RecordVersion, error) {
	var set rwset.TxReadWriteSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		return RecordVersion{}, refuse(ErrRecord, where, "the read-write set does not decode: %v", err)
	}
	meterKey, markKey := wire.MeterKey(meterID), wire.AttestKey(meterID)
	var version *RecordVersion
	for _, ns := range set.GetNsRwset() {
		var kv kvrwset.KVRWSet
		if err := proto.Unmarshal(ns.GetRwset(), &kv); err != nil {
			return RecordVersion{}, refuse(ErrRecord, where, "the read-write set of %s does not decode: %v", ns.GetNamespace(), err)
		}
		switch ns.GetNamespace() {
		case "_lifecycle":
			if len(kv.GetWrites()) > 0 || len(kv.GetMetadataWrites()) > 0 {
				return RecordVersion{}, refuse(ErrRecord, where, "it writes the chaincode definitions (_lifecycle)")
			}
			continue
		case wire.Namespace:
		default:
			return RecordVersion{}, refuse(ErrRecord, where, "it touches namespace %q", ns.GetNamespace())
		}
		for _, r := range kv.GetReads() {
			if r.GetKey() == meterKey {
				if r.GetVersion() == nil {
					return RecordVersion{}, refuse(ErrRecord, where, "it read no record of meter %s", meterID)
				}
				version = &RecordVersion{Block: r.GetVersion().GetBlockNum(), Tx: r.GetVersion().GetTxNum()}
			}
		}
		if len(kv.GetMetadataWrites()) > 0 {
			return RecordVersion{}, refuse(ErrRecord, where, "it writes key metadata")
		}
		for _, w := range kv.GetWrites() {
			if w.GetKey() != markKey || w.GetIsDelete() {
				return RecordVersion{}, refuse(ErrRecord, where, "it writes %q; an attestation writes only %q", w.GetKey(), markKey)
			}
		}
	}
	if version == nil {
		return RecordVersion{}, refuse(ErrRecord, where, "its read set does not hold the record of meter %s", meterID)
	}
	return *version, nil
}
