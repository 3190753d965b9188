package meter_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ (the repository's testdata/generate.sh uses it)")

func TestParsePublicKeyPEMGood(t *testing.T) {
	for _, tc := range append(testCurves, struct {
		name  string
		curve meter.Curve
	}{"other", meter.P256}) {
		t.Run(tc.name, func(t *testing.T) {
			text := readFile(t, filepath.Join(keysDir, tc.name+".good.pem"))
			der := readFile(t, filepath.Join(keysDir, tc.name+".der"))
			k, err := meter.ParsePublicKeyPEM(string(text))
			if err != nil {
				t.Fatal(err)
			}
			if k.Curve() != tc.curve {
				t.Errorf("curve %s, want %s", k.Curve(), tc.curve)
			}
			if string(k.DER()) != string(der) {
				t.Errorf("DER differs from openssl pkey -pubin -outform DER")
			}
			if k.PEM() != string(text) {
				t.Errorf("PEM differs from openssl pkey -pubout:\n%s\nwant\n%s", k.PEM(), text)
			}
			stored := strings.TrimSpace(string(readFile(t, filepath.Join(keysDir, tc.name+".sha256"))))
			sum := sha256.Sum256(der)
			if fp := k.Fingerprint(); fp != stored || fp != hex.EncodeToString(sum[:]) {
				t.Errorf("fingerprint %s, want %s (openssl dgst -sha256 of the DER)", fp, stored)
			}
			fromDER, err := meter.ParsePublicKeyDER(der)
			if err != nil {
				t.Fatal(err)
			}
			again, err := meter.ParsePublicKeyPEM(k.PEM())
			if err != nil {
				t.Fatal(err)
			}
			if !k.Equal(fromDER) || !k.Equal(again) {
				t.Error("the key parsed from DER or from its own PEM is not Equal")
			}
		})
	}
}

func TestPublicKeyDERIsACopy(t *testing.T) {
	k := publicKey(t, "p256")
	der := k.DER()
	der[len(der)-1] ^= 0xff
	if string(k.DER()) == string(der) {
		t.Fatal("changing the returned DER changed the key")
	}
}

func TestPublicKeyEqual(t *testing.T) {
	p256, other, k1 := publicKey(t, "p256"), publicKey(t, "other"), publicKey(t, "secp256k1")
	if !p256.Equal(publicKey(t, "p256")) {
		t.Error("a key is not Equal to itself parsed again")
	}
	if p256.Equal(other) || p256.Equal(k1) || p256.Equal(nil) {
		t.Error("different keys are Equal")
	}
}

// A compressed point is refused on every curve: the fingerprint is over the
// DER the meter maker holds, so the key is never re-encoded.
func TestParsePublicKeySecp256k1Compressed(t *testing.T) {
	_, err := meter.ParsePublicKeyPEM(string(readFile(t, filepath.Join(keysDir, "secp256k1-compressed.pem"))))
	if meter.CodeOf(err) != meter.CodeInvalidKey {
		t.Fatalf("compressed secp256k1 key: got %v, want %s", err, meter.CodeInvalidKey)
	}
}

func TestParsePublicKeyPEMBad(t *testing.T) {
	want := map[string]meter.Code{
		"rsa2048.bad.pem":            meter.CodeUnsupportedKey,
		"ed25519.bad.pem":            meter.CodeUnsupportedKey,
		"p224.bad.pem":               meter.CodeUnsupportedKey,
		"brainpoolP256r1.bad.pem":    meter.CodeUnsupportedKey,
		"p256-offcurve.bad.pem":      meter.CodeInvalidKey,
		"secp256k1-offcurve.bad.pem": meter.CodeInvalidKey,
		"p256-explicit.bad.pem":      meter.CodeInvalidKey,
		"truncated-pem.bad.pem":      meter.CodeInvalidKey,
		"truncated-der.bad.pem":      meter.CodeInvalidKey,
		"certificate.bad.pem":        meter.CodeInvalidKey,
		"private-key.bad.pem":        meter.CodeInvalidKey,
		"two-blocks.bad.pem":         meter.CodeInvalidKey,
		"garbage.bad.pem":            meter.CodeInvalidKey,
	}
	var names []string
	for name, code := range want {
		names = append(names, name)
		t.Run(name, func(t *testing.T) {
			k, err := meter.ParsePublicKeyPEM(string(readFile(t, filepath.Join(keysDir, name))))
			if k != nil {
				t.Errorf("got a key")
			}
			wantCode(t, err, code)
		})
	}
	checkCovered(t, keysDir, "*.bad.pem", names)
}

func TestParsePublicKeyPEMBadSynthetic(t *testing.T) {
	good := readFile(t, filepath.Join(keysDir, "p256.good.pem"))
	der := readFile(t, filepath.Join(keysDir, "p256.der"))
	withHeaders := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"Comment": "meter"}, Bytes: der})
	trailingDER := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: append(append([]byte(nil), der...), 0)})
	// ecPublicKey with NULL instead of a named curve.
	nullParams, err := asn1.Marshal(struct {
		Algorithm struct {
			Algorithm  asn1.ObjectIdentifier
			Parameters asn1.RawValue
		}
		PublicKey asn1.BitString
	}{
		Algorithm: struct {
			Algorithm  asn1.ObjectIdentifier
			Parameters asn1.RawValue
		}{asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}, asn1.NullRawValue},
		PublicKey: asn1.BitString{Bytes: []byte{4, 1, 2}, BitLength: 24},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		text string
		code meter.Code
	}{
		{"empty", "", meter.CodeInvalidKey},
		{"too large", string(good) + strings.Repeat(" ", meter.MaxPublicKeyPEM), meter.CodeTooLarge},
		{"headers", string(withHeaders), meter.CodeInvalidKey},
		{"trailing text", string(good) + "and more\n", meter.CodeInvalidKey},
		{"trailing DER", string(trailingDER), meter.CodeInvalidKey},
		{"NULL parameters", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: nullParams})), meter.CodeInvalidKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := meter.ParsePublicKeyPEM(tc.text)
			wantCode(t, err, tc.code)
		})
	}
	// Whitespace around the block is fine.
	if _, err := meter.ParsePublicKeyPEM("\n" + string(good) + "\n\n"); err != nil {
		t.Errorf("surrounding whitespace refused: %v", err)
	}
}

// order is the group order of the curve: S and N-S are both valid.
func order(c meter.Curve) *big.Int {
	switch c {
	case meter.P256:
		return elliptic.P256().Params().N
	case meter.P384:
		return elliptic.P384().Params().N
	default:
		return secp256k1.S256().Params().N
	}
}

type ecdsaSig struct{ R, S *big.Int }

func TestVerifyOpenSSLSignatures(t *testing.T) {
	for _, tc := range testCurves {
		t.Run(tc.name, func(t *testing.T) {
			key := publicKey(t, tc.name)
			payload := readFile(t, filepath.Join(msmtDir, tc.name+".good.json"))
			sig := readFile(t, filepath.Join(msmtDir, tc.name+".sig"))
			if err := key.Verify(payload, sig); err != nil {
				t.Fatalf("openssl signature refused: %v", err)
			}
			// openssl makes low-S or high-S signatures at random; the
			// complement of this one is the other kind, and both must pass.
			var rs ecdsaSig
			if _, err := asn1.Unmarshal(sig, &rs); err != nil {
				t.Fatal(err)
			}
			n := order(tc.curve)
			complement, err := asn1.Marshal(ecdsaSig{rs.R, new(big.Int).Sub(n, rs.S)})
			if err != nil {
				t.Fatal(err)
			}
			half := new(big.Int).Rsh(n, 1)
			if (rs.S.Cmp(half) > 0) == (new(big.Int).Sub(n, rs.S).Cmp(half) > 0) {
				t.Fatal("the signature and its complement are not one low-S and one high-S")
			}
			if err := key.Verify(payload, complement); err != nil {
				t.Errorf("the complementary S form is refused: %v", err)
			}
			tampered := append([]byte(nil), payload...)
			tampered[len(tampered)-3] ^= 1
			wantCode(t, key.Verify(tampered, sig), meter.CodeBadSignature)
		})
	}
}

func TestVerifyRefused(t *testing.T) {
	payload := readFile(t, filepath.Join(msmtDir, "p256.good.json"))
	good := readFile(t, filepath.Join(msmtDir, "p256.sig"))
	zeroR, _ := asn1.Marshal(ecdsaSig{big.NewInt(0), big.NewInt(1)})
	negS, _ := asn1.Marshal(ecdsaSig{big.NewInt(1), big.NewInt(-1)})
	p384Sig := readFile(t, filepath.Join(msmtDir, "p384.sig"))
	cases := []struct {
		name, key string
		payload   []byte
		sig       []byte
	}{
		{"truncated", "p256", payload, readFile(t, filepath.Join(msmtDir, "p256-truncated.sig"))},
		{"other key", "p256", payload, readFile(t, filepath.Join(msmtDir, "p256-otherkey.sig"))},
		{"right signature, other meter's key", "other", payload, good},
		{"empty", "p256", payload, nil},
		{"trailing byte", "p256", payload, append(append([]byte(nil), good...), 0)},
		{"too long", "p384", payload, make([]byte, 105)},
		{"zero R", "p256", payload, zeroR},
		{"negative S", "p256", payload, negS},
		{"raw r||s, not DER", "p256", payload, make([]byte, 64)},
		{"P-384 signature on P-256 key", "p256", readFile(t, filepath.Join(msmtDir, "p384.good.json")), p384Sig},
		{"secp256k1 truncated", "secp256k1", readFile(t, filepath.Join(msmtDir, "secp256k1.good.json")),
			readFile(t, filepath.Join(msmtDir, "secp256k1.sig"))[:60]},
		{"secp256k1 other key", "secp256k1", payload, good},
		{"secp256k1 zero R", "secp256k1", payload, zeroR},
		{"P-384 truncated", "p384", readFile(t, filepath.Join(msmtDir, "p384.good.json")), p384Sig[:len(p384Sig)-4]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, publicKey(t, tc.key).Verify(tc.payload, tc.sig), meter.CodeBadSignature)
		})
	}
}

func TestGenerateSignVerify(t *testing.T) {
	msg := []byte(`{"meterId":"PTB-0001","seq":1,"time":"2026-11-21T10:15:00Z","value":1,"unit":"kWh"}`)
	for _, tc := range testCurves {
		t.Run(tc.name, func(t *testing.T) {
			k, err := meter.GenerateKey(tc.curve)
			if err != nil {
				t.Fatal(err)
			}
			if k.Public().Curve() != tc.curve {
				t.Errorf("curve %s", k.Public().Curve())
			}
			sig, err := k.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			var rs ecdsaSig
			if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) > 0 {
				t.Fatalf("signature is not one DER sequence: %v", err)
			}
			if err := k.Public().Verify(msg, sig); err != nil {
				t.Fatalf("own signature refused: %v", err)
			}
			wantCode(t, k.Public().Verify(append(msg, ' '), sig), meter.CodeBadSignature)
			other, err := meter.GenerateKey(tc.curve)
			if err != nil {
				t.Fatal(err)
			}
			if other.Public().Equal(k.Public()) {
				t.Fatal("two generated keys are equal")
			}
			wantCode(t, other.Public().Verify(msg, sig), meter.CodeBadSignature)
		})
	}
	_, err := meter.GenerateKey("P-521")
	wantCode(t, err, meter.CodeUnsupportedKey)
}

func TestPrivateKeyPEMRoundTrip(t *testing.T) {
	for _, tc := range testCurves {
		t.Run(tc.name, func(t *testing.T) {
			k, err := meter.GenerateKey(tc.curve)
			if err != nil {
				t.Fatal(err)
			}
			text, err := k.PEM()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(text, "-----BEGIN PRIVATE KEY-----\n") {
				t.Fatalf("not PKCS#8 PEM:\n%s", text)
			}
			back, err := meter.ParsePrivateKeyPEM(text)
			if err != nil {
				t.Fatal(err)
			}
			if !back.Public().Equal(k.Public()) {
				t.Fatal("public key changed in the round trip")
			}
			sig, err := back.Sign([]byte("x"))
			if err != nil {
				t.Fatal(err)
			}
			if err := k.Public().Verify([]byte("x"), sig); err != nil {
				t.Fatalf("the parsed key signs for another public key: %v", err)
			}
			if again, _ := back.PEM(); again != text {
				t.Error("PEM is not stable over a round trip")
			}
		})
	}
}

// The private keys openssl writes, in both PKCS#8 and SEC 1, are read and
// belong to the public keys openssl exported.
func TestParsePrivateKeyPEMOpenSSL(t *testing.T) {
	cases := []struct{ file, public, block string }{
		{"p256.key.pem", "p256", "PRIVATE KEY"},
		{"p256.sec1.key.pem", "p256", "EC PRIVATE KEY"},
		{"p384.key.pem", "p384", "PRIVATE KEY"},
		{"secp256k1.key.pem", "secp256k1", "EC PRIVATE KEY"},
		{"secp256k1.pkcs8.key.pem", "secp256k1", "PRIVATE KEY"},
		{"other.key.pem", "other", "PRIVATE KEY"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			text := string(readFile(t, filepath.Join(keysDir, tc.file)))
			if !strings.HasPrefix(text, "-----BEGIN "+tc.block+"-----") {
				t.Fatalf("fixture is not a %s block", tc.block)
			}
			k, err := meter.ParsePrivateKeyPEM(text)
			if err != nil {
				t.Fatal(err)
			}
			if !k.Public().Equal(publicKey(t, tc.public)) {
				t.Fatal("the private key does not belong to the openssl public key")
			}
			sig, err := k.Sign([]byte("x"))
			if err != nil {
				t.Fatal(err)
			}
			if err := publicKey(t, tc.public).Verify([]byte("x"), sig); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("EC PARAMETERS block first", func(t *testing.T) {
		// openssl ecparam -genkey without -noout writes the curve first.
		params := "-----BEGIN EC PARAMETERS-----\nBgUrgQQACg==\n-----END EC PARAMETERS-----\n"
		k, err := meter.ParsePrivateKeyPEM(params + string(readFile(t, filepath.Join(keysDir, "secp256k1.key.pem"))))
		if err != nil {
			t.Fatal(err)
		}
		if !k.Public().Equal(publicKey(t, "secp256k1")) {
			t.Fatal("wrong key")
		}
	})
	checkCovered(t, keysDir, "*.key.pem", []string{"p256.key.pem", "p256.sec1.key.pem", "p384.key.pem",
		"secp256k1.key.pem", "secp256k1.pkcs8.key.pem", "other.key.pem"})
}

func TestParsePrivateKeyPEMBad(t *testing.T) {
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p224PKCS8, err := x509.MarshalPKCS8PrivateKey(p224)
	if err != nil {
		t.Fatal(err)
	}
	p224SEC1, err := x509.MarshalECPrivateKey(p224)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPKCS8, err := x509.MarshalPKCS8PrivateKey(edKey)
	if err != nil {
		t.Fatal(err)
	}
	noCurve, err := asn1.Marshal(struct {
		Version    int
		PrivateKey []byte
	}{1, make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	block := func(typ string, b []byte) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})) }
	cases := []struct {
		name, text string
		code       meter.Code
	}{
		{"garbage", "not a key", meter.CodeInvalidKey},
		{"public key", string(readFile(t, filepath.Join(keysDir, "p256.good.pem"))), meter.CodeInvalidKey},
		{"PKCS#8 garbage", block("PRIVATE KEY", []byte{1, 2, 3}), meter.CodeInvalidKey},
		{"SEC 1 garbage", block("EC PRIVATE KEY", []byte{1, 2, 3}), meter.CodeInvalidKey},
		{"P-224 PKCS#8", block("PRIVATE KEY", p224PKCS8), meter.CodeUnsupportedKey},
		{"P-224 SEC 1", block("EC PRIVATE KEY", p224SEC1), meter.CodeUnsupportedKey},
		{"Ed25519", block("PRIVATE KEY", edPKCS8), meter.CodeUnsupportedKey},
		{"SEC 1 without a curve", block("EC PRIVATE KEY", noCurve), meter.CodeInvalidKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, err := meter.ParsePrivateKeyPEM(tc.text)
			if k != nil {
				t.Error("got a key")
			}
			wantCode(t, err, tc.code)
		})
	}
}

// TestPrivateKeyPEMGolden pins the package's PKCS#8 encoding of the fixture
// keys. generate.sh writes the files with -update and checks that openssl
// reads them back to the same public keys; without -update the encoding must
// not drift from what openssl was shown to read.
func TestPrivateKeyPEMGolden(t *testing.T) {
	for _, tc := range testCurves {
		t.Run(tc.name, func(t *testing.T) {
			text, err := privateKey(t, tc.name).PEM()
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.name+".pkcs8-go.pem")
			if *update {
				if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if want := string(readFile(t, golden)); text != want {
				t.Errorf("PKCS#8 encoding changed; rerun the repository's testdata/generate.sh so openssl checks it\ngot\n%s\nwant\n%s", text, want)
			}
			back, err := meter.ParsePrivateKeyPEM(text)
			if err != nil {
				t.Fatal(err)
			}
			if !back.Public().Equal(publicKey(t, tc.name)) {
				t.Error("golden key does not belong to the fixture's public key")
			}
		})
	}
}
