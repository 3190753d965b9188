//go:build e2e

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	gatewaypb "github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset/kvrwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/network/internal/consortium"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
	regclient "github.com/inter-nmi/pki/registry-api/client"
)

// Two NMIs colluding: their peers run modified chaincode and endorse what
// it answers. forge plays them without modifying any process: it has the
// honest chaincode endorse a proposal on the two NMIs' peers, replaces what
// the endorsers signed (the writes, the answer), signs that again with the
// two peers' own keys (from their MSP directories in the run directory),
// and submits the transaction as the proposal's creator. What the
// consortium does with it (validation, the indexes) is then the real
// network's.

// peerSigner is a peer's enrolment identity: what an endorsement names and
// the key that signs it.
type peerSigner struct {
	identity []byte
	key      *ecdsa.PrivateKey
}

func peerOf(t *testing.T, nmi string) peerSigner {
	t.Helper()
	n, err := network.Topology.NMI(nmi)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(network.CryptoDir(n), "peers", "peer0", "msp")
	cert, err := os.ReadFile(filepath.Join(dir, "signcerts", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "keystore", "priv_sk"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		t.Fatal("peer key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		ec, err2 := x509.ParseECPrivateKey(block.Bytes)
		if err2 != nil {
			t.Fatalf("peer key: %v / %v", err, err2)
		}
		k = ec
	}
	id, err := proto.Marshal(&msp.SerializedIdentity{Mspid: n.MSPID, IdBytes: cert})
	if err != nil {
		t.Fatal(err)
	}
	return peerSigner{identity: id, key: k.(*ecdsa.PrivateKey)}
}

// sign signs as Fabric verifies: ECDSA over SHA-256, low S.
func (p peerSigner) sign(t *testing.T, msg []byte) []byte {
	t.Helper()
	digest := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, p.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &rs); err != nil {
		t.Fatal(err)
	}
	if n := p.key.Curve.Params().N; rs.S.Cmp(new(big.Int).Rsh(n, 1)) > 0 {
		rs.S.Sub(n, rs.S)
	}
	out, err := asn1.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// forgery is what the colluders make the endorsed transaction say.
type forgery struct {
	// writes are added to the chaincode's write set.
	writes []*kvrwset.KVWrite
	// response, if set, replaces the chaincode's answer.
	response []byte
}

// forge has fn(args) endorsed by the peers of endorsers (two colluding
// NMIs), rewrites what they signed as f says, signs it again with their
// peers' keys, and submits it as creator's user of the creator NMI.
// It returns the transaction's ID and commit status.
func forge(t *testing.T, creator, user string, endorsers []string, f forgery, fn string, args ...string) (string, *client.Status) {
	t.Helper()
	np, err := profile.NMI(creator)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := np.Dial(user)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	contract := conn.GetNetwork(profile.Channel).GetContract(profile.Chaincode)
	var msps []string
	signers := make([]peerSigner, len(endorsers))
	for i, e := range endorsers {
		p, err := profile.NMI(e)
		if err != nil {
			t.Fatal(err)
		}
		msps = append(msps, p.MSPID)
		signers[i] = peerOf(t, e)
	}
	proposal, err := contract.NewProposal(fn, client.WithArguments(args...), client.WithEndorsingOrganizations(msps...))
	if err != nil {
		t.Fatal(err)
	}
	honest, err := proposal.Endorse()
	if err != nil {
		t.Fatalf("the honest chaincode's endorsement of %s: %v", fn, err)
	}
	raw, err := honest.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var prepared gatewaypb.PreparedTransaction
	must(t, proto.Unmarshal(raw, &prepared))
	var payload common.Payload
	must(t, proto.Unmarshal(prepared.Envelope.Payload, &payload))
	var tx peer.Transaction
	must(t, proto.Unmarshal(payload.Data, &tx))
	var action0 peer.ChaincodeActionPayload
	must(t, proto.Unmarshal(tx.Actions[0].Payload, &action0))
	var prp peer.ProposalResponsePayload
	must(t, proto.Unmarshal(action0.Action.ProposalResponsePayload, &prp))
	var action peer.ChaincodeAction
	must(t, proto.Unmarshal(prp.Extension, &action))

	var results rwset.TxReadWriteSet
	must(t, proto.Unmarshal(action.Results, &results))
	written := false
	for _, ns := range results.NsRwset {
		if ns.Namespace != profile.Chaincode {
			continue
		}
		var kv kvrwset.KVRWSet
		must(t, proto.Unmarshal(ns.Rwset, &kv))
		kv.Writes = append(kv.Writes, f.writes...)
		ns.Rwset = marshal(t, &kv)
		written = true
	}
	if !written && len(f.writes) > 0 {
		results.NsRwset = append(results.NsRwset, &rwset.NsReadWriteSet{Namespace: profile.Chaincode,
			Rwset: marshal(t, &kvrwset.KVRWSet{Writes: f.writes})})
	}
	action.Results = marshal(t, &results)
	if f.response != nil {
		action.Response.Payload = f.response
	}
	prp.Extension = marshal(t, &action)
	action0.Action.ProposalResponsePayload = marshal(t, &prp)
	action0.Action.Endorsements = nil
	for _, s := range signers {
		msg := append(append([]byte{}, action0.Action.ProposalResponsePayload...), s.identity...)
		action0.Action.Endorsements = append(action0.Action.Endorsements, &peer.Endorsement{Endorser: s.identity, Signature: s.sign(t, msg)})
	}
	tx.Actions[0].Payload = marshal(t, &action0)
	payload.Data = marshal(t, &tx)
	prepared.Envelope = &common.Envelope{Payload: marshal(t, &payload)}
	forged, err := conn.NewTransaction(marshal(t, &prepared))
	if err != nil {
		t.Fatal(err)
	}
	commit, err := forged.Submit()
	if err != nil {
		t.Fatalf("submit the forged transaction: %v", err)
	}
	status, err := commit.Status()
	if err != nil {
		t.Fatal(err)
	}
	return forged.TransactionID(), status
}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestAttackCollusionForgesAVote: PTB and INMETRO forge CMI's vote to
// revoke an NMIJ meter. Written into CMI's ballot, the forgery is refused
// by every peer (the ballot's key-level policy is CMI's peer alone);
// written under a key of their own choosing it is committed, and counts
// for nothing: the tally stays at the two real votes, and the meter active.
func TestAttackCollusionForgesAVote(t *testing.T) {
	ctx := context.Background()
	nmij := connect(t, "NMIJ", consortium.UserRegistrar)
	key, err := meter.GenerateKey(meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	id := uniqueID("NMIJ-VOTE")
	nmij.submit(t, wire.TxRegisterMeter, registration(t, "NMIJMSP", id, key))
	var members wire.Members
	must(t, json.Unmarshal(nmij.evaluate(t, wire.TxGetMembers), &members))
	ballot := members.Ballots["CMIMSP"]
	if ballot == "" {
		t.Fatalf("CMI has no ballot: %+v", members)
	}
	m := decode[meter.Meter](t, nmij.evaluate(t, wire.TxGetMeter, id))
	vote := func(key string) []*kvrwset.KVWrite {
		v := &wire.Vote{Action: wire.ActionRevoke, MeterID: id, Voter: "CMIMSP", Reason: string(meter.ReasonKeyCompromise),
			Target: m.UpdatedTx, TxID: "forged", At: time.Now().UTC().Format(time.RFC3339Nano)}
		value, _ := json.Marshal(wire.Ballot{Voter: "CMIMSP", Votes: map[string]*wire.Vote{wire.BallotEntry(wire.ActionRevoke, id): v}})
		if !strings.HasPrefix(key, wire.KindBallot) {
			value, _ = json.Marshal(v)
		}
		return []*kvrwset.KVWrite{{Key: key, Value: value}}
	}
	colluders := []string{"PTB", "INMETRO"}
	_, status := forge(t, "PTB", consortium.UserRegistrar, colluders, forgery{writes: vote(ballot)},
		wire.TxVoteConsortium, wire.ActionRevoke, id, string(meter.ReasonKeyCompromise))
	if status.Code != peer.TxValidationCode_ENDORSEMENT_POLICY_FAILURE {
		t.Fatalf("PTB's vote with CMI's forged into CMI's ballot: %s, want ENDORSEMENT_POLICY_FAILURE", status.Code)
	}
	settle(t, status.BlockNumber)
	_, status = forge(t, "PTB", consortium.UserRegistrar, colluders, forgery{writes: vote("vote/revoke/" + id + "/CMIMSP")},
		wire.TxVoteConsortium, wire.ActionRevoke, id, string(meter.ReasonKeyCompromise))
	if status.Code != peer.TxValidationCode_VALID {
		t.Fatalf("PTB's vote with CMI's forged under a new key: %s, want VALID (the chaincode's 2-of-5 policy)", status.Code)
	}
	settle(t, status.BlockNumber)
	receipt, err := registry(t, "INMETRO", api.RoleOperator).Vote(ctx, api.VoteRequest{Action: wire.ActionRevoke, MeterID: id, Reason: string(meter.ReasonKeyCompromise)})
	if err != nil {
		t.Fatal(err)
	}
	if receipt.Tally.Applied || len(receipt.Tally.Voters) != 2 {
		t.Fatalf("after the forgeries and INMETRO's vote: %+v, want PTB and INMETRO, not applied", receipt.Tally)
	}
	settle(t, receipt.Block)
	if got := decode[meter.Meter](t, nmij.evaluate(t, wire.TxGetMeter, id)); got.Status != meter.StatusActive {
		t.Fatalf("the meter is %s", got.Status)
	}
}

// TestAttackCollusionForgesAcceptedReadings: CMI and INMETRO commit a
// reading with a garbage signature marked accepted, and the meter's replay
// guard set far ahead. The transaction is valid (their 2 of 5), so the
// meter's genuine readings are then refused as replays; but the explorer
// and every registry's index check each accepted item against the meter's
// key in force, and show the forgery as an integrity finding naming its
// endorsers. Before, both indexed it as the meter's reading, without a word.
func TestAttackCollusionForgesAcceptedReadings(t *testing.T) {
	ctx := context.Background()
	fleet := registeredFleet(t, "PTB-FORGED", 1)
	victim := fleet[0]
	start := time.Now().Add(-time.Hour).Truncate(time.Minute)
	garbage := signedAt(t, victim, 1<<40, start)
	garbage.Signature = []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}
	packed, err := wire.Pack([]meter.SignedMeasurement{garbage})
	if err != nil {
		t.Fatal(err)
	}
	outcome, _ := json.Marshal(wire.Outcome{Items: 1, Accepted: 1, KeyVersions: map[string]int{victim.ID: 1}})
	var g wire.Guard
	g.Reset(1)
	g.Accept(1<<40, garbage.Payload)
	txID, status := forge(t, "CMI", consortium.UserIngest, []string{"CMI", "INMETRO"},
		forgery{response: outcome, writes: []*kvrwset.KVWrite{{Key: wire.GuardKey(victim.ID), Value: g.Marshal()}}},
		wire.TxSubmitPacked, string(packed))
	if status.Code != peer.TxValidationCode_VALID {
		t.Fatalf("the forged batch: %s, want VALID (two NMIs satisfy the chaincode's policy)", status.Code)
	}
	settle(t, status.BlockNumber)
	// The guard set far ahead: the meter's genuine reading is refused.
	_, err = registry(t, "PTB", api.RoleIngest).SubmitMeasurement(ctx, signedAt(t, victim, 1, start))
	wantProblem(t, err, http.StatusConflict, string(meter.CodeReplay))
	// Every registry's index, and the explorer, show the finding.
	for _, n := range profile.NMIs {
		list, err := registry(t, n.Name, api.RoleAuditor).Findings(ctx, regclient.Read{MinBlock: status.BlockNumber}, 1000, "")
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range list.Findings {
			if f.TxID == txID && f.Kind == "signature" && strings.Contains(strings.Join(f.Endorsers, ","), "INMETROMSP") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s's registry lists no finding about %s: %+v", n.Name, txID, list.Findings)
		}
		recs, err := registry(t, n.Name, api.RoleAuditor).Measurements(ctx, victim.ID, regclient.MeasurementQuery{Read: regclient.Read{MinBlock: status.BlockNumber}, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs.Measurements) != 0 {
			t.Errorf("%s's registry answers the forged reading: %+v", n.Name, recs.Measurements[0])
		}
	}
	explorerPageWhen(t, "/findings", txID)
}
