package meter

import (
	"strings"
	"testing"
)

func TestParseCurve(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Curve
	}{
		{"P-256", P256},
		{"p256", P256},
		{"P256", P256},
		{"prime256v1", P256},
		{"secp256r1", P256},
		{"SECP256R1", P256},
		{"P-384", P384},
		{"p-384", P384},
		{"secp384r1", P384},
		{"secp256k1", Secp256k1},
		{"SECP256K1", Secp256k1},
		{"secp-256k1", Secp256k1},
	} {
		got, err := ParseCurve(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseCurve(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "P-224", "P-521", "ed25519", "prime384v1", "P 256"} {
		got, err := ParseCurve(in)
		if err == nil {
			t.Errorf("ParseCurve(%q) = %q, want an error", in, got)
			continue
		}
		if want := "curve \"" + in + "\" is not accepted: use P-256, P-384 or secp256k1"; err.Error() != want {
			t.Errorf("ParseCurve(%q): %q, want %q", in, err, want)
		}
	}
}

// Every accepted curve reads back as itself.
func TestParseCurveRoundTrip(t *testing.T) {
	for _, c := range Curves {
		got, err := ParseCurve(string(c))
		if err != nil || got != c {
			t.Errorf("ParseCurve(%q) = %q, %v", c, got, err)
		}
		if got, err := ParseCurve(strings.ToLower(string(c))); err != nil || got != c {
			t.Errorf("ParseCurve(%q) = %q, %v", strings.ToLower(string(c)), got, err)
		}
	}
}
