package agreement_test

import (
	"strings"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// Every billing code has a sentence of its own, and the codes the billing
// contract shares with the meter-PKI contract keep theirs.
func TestPlainSentences(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range meter.Codes {
		seen[meter.Plain(c)] = true
	}
	for _, c := range agreement.Codes {
		s := agreement.Plain(c)
		if s == "" || !strings.HasSuffix(s, ".") || strings.Contains(s, string(c)) {
			t.Errorf("code %s: %q is not a plain sentence", c, s)
		}
		if seen[s] {
			t.Errorf("code %s shares its sentence %q with another code", c, s)
		}
		seen[s] = true
	}
	if got, want := agreement.Plain(meter.CodeBadSignature), meter.Plain(meter.CodeBadSignature); got != want {
		t.Errorf("Plain(BAD_SIGNATURE) = %q, want the meter-PKI contract's %q", got, want)
	}
}
