package meter_test

import (
	"strings"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// Every code has its sentence, a sentence of its own that a person can
// read (it starts with a capital and ends with a full stop), and no code
// outside meter.Codes has one.
func TestPlainSentences(t *testing.T) {
	seen := map[string]meter.Code{}
	for _, c := range meter.Codes {
		s := meter.Plain(c)
		if s == "" {
			t.Errorf("code %s has no plain sentence", c)
			continue
		}
		if !strings.HasSuffix(s, ".") || strings.ToUpper(s[:1]) != s[:1] || strings.Contains(s, string(c)) {
			t.Errorf("code %s: %q is not a plain sentence", c, s)
		}
		if other, dup := seen[s]; dup {
			t.Errorf("codes %s and %s share the sentence %q", other, c, s)
		}
		seen[s] = c
	}
	if got := meter.Plain("NO_SUCH_CODE"); got != "" {
		t.Errorf("Plain of an unknown code = %q, want empty", got)
	}
}
