package main

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// TestProve makes a meter's proof for an NMI: it verifies for exactly that
// meter ID and NMI, and for no other.
func TestProve(t *testing.T) {
	for _, curve := range meter.Curves {
		t.Run(string(curve), func(t *testing.T) {
			key, _ := keyPair(t, t.TempDir(), "m", curve)
			k := readKey(t, key).Public()
			r := pki(t, "", nil, "meter", "prove", "--key", key, "--meter", "PTB-0001", "--nmi", "PTBMSP")
			r.want(t, exitOK)
			if r.stderr != "" {
				t.Errorf("stderr: %s", r.stderr)
			}
			proof := strings.TrimSpace(r.stdout)
			if strings.Count(r.stdout, "\n") != 1 {
				t.Errorf("stdout is not one line: %q", r.stdout)
			}
			reg := meter.Registration{MeterID: "PTB-0001", PublicKey: k.PEM(), Proof: proof}
			if err := reg.VerifyProof(k, "PTBMSP"); err != nil {
				t.Fatalf("the proof does not verify for PTBMSP: %v", err)
			}
			if err := reg.VerifyProof(k, "CMIMSP"); meter.CodeOf(err) != meter.CodeBadSignature {
				t.Errorf("the proof for PTBMSP verifies for CMIMSP (%v)", err)
			}
			other := reg
			other.MeterID = "PTB-0002"
			if err := other.VerifyProof(k, "PTBMSP"); meter.CodeOf(err) != meter.CodeBadSignature {
				t.Errorf("the proof for PTB-0001 verifies for PTB-0002 (%v)", err)
			}

			j := pki(t, "", nil, "meter", "prove", "--key", key, "--meter", "PTB-0001", "--nmi", "PTBMSP", "-o", "json")
			j.want(t, exitOK)
			var out struct{ MeterID, NMI, Fingerprint, Proof string }
			if err := json.Unmarshal([]byte(j.stdout), &out); err != nil {
				t.Fatal(err)
			}
			reg.Proof = out.Proof
			if out.MeterID != "PTB-0001" || out.NMI != "PTBMSP" || out.Fingerprint != k.Fingerprint() || reg.VerifyProof(k, "PTBMSP") != nil {
				t.Errorf("-o json printed %+v", out)
			}
		})
	}
}

func TestProveWarnsOfAReadableKey(t *testing.T) {
	key, _ := keyPair(t, t.TempDir(), "m", meter.P256)
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	r := pki(t, "", nil, "meter", "prove", "--key", key, "--meter", "PTB-0001", "--nmi", "PTBMSP")
	r.want(t, exitOK)
	if !strings.Contains(r.stderr, "readable by others") || !strings.Contains(r.stderr, "chmod 600 "+key) {
		t.Errorf("no warning of a private key readable by others: %q", r.stderr)
	}
}

// TestProveCSV fills the proof column of a delivery list from a directory
// of the meters' private keys.
func TestProveCSV(t *testing.T) {
	dir := t.TempDir()
	var pubs []*meter.PublicKey
	for i, curve := range []meter.Curve{meter.P256, meter.P384, meter.Secp256k1} {
		key, _ := keyPair(t, dir, fmt.Sprintf("m%d", i), curve) // the .pub.pem files are skipped
		pubs = append(pubs, readKey(t, key).Public())
	}
	rows := [][]string{
		{"meterId", "publicKey", "manufacturer", "model", "serialNumber", "softwareId", "softwareChecksum"},
		{"PTB-0001", pubs[0].PEM(), "ACME", "E350", "1", "fw", "sha256:9f86d081"},
		{"PTB-0002", base64.StdEncoding.EncodeToString(pubs[1].DER()), "ACME", "E350", "2", "fw", "sha256:9f86d081"},
		{"PTB-0003", pubs[2].PEM(), "ACME", "E350", "3", "fw", "sha256:9f86d081"},
	}
	var in bytes.Buffer
	in.WriteString("\ufeff") // as spreadsheets save it
	if err := csv.NewWriter(&in).WriteAll(rows); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, out string, proofCol int) {
		t.Helper()
		got, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil {
			t.Fatalf("the output is not CSV: %v\n%s", err, out)
		}
		if len(got) != len(rows) || got[0][proofCol] != "proof" {
			t.Fatalf("the output has %d rows, header %q", len(got), got[0])
		}
		for i, row := range got[1:] {
			for j, cell := range rows[i+1] {
				if row[j] != cell {
					t.Errorf("row %d column %d changed: %q, was %q", i+1, j, row[j], cell)
				}
			}
			reg := meter.Registration{MeterID: row[0], Proof: row[proofCol]}
			if err := reg.VerifyProof(pubs[i], "PTBMSP"); err != nil {
				t.Errorf("row %d (%s): the proof does not verify: %v", i+1, row[0], err)
			}
		}
	}

	t.Run("adds the column", func(t *testing.T) {
		r := pki(t, in.String(), nil, "meter", "prove", "--keys", dir, "--nmi", "PTBMSP", "--csv", "-")
		r.want(t, exitOK)
		check(t, r.stdout, 7)
		if !strings.Contains(r.stderr, "proved 3 meters for PTBMSP") {
			t.Errorf("stderr: %q", r.stderr)
		}
		// The output is what the registry takes: the columns it reads.
		if header, _, _ := strings.Cut(r.stdout, "\n"); header != "meterId,publicKey,manufacturer,model,serialNumber,softwareId,softwareChecksum,proof" {
			t.Errorf("header %q", header)
		}
	})

	t.Run("replaces a proof for another NMI", func(t *testing.T) {
		withProof := slices.Clone(rows)
		withProof[0] = append(slices.Clone(rows[0][:2]), append([]string{"proof"}, rows[0][2:]...)...)
		for i := 1; i < len(rows); i++ {
			stale := meter.Registration{MeterID: rows[i][0]}
			if err := stale.Prove(readKey(t, filepath.Join(dir, fmt.Sprintf("m%d.key.pem", i-1))), "CMIMSP"); err != nil {
				t.Fatal(err)
			}
			withProof[i] = append(slices.Clone(rows[i][:2]), append([]string{stale.Proof}, rows[i][2:]...)...)
		}
		var b bytes.Buffer
		if err := csv.NewWriter(&b).WriteAll(withProof); err != nil {
			t.Fatal(err)
		}
		file := writeTemp(t, "delivery.csv", b.String())
		r := pki(t, "", nil, "meter", "prove", "--keys", dir, "--nmi", "PTBMSP", "--csv", file)
		r.want(t, exitOK)
		got, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
		if err != nil || len(got) != len(withProof) || len(got[0]) != len(withProof[0]) {
			t.Fatalf("output %q (%v)", got, err)
		}
		for i, row := range got[1:] {
			reg := meter.Registration{MeterID: row[0], Proof: row[2]}
			if err := reg.VerifyProof(pubs[i], "PTBMSP"); err != nil {
				t.Errorf("row %d: the proof for CMIMSP was not replaced by one for PTBMSP: %v", i+1, err)
			}
		}
	})

	t.Run("a meter whose key is not in the directory", func(t *testing.T) {
		stranger, err := meter.GenerateKey(meter.P256)
		if err != nil {
			t.Fatal(err)
		}
		extra := in.String() + "PTB-0004," + base64.StdEncoding.EncodeToString(stranger.Public().DER()) + ",ACME,E350,4,fw,sha256:9f86d081\n"
		r := pki(t, extra, nil, "meter", "prove", "--keys", dir, "--nmi", "PTBMSP", "--csv", "-")
		r.want(t, exitFailure)
		// PEM cells span 5 lines: the rows start on lines 2, 7, 8 and 13.
		want := fmt.Sprintf(`line 13 (meter "PTB-0004"): no private key of public key %s`, stranger.Public().Fingerprint())
		if !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "stdin: 1 of 4 rows cannot be proved") || r.stdout != "" {
			t.Errorf("stdout %q\nstderr %s\nwant %s", r.stdout, r.stderr, want)
		}
	})
}
