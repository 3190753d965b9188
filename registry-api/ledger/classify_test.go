package ledger

import (
	"context"
	"errors"
	"fmt"
	"testing"

	gatewaypb "github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		name      string
		err       error
		code      meter.Code // a chaincode refusal with this code
		is        error      // or this sentinel
		retryable bool
	}{
		{"endorsement refusal", endorseError(codes.Aborted, "failed to endorse transaction, see attached details for more info",
			"chaincode response 500, METER_EXISTS: meter PTB-1 is already registered"), meter.CodeMeterExists, nil, false},
		{"refusal by a second endorser", endorseError(codes.Aborted, "failed to collect enough transaction endorsements, see attached details for more info",
			"rpc error: code = Unavailable desc = connection refused", "chaincode response 500, NOT_OWNER: meter PTB-1 belongs to PTBMSP"), meter.CodeNotOwner, nil, false},
		{"an endorser behind", endorseError(codes.Aborted, "failed to collect enough transaction endorsements, see attached details for more info",
			"ProposalResponsePayloads do not match"), "", ErrConflict, true},
		{"an endorser down", endorseError(codes.Aborted, "failed to collect enough transaction endorsements, see attached details for more info",
			"rpc error: code = Unavailable desc = connection refused"), "", ErrUnavailable, true},
		{"endorsement failed otherwise", endorseError(codes.Aborted, "failed to endorse transaction, see attached details for more info",
			"chaincode response 500, Function Frobnicate not found in contract Registry"), "", nil, false},
		{"responses differ at assembly", status.Error(codes.Aborted, "failed to assemble transaction: ProposalResponsePayloads do not match (base64): 'CiA=' vs 'CiE='"), "", ErrConflict, true},
		{"no peer to evaluate", status.Error(codes.Unavailable, "no peers available to evaluate chaincode pki in channel metrology"), "", ErrUnavailable, true},
		{"evaluate refusal", status.Error(codes.Unknown, "evaluate call to endorser returned error: chaincode response 500, METER_NOT_FOUND: meter X is not registered"), meter.CodeMeterNotFound, nil, false},
		{"refusal as such", meter.Errorf(meter.CodeReplay, "seq 1"), meter.CodeReplay, nil, false},
		{"discovery not ready", status.Error(codes.FailedPrecondition, "no combination of peers can be derived which satisfy the endorsement policy"), "", ErrUnavailable, true},
		{"peer down", status.Error(codes.Unavailable, "connection refused"), "", ErrUnavailable, true},
		{"deadline", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), "", ErrUnavailable, true},
		{"overloaded", status.Error(codes.ResourceExhausted, "exceeding concurrency limit"), "", ErrUnavailable, true},
		{"context", fmt.Errorf("wait: %w", context.DeadlineExceeded), "", ErrUnavailable, true},
		{"peers disagree", status.Error(codes.Aborted, "ProposalResponsePayloads do not match"), "", ErrConflict, true},
		{"conflict as such", fmt.Errorf("%w: MVCC_READ_CONFLICT", ErrConflict), "", ErrConflict, true},
		{"something else", errors.New("contract metadata broken"), "", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err)
			if tc.code != "" && meter.CodeOf(got) != tc.code {
				t.Fatalf("classify(%v) = %v, want refusal %s", tc.err, got, tc.code)
			}
			if tc.is != nil && !errors.Is(got, tc.is) {
				t.Fatalf("classify(%v) = %v, want %v", tc.err, got, tc.is)
			}
			if tc.code == "" && tc.is == nil && got != tc.err {
				t.Fatalf("classify changed an unknown error to %v", got)
			}
			if retryable(got) != tc.retryable {
				t.Fatalf("retryable(%v) = %v", got, !tc.retryable)
			}
		})
	}
	if classify(nil) != nil {
		t.Fatal("classify(nil) is not nil")
	}
}

// endorseError is the error fabric-gateway's client returns from an
// endorsement: a gRPC status with one ErrorDetail per failed endorser,
// behind the client's own wrapping.
func endorseError(code codes.Code, message string, answers ...string) error {
	st := status.New(code, message)
	for i, a := range answers {
		var err error
		st, err = st.WithDetails(&gatewaypb.ErrorDetail{Address: fmt.Sprintf("127.0.0.1:%d", 7151+100*i), MspId: "PTBMSP", Message: a})
		if err != nil {
			panic(err)
		}
	}
	return fmt.Errorf("endorse error: %w", st.Err())
}
