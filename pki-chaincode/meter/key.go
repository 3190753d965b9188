package meter

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// Curve names an elliptic curve a meter key may use.
type Curve string

// The accepted curves. P-256 is what a meter should use; P-384 and secp256k1
// are accepted for meters whose secure element offers only those.
const (
	P256      Curve = "P-256"
	P384      Curve = "P-384"
	Secp256k1 Curve = "secp256k1"
)

// Curves lists the accepted curves, the default first.
var Curves = []Curve{P256, P384, Secp256k1}

// MaxPublicKeyPEM bounds the PEM text of a public key; a P-384 key is about 215 bytes.
const MaxPublicKeyPEM = 4096

var (
	oidPublicKeyECDSA = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidSecp256k1      = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
)

// PublicKey is a meter's ECDSA public key: the meter's certificate.
type PublicKey struct {
	curve Curve
	spki  []byte // canonical SubjectPublicKeyInfo DER (uncompressed point)
	nist  *ecdsa.PublicKey
	k1    *secp256k1.PublicKey
}

// Curve returns the key's curve.
func (k *PublicKey) Curve() Curve { return k.curve }

// DER returns the canonical SubjectPublicKeyInfo DER encoding.
func (k *PublicKey) DER() []byte { return append([]byte(nil), k.spki...) }

// PEM returns the key as a "PUBLIC KEY" PEM block, the form kept on the ledger.
func (k *PublicKey) PEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: k.spki}))
}

// Fingerprint is the hex SHA-256 of the SubjectPublicKeyInfo DER, as X.509
// tooling computes it (openssl pkey -pubin -outform DER | sha256sum).
func (k *PublicKey) Fingerprint() string {
	sum := sha256.Sum256(k.spki)
	return hex.EncodeToString(sum[:])
}

// Equal reports whether both keys are the same point on the same curve.
func (k *PublicKey) Equal(o *PublicKey) bool {
	return o != nil && k.curve == o.curve && string(k.spki) == string(o.spki)
}

// ParsePublicKeyPEM parses one "PUBLIC KEY" PEM block holding an ECDSA
// SubjectPublicKeyInfo on an accepted curve. Anything else, trailing data
// included, is refused with CodeInvalidKey or CodeUnsupportedKey.
func ParsePublicKeyPEM(text string) (*PublicKey, error) {
	if len(text) > MaxPublicKeyPEM {
		return nil, Errorf(CodeTooLarge, "public key PEM is %d bytes, at most %d allowed", len(text), MaxPublicKeyPEM)
	}
	block, rest := pem.Decode([]byte(text))
	if block == nil {
		return nil, Errorf(CodeInvalidKey, "public key is not PEM: expected a -----BEGIN PUBLIC KEY----- block")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, Errorf(CodeInvalidKey, "PEM block is %q, expected \"PUBLIC KEY\" (SubjectPublicKeyInfo)", block.Type)
	}
	if len(block.Headers) > 0 {
		return nil, Errorf(CodeInvalidKey, "PEM block must not carry headers")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, Errorf(CodeInvalidKey, "unexpected data after the PEM block")
	}
	return ParsePublicKeyDER(block.Bytes)
}

// ParsePublicKeyDER parses an ECDSA SubjectPublicKeyInfo in DER.
func ParsePublicKeyDER(der []byte) (*PublicKey, error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	rest, err := asn1.Unmarshal(der, &spki)
	if err != nil {
		return nil, Errorf(CodeInvalidKey, "public key is not a DER SubjectPublicKeyInfo: %v", err)
	}
	if len(rest) > 0 {
		return nil, Errorf(CodeInvalidKey, "unexpected data after the SubjectPublicKeyInfo")
	}
	if !spki.Algorithm.Algorithm.Equal(oidPublicKeyECDSA) {
		return nil, Errorf(CodeUnsupportedKey, "key algorithm %v is not ECDSA; meters must use ECDSA on P-256, P-384 or secp256k1", spki.Algorithm.Algorithm)
	}
	var curveOID asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(spki.Algorithm.Parameters.FullBytes, &curveOID); err != nil || len(rest) > 0 {
		return nil, Errorf(CodeInvalidKey, "ECDSA key parameters are not a named curve")
	}
	if curveOID.Equal(oidSecp256k1) {
		point := spki.PublicKey.RightAlign()
		// Only the uncompressed form, as for the NIST curves: the fingerprint
		// is over the DER the meter maker holds, so it must not be re-encoded.
		if len(point) != 65 || point[0] != 4 {
			return nil, Errorf(CodeInvalidKey, "secp256k1 point must be uncompressed (65 bytes starting with 04)")
		}
		pub, err := secp256k1.ParsePubKey(point)
		if err != nil {
			return nil, Errorf(CodeInvalidKey, "secp256k1 point is invalid: %v", err)
		}
		return newSecp256k1Key(pub), nil
	}
	parsed, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		if errors.Is(err, x509.ErrUnsupportedAlgorithm) || isUnknownCurve(err) {
			return nil, Errorf(CodeUnsupportedKey, "curve %v is not accepted; use P-256 (or P-384, secp256k1)", curveOID)
		}
		return nil, Errorf(CodeInvalidKey, "public key is invalid: %v", err)
	}
	pub, ok := parsed.(*ecdsa.PublicKey)
	if !ok {
		return nil, Errorf(CodeUnsupportedKey, "key is %T, not ECDSA", parsed)
	}
	var curve Curve
	switch pub.Curve {
	case elliptic.P256():
		curve = P256
	case elliptic.P384():
		curve = P384
	default:
		return nil, Errorf(CodeUnsupportedKey, "curve %s is not accepted; use P-256 (or P-384, secp256k1)", pub.Curve.Params().Name)
	}
	canonical, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, Errorf(CodeInvalidKey, "public key cannot be encoded: %v", err)
	}
	return &PublicKey{curve: curve, spki: canonical, nist: pub}, nil
}

func isUnknownCurve(err error) bool {
	return err != nil && err.Error() == "x509: unsupported elliptic curve"
}

func newSecp256k1Key(pub *secp256k1.PublicKey) *PublicKey {
	params, _ := asn1.Marshal(oidSecp256k1)
	der, _ := asn1.Marshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}{
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidPublicKeyECDSA, Parameters: asn1.RawValue{FullBytes: params}},
		PublicKey: asn1.BitString{Bytes: pub.SerializeUncompressed(), BitLength: 65 * 8},
	})
	return &PublicKey{curve: Secp256k1, spki: der, k1: pub}
}

// Verify checks an ECDSA signature, DER-encoded as openssl dgst -sha256 -sign
// writes it, over SHA-256 of msg. Both low and high S values are accepted,
// since openssl produces either.
func (k *PublicKey) Verify(msg, sig []byte) error {
	if len(sig) == 0 {
		return Errorf(CodeBadSignature, "signature is empty")
	}
	if len(sig) > MaxSignatureBytes {
		return Errorf(CodeBadSignature, "signature is %d bytes, too long for ECDSA on %s", len(sig), k.curve)
	}
	digest := sha256.Sum256(msg)
	if k.k1 != nil {
		s, err := secpecdsa.ParseDERSignature(sig)
		if err != nil {
			return Errorf(CodeBadSignature, "signature is not DER-encoded ECDSA: %v", err)
		}
		if !s.Verify(digest[:], k.k1) {
			return Errorf(CodeBadSignature, "signature does not verify against the meter's %s key", k.curve)
		}
		return nil
	}
	if err := checkDERSignature(sig); err != nil {
		return err
	}
	if !ecdsa.VerifyASN1(k.nist, digest[:], sig) {
		return Errorf(CodeBadSignature, "signature does not verify against the meter's %s key", k.curve)
	}
	return nil
}

// checkSignatureForm refuses what can be no signature of any accepted
// curve: empty, longer than MaxSignatureBytes, or not DER.
func checkSignatureForm(sig []byte) error {
	if len(sig) == 0 {
		return Errorf(CodeBadSignature, "signature is empty")
	}
	if len(sig) > MaxSignatureBytes {
		return Errorf(CodeBadSignature, "signature is %d bytes, at most %d for ECDSA on the accepted curves", len(sig), MaxSignatureBytes)
	}
	return checkDERSignature(sig)
}

// checkDERSignature tells a truncated or non-DER signature apart from one that
// is well formed but wrong, so the refusal says which.
func checkDERSignature(sig []byte) error {
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(sig, &rs)
	if err != nil {
		return Errorf(CodeBadSignature, "signature is not DER-encoded ECDSA: %v", err)
	}
	if len(rest) > 0 {
		return Errorf(CodeBadSignature, "signature has %d bytes after its DER sequence", len(rest))
	}
	if rs.R.Sign() <= 0 || rs.S.Sign() <= 0 {
		return Errorf(CodeBadSignature, "signature values must be positive")
	}
	return nil
}

// PrivateKey is a meter's signing key. It lives on the meter (or in the
// simulator and tests); the ledger never sees it.
type PrivateKey struct {
	pub  *PublicKey
	nist *ecdsa.PrivateKey
	k1   *secp256k1.PrivateKey
}

// GenerateKey makes a new key pair on the given curve.
func GenerateKey(curve Curve) (*PrivateKey, error) {
	switch curve {
	case P256, P384:
		c := elliptic.P256()
		if curve == P384 {
			c = elliptic.P384()
		}
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate %s key: %w", curve, err)
		}
		return newNISTPrivateKey(k)
	case Secp256k1:
		k, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			return nil, fmt.Errorf("generate secp256k1 key: %w", err)
		}
		return &PrivateKey{pub: newSecp256k1Key(k.PubKey()), k1: k}, nil
	default:
		return nil, Errorf(CodeUnsupportedKey, "curve %q is not accepted; use one of P-256, P-384, secp256k1", curve)
	}
}

func newNISTPrivateKey(k *ecdsa.PrivateKey) (*PrivateKey, error) {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	pub, err := ParsePublicKeyDER(der)
	if err != nil {
		return nil, err
	}
	return &PrivateKey{pub: pub, nist: k}, nil
}

// Public returns the public half, the meter's certificate.
func (k *PrivateKey) Public() *PublicKey { return k.pub }

// Sign signs SHA-256 of msg and returns the DER signature, byte-compatible
// with openssl dgst -sha256 -sign.
func (k *PrivateKey) Sign(msg []byte) ([]byte, error) {
	digest := sha256.Sum256(msg)
	if k.k1 != nil {
		return secpecdsa.Sign(k.k1, digest[:]).Serialize(), nil
	}
	sig, err := ecdsa.SignASN1(rand.Reader, k.nist, digest[:])
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return sig, nil
}

// PEM encodes the private key as PKCS#8 ("PRIVATE KEY"), as openssl genpkey writes it.
func (k *PrivateKey) PEM() (string, error) {
	var der []byte
	if k.k1 != nil {
		var err error
		der, err = marshalSecp256k1PKCS8(k.k1)
		if err != nil {
			return "", err
		}
	} else {
		var err error
		der, err = x509.MarshalPKCS8PrivateKey(k.nist)
		if err != nil {
			return "", fmt.Errorf("encode private key: %w", err)
		}
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// ParsePrivateKeyPEM reads a PKCS#8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY")
// PEM block, as openssl writes them, on an accepted curve.
func ParsePrivateKeyPEM(text string) (*PrivateKey, error) {
	block, rest := pem.Decode([]byte(text))
	// openssl ecparam -genkey writes the curve's parameters first.
	for block != nil && block.Type == "EC PARAMETERS" {
		block, rest = pem.Decode(rest)
	}
	if block == nil {
		return nil, Errorf(CodeInvalidKey, "private key is not PEM")
	}
	var sec1 []byte
	var curveOID asn1.ObjectIdentifier // from PKCS#8, where SEC 1 may omit it
	switch block.Type {
	case "PRIVATE KEY":
		var p8 struct {
			Version    int
			Algorithm  pkix.AlgorithmIdentifier
			PrivateKey []byte
		}
		if _, err := asn1.Unmarshal(block.Bytes, &p8); err != nil {
			return nil, Errorf(CodeInvalidKey, "private key is not PKCS#8: %v", err)
		}
		_, _ = asn1.Unmarshal(p8.Algorithm.Parameters.FullBytes, &curveOID)
		if !curveOID.Equal(oidSecp256k1) {
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, Errorf(CodeInvalidKey, "private key: %v", err)
			}
			ek, ok := k.(*ecdsa.PrivateKey)
			if !ok {
				return nil, Errorf(CodeUnsupportedKey, "private key is %T, not ECDSA", k)
			}
			return nistPrivateKey(ek)
		}
		sec1 = p8.PrivateKey
	case "EC PRIVATE KEY":
		sec1 = block.Bytes
	default:
		return nil, Errorf(CodeInvalidKey, "PEM block is %q, expected \"PRIVATE KEY\" or \"EC PRIVATE KEY\"", block.Type)
	}
	var ec struct {
		Version    int
		PrivateKey []byte
		Curve      asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
		PublicKey  asn1.BitString        `asn1:"optional,explicit,tag:1"`
	}
	if _, err := asn1.Unmarshal(sec1, &ec); err != nil {
		return nil, Errorf(CodeInvalidKey, "private key is not SEC 1: %v", err)
	}
	if ec.Curve == nil {
		ec.Curve = curveOID
	}
	if ec.Curve == nil {
		return nil, Errorf(CodeInvalidKey, "SEC 1 private key names no curve")
	}
	if ec.Curve.Equal(oidSecp256k1) {
		if len(ec.PrivateKey) != 32 {
			return nil, Errorf(CodeInvalidKey, "secp256k1 private key must be 32 bytes")
		}
		k := secp256k1.PrivKeyFromBytes(ec.PrivateKey)
		return &PrivateKey{pub: newSecp256k1Key(k.PubKey()), k1: k}, nil
	}
	k, err := x509.ParseECPrivateKey(sec1)
	if err != nil {
		return nil, Errorf(CodeInvalidKey, "private key: %v", err)
	}
	return nistPrivateKey(k)
}

func nistPrivateKey(k *ecdsa.PrivateKey) (*PrivateKey, error) {
	if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
		return nil, Errorf(CodeUnsupportedKey, "curve %s is not accepted", k.Curve.Params().Name)
	}
	if _, err := k.ECDH(); err != nil {
		return nil, Errorf(CodeInvalidKey, "private key: %v", err)
	}
	return newNISTPrivateKey(k)
}

func marshalSecp256k1PKCS8(k *secp256k1.PrivateKey) ([]byte, error) {
	pub := k.PubKey().SerializeUncompressed()
	sec1, err := asn1.Marshal(struct {
		Version    int
		PrivateKey []byte
		PublicKey  asn1.BitString `asn1:"optional,explicit,tag:1"`
	}{1, k.Serialize(), asn1.BitString{Bytes: pub, BitLength: len(pub) * 8}})
	if err != nil {
		return nil, fmt.Errorf("encode secp256k1 key: %w", err)
	}
	params, _ := asn1.Marshal(oidSecp256k1)
	der, err := asn1.Marshal(struct {
		Version    int
		Algorithm  pkix.AlgorithmIdentifier
		PrivateKey []byte
	}{0, pkix.AlgorithmIdentifier{Algorithm: oidPublicKeyECDSA, Parameters: asn1.RawValue{FullBytes: params}}, sec1})
	if err != nil {
		return nil, fmt.Errorf("encode secp256k1 key: %w", err)
	}
	return der, nil
}
