package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

func readKey(t *testing.T, path string) *meter.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := meter.ParsePrivateKeyPEM(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeygen(t *testing.T) {
	for _, curve := range meter.Curves {
		t.Run(string(curve), func(t *testing.T) {
			dir := t.TempDir()
			key, pub := filepath.Join(dir, "m.key.pem"), filepath.Join(dir, "m.pub.pem")
			r := pki(t, "", nil, "meter", "keygen", "--curve", string(curve), "--out", key, "--pub", pub, "-o", "json")
			r.want(t, exitOK)
			for path, mode := range map[string]os.FileMode{key: 0o600, pub: 0o644} {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != mode {
					t.Errorf("%s has mode %v, want %v", filepath.Base(path), fi.Mode().Perm(), mode)
				}
			}
			var out struct{ Curve, Fingerprint string }
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
				t.Fatal(err)
			}
			k := readKey(t, key)
			if out.Curve != string(curve) || out.Fingerprint != k.Public().Fingerprint() {
				t.Errorf("keygen printed %+v; the key is %s %s", out, k.Public().Curve(), k.Public().Fingerprint())
			}
			fp := pki(t, "", nil, "meter", "fingerprint", pub)
			fp.want(t, exitOK)
			if !strings.Contains(fp.stdout, out.Fingerprint) {
				t.Errorf("fingerprint printed %q, want %s", fp.stdout, out.Fingerprint)
			}
		})
	}
}

func TestKeygenKeepsFiles(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "m.key.pem")
	if err := os.WriteFile(key, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	pki(t, "", nil, "meter", "keygen", "--out", key).want(t, exitUsage)
	if b, _ := os.ReadFile(key); string(b) != "old" {
		t.Fatal("keygen replaced a file without --force")
	}
	pki(t, "", nil, "meter", "keygen", "--out", key, "--force").want(t, exitOK)
	readKey(t, key)
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Errorf("a replaced key file has mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestSign(t *testing.T) {
	for _, curve := range meter.Curves {
		t.Run(string(curve), func(t *testing.T) {
			key, pub := keyPair(t, t.TempDir(), "m", curve)
			r := pki(t, "", nil, "sign", "--key", key, "--meter", "PTB-0001", "--seq", "42", "--value", "1234.500", "--unit", "kWh")
			r.want(t, exitOK)
			if r.stderr != "" {
				t.Errorf("stderr: %s", r.stderr)
			}
			var sm meter.SignedMeasurement
			if err := json.Unmarshal([]byte(r.stdout), &sm); err != nil {
				t.Fatal(err)
			}
			m, err := meter.ParseMeasurement(sm.Payload)
			if err != nil {
				t.Fatalf("the payload is not a measurement: %v\n%s", err, sm.Payload)
			}
			want := meter.Measurement{MeterID: "PTB-0001", Seq: 42, Time: now.Format(time.RFC3339), Value: "1234.500", Unit: "kWh"}
			if m != want {
				t.Errorf("signed %+v, want %+v", m, want)
			}
			if _, err := sm.Open(readKey(t, key).Public()); err != nil {
				t.Errorf("the signature does not verify: %v", err)
			}
			pki(t, r.stdout, nil, "verify", "--key", pub, "-").want(t, exitOK)

			sm.Signature[len(sm.Signature)-1] ^= 1
			bad, _ := json.Marshal(sm)
			v := pki(t, string(bad), nil, "verify", "--key", pub, "-o", "json", "-")
			v.want(t, exitFailure)
			if !strings.Contains(v.stdout, string(meter.CodeBadSignature)) {
				t.Errorf("verify of a damaged signature printed %s", v.stdout)
			}
		})
	}
}

func TestSignWarnsOfImplausibleTime(t *testing.T) {
	key, pub := keyPair(t, t.TempDir(), "m", meter.P256)
	old := now.Add(-60 * 24 * time.Hour).Format(time.RFC3339)
	r := pki(t, "", nil, "sign", "--key", key, "--meter", "M-1", "--seq", "1", "--value", "1", "--time", old)
	r.want(t, exitOK)
	if !strings.Contains(r.stderr, "IMPLAUSIBLE_TIME") {
		t.Errorf("no warning of an old time: %q", r.stderr)
	}
	pki(t, r.stdout, nil, "verify", "--key", pub, "-").want(t, exitFailure)
}

func TestProofText(t *testing.T) {
	der := []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}
	b64 := base64.StdEncoding.EncodeToString(der)
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"base64", []byte(b64 + "\n"), true},
		{"DER", der, true},
		{"junk", []byte("not a proof!"), false},
		{"empty", nil, false},
	} {
		got, err := proofText(tc.in)
		if tc.ok && (err != nil || got != b64) || !tc.ok && err == nil {
			t.Errorf("%s: proofText = %q, %v", tc.name, got, err)
		}
	}
}
