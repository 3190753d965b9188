package msp_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/attrmgr"

	"github.com/inter-nmi/pki/network/pkg/msp"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: not PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEnrolIdentity(t *testing.T) {
	dir := t.TempDir()
	org, err := msp.Open(dir, "PTBMSP", "ptb.nmi.test", "DE")
	if err != nil {
		t.Fatal(err)
	}
	user := filepath.Join(dir, "users", "registrar")
	err = org.Enrol(user, msp.Identity{Name: "registrar@ptb.nmi.test", OU: msp.OUClient, Attributes: map[string]string{"pki.role": "registrar"}})
	if err != nil {
		t.Fatal(err)
	}
	ca := readCert(t, org.CACertFile())
	cert := readCert(t, filepath.Join(user, "msp", "signcerts", "cert.pem"))
	if err := cert.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("identity does not chain to the NMI's CA: %v", err)
	}
	if len(cert.Subject.OrganizationalUnit) != 1 || cert.Subject.OrganizationalUnit[0] != msp.OUClient {
		t.Errorf("node OU %v", cert.Subject.OrganizationalUnit)
	}
	attrs, err := attrmgr.New().GetAttributesFromCert(cert)
	if err != nil {
		t.Fatal(err)
	}
	if role, ok, _ := attrs.Value("pki.role"); !ok || role != "registrar" {
		t.Errorf("pki.role attribute %q (present %v)", role, ok)
	}
	for _, c := range []*x509.Certificate{ca, cert} {
		var sig struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(c.Signature, &sig); err != nil {
			t.Fatal(err)
		}
		if sig.S.Cmp(new(big.Int).Rsh(elliptic.P256().Params().N, 1)) > 0 {
			t.Errorf("%s is signed with a high S value, which Fabric's MSP rejects", c.Subject.CommonName)
		}
	}
	keyPEM, err := os.ReadFile(filepath.Join(user, "msp", "keystore", "priv_sk"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.(*ecdsa.PrivateKey).PublicKey.Equal(cert.PublicKey) {
		t.Error("keystore key does not match the certificate")
	}
	info, err := os.Stat(filepath.Join(user, "msp", "keystore", "priv_sk"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", info.Mode().Perm())
	}
	for _, f := range []string{"cacerts/ca.pem", "tlscacerts/tlsca.pem", "config.yaml"} {
		if _, err := os.Stat(filepath.Join(org.PublicMSPDir(), f)); err != nil {
			t.Errorf("public MSP lacks %s", f)
		}
	}
	if _, err := os.Stat(filepath.Join(org.PublicMSPDir(), "keystore")); err == nil {
		t.Error("the public MSP holds a keystore")
	}
}

func TestTLSPairAndReuse(t *testing.T) {
	dir := t.TempDir()
	org, err := msp.Open(dir, "CMIMSP", "cmi.nmi.test", "CZ")
	if err != nil {
		t.Fatal(err)
	}
	tlsDir := filepath.Join(dir, "peers", "peer0", "tls")
	if err := org.TLSPair(tlsDir, "peer0.cmi.nmi.test", []string{"peer0.cmi.nmi.test", "10.0.0.2"}); err != nil {
		t.Fatal(err)
	}
	cert := readCert(t, filepath.Join(tlsDir, "cert.pem"))
	if err := cert.VerifyHostname("10.0.0.2"); err != nil {
		t.Error(err)
	}
	if err := cert.VerifyHostname("peer0.cmi.nmi.test"); err != nil {
		t.Error(err)
	}
	if !cert.IPAddresses[0].Equal(net.ParseIP("10.0.0.2")) {
		t.Errorf("IP SANs %v", cert.IPAddresses)
	}
	pool := x509.NewCertPool()
	pool.AddCert(readCert(t, filepath.Join(tlsDir, "ca.pem")))
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("TLS certificate does not verify against the TLS CA: %v", err)
	}

	again, err := msp.Open(dir, "CMIMSP", "cmi.nmi.test", "CZ")
	if err != nil {
		t.Fatal(err)
	}
	if err := again.TLSPair(tlsDir, "peer0.cmi.nmi.test", nil); err != nil {
		t.Fatal(err)
	}
	if !readCert(t, filepath.Join(tlsDir, "cert.pem")).Equal(cert) {
		t.Error("reopening the organisation replaced an existing certificate")
	}
	if !readCert(t, again.TLSCACertFile()).Equal(readCert(t, org.TLSCACertFile())) {
		t.Error("reopening the organisation made a new TLS CA")
	}
}

// An endpoint with mutual TLS trusts the TLS client CA: the admin's and
// the peer's client certificates verify as clients; the servers'
// certificates (registry, explorer, chaincode service) and the nodes'
// (peer, orderer) do not, and no client certificate works as a server.
func TestClientCertificatesApart(t *testing.T) {
	dir := t.TempDir()
	org, err := msp.Open(dir, "PTBMSP", "ptb.nmi.test", "DE")
	if err != nil {
		t.Fatal(err)
	}
	if err := org.Enrol(filepath.Join(dir, "users", "Admin"), msp.Identity{Name: "Admin@ptb.nmi.test", OU: msp.OUAdmin}); err != nil {
		t.Fatal(err)
	}
	if err := org.Enrol(filepath.Join(dir, "users", "registrar"), msp.Identity{Name: "registrar@ptb.nmi.test", OU: msp.OUClient}); err != nil {
		t.Fatal(err)
	}
	if err := org.Enrol(filepath.Join(dir, "peers", "peer0"), msp.Identity{Name: "peer0.ptb.nmi.test", OU: msp.OUPeer, Hosts: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	server := filepath.Join(dir, "registry", "tls")
	if err := org.ServerTLSPair(server, "registry.ptb.nmi.test", []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	client := filepath.Join(dir, "chaincode", "client")
	if err := org.ChaincodeClientTLSPair(client, "peer0.ptb.nmi.test"); err != nil {
		t.Fatal(err)
	}
	roots := func(file string) *x509.CertPool {
		p := x509.NewCertPool()
		p.AddCert(readCert(t, file))
		return p
	}
	admin, peer := filepath.Join(dir, "users", "Admin", "tls", "cert.pem"), filepath.Join(client, "cert.pem")
	for _, endpoint := range []struct {
		name, root, accepts string
	}{
		{"orderer admin and operations", org.TLSClientCACertFile(), admin},
		{"chaincode service", org.ChaincodeClientCACertFile(), peer},
	} {
		opts := x509.VerifyOptions{Roots: roots(endpoint.root), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		for _, file := range []string{admin, peer, filepath.Join(server, "cert.pem"), filepath.Join(dir, "peers", "peer0", "tls", "cert.pem")} {
			_, err := readCert(t, file).Verify(opts)
			if (err == nil) != (file == endpoint.accepts) {
				t.Errorf("%s as a client of the %s: %v, want accepted only for %s", file, endpoint.name, err, endpoint.accepts)
			}
		}
	}
	// Even against the TLS CA, a server's certificate is no client's.
	if _, err := readCert(t, filepath.Join(server, "cert.pem")).Verify(x509.VerifyOptions{Roots: roots(org.TLSCACertFile()),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("the registry's server certificate authenticates a client")
	}
	if _, err := readCert(t, filepath.Join(client, "cert.pem")).Verify(x509.VerifyOptions{Roots: roots(org.TLSCACertFile()),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("a client certificate authenticates a server")
	}
	if _, err := os.Stat(filepath.Join(dir, "users", "registrar", "tls")); err == nil {
		t.Error("a user other than the admin has a TLS client certificate")
	}
	// The client CAs stay the NMI's own: the consortium never sees them.
	entries, _ := os.ReadDir(filepath.Join(org.PublicMSPDir(), "tlscacerts"))
	for _, e := range entries {
		c := readCert(t, filepath.Join(org.PublicMSPDir(), "tlscacerts", e.Name()))
		if c.Equal(readCert(t, org.TLSClientCACertFile())) || c.Equal(readCert(t, org.ChaincodeClientCACertFile())) {
			t.Error("a TLS client CA is in the public MSP")
		}
	}
}
