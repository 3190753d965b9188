package meter_test

import (
	"path/filepath"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

func addSeeds(f *testing.F, pattern string) {
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in %s: %v", pattern, err)
	}
	for _, file := range files {
		f.Add(readFile(f, file))
	}
}

// FuzzParseMeasurement: any input is refused with a code or parses to a
// measurement whose own payload parses back to it.
//
//	go test ./pki-chaincode/meter -run '^$' -fuzz FuzzParseMeasurement -fuzztime 1m
func FuzzParseMeasurement(f *testing.F) {
	addSeeds(f, filepath.Join(msmtDir, "*.json"))
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := meter.ParseMeasurement(payload)
		if err != nil {
			if c := meter.CodeOf(err); c != meter.CodeMalformed && c != meter.CodeTooLarge {
				t.Fatalf("refused with code %q: %v", c, err)
			}
			return
		}
		again, err := m.Payload()
		if err != nil {
			t.Fatalf("accepted %q but cannot re-encode it: %v", payload, err)
		}
		back, err := meter.ParseMeasurement(again)
		if err != nil || back != m {
			t.Fatalf("accepted %q as %+v, which re-encodes to %q and parses to %+v, %v", payload, m, again, back, err)
		}
	})
}

// FuzzParsePublicKeyPEM: any input is refused with a key code or parses to a
// key on an accepted curve whose canonical PEM parses back to it.
//
//	go test ./pki-chaincode/meter -run '^$' -fuzz FuzzParsePublicKeyPEM -fuzztime 1m
func FuzzParsePublicKeyPEM(f *testing.F) {
	addSeeds(f, filepath.Join(keysDir, "*.pem"))
	f.Fuzz(func(t *testing.T, text []byte) {
		k, err := meter.ParsePublicKeyPEM(string(text))
		if err != nil {
			switch meter.CodeOf(err) {
			case meter.CodeInvalidKey, meter.CodeUnsupportedKey, meter.CodeTooLarge:
				return
			}
			t.Fatalf("refused without a key code: %v", err)
		}
		switch k.Curve() {
		case meter.P256, meter.P384, meter.Secp256k1:
		default:
			t.Fatalf("accepted curve %q", k.Curve())
		}
		back, err := meter.ParsePublicKeyPEM(k.PEM())
		if err != nil || !back.Equal(k) || back.Fingerprint() != k.Fingerprint() || len(k.Fingerprint()) != 64 {
			t.Fatalf("canonical PEM does not round-trip: %v", err)
		}
	})
}
