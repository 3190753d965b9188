package contract_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/billing"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/stubtest"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// Attacks on the measurement path by one client with a valid ingest token
// (docs/security.md). Each test performs the attack and shows it failing.

// One client's item whose signature is longer than any ECDSA signature
// (1,100 bytes) shares a packed batch with honest items: only that item is
// refused, the honest ones are accepted. Before, Unpack refused the whole
// batch as MALFORMED.
func TestAttackOversizedSignatureFailsOnlyItsItem(t *testing.T) {
	w := newWorld(t)
	key := privateKey(t, "p256")
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	w.register(w.ptb, "PTB-0002", pubPEM(t, "other"))
	junk := reading(t, privateKey(t, "other"), "PTB-0002", 1, readingTime)
	junk.Signature = bytes.Repeat([]byte{0x30}, 1100)
	longID := reading(t, key, "PTB-0001", 9, readingTime)
	longID.MeterID = string(bytes.Repeat([]byte("P"), 300))
	items := []meter.SignedMeasurement{
		reading(t, key, "PTB-0001", 1, readingTime),
		junk,
		longID,
		reading(t, key, "PTB-0001", 2, readingTime),
	}
	packed, err := wire.Pack(items)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := ok(w, w.ingest, func(ctx contractapi.TransactionContextInterface) (*wire.Outcome, error) {
		return w.cc.SubmitMeasurementsPacked(ctx, string(packed))
	})
	if res.Accepted != 2 || res.Rejected != 2 || len(res.Exceptions) != 2 ||
		res.Exceptions[0].Index != 1 || res.Exceptions[0].Code != meter.CodeBadSignature ||
		res.Exceptions[1].Index != 2 || res.Exceptions[1].Code != meter.CodeMalformed {
		t.Fatalf("outcome %s, want items 0 and 3 accepted, 1 BAD_SIGNATURE, 2 MALFORMED", mustJSON(t, res))
	}
}

// Junk naming a busy meter (a signature its key did not make) puts the
// meter's record into the transaction's read set, but not its replay
// guard, which every accepted reading of the meter rewrites: the junk
// cannot make the honest transactions carrying that meter's readings fail
// with MVCC_READ_CONFLICT.
func TestAttackJunkDoesNotReadTheGuardOfABusyMeter(t *testing.T) {
	w := newWorld(t)
	key := privateKey(t, "p256")
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	w.register(w.ptb, "PTB-0002", pubPEM(t, "other"))
	busy := privateKey(t, "other")
	ok(w, w.ingest, w.submit(reading(t, busy, "PTB-0002", 1, readingTime)))

	junk := reading(t, busy, "PTB-0002", 2, readingTime)
	junk.Signature = reading(t, key, "PTB-0002", 2, readingTime).Signature
	unsigned := reading(t, busy, "PTB-0002", 3, readingTime)
	unsigned.Signature = unsigned.Signature[:len(unsigned.Signature)-3]
	batch := mustJSON(t, []meter.SignedMeasurement{reading(t, key, "PTB-0001", 1, readingTime), junk, unsigned})
	res, stub := ok(w, w.ingest, func(ctx contractapi.TransactionContextInterface) (*wire.Outcome, error) {
		return w.cc.SubmitMeasurements(ctx, batch)
	})
	if res.Accepted != 1 || res.Rejected != 2 {
		t.Fatalf("outcome %s", mustJSON(t, res))
	}
	if stub.Reads[wire.GuardKey("PTB-0002")] {
		t.Errorf("the junk items read the busy meter's guard: read set %v", stub.Reads)
	}
	if !stub.Reads[wire.GuardKey("PTB-0001")] || !stub.Reads[wire.MeterKey("PTB-0002")] {
		t.Errorf("read set %v, want the guard of PTB-0001 and the record of PTB-0002", stub.Reads)
	}
}

// A client invokes the packed batch by another spelling than its name
// (the contract's name as a prefix, or a lower-case first letter), which
// Fabric's contract API would also answer: the readings would be accepted
// and the replay guard advanced, yet no index reads the transaction. The
// chaincode answers each transaction by its one name only.
func TestAttackOtherFunctionNameRefused(t *testing.T) {
	w := newWorld(t)
	key := privateKey(t, "p256")
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	cc, err := contractapi.NewChaincode(w.cc, billing.New(billing.WithClock(nil)))
	if err != nil {
		t.Fatal(err)
	}
	packed, err := wire.Pack([]meter.SignedMeasurement{reading(t, key, "PTB-0001", 1, readingTime)})
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range []string{"pki:" + wire.TxSubmitPacked, "submitMeasurementsPacked", "pki:submitMeasurementsPacked", "billing:" + wire.TxSubmitPacked} {
		before := w.ledger.Snapshot()
		resp, _ := w.invoke(cc, w.ingest, fn, string(packed))
		if e, ok := meter.ParseError(resp.Message); resp.Status != 500 || !ok || e.Code != meter.CodeMalformed {
			t.Errorf("%s: %d %q, want a MALFORMED refusal", fn, resp.Status, resp.Message)
		}
		if d := before.Diff(w.ledger.Snapshot()); d != "" {
			t.Errorf("%s changed the state: %s", fn, d)
		}
	}
	if resp, _ := w.invoke(cc, w.ingest, wire.TxSubmitPacked, string(packed)); resp.Status != 200 {
		t.Fatalf("%s by its name: %d %s", wire.TxSubmitPacked, resp.Status, resp.Message)
	}
}

// Every transaction the contracts define is listed once in their
// vocabulary (wire.Transactions, agreement.Transactions), which the
// indexes read: the chaincode's metadata names no other.
func TestTransactionsListed(t *testing.T) {
	w := newWorld(t)
	cc, err := contractapi.NewChaincode(w.cc, billing.New(billing.WithClock(nil)))
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := w.invoke(cc, w.auditor, "org.hyperledger.fabric:GetMetadata")
	var md struct {
		Contracts map[string]struct {
			Transactions []struct{ Name string } `json:"transactions"`
		} `json:"contracts"`
	}
	if err := json.Unmarshal(resp.Payload, &md); err != nil {
		t.Fatal(err)
	}
	for contract, listed := range map[string][]string{wire.Contract: wire.Transactions, agreement.Contract: agreement.Transactions} {
		var got []string
		for _, tx := range md.Contracts[contract].Transactions {
			name := tx.Name
			if contract != wire.Contract {
				name = contract + ":" + name
			}
			got = append(got, name)
		}
		if !sameSet(got, listed) {
			t.Errorf("contract %s defines %v, its vocabulary lists %v", contract, got, listed)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// A stolen key (or a firmware bug) signs a reading with seq 2^64-1: it is
// refused as SEQ_OUT_OF_RANGE and the meter's sequence space stays open.
// Before, it was accepted and every later seq was a replay for ever, a
// rotation included. A rotation by the owner now starts a new sequence
// space: the meter's readings under its new key begin again at any seq.
func TestAttackBurnTheReplayGuard(t *testing.T) {
	w := newWorld(t)
	old := privateKey(t, "p256")
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	ok(w, w.ingest, w.submit(reading(t, old, "PTB-0001", 10, readingTime)))
	refused(w, w.ingest, meter.CodeSeqOutOfRange, w.submit(reading(t, old, "PTB-0001", 1<<64-1, readingTime)))
	refused(w, w.ingest, meter.CodeSeqOutOfRange, w.submit(reading(t, old, "PTB-0001", 10+wire.MaxSeqAdvance+1, readingTime)))
	ok(w, w.ingest, w.submit(reading(t, old, "PTB-0001", 11, readingTime)))

	// The most one reading can do: advance by MaxSeqAdvance. The owner
	// rotates, and the new key's readings start a sequence space of their own.
	ok(w, w.ingest, w.submit(reading(t, old, "PTB-0001", 11+wire.MaxSeqAdvance, readingTime)))
	next, err := generateKey(meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := old.Sign(meter.RotationStatement("PTB-0001", 2, next.Public()))
	if err != nil {
		t.Fatal(err)
	}
	ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.RotateKey(ctx, "PTB-0001", next.Public().PEM(), b64(proof))
	})
	res, _ := ok(w, w.ingest, w.submit(reading(t, next, "PTB-0001", 12, readingTime)))
	if res.Outcome != meter.OutcomeAccepted || res.KeyVersion != 2 {
		t.Fatalf("first reading of the new key: %+v", res)
	}
	g, err := wire.UnmarshalGuard(w.state(wire.GuardKey("PTB-0001")))
	if err != nil || g.KeyVersion != 2 || g.Last != 12 {
		t.Fatalf("guard after rotation %+v %v", g, err)
	}
	// The old key's readings stay refused, replayed or new.
	refused(w, w.ingest, meter.CodeBadSignature, w.submit(reading(t, old, "PTB-0001", 13, readingTime)))
}

// The key holder makes two payloads of one seq whose hashes agree in their
// first 64 bits (about 2^32 work): the guard here remembers the first with
// such a hash. The second is refused as a replay, not answered as a
// duplicate of the first: the guard compares 128 bits.
func TestAttackSixtyFourBitHashCollision(t *testing.T) {
	w := newWorld(t)
	key := privateKey(t, "p256")
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	second := reading(t, key, "PTB-0001", 7, readingTime)
	h := wire.HashOf(second.Payload)
	collision := h
	collision[15] ^= 0xff // equal in the first 64 bits, not in 128
	var g wire.Guard
	g.Reset(1)
	g.Accept(7, nil)
	g.Recent[0].Hash = collision
	w.ledger.State[wire.GuardKey("PTB-0001")] = g.Marshal()
	refused(w, w.ingest, meter.CodeReplay, w.submit(second))
}

// An NMI registers, or pre-enrols, a meter ID another NMI will need
// (PTB-0500): refused, since each NMI's IDs carry its name. Before, the
// ID was CMI's until a majority of the NMIs voted to release it, and a
// pre-enrolment could be made again at its expiry.
func TestAttackSquatAnotherNMIsMeterID(t *testing.T) {
	w := newWorld(t)
	reg := registrationFor("CMIMSP", "PTB-0500", pubPEM(t, "p256"))
	refused(w, w.cmi, meter.CodeNotOwner, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.RegisterMeter(ctx, mustJSON(t, reg))
	})
	refused(w, w.cmi, meter.CodeNotOwner, func(ctx contractapi.TransactionContextInterface) (*meter.PreEnrolment, error) {
		return w.cc.PreEnrollMeter(ctx, "PTB-0500", meter.IdentityHash("urn:squat"))
	})
	if m := w.register(w.ptb, "PTB-0500", pubPEM(t, "p256")); m.NMI != "PTBMSP" {
		t.Fatalf("PTB's own ID: %+v", m)
	}
}

// Two colluding NMIs (PTB and INMETRO) forge CMI's vote to revoke a meter
// of NMIJ's. Their peers can write any new key (the chaincode's policy is
// 2 of 5) and they write CMI's vote under the keys a vote used to have and
// under a ballot key of their making; CMI's ballot itself, made by the
// majority-endorsed transaction that recorded the members, takes CMI's
// peer to change. The deciding transaction counts only the members'
// listed ballots: the forged votes count for nothing, and the two are a
// minority. Before, the vote under vote/revoke/<id>/CMIMSP made the
// majority and the meter was revoked.
func TestAttackForgeAnotherNMIsVote(t *testing.T) {
	w := newWorld(t)
	members := w.setMembers(t, stubtest.Admin(t, "PTBMSP"), five...)
	nmij := stubtest.Client(t, "NMIJMSP", wire.RoleRegistrar)
	w.register(nmij, "NMIJ-0001", pubPEM(t, "p256"))
	m := readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.GetMeter(ctx, "NMIJ-0001")
	})

	ballot := members.Ballots["CMIMSP"]
	if ballot == "" || !satisfied(t, w.ledger.Params[ballot], "CMIMSP") || satisfied(t, w.ledger.Params[ballot], "PTBMSP", "INMETROMSP", "NMIJMSP", "NMIMMSP") {
		t.Fatalf("CMI's ballot %q must take CMI's peer to change, whoever else endorses", ballot)
	}
	forged := &wire.Vote{Action: wire.ActionRevoke, MeterID: "NMIJ-0001", Voter: "CMIMSP", Reason: string(meter.ReasonKeyCompromise),
		Target: m.UpdatedTx, TxID: "tx-forged", At: txTime.Format(time.RFC3339Nano)}
	w.ledger.State["vote/revoke/NMIJ-0001/CMIMSP"] = []byte(mustJSON(t, forged))
	w.ledger.State[wire.BallotKey("CMIMSP", "tx-forged")] = []byte(mustJSON(t, wire.Ballot{Voter: "CMIMSP",
		Votes: map[string]*wire.Vote{wire.BallotEntry(wire.ActionRevoke, "NMIJ-0001"): forged}}))

	w.vote(w.ptb, wire.ActionRevoke, "NMIJ-0001", string(meter.ReasonKeyCompromise))
	tally := w.vote(stubtest.Client(t, "INMETROMSP", wire.RoleRegistrar), wire.ActionRevoke, "NMIJ-0001", string(meter.ReasonKeyCompromise))
	if tally.Applied || len(tally.Voters) != 2 || slices.Contains(tally.Voters, "CMIMSP") {
		t.Fatalf("tally %+v: the forged vote counted", tally)
	}
	votes := readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) ([]*wire.Vote, error) {
		return w.cc.GetVotes(ctx, wire.ActionRevoke, "NMIJ-0001")
	})
	if len(votes) != 2 {
		t.Errorf("GetVotes lists %d votes, want the two cast", len(votes))
	}
	// CMI's own vote, in its own ballot, makes the majority.
	tally = w.vote(w.cmi, wire.ActionRevoke, "NMIJ-0001", string(meter.ReasonKeyCompromise))
	if !tally.Applied {
		t.Fatalf("the majority's tally %+v", tally)
	}
}

// Votes are bound to their target as it is: a pre-enrolment withdrawn and
// made again does not inherit the votes to release the old one, and a
// member that left counts no more, its vote included.
func TestAttackVotesOutliveTheirTarget(t *testing.T) {
	w := newWorld(t)
	w.setMembers(t, stubtest.Admin(t, "PTBMSP"), five...)
	preEnrol := func(ctx contractapi.TransactionContextInterface) (*meter.PreEnrolment, error) {
		return w.cc.PreEnrollMeter(ctx, "PTB-0700", meter.IdentityHash("urn:PTB-0700"))
	}
	ok(w, w.ptb, preEnrol)
	w.vote(w.cmi, wire.ActionRelease, "PTB-0700", "unused for months")
	w.vote(stubtest.Client(t, "INMETROMSP", wire.RoleRegistrar), wire.ActionRelease, "PTB-0700", "unused for months")
	ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.PreEnrolment, error) {
		return w.cc.WithdrawPreEnrolment(ctx, "PTB-0700")
	})
	w.now = w.now.Add(time.Minute)
	ok(w, w.ptb, preEnrol)
	tally := w.vote(stubtest.Client(t, "NMIJMSP", wire.RoleRegistrar), wire.ActionRelease, "PTB-0700", "unused")
	if tally.Applied || len(tally.Voters) != 1 {
		t.Fatalf("the new pre-enrolment inherited the old one's votes: %+v", tally)
	}

	// NMIM votes, then leaves: its vote counts no more, and the majority is
	// of the four members left.
	nmij, nmim := stubtest.Client(t, "NMIJMSP", wire.RoleRegistrar), stubtest.Client(t, "NMIMMSP", wire.RoleRegistrar)
	w.register(nmij, "NMIJ-0002", pubPEM(t, "p384"))
	w.vote(nmim, wire.ActionRevoke, "NMIJ-0002", string(meter.ReasonSuperseded))
	w.setMembers(t, stubtest.Admin(t, "PTBMSP"), "CMIMSP", "INMETROMSP", "NMIJMSP", "PTBMSP")
	tally = w.vote(w.cmi, wire.ActionRevoke, "NMIJ-0002", string(meter.ReasonSuperseded))
	if tally.Applied || len(tally.Voters) != 1 || tally.Needed != 3 {
		t.Fatalf("after NMIM left: %+v", tally)
	}
}

// A meter registered before the members were recorded carries its owner's
// policy alone, so a majority could not revoke it once its owner left.
// RefreshPolicies, run by the owner, brings its records under the owner-
// or-majority policy of the members recorded now.
func TestRefreshPolicies(t *testing.T) {
	w := newWorld(t)
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	w.register(w.ptb, "PTB-0002", pubPEM(t, "p384"))
	majority := []string{"CMIMSP", "INMETROMSP", "NMIJMSP"}
	if satisfied(t, w.ledger.Params["meter/PTB-0001"], majority...) {
		t.Fatal("a record written before members were recorded already yields to a majority")
	}
	w.setMembers(t, stubtest.Admin(t, "PTBMSP"), five...)
	refresh := func(bookmark string) *wire.Refresh {
		r, _ := ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*wire.Refresh, error) {
			return w.cc.RefreshPolicies(ctx, 1, bookmark)
		})
		return r
	}
	first := refresh("")
	if first.Meters != 1 || first.Bookmark == "" {
		t.Fatalf("first page %+v", first)
	}
	if last := refresh(first.Bookmark); last.Meters != 1 || last.Bookmark != "" {
		t.Fatalf("last page %+v", last)
	}
	for _, key := range []string{"meter/PTB-0001", "keyver/PTB-0001/000001", "meter/PTB-0002", "keyver/PTB-0002/000001"} {
		ep := w.ledger.Params[key]
		if !satisfied(t, ep, majority...) || !satisfied(t, ep, "PTBMSP") || satisfied(t, ep, "CMIMSP", "INMETROMSP") {
			t.Errorf("%s: not the owner-or-majority policy after the refresh", key)
		}
	}
	refused(w, w.cmi, meter.CodeMalformed, func(ctx contractapi.TransactionContextInterface) (*wire.Refresh, error) {
		return w.cc.RefreshPolicies(ctx, 10, "ix/nmi/PTBMSP/")
	})
}
