package ledger

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/peer"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
)

// Each path of a write against a Gateway service that fails where the
// network can: the registry sends exactly one transaction for the request
// (or, once one is committed as invalid, one more), and answers with what
// the ledger did, or says it does not know yet.
func TestSubmitFaults(t *testing.T) {
	cases := []struct {
		name  string
		setup func(g *fakeGateway)
		// timeout bounds the request (default 2s).
		timeout time.Duration
		// want: "valid", "unknown", a refusal code, or "invalid".
		want string
		// transactions that reach ordering, and endorsements made.
		ordered, endorsed int
	}{
		{"everything works", nil, 0, "valid", 1, 1},
		{"the hand-over fails after the orderer took the transaction", func(g *fakeGateway) {
			g.submitFault = func(n int, _ string) (bool, error) {
				if n == 1 {
					return true, unavailable
				}
				return true, nil
			}
		}, 0, "valid", 1, 1},
		{"the hand-over fails before the orderer took it", func(g *fakeGateway) {
			g.submitFault = func(n int, _ string) (bool, error) {
				if n <= 2 {
					return false, unavailable
				}
				return true, nil
			}
		}, 0, "valid", 1, 1},
		{"the orderers took it but said no, and refuse it again as already processed", func(g *fakeGateway) {
			// A BFT hand-over needs a quorum of orderers; one that took the
			// transaction refuses a second copy. Only asking about its ID
			// learns that it commits.
			g.submitFault = func(n int, _ string) (bool, error) { return n == 1, unavailable }
		}, 0, "valid", 1, 1},
		{"the commit status fails once", func(g *fakeGateway) {
			g.statusFault = func(n int, _ string) error {
				if n == 1 {
					return unavailable
				}
				return nil
			}
		}, 0, "valid", 1, 1},
		{"the commit status fails for ever", func(g *fakeGateway) {
			g.statusFault = func(int, string) error { return unavailable }
		}, 300 * time.Millisecond, "unknown", 1, 1},
		{"the transaction never reaches ordering", func(g *fakeGateway) {
			g.submitFault = func(int, string) (bool, error) { return false, unavailable }
		}, 300 * time.Millisecond, "unknown", 0, 1},
		{"the ordering service is slower than the request", func(g *fakeGateway) {
			g.submitFault = func(int, string) (bool, error) { return false, nil }
		}, 300 * time.Millisecond, "unknown", 0, 1},
		{"endorsement fails, then works", func(g *fakeGateway) {
			g.endorseFault = func(n int) error {
				if n <= 2 {
					return unavailable
				}
				return nil
			}
		}, 0, "valid", 1, 1},
		{"endorsement fails for ever", func(g *fakeGateway) {
			g.endorseFault = func(int) error { return unavailable }
		}, 0, "unavailable", 0, 0},
		{"the chaincode refuses", func(g *fakeGateway) {
			g.chaincode = func(string, []string) (string, bool, error) {
				return "", false, meter.Errorf(meter.CodeReplay, "seq 1 is not above 1")
			}
		}, 0, string(meter.CodeReplay), 0, 0},
		{"a concurrent write invalidates it, the next attempt commits", func(g *fakeGateway) {
			g.validation = func(n int, _ string) peer.TxValidationCode {
				if n == 1 {
					return peer.TxValidationCode_MVCC_READ_CONFLICT
				}
				return peer.TxValidationCode_VALID
			}
		}, 0, "valid", 2, 2},
		{"a concurrent registration wins: the answer is the conflict", func(g *fakeGateway) {
			calls := 0
			g.chaincode = func(string, []string) (string, bool, error) {
				calls++
				if calls > 1 {
					return "", false, meter.Errorf(meter.CodeMeterExists, "meter M is already registered by NMIJMSP")
				}
				return `{"meterId":"M"}`, true, nil
			}
			g.validation = func(int, string) peer.TxValidationCode { return peer.TxValidationCode_ENDORSEMENT_POLICY_FAILURE }
		}, 0, string(meter.CodeMeterExists), 1, 1},
		{"a genuine policy failure is reported as one", func(g *fakeGateway) {
			g.validation = func(int, string) peer.TxValidationCode { return peer.TxValidationCode_ENDORSEMENT_POLICY_FAILURE }
		}, 0, "invalid", 2, 2},
		{"a read-only answer is not ordered", func(g *fakeGateway) {
			g.chaincode = func(string, []string) (string, bool, error) { return `{"outcome":"duplicate"}`, false, nil }
		}, 0, "read-only", 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newFakeGateway()
			if tc.setup != nil {
				tc.setup(g)
			}
			f := fabricOver(t, g)
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 2 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			var recorded []string
			r, err := f.Submit(ctx, api.RoleOperator, "RegisterMeter", []string{`{"meterId":"M"}`}, func(_ int, p Pending) error {
				recorded = append(recorded, p.TxID)
				return nil
			})
			ordered := g.transactions()
			var unknown *OutcomeUnknownError
			var invalid *InvalidError
			switch {
			case tc.want == "valid":
				if err != nil || r.ReadOnly || r.TxID != ordered[len(ordered)-1] || g.codeOf(r.TxID) != peer.TxValidationCode_VALID {
					t.Fatalf("Submit = %+v, %v; ordered %v", r, err, ordered)
				}
			case tc.want == "read-only":
				if err != nil || !r.ReadOnly || string(r.Result) != `{"outcome":"duplicate"}` {
					t.Fatalf("Submit = %+v, %v", r, err)
				}
			case tc.want == "unknown":
				if !errors.As(err, &unknown) || len(recorded) != 1 || unknown.TxID != recorded[0] {
					t.Fatalf("Submit = %v, want the outcome of %v unknown", err, recorded)
				}
			case tc.want == "unavailable":
				if !errors.Is(err, ErrUnavailable) {
					t.Fatalf("Submit = %v, want ErrUnavailable", err)
				}
			case tc.want == "invalid":
				if !errors.As(err, &invalid) || invalid.Code != peer.TxValidationCode_ENDORSEMENT_POLICY_FAILURE {
					t.Fatalf("Submit = %v, want an ENDORSEMENT_POLICY_FAILURE", err)
				}
			default:
				if meter.CodeOf(err) != meter.Code(tc.want) {
					t.Fatalf("Submit = %v, want the refusal %s", err, tc.want)
				}
			}
			if len(ordered) != tc.ordered {
				t.Errorf("%d transactions reached ordering (%v), want %d", len(ordered), ordered, tc.ordered)
			}
			// Every transaction that reached ordering was recorded first, and
			// a transaction is only ever followed by another once it was
			// committed as invalid.
			for i, id := range ordered {
				if i >= len(recorded) || recorded[i] != id {
					t.Errorf("transaction %s reached ordering without being recorded first (recorded %v)", id, recorded)
				}
				if i < len(ordered)-1 && g.codeOf(id) == peer.TxValidationCode_VALID {
					t.Errorf("transaction %s committed as valid, yet another followed it", id)
				}
			}
			if len(recorded) > tc.endorsed || (tc.want != "read-only" && len(recorded) != tc.endorsed) {
				t.Errorf("%d transactions sent (%v), want %d", len(recorded), recorded, tc.endorsed)
			}
		})
	}
}

// A failing Recorder stops the request before anything is sent.
func TestSubmitRecordFails(t *testing.T) {
	g := newFakeGateway()
	f := fabricOver(t, g)
	_, err := f.Submit(context.Background(), api.RoleOperator, "RegisterMeter", nil, func(int, Pending) error {
		return errors.New("disk full")
	})
	if err == nil || len(g.transactions()) != 0 {
		t.Fatalf("Submit = %v with %v ordered", err, g.transactions())
	}
}

// Settle learns the outcome of a recorded transaction: committed, from its
// status alone; never arrived, by sending that same transaction again.
func TestSettle(t *testing.T) {
	g := newFakeGateway()
	lose := true
	g.submitFault = func(int, string) (bool, error) {
		if lose {
			return false, unavailable
		}
		return true, nil
	}
	f := fabricOver(t, g)
	var p Pending
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := f.Submit(ctx, api.RoleOperator, "RegisterMeter", []string{"x"}, func(_ int, pending Pending) error {
		p = pending
		return nil
	})
	var unknown *OutcomeUnknownError
	if !errors.As(err, &unknown) {
		t.Fatalf("Submit = %v", err)
	}
	lose = false
	r, err := f.Settle(context.Background(), "RegisterMeter", p)
	if err != nil || r.TxID != p.TxID || string(r.Result) != `{"ok":true}` {
		t.Fatalf("Settle = %+v, %v", r, err)
	}
	sent := g.submits[p.TxID]
	// Settled again, it is committed: nothing is sent.
	if r, err := f.Settle(context.Background(), "RegisterMeter", p); err != nil || r.TxID != p.TxID || r.Block != 10 {
		t.Fatalf("second Settle = %+v, %v", r, err)
	}
	if g.submits[p.TxID] != sent || len(g.transactions()) != 1 {
		t.Fatalf("a committed transaction was sent again (%d sends, %v ordered)", g.submits[p.TxID], g.transactions())
	}
	st, err := f.Status(context.Background(), p.TxID, 10*time.Millisecond)
	if err != nil || !st.Committed || !st.Valid || st.Block != 10 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	st, err = f.Status(context.Background(), "0000", 10*time.Millisecond)
	if err != nil || st.Committed {
		t.Fatalf("Status of an unknown transaction = %+v, %v", st, err)
	}
}

// An update statement delivered through another NMI's registry writes the
// meter's record, whose key-level policy asks for the owner NMI's peer (or
// a majority of the NMIs). The registry names no endorsers: the gateway
// plans them from its first endorser's simulation, whose chaincode interest
// carries the key-level policies of the keys the transaction writes, and
// gathers the owner's endorsement itself. A statement the chaincode
// refuses writes nothing but emits its outcome: it is ordered, as the
// evidence of the delivery, not answered from its endorsement.
func TestUpdateStatementEndorsedAndOrdered(t *testing.T) {
	for _, tc := range []struct {
		name, result string
		writes       bool
	}{
		{"accepted", `{"meterId":"PTB-0001","outcome":"accepted"}`, true},
		{"refused", `{"meterId":"PTB-0001","outcome":"refused","code":"REPLAY"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newFakeGateway()
			g.event = wire.EventSoftwareUpdate
			g.chaincode = func(fn string, _ []string) (string, bool, error) {
				if fn != wire.TxSubmitSoftwareUpdate {
					return "", false, fmt.Errorf("called %s", fn)
				}
				return tc.result, tc.writes, nil
			}
			f := fabricOver(t, g)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			r, err := f.Submit(ctx, api.RoleIngest, wire.TxSubmitSoftwareUpdate, []string{"PTB-0001", "e30=", "MEUCIQ=="}, nil)
			if err != nil || r.ReadOnly || string(r.Result) != tc.result || len(g.transactions()) != 1 {
				t.Fatalf("Submit = %+v, %v; ordered %v", r, err, g.transactions())
			}
			for _, orgs := range g.endorsingOrgs {
				if len(orgs) > 0 {
					t.Errorf("the endorse request named the endorsing organisations %v; the gateway must plan them from the key-level policies", orgs)
				}
			}
		})
	}
}
