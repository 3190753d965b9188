package agreement_test

import (
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// The spelling of every code is part of the public interface, and the
// billing codes must not collide with the meter-PKI contract's: a client
// parses both from one message.
func TestCodes(t *testing.T) {
	spelled := map[meter.Code]string{
		agreement.CodePeriodExists: "PERIOD_EXISTS", agreement.CodePeriodNotFound: "PERIOD_NOT_FOUND",
		agreement.CodePeriodMismatch: "PERIOD_MISMATCH", agreement.CodeAgreementExists: "AGREEMENT_EXISTS",
		agreement.CodeNoAgreement: "NO_AGREEMENT", agreement.CodeTariffMismatch: "TARIFF_MISMATCH",
		agreement.CodeKeyIssued: "KEY_ISSUED", agreement.CodeBillExists: "BILL_EXISTS",
		agreement.CodeSlotsMismatch: "SLOTS_MISMATCH",
	}
	if len(agreement.Codes) != len(spelled) {
		t.Errorf("agreement.Codes lists %d codes, %d are declared", len(agreement.Codes), len(spelled))
	}
	for _, c := range agreement.Codes {
		if string(c) != spelled[c] {
			t.Errorf("code %q is spelled %q", spelled[c], c)
		}
		for _, m := range meter.Codes {
			if c == m {
				t.Errorf("billing code %s is a meter-PKI code too", c)
			}
		}
	}
	msg := "chaincode response 500, " + string(agreement.CodeBillExists) + ": the bill of period p1 is recorded"
	if _, ok := meter.ParseError(msg); ok {
		t.Errorf("meter.ParseError knows a billing code")
	}
	if e, ok := meter.ParseErrorIn(msg, agreement.Codes); !ok || e.Code != agreement.CodeBillExists {
		t.Errorf("ParseErrorIn(%q) = %v, %v", msg, e, ok)
	}
}
