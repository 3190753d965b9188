package chain_test

import (
	"strings"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/peer"

	"github.com/inter-nmi/pki/network/pkg/chain"
)

// Every validation code Fabric defines has a sentence, and only those.
func TestPlainCode(t *testing.T) {
	for _, name := range peer.TxValidationCode_name {
		s := chain.PlainCode(name)
		if s == "" || !strings.HasSuffix(s, ".") || strings.Contains(s, name) {
			t.Errorf("validation code %s: %q is not a plain sentence", name, s)
		}
	}
	if got := chain.PlainCode("NO_SUCH_CODE"); got != "" {
		t.Errorf("PlainCode of an unknown code = %q, want empty", got)
	}
	for code, want := range map[string]bool{"MVCC_READ_CONFLICT": true, "PHANTOM_READ_CONFLICT": true,
		"ENDORSEMENT_POLICY_FAILURE": true, "BAD_CREATOR_SIGNATURE": false, "VALID": false} {
		if got := chain.Conflict(code); got != want {
			t.Errorf("Conflict(%s) = %v, want %v", code, got, want)
		}
	}
}
