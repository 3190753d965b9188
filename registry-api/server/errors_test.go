package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/peer"

	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/ledger"
)

// refusalStatus is the HTTP status each chaincode refusal is answered with.
var refusalStatus = map[meter.Code]int{
	meter.CodeMalformed:           http.StatusBadRequest,
	meter.CodeTooLarge:            http.StatusRequestEntityTooLarge,
	meter.CodeUnsupportedKey:      http.StatusUnprocessableEntity,
	meter.CodeInvalidKey:          http.StatusUnprocessableEntity,
	meter.CodeKeyInUse:            http.StatusConflict,
	meter.CodeMeterExists:         http.StatusConflict,
	meter.CodeMeterNotFound:       http.StatusNotFound,
	meter.CodeMeterRevoked:        http.StatusConflict,
	meter.CodeClockSkew:           http.StatusServiceUnavailable,
	meter.CodeNotOnHold:           http.StatusConflict,
	meter.CodeBadSignature:        http.StatusUnprocessableEntity,
	meter.CodeMeterMismatch:       http.StatusUnprocessableEntity,
	meter.CodeReplay:              http.StatusConflict,
	meter.CodeSeqOutOfRange:       http.StatusUnprocessableEntity,
	meter.CodeImplausibleTime:     http.StatusUnprocessableEntity,
	meter.CodeForbidden:           http.StatusForbidden,
	meter.CodeNotOwner:            http.StatusForbidden,
	meter.CodePreEnrolled:         http.StatusConflict,
	meter.CodeIdentityMismatch:    http.StatusUnprocessableEntity,
	meter.CodePreEnrolmentExpired: http.StatusConflict,
	meter.CodeNotMember:           http.StatusForbidden,
	meter.CodeInternal:            http.StatusInternalServerError,
	meter.CodeTypeExists:          http.StatusConflict,
	meter.CodeTypeNotFound:        http.StatusNotFound,
	meter.CodeVersionExists:       http.StatusConflict,
	meter.CodeVersionNotFound:     http.StatusNotFound,
	meter.CodeVersionWithdrawn:    http.StatusConflict,
	meter.CodeSoftwareMismatch:    http.StatusUnprocessableEntity,
	meter.CodeSoftwareNotApproved: http.StatusUnprocessableEntity,
	agreement.CodePeriodExists:    http.StatusConflict,
	agreement.CodePeriodNotFound:  http.StatusNotFound,
	agreement.CodePeriodMismatch:  http.StatusUnprocessableEntity,
	agreement.CodeAgreementExists: http.StatusConflict,
	agreement.CodeNoAgreement:     http.StatusConflict,
	agreement.CodeTariffMismatch:  http.StatusUnprocessableEntity,
	agreement.CodeKeyIssued:       http.StatusConflict,
	agreement.CodeBillExists:      http.StatusConflict,
	agreement.CodeSlotsMismatch:   http.StatusUnprocessableEntity,
}

// TestRefusals answers every chaincode refusal with its status, its code
// and its message, for writes (Submit) and reads (Evaluate).
func TestRefusals(t *testing.T) {
	codes := slices.Concat(meter.Codes, agreement.Codes)
	if len(refusalStatus) != len(codes) {
		t.Errorf("refusalStatus covers %d codes; the contracts define %d: %v", len(refusalStatus), len(codes), codes)
	}
	for _, code := range codes {
		c := string(code)
		status, ok := refusalStatus[code]
		if !ok {
			t.Errorf("no expected status for %s", code)
			continue
		}
		if statusOf[c] != status {
			t.Errorf("problem.go maps %s to %d, want %d", c, statusOf[c], status)
		}
		t.Run(c, func(t *testing.T) {
			f := newFixture(t)
			refusal := meter.Errorf(code, "refused for the test")
			// As the gateway wraps it.
			f.ledger.on("GetMeter", fails(fmt.Errorf("evaluate GetMeter: %w", refusal)))
			f.ledger.on("ReinstateMeter", fails(refusal))
			routes := []request{{method: http.MethodPost, path: "/api/v1/meters/PTB-0001/reinstate", as: operator}}
			// A read is refused only as malformed, not found or internal.
			if status == http.StatusBadRequest || status == http.StatusNotFound || status == http.StatusInternalServerError {
				routes = append(routes, get("/api/v1/meters/PTB-0001", auditor))
			}
			for _, r := range routes {
				p := problemOf(t, f.do(r), status, c)
				if p.Detail != "refused for the test" {
					t.Errorf("%s: detail %q, want the chaincode's message", r.path, p.Detail)
				}
			}
		})
	}
}

func TestLedgerFailures(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		code   string
		txID   string
	}{
		{"unavailable", fmt.Errorf("%w: no peers available", ledger.ErrUnavailable), 503, api.CodeUnavailable, ""},
		{"conflict", fmt.Errorf("%w: transaction tx1: MVCC_READ_CONFLICT", ledger.ErrConflict), 503, api.CodeConflict, ""},
		{"deadline", fmt.Errorf("endorse: %w", context.DeadlineExceeded), 504, api.CodeTimeout, ""},
		{"invalid transaction", &ledger.InvalidError{TxID: "tx-bad", Code: peer.TxValidationCode_ENDORSEMENT_POLICY_FAILURE}, 500, api.CodeTxInvalid, "tx-bad"},
		{"outcome unknown", &ledger.OutcomeUnknownError{TxID: "tx-sent", Cause: context.DeadlineExceeded}, 504, api.CodeOutcomeUnknown, "tx-sent"},
		{"registry disk full", fmt.Errorf("record transaction tx1 before sending it: %w", &os.PathError{Op: "write", Path: "registry.db", Err: syscall.ENOSPC}),
			503, api.CodeStorageFull, ""},
		{"unexpected", errors.New("secret internals"), 500, string(meter.CodeInternal), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			for _, tx := range []string{"GetMeter", "RegisterMeter", wire.TxSubmitPacked} {
				f.ledger.on(tx, fails(c.err))
			}
			f.ledger.on("Consortium", fails(c.err))
			m := map[string]any{"meterId": "PTB-0001", "payload": readTestdata(t, "measurements/p256.good.json"),
				"signature": readTestdata(t, "measurements/p256.sig")}
			for _, r := range []request{
				get("/api/v1/meters/PTB-0001", auditor),
				get("/api/v1/consortium", auditor),
				post("/api/v1/meters", operator, registration("PTB-0001", newKeyPEM(t))),
				post("/api/v1/meters/PTB-0001/measurements", ingest, m),
				post("/api/v1/measurements/batch", ingest, map[string]any{"measurements": []any{m}}),
			} {
				p := problemOf(t, f.do(r), c.status, c.code)
				if p.TxID != c.txID {
					t.Errorf("%s: txId %q, want %q", r.path, p.TxID, c.txID)
				}
				if strings.Contains(p.Detail, "secret") {
					t.Errorf("%s: detail %q shows an unexpected error's text", r.path, p.Detail)
				}
			}
		})
	}
}

// TestBatchPartRefused answers a refusal of one part of a batch with the
// chaincode's code, where the part starts and that nothing was registered.
func TestBatchPartRefused(t *testing.T) {
	f := newFixture(t)
	regs := make([]meter.Registration, 1500)
	for i := range regs {
		regs[i] = registration(fmt.Sprintf("PTB-%05d", i), newKeyPEM(t))
	}
	f.ledger.on("RegisterMeters", func(_ context.Context, args []string) (any, error) {
		if strings.Contains(args[0], `"PTB-01200"`) {
			return nil, meter.Errorf(meter.CodeMeterExists, `entry 200 (meter "PTB-01200"): meter PTB-01200 is already registered`)
		}
		return struct{}{}, nil
	})
	p := problemOf(t, f.do(post("/api/v1/meters/batch", operator, regs)), http.StatusConflict, string(meter.CodeMeterExists))
	for _, want := range []string{"in the part starting at entry 1000", "PTB-01200", "nothing was registered"} {
		if !strings.Contains(p.Detail, want) {
			t.Errorf("detail %q lacks %q", p.Detail, want)
		}
	}
	if len(p.Errors) != 0 {
		t.Errorf("errors = %v, want none: nothing was committed", p.Errors)
	}
}

// TestBatchPartFailedAfterCommit reports which parts were committed when a
// later one failed after submission.
func TestBatchPartFailedAfterCommit(t *testing.T) {
	f := newFixture(t)
	regs := make([]meter.Registration, 1200)
	for i := range regs {
		regs[i] = registration(fmt.Sprintf("PTB-%05d", i), newKeyPEM(t))
	}
	f.ledger.submitAll = func(parts [][]string) ([]*ledger.Receipt, error) {
		result, _ := json.Marshal(map[string]any{"nmi": "PTB", "meterIds": []string{}})
		return []*ledger.Receipt{{Result: result, TxID: "tx-first", Block: 9}, nil},
			&ledger.PartError{Part: 1, Committed: true, Err: fmt.Errorf("%w: MVCC_READ_CONFLICT", ledger.ErrConflict)}
	}
	p := problemOf(t, f.do(post("/api/v1/meters/batch", operator, regs)), http.StatusServiceUnavailable, api.CodeConflict)
	if len(p.Errors) != 1 || !strings.Contains(p.Errors[0], "tx-first") || !strings.Contains(p.Errors[0], "entries 0-999") {
		t.Errorf("errors = %v, want the committed part 0-999 in tx-first", p.Errors)
	}
	if !strings.Contains(p.Detail, "in the part starting at entry 1000") || !strings.Contains(p.Detail, "resubmit only the failed part") {
		t.Errorf("detail %q does not say which part to resubmit", p.Detail)
	}
}

// TestPanicIsInternal answers a handler's panic with 500, not a dropped
// connection.
func TestPanicIsInternal(t *testing.T) {
	f := newFixture(t)
	f.ledger.on("GetMeter", func(context.Context, []string) (any, error) { panic("boom") })
	p := problemOf(t, f.do(get("/api/v1/meters/PTB-0001", auditor)), http.StatusInternalServerError, string(meter.CodeInternal))
	if strings.Contains(p.Detail, "boom") {
		t.Errorf("detail %q shows the panic", p.Detail)
	}
}

func TestAwaitBlockFailure(t *testing.T) {
	f := newFixture(t)
	f.ledger.on("AwaitBlock", fails(fmt.Errorf("%w: the peer has not committed block 42 yet", ledger.ErrUnavailable)))
	problemOf(t, f.do(get("/api/v1/meters/PTB-0001?minBlock=42", auditor)), http.StatusServiceUnavailable, api.CodeUnavailable)
	if n := len(f.ledger.named("GetMeter")); n != 0 {
		t.Errorf("GetMeter evaluated %d times although the peer had not reached minBlock", n)
	}
}
