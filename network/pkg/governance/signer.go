package governance

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/hyperledger/fabric-config/configtx"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"
)

// Signer is an identity that signs proposals: an MSP ID, the certificate
// its MSP issued and the matching private key.
type Signer struct {
	MSPID       string
	Certificate *x509.Certificate
	PrivateKey  *ecdsa.PrivateKey
}

// SignerFromMSPDir loads the signing identity of a Fabric MSP directory:
// signcerts/cert.pem and keystore/priv_sk (or, failing those names, the only
// file in each).
func SignerFromMSPDir(mspID, dir string) (Signer, error) {
	certFile, err := pick(filepath.Join(dir, "signcerts"), "cert.pem")
	if err != nil {
		return Signer{}, fmt.Errorf("MSP %s at %s: %w", mspID, dir, err)
	}
	keyFile, err := pick(filepath.Join(dir, "keystore"), "priv_sk")
	if err != nil {
		return Signer{}, fmt.Errorf("MSP %s at %s: %w", mspID, dir, err)
	}
	b, err := os.ReadFile(certFile)
	if err != nil {
		return Signer{}, err
	}
	cert, err := parseCertPEM(b)
	if err != nil {
		return Signer{}, fmt.Errorf("%s: %w", certFile, err)
	}
	b, err = os.ReadFile(keyFile)
	if err != nil {
		return Signer{}, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return Signer{}, fmt.Errorf("%s: not PEM", keyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		if k, err = x509.ParseECPrivateKey(block.Bytes); err != nil {
			return Signer{}, fmt.Errorf("%s: %w", keyFile, err)
		}
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return Signer{}, fmt.Errorf("%s: a %T, not an ECDSA key", keyFile, k)
	}
	s := Signer{MSPID: mspID, Certificate: cert, PrivateKey: key}
	return s, s.check()
}

// pick returns dir/name, or the only file in dir.
func pick(dir, name string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
		return filepath.Join(dir, name), nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() {
			files = append(files, e.Name())
		}
	}
	if len(files) != 1 {
		return "", fmt.Errorf("%s: want %s or a single file, found %v", dir, name, files)
	}
	return filepath.Join(dir, files[0]), nil
}

func (s Signer) check() error {
	if s.MSPID == "" || s.Certificate == nil || s.PrivateKey == nil {
		return errors.New("signer needs an MSP ID, a certificate and a private key")
	}
	if pub, ok := s.Certificate.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&s.PrivateKey.PublicKey) {
		return fmt.Errorf("the private key does not belong to certificate %s", s.Certificate.Subject)
	}
	return nil
}

func (s Signer) signingIdentity() *configtx.SigningIdentity {
	return &configtx.SigningIdentity{Certificate: s.Certificate, PrivateKey: s.PrivateKey, MSPID: s.MSPID}
}

// String names the signer for messages.
func (s Signer) String() string {
	if s.Certificate == nil {
		return s.MSPID
	}
	return fmt.Sprintf("%s %s", s.MSPID, s.Certificate.Subject)
}

// Sign adds id's signature over the update, made as Fabric makes it: low-S
// ECDSA over the signature header followed by the update. An identity signs
// once.
func (p *Proposal) Sign(id Signer) error {
	if err := id.check(); err != nil {
		return fmt.Errorf("sign proposal: %w", err)
	}
	if p.signedBy(id) {
		return fmt.Errorf("sign proposal: %w: %s", ErrAlreadySigned, id)
	}
	sig, err := id.signingIdentity().CreateConfigSignature(p.Update)
	if err != nil {
		return fmt.Errorf("sign proposal: %w", err)
	}
	p.Signatures = append(p.Signatures, sig)
	return nil
}

// signedBy reports whether id has made one of the signatures: same MSP ID,
// same certificate (compared as DER, whatever the PEM formatting), and a
// signature that verifies over this update, so that a bogus signature
// attributed to id cannot keep id from signing.
func (p *Proposal) signedBy(id Signer) bool {
	return slices.ContainsFunc(p.Signatures, func(sig *common.ConfigSignature) bool {
		mspID, cert, err := creator(sig)
		return err == nil && mspID == id.MSPID && bytes.Equal(cert.Raw, id.Certificate.Raw) &&
			verifySignature(cert, append(slices.Clip(sig.GetSignatureHeader()), p.Update...), sig.GetSignature()) == nil
	})
}

// creator decodes who made a signature.
func creator(sig *common.ConfigSignature) (string, *x509.Certificate, error) {
	var sh common.SignatureHeader
	if err := proto.Unmarshal(sig.GetSignatureHeader(), &sh); err != nil {
		return "", nil, fmt.Errorf("signature header: %w", err)
	}
	var si msp.SerializedIdentity
	if err := proto.Unmarshal(sh.GetCreator(), &si); err != nil {
		return "", nil, fmt.Errorf("signature creator: %w", err)
	}
	cert, err := parseCertPEM(si.GetIdBytes())
	if err != nil {
		return si.GetMspid(), nil, fmt.Errorf("creator certificate: %w", err)
	}
	return si.GetMspid(), cert, nil
}
