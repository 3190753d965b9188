package contract_test

import (
	"slices"
	"testing"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/stubtest"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

var five = []string{"CMIMSP", "INMETROMSP", "NMIJMSP", "NMIMMSP", "PTBMSP"}

// satisfied evaluates a key-level policy against the peers of the given
// NMIs, as Fabric's validator would: each endorsement counts once.
func satisfied(t *testing.T, ep []byte, peersOf ...string) bool {
	t.Helper()
	var env common.SignaturePolicyEnvelope
	if err := proto.Unmarshal(ep, &env); err != nil {
		t.Fatal(err)
	}
	principals := make([]string, len(env.Identities))
	for i, p := range env.Identities {
		var role msp.MSPRole
		if p.PrincipalClassification != msp.MSPPrincipal_ROLE || proto.Unmarshal(p.Principal, &role) != nil || role.Role != msp.MSPRole_PEER {
			t.Fatalf("principal %d is not a peer role: %v", i, p)
		}
		principals[i] = role.MspIdentifier
	}
	var eval func(r *common.SignaturePolicy, used []bool) bool
	eval = func(r *common.SignaturePolicy, used []bool) bool {
		if n := r.GetNOutOf(); n != nil {
			got := 0
			for _, sub := range n.Rules {
				try := slices.Clone(used)
				if eval(sub, try) {
					got++
					copy(used, try)
				}
			}
			return got >= int(n.N)
		}
		for i, org := range peersOf {
			if !used[i] && org == principals[r.GetSignedBy()] {
				used[i] = true
				return true
			}
		}
		return false
	}
	return eval(env.Rule, make([]bool, len(peersOf)))
}

func (w *world) setMembers(t *testing.T, admin *stubtest.Identity, members ...string) *wire.Members {
	t.Helper()
	m, _ := ok(w, admin, func(ctx contractapi.TransactionContextInterface) (*wire.Members, error) {
		return w.cc.SetMembers(ctx, mustJSON(t, members))
	})
	return m
}

func (w *world) vote(who *stubtest.Identity, action, meterID, reason string) *wire.Tally {
	w.t.Helper()
	tally, _ := ok(w, who, func(ctx contractapi.TransactionContextInterface) (*wire.Tally, error) {
		return w.cc.VoteConsortium(ctx, action, meterID, reason)
	})
	return tally
}

// Every record an NMI owns can be changed by its own peer, or by peers of a
// majority of the recorded members; never by a minority of other NMIs.
func TestKeyLevelPolicyOwnerOrMajority(t *testing.T) {
	w := newWorld(t)
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	before := w.ledger.Params["meter/PTB-0001"]
	if !satisfied(t, before, "PTBMSP") || satisfied(t, before, "CMIMSP", "INMETROMSP", "NMIJMSP") {
		t.Fatal("before any membership is recorded, the owner's peer alone must be the policy")
	}
	w.setMembers(t, stubtest.Admin(t, "PTBMSP"), five...)
	w.register(w.ptb, "PTB-0002", pubPEM(t, "p384"))
	for _, key := range []string{"meter/PTB-0002", "keyver/PTB-0002/000001"} {
		ep := w.ledger.Params[key]
		for _, c := range []struct {
			peers []string
			want  bool
		}{
			{[]string{"PTBMSP"}, true},
			{[]string{"CMIMSP", "INMETROMSP", "NMIJMSP"}, true},
			{[]string{"CMIMSP", "INMETROMSP"}, false},
			{[]string{"CMIMSP", "CMIMSP", "INMETROMSP"}, false},
			{[]string{"NMIMMSP"}, false},
		} {
			if got := satisfied(t, ep, c.peers...); got != c.want {
				t.Errorf("%s endorsed by %v: satisfied=%v, want %v", key, c.peers, got, c.want)
			}
		}
	}
	// The membership record itself needs a majority of its members.
	members := w.ledger.Params["consortium/members"]
	if satisfied(t, members, "PTBMSP", "CMIMSP") || !satisfied(t, members, "PTBMSP", "CMIMSP", "NMIMMSP") {
		t.Error("the membership record's policy is not a majority of its members")
	}
}

func TestSetMembers(t *testing.T) {
	w := newWorld(t)
	admin := stubtest.Admin(t, "PTBMSP")
	for name, c := range map[string]struct {
		who     *stubtest.Identity
		members string
		code    meter.Code
	}{
		"a registrar":               {w.ptb, mustJSON(t, five), meter.CodeForbidden},
		"the admin of a non-member": {stubtest.Admin(t, "METASMSP"), mustJSON(t, five), meter.CodeForbidden},
		"twice the same NMI":        {admin, `["PTBMSP","PTBMSP"]`, meter.CodeMalformed},
		"no members":                {admin, `[]`, meter.CodeMalformed},
		"not an MSP ID":             {admin, `["PTBMSP","CMI MSP"]`, meter.CodeMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			refused(w.in(t), c.who, c.code, func(ctx contractapi.TransactionContextInterface) (*wire.Members, error) {
				return w.cc.SetMembers(ctx, c.members)
			})
		})
	}
	m := w.setMembers(t, admin, "PTBMSP", "CMIMSP", "NMIJMSP", "INMETROMSP", "NMIMMSP")
	if !slices.Equal(m.MSPIDs, five) || m.Majority() != 3 {
		t.Fatalf("recorded %+v", m)
	}
	got := readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) (*wire.Members, error) {
		return w.cc.GetMembers(ctx)
	})
	if !slices.Equal(got.MSPIDs, five) {
		t.Fatalf("GetMembers %+v", got)
	}
	// The same list again writes nothing.
	again := readOnly(w, admin, func(ctx contractapi.TransactionContextInterface) (*wire.Members, error) {
		return w.cc.SetMembers(ctx, mustJSON(t, five))
	})
	if again.TxID != m.TxID {
		t.Errorf("recording the same members again made a new record %+v", again)
	}
}

// NMIM leaves the consortium; its meters can no longer be revoked by their
// owner, but a majority of the remaining NMIs revokes one, and its next
// reading is refused.
func TestConsortiumRevokesADepartedNMIsMeter(t *testing.T) {
	w := newWorld(t)
	admin := stubtest.Admin(t, "PTBMSP")
	w.setMembers(t, admin, five...)
	nmim := stubtest.Client(t, "NMIMMSP", wire.RoleRegistrar)
	inmetro := stubtest.Client(t, "INMETROMSP", wire.RoleRegistrar)
	key := privateKey(t, "p256")
	w.register(nmim, "NMIM-0001", key.Public().PEM())
	ok(w, w.ingest, w.submit(reading(t, key, "NMIM-0001", 1, readingTime)))

	w.setMembers(t, admin, "CMIMSP", "INMETROMSP", "NMIJMSP", "PTBMSP")
	refused(w, nmim, meter.CodeNotMember, func(ctx contractapi.TransactionContextInterface) (*wire.Tally, error) {
		return w.cc.VoteConsortium(ctx, wire.ActionRevoke, "NMIM-0001", "cessationOfOperation")
	})
	refused(w, w.ptb, meter.CodeNotOwner, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.RevokeMeter(ctx, "NMIM-0001", "cessationOfOperation", "")
	})
	refused(w, w.ptb, meter.CodeMalformed, func(ctx contractapi.TransactionContextInterface) (*wire.Tally, error) {
		return w.cc.VoteConsortium(ctx, "delete", "NMIM-0001", "cessationOfOperation")
	})

	if tally := w.vote(w.ptb, wire.ActionRevoke, "NMIM-0001", "cessationOfOperation"); tally.Applied || tally.Needed != 3 || !slices.Equal(tally.Voters, []string{"PTBMSP"}) {
		t.Fatalf("first vote: %+v", tally)
	}
	if tally := readOnly(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*wire.Tally, error) {
		return w.cc.VoteConsortium(ctx, wire.ActionRevoke, "NMIM-0001", "cessationOfOperation")
	}); len(tally.Voters) != 1 {
		t.Fatalf("a repeated vote counted: %+v", tally)
	}
	w.vote(w.cmi, wire.ActionRevoke, "NMIM-0001", "cessationOfOperation")
	// Two votes are no majority of four: the meter still reads.
	ok(w, w.ingest, w.submit(reading(t, key, "NMIM-0001", 2, readingTime)))

	tally := w.vote(inmetro, wire.ActionRevoke, "NMIM-0001", "cessationOfOperation")
	if !tally.Applied || tally.Meter == nil || tally.Meter.Status != meter.StatusRevoked {
		t.Fatalf("the majority's vote: %+v", tally)
	}
	if r := tally.Meter.Revocation; r.Reason != meter.ReasonCessationOfOperation || !slices.Equal(r.DecidedBy, []string{"CMIMSP", "INMETROMSP", "PTBMSP"}) {
		t.Fatalf("revocation %+v", r)
	}
	if m := w.state("meter/NMIM-0001"); m == nil || w.state("vote/revoke/NMIM-0001/PTBMSP") != nil || w.state("vote/revoke/NMIM-0001/CMIMSP") != nil {
		t.Fatal("the votes were not cleared")
	}
	// The deciding transaction rewrote NMIM's record: its policy needs a
	// majority of the members, which these three are, and two are not.
	ep := w.ledger.Params["meter/NMIM-0001"]
	if !satisfied(t, ep, "CMIMSP", "INMETROMSP", "PTBMSP") || satisfied(t, ep, "CMIMSP", "PTBMSP") {
		t.Error("the departed NMI's meter is not under owner-or-majority")
	}
	refused(w, w.ingest, meter.CodeMeterRevoked, w.submit(reading(t, key, "NMIM-0001", 3, readingTime)))
}

// A hold decided by the consortium is not the owner's to lift.
func TestConsortiumHoldStaysWithTheConsortium(t *testing.T) {
	w := newWorld(t)
	w.setMembers(t, stubtest.Admin(t, "PTBMSP"), "CMIMSP", "PTBMSP", "NMIJMSP")
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	w.vote(w.cmi, wire.ActionRevoke, "PTB-0001", "certificateHold")
	if tally := w.vote(stubtest.Client(t, "NMIJMSP", wire.RoleRegistrar), wire.ActionRevoke, "PTB-0001", "certificateHold"); !tally.Applied {
		t.Fatalf("two of three: %+v", tally)
	}
	refused(w, w.ptb, meter.CodeNotOwner, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.ReinstateMeter(ctx, "PTB-0001")
	})
}

// CMI squats a meter ID PTB needs by pre-enrolling it with a random hash:
// PTB cannot pre-enrol or register it, until a majority releases it or the
// pre-enrolment expires; CMI can withdraw its own, PTB cannot.
func TestSquattedPreEnrolment(t *testing.T) {
	w := newWorld(t)
	w.setMembers(t, stubtest.Admin(t, "PTBMSP"), five...)
	// Each NMI pre-enrols only IDs of its own namespace now; a squat is a
	// pre-enrolment made before that rule, as it stands in the state.
	refused(w, w.cmi, meter.CodeNotOwner, func(ctx contractapi.TransactionContextInterface) (*meter.PreEnrolment, error) {
		return w.cc.PreEnrollMeter(ctx, "PTB-0100", meter.IdentityHash("random"))
	})
	squat := func(id string) {
		t.Helper()
		w.ledger.State[wire.PreEnrolmentKey(id)] = []byte(mustJSON(t, meter.PreEnrolment{MeterID: id, NMI: "CMIMSP",
			IdentityHash: meter.IdentityHash("random"), TxID: "tx-squat", At: w.now.Format(time.RFC3339),
			ExpiresAt: w.now.Add(meter.PreEnrolmentValidity).Format(time.RFC3339)}))
	}
	preEnrol := func(who *stubtest.Identity, id string) func(contractapi.TransactionContextInterface) (*meter.PreEnrolment, error) {
		return func(ctx contractapi.TransactionContextInterface) (*meter.PreEnrolment, error) {
			return w.cc.PreEnrollMeter(ctx, id, meter.IdentityHash("urn:"+id))
		}
	}
	register := func(id, identity string) func(contractapi.TransactionContextInterface) (*meter.Meter, error) {
		reg := registration(id, pubPEM(t, "p256"))
		reg.Identity = identity
		req := mustJSON(t, reg)
		return func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
			return w.cc.RegisterMeter(ctx, req)
		}
	}

	squat("PTB-0100")
	refused(w, w.ptb, meter.CodePreEnrolled, preEnrol(w.ptb, "PTB-0100"))
	refused(w, w.ptb, meter.CodeNotOwner, register("PTB-0100", ""))
	refused(w, w.ptb, meter.CodeNotOwner, func(ctx contractapi.TransactionContextInterface) (*meter.PreEnrolment, error) {
		return w.cc.WithdrawPreEnrolment(ctx, "PTB-0100")
	})
	refused(w, w.ptb, meter.CodeMalformed, func(ctx contractapi.TransactionContextInterface) (*wire.Tally, error) {
		return w.cc.VoteConsortium(ctx, wire.ActionRelease, "PTB-0100", "")
	})
	w.vote(w.ptb, wire.ActionRelease, "PTB-0100", "pre-enrolled by CMI with a hash of no meter of its own")
	w.vote(stubtest.Client(t, "INMETROMSP", wire.RoleRegistrar), wire.ActionRelease, "PTB-0100", "squatted")
	tally := w.vote(stubtest.Client(t, "NMIJMSP", wire.RoleRegistrar), wire.ActionRelease, "PTB-0100", "squatted")
	if !tally.Applied || tally.PreEnrolment == nil || tally.PreEnrolment.NMI != "CMIMSP" || w.state("pre/PTB-0100") != nil {
		t.Fatalf("release: %+v", tally)
	}
	ok(w, w.ptb, preEnrol(w.ptb, "PTB-0100"))

	// Expiry: a day before, still reserved; after it, anyone's.
	squat("PTB-0200")
	w.now = txTime.Add(meter.PreEnrolmentValidity - 24*time.Hour)
	refused(w, w.ptb, meter.CodePreEnrolled, preEnrol(w.ptb, "PTB-0200"))
	w.now = txTime.Add(meter.PreEnrolmentValidity + time.Minute)
	refused(w, w.ptb, meter.CodePreEnrolmentExpired, register("PTB-0200", "urn:whatever"))
	m, _ := ok(w, w.ptb, register("PTB-0200", ""))
	if m.NMI != "PTBMSP" || w.state("pre/PTB-0200") != nil {
		t.Fatalf("registered over an expired pre-enrolment: %+v", m)
	}
	squat("PTB-0300")
	w.now = w.now.Add(meter.PreEnrolmentValidity + time.Minute)
	ok(w, w.ptb, preEnrol(w.ptb, "PTB-0300"))

	// Its NMI may withdraw a pre-enrolment.
	squat("PTB-0400")
	ok(w, w.cmi, func(ctx contractapi.TransactionContextInterface) (*meter.PreEnrolment, error) {
		return w.cc.WithdrawPreEnrolment(ctx, "PTB-0400")
	})
	if w.state("pre/PTB-0400") != nil {
		t.Fatal("the withdrawn pre-enrolment is still there")
	}
}

// setMembersB records the five founders, for benchmarks.
func (w *world) setMembersB(b *testing.B) {
	b.Helper()
	ok(w, stubtest.Admin(b, "PTBMSP"), func(ctx contractapi.TransactionContextInterface) (*wire.Members, error) {
		return w.cc.SetMembers(ctx, mustJSON(b, five))
	})
}
