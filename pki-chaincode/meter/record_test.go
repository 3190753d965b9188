package meter_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

func TestValidateMeterID(t *testing.T) {
	for _, id := range []string{"PTB-0001", "1", "a.b_c:d-e", strings.Repeat("x", 64)} {
		if err := meter.ValidateMeterID(id); err != nil {
			t.Errorf("%q refused: %v", id, err)
		}
	}
	for _, id := range []string{"", "-PTB", ".PTB", "PTB/0001", "PTB~1", "PTB 0001", "PTB-ä", strings.Repeat("x", 65), "PTB\n"} {
		wantCode(t, meter.ValidateMeterID(id), meter.CodeMalformed)
	}
}

func validMetadata() meter.Metadata {
	return meter.Metadata{Manufacturer: "Acme Metering", Model: "EM-3000", SerialNumber: "SN-0001",
		SoftwareID: "EM3-FW 2.1", SoftwareChecksum: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
}

func TestMetadataValidate(t *testing.T) {
	if err := validMetadata().Validate(); err != nil {
		t.Fatal(err)
	}
	// Any script is welcome, only invisible and control characters are not.
	intl := validMetadata()
	intl.Manufacturer, intl.Model, intl.SerialNumber = "Messgeräte Müller", "計量器 EM-3000", "Nº 0001"
	if err := intl.Validate(); err != nil {
		t.Fatalf("metadata in other scripts refused: %v", err)
	}
	cases := []struct {
		name   string
		change func(*meter.Metadata)
		code   meter.Code
	}{
		{"no manufacturer", func(m *meter.Metadata) { m.Manufacturer = "" }, meter.CodeMalformed},
		{"no model", func(m *meter.Metadata) { m.Model = "" }, meter.CodeMalformed},
		{"no serial", func(m *meter.Metadata) { m.SerialNumber = "" }, meter.CodeMalformed},
		{"no software ID", func(m *meter.Metadata) { m.SoftwareID = "" }, meter.CodeMalformed},
		{"no checksum", func(m *meter.Metadata) { m.SoftwareChecksum = "" }, meter.CodeMalformed},
		{"long model", func(m *meter.Metadata) { m.Model = strings.Repeat("m", meter.MaxMetadataLen+1) }, meter.CodeTooLarge},
		{"control character", func(m *meter.Metadata) { m.SerialNumber = "SN\x00" }, meter.CodeMalformed},
		{"invalid UTF-8", func(m *meter.Metadata) { m.Model = "EM\xff" }, meter.CodeMalformed},
		// A right-to-left override makes "SN-1000\u202e9" display as another serial.
		{"bidi override", func(m *meter.Metadata) { m.SerialNumber = "SN-\u202e0001" }, meter.CodeMalformed},
		{"bidi embedding", func(m *meter.Metadata) { m.Manufacturer = "Acme\u202a" }, meter.CodeMalformed},
		{"bidi isolate", func(m *meter.Metadata) { m.Model = "\u2067EM-3000\u2069" }, meter.CodeMalformed},
		{"right-to-left mark", func(m *meter.Metadata) { m.SoftwareID = "fw\u200f1.0" }, meter.CodeMalformed},
		{"zero-width space", func(m *meter.Metadata) { m.SerialNumber = "SN\u200b0001" }, meter.CodeMalformed},
		{"C1 control", func(m *meter.Metadata) { m.Model = "EM\u00853000" }, meter.CodeMalformed},
		{"C1 CSI", func(m *meter.Metadata) { m.Model = "EM\u009b31m" }, meter.CodeMalformed},
		{"line separator", func(m *meter.Metadata) { m.Model = "EM\u2028" }, meter.CodeMalformed},
		{"checksum without algorithm", func(m *meter.Metadata) { m.SoftwareChecksum = "9f86d081884c7d65" }, meter.CodeMalformed},
		{"checksum not hex", func(m *meter.Metadata) { m.SoftwareChecksum = "sha256:zzzzzzzz" }, meter.CodeMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			md := validMetadata()
			tc.change(&md)
			wantCode(t, md.Validate(), tc.code)
		})
	}
}

func TestRegistrationValidate(t *testing.T) {
	pub := string(readFile(t, filepath.Join(keysDir, "p256.good.pem")))
	reg := meter.Registration{MeterID: "PTB-0001", PublicKey: pub, Metadata: validMetadata()}
	k, err := reg.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if !k.Equal(publicKey(t, "p256")) {
		t.Error("Validate returned another key")
	}
	cases := []struct {
		name   string
		change func(*meter.Registration)
		code   meter.Code
	}{
		{"meter ID", func(r *meter.Registration) { r.MeterID = "" }, meter.CodeMalformed},
		{"metadata", func(r *meter.Registration) { r.Model = "" }, meter.CodeMalformed},
		{"RSA key", func(r *meter.Registration) {
			r.PublicKey = string(readFile(t, filepath.Join(keysDir, "rsa2048.bad.pem")))
		}, meter.CodeUnsupportedKey},
		{"off-curve key", func(r *meter.Registration) {
			r.PublicKey = string(readFile(t, filepath.Join(keysDir, "p256-offcurve.bad.pem")))
		}, meter.CodeInvalidKey},
		{"identity too long", func(r *meter.Registration) { r.Identity = strings.Repeat("i", meter.MaxIdentityLen+1) }, meter.CodeTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := reg
			tc.change(&r)
			_, err := r.Validate()
			wantCode(t, err, tc.code)
		})
	}
}

func TestParseStatus(t *testing.T) {
	for _, s := range []string{"", "active", "revoked"} {
		if got, err := meter.ParseStatus(s); err != nil || string(got) != s {
			t.Errorf("%q: %v, %v", s, got, err)
		}
	}
	_, err := meter.ParseStatus("Active")
	wantCode(t, err, meter.CodeMalformed)
}

func TestParseReason(t *testing.T) {
	names := []string{"unspecified", "keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation", "certificateHold"}
	if len(names) != len(meter.Reasons) {
		t.Fatalf("Reasons has %d entries, RFC 5280 gives %d that apply", len(meter.Reasons), len(names))
	}
	for _, s := range names {
		if got, err := meter.ParseReason(s); err != nil || string(got) != s {
			t.Errorf("%q: %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "KeyCompromise", "removeFromCRL", "privilegeWithdrawn"} {
		_, err := meter.ParseReason(s)
		wantCode(t, err, meter.CodeMalformed)
	}
}

func TestIdentityHash(t *testing.T) {
	// SHA-256 test vector of "abc" (FIPS 180-2).
	const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := meter.IdentityHash("abc"); got != abc {
		t.Fatalf("IdentityHash(abc) = %s", got)
	}
	if err := meter.ValidateHash(abc); err != nil {
		t.Error(err)
	}
	for _, h := range []string{"", strings.ToUpper(abc), abc[:63], abc + "0", strings.Repeat("g", 64)} {
		wantCode(t, meter.ValidateHash(h), meter.CodeMalformed)
	}
}

// The rotation statement is a signed format like the measurement: its bytes
// must not change.
func TestRotationStatement(t *testing.T) {
	k := publicKey(t, "other")
	got := string(meter.RotationStatement("PTB-0001", 2, k))
	want := `{"type":"keyRotation","meterId":"PTB-0001","keyVersion":2,"publicKeySha256":"` + k.Fingerprint() + `"}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
