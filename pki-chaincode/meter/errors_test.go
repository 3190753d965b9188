package meter_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// The spelling of every code is part of the public interface: clients match on
// these strings.
var codeSpelling = []struct {
	code meter.Code
	text string
}{
	{meter.CodeMalformed, "MALFORMED"},
	{meter.CodeTooLarge, "TOO_LARGE"},
	{meter.CodeUnsupportedKey, "UNSUPPORTED_KEY"},
	{meter.CodeInvalidKey, "INVALID_KEY"},
	{meter.CodeKeyInUse, "KEY_IN_USE"},
	{meter.CodeMeterExists, "METER_EXISTS"},
	{meter.CodeMeterNotFound, "METER_NOT_FOUND"},
	{meter.CodeMeterRevoked, "METER_REVOKED"},
	{meter.CodeNotOnHold, "NOT_ON_HOLD"},
	{meter.CodeBadSignature, "BAD_SIGNATURE"},
	{meter.CodeMeterMismatch, "METER_MISMATCH"},
	{meter.CodeReplay, "REPLAY"},
	{meter.CodeSeqOutOfRange, "SEQ_OUT_OF_RANGE"},
	{meter.CodeImplausibleTime, "IMPLAUSIBLE_TIME"},
	{meter.CodeForbidden, "FORBIDDEN"},
	{meter.CodeNotOwner, "NOT_OWNER"},
	{meter.CodePreEnrolled, "PRE_ENROLLED"},
	{meter.CodeIdentityMismatch, "IDENTITY_MISMATCH"},
	{meter.CodeInternal, "INTERNAL"},
}

func TestCodeSpelling(t *testing.T) {
	for _, c := range codeSpelling {
		if string(c.code) != c.text {
			t.Errorf("code %q is spelled %q", c.text, c.code)
		}
	}
}

func TestErrorFormatAndIs(t *testing.T) {
	err := meter.Errorf(meter.CodeReplay, "meter %s: seq %d", "PTB-0001", 3)
	if err.Error() != "REPLAY: meter PTB-0001: seq 3" {
		t.Fatalf("Error() = %q", err.Error())
	}
	wrapped := fmt.Errorf("submit: %w", err)
	if !errors.Is(wrapped, &meter.Error{Code: meter.CodeReplay}) {
		t.Error("a wrapped refusal does not match its code")
	}
	if !errors.Is(wrapped, &meter.Error{Code: meter.CodeReplay, Message: "meter PTB-0001: seq 3"}) {
		t.Error("a wrapped refusal does not match its code and message")
	}
	if errors.Is(wrapped, &meter.Error{Code: meter.CodeReplay, Message: "other"}) {
		t.Error("a refusal matches another message")
	}
	if errors.Is(wrapped, &meter.Error{Code: meter.CodeMalformed}) {
		t.Error("a refusal matches another code")
	}
	if errors.Is(err, io.EOF) {
		t.Error("a refusal matches a non-refusal")
	}
	if meter.CodeOf(wrapped) != meter.CodeReplay {
		t.Errorf("CodeOf(wrapped) = %q", meter.CodeOf(wrapped))
	}
	if meter.CodeOf(io.EOF) != "" || meter.CodeOf(nil) != "" {
		t.Error("CodeOf of a non-refusal is not empty")
	}
}

func TestParseError(t *testing.T) {
	cases := []struct {
		msg  string
		code meter.Code // "" when no refusal is in the message
		text string
	}{
		{"REPLAY: meter PTB-0001: seq 3 is not above 3", meter.CodeReplay, "meter PTB-0001: seq 3 is not above 3"},
		{"chaincode response 500, METER_REVOKED: meter PTB-0001 was revoked", meter.CodeMeterRevoked, "meter PTB-0001 was revoked"},
		{"transaction returned with failure: chaincode response 500, NOT_OWNER: meter PTB-0001 belongs to PTBMSP", meter.CodeNotOwner, "meter PTB-0001 belongs to PTBMSP"},
		// The first code is the refusal's; a code quoted in its text is not.
		{`chaincode response 500, INVALID_KEY: PEM block is "MALFORMED: x"`, meter.CodeInvalidKey, `PEM block is "MALFORMED: x"`},
		{"BAD_SIGNATURE: proof for REPLAY: 1", meter.CodeBadSignature, "proof for REPLAY: 1"},
		// A code must stand on its own: XREPLAY is not REPLAY.
		{"XREPLAY: a, REPLAY: b", meter.CodeReplay, "b"},
		{"METER_NOT_FOUND: x", meter.CodeMeterNotFound, "x"},
		{"NOT_FOUND: x", "", ""},
		{"REPLAY:x", "", ""},
		{"replay: x", "", ""},
		{"chaincode response 500, something broke", "", ""},
		{"", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.msg, func(t *testing.T) {
			e, ok := meter.ParseError(tc.msg)
			if tc.code == "" {
				if ok || e != nil {
					t.Fatalf("found %v in a message without a code", e)
				}
				return
			}
			if !ok || e.Code != tc.code || e.Message != tc.text {
				t.Fatalf("got %+v, %v; want %s %q", e, ok, tc.code, tc.text)
			}
		})
	}
}

// Every code survives the chaincode boundary, bare and as Fabric wraps it.
func TestParseErrorRoundTrip(t *testing.T) {
	for _, c := range codeSpelling {
		sent := meter.Errorf(c.code, "meter %s: %s", "PTB-0001", "why")
		for _, msg := range []string{sent.Error(), "chaincode response 500, " + sent.Error()} {
			got, ok := meter.ParseError(msg)
			if !ok || got.Code != c.code || got.Message != sent.Message {
				t.Errorf("%q: got %+v, %v", msg, got, ok)
			}
			if !errors.Is(got, sent) {
				t.Errorf("%q: the parsed refusal is not Is the sent one", msg)
			}
		}
	}
}
