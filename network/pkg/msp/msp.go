// Package msp generates one NMI's Fabric crypto material on the NMI's own
// side: its certificate authorities, its public MSP definition (what the
// other NMIs receive), and the identities of its nodes and users. No NMI ever
// holds another's private keys.
//
// Layout of an organisation directory:
//
//	ca/            signing CA (cert.pem, key.pem; the key never leaves)
//	tlsca/         TLS CA: the servers' certificates (peer, orderer, chaincode
//	               service, registry, explorer); exported as tlscacerts
//	tlsclientca/   TLS client CA: the admin's client certificate, which the
//	               orderer's channel participation API and the operations
//	               endpoints' /metrics accept; never exported
//	chaincodeca/   the CA of the one client the chaincode service accepts:
//	               the NMI's peer; never exported
//	msp/           the public MSP definition: cacerts, tlscacerts, config.yaml
//	peers/<name>/  msp/ and tls/ of a peer
//	orderers/<name>/
//	users/<name>/  msp/ of a user; tls/ (a client certificate from the TLS
//	               client CA) for the admin only
//	chaincode/     TLS server pair of the chaincode service and the client
//	               pair the peer uses to reach it
//
// Why two TLS CAs: an endpoint with mutual TLS trusts every certificate its
// client CA issued. Were that the TLS CA, the registry's and the explorer's
// server certificates (whose keys sit on those hosts) would open the
// orderer's channel participation API and the chaincode service. Server
// certificates carry server authentication only, and each mutual-TLS
// endpoint trusts a CA that issues its own clients' certificates and
// nothing else.
package msp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Node OUs, as Fabric classifies identities when NodeOUs are enabled.
const (
	OUClient  = "client"
	OUPeer    = "peer"
	OUAdmin   = "admin"
	OUOrderer = "orderer"
)

// AttributeOID is the certificate extension in which Fabric CA places
// attributes; chaincode reads it through the client identity library.
var AttributeOID = asn1.ObjectIdentifier{1, 2, 3, 4, 5, 6, 7, 8, 1}

const validity = 10 * 365 * 24 * time.Hour

// Org is an NMI's organisation with its three CAs loaded.
type Org struct {
	Dir       string
	MSPID     string
	Domain    string
	Country   string
	ca        authority
	tlsca     authority
	tlsclient authority
	ccclient  authority
}

type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// Open loads the organisation in dir, creating its CAs and public MSP on first
// use. Calling it again reuses what exists.
func Open(dir, mspID, domain, country string) (*Org, error) {
	o := &Org{Dir: dir, MSPID: mspID, Domain: domain, Country: country}
	var err error
	if o.ca, err = o.loadOrCreateCA("ca", "ca."+domain); err != nil {
		return nil, err
	}
	if o.tlsca, err = o.loadOrCreateCA("tlsca", "tlsca."+domain); err != nil {
		return nil, err
	}
	if exists(filepath.Join(dir, "tlsca", "cert.pem")) && !exists(filepath.Join(dir, "tlsclientca", "cert.pem")) && exists(filepath.Join(dir, "users")) {
		return nil, fmt.Errorf("%s was made before the TLS client CA existed: its client certificates come from the TLS CA, which the mutual-TLS endpoints no longer trust; make a new run directory (make down CLEAN=1, or remove it)", dir)
	}
	if o.tlsclient, err = o.loadOrCreateCA("tlsclientca", "tlsclientca."+domain); err != nil {
		return nil, err
	}
	if o.ccclient, err = o.loadOrCreateCA("chaincodeca", "chaincodeca."+domain); err != nil {
		return nil, err
	}
	if err := o.writeMSP(filepath.Join(dir, "msp"), nil, nil); err != nil {
		return nil, err
	}
	return o, nil
}

// PublicMSPDir is the org's MSP definition: what it exports to the consortium.
func (o *Org) PublicMSPDir() string { return filepath.Join(o.Dir, "msp") }

// TLSCACertFile is the org's TLS root, which clients of its nodes trust.
func (o *Org) TLSCACertFile() string { return filepath.Join(o.Dir, "tlsca", "cert.pem") }

// TLSClientCACertFile is the root of the admin's client certificate, which
// the orderer's channel participation API and the operations endpoints
// accept.
func (o *Org) TLSClientCACertFile() string { return filepath.Join(o.Dir, "tlsclientca", "cert.pem") }

// ChaincodeClientCACertFile is the root of the peer's client certificate
// towards the chaincode service, the only client that service accepts.
func (o *Org) ChaincodeClientCACertFile() string {
	return filepath.Join(o.Dir, "chaincodeca", "cert.pem")
}

// CACertFile is the org's identity root.
func (o *Org) CACertFile() string { return filepath.Join(o.Dir, "ca", "cert.pem") }

// NodeDir is the directory of a peer ("peers") or orderer ("orderers").
func (o *Org) NodeDir(kind, name string) string { return filepath.Join(o.Dir, kind, name) }

// UserDir is the directory of a user identity.
func (o *Org) UserDir(name string) string { return filepath.Join(o.Dir, "users", name) }

// ChaincodeDir holds the chaincode server's TLS material.
func (o *Org) ChaincodeDir() string { return filepath.Join(o.Dir, "chaincode") }

func (o *Org) loadOrCreateCA(sub, cn string) (authority, error) {
	certFile, keyFile := filepath.Join(o.Dir, sub, "cert.pem"), filepath.Join(o.Dir, sub, "key.pem")
	if exists(certFile) && exists(keyFile) {
		return loadAuthority(certFile, keyFile)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return authority{}, err
	}
	tmpl := o.template(cn, nil)
	tmpl.IsCA = true
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}
	if sub == "tlsclientca" || sub == "chaincodeca" {
		// Its certificates can authenticate clients and nothing else.
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	tmpl.SubjectKeyId = ski(&key.PublicKey)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, lowS{key})
	if err != nil {
		return authority{}, fmt.Errorf("create %s: %w", cn, err)
	}
	cert, _ := x509.ParseCertificate(der)
	if err := writeCert(certFile, der); err != nil {
		return authority{}, err
	}
	if err := writeKey(keyFile, key); err != nil {
		return authority{}, err
	}
	return authority{cert: cert, key: key}, nil
}

func (o *Org) template(cn string, ous []string) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	now := time.Now().Add(-5 * time.Minute)
	return &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Country: []string{o.Country}, Organization: []string{o.Domain},
			OrganizationalUnit: ous, CommonName: cn,
		},
		NotBefore:             now,
		NotAfter:              now.Add(validity),
		BasicConstraintsValid: true,
	}
}

// issue signs a leaf certificate for a new key with the given authority.
func (o *Org) issue(a authority, tmpl *x509.Certificate) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl.SubjectKeyId = ski(&key.PublicKey)
	tmpl.AuthorityKeyId = a.cert.SubjectKeyId
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, lowS{a.key})
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s: %w", tmpl.Subject.CommonName, err)
	}
	return key, der, nil
}

// Identity describes a node or user to enrol.
type Identity struct {
	Name string
	// OU is the Fabric node OU: client, peer, admin or orderer.
	OU string
	// Hosts are the DNS names and IP addresses its TLS certificate covers
	// (servers only).
	Hosts []string
	// Attributes go into the Fabric CA attribute extension (for example
	// pki.role=registrar), read by chaincode.
	Attributes map[string]string
}

// Enrol writes dir/msp (signing identity) for id, and dir/tls: for a
// node, its TLS pair from the TLS CA (server and, for gossip and the BFT
// cluster, client authentication); for the admin, a client certificate
// from the TLS client CA; other users get none (no endpoint asks them for
// one). Nothing that exists is made again.
func (o *Org) Enrol(dir string, id Identity) error {
	if exists(filepath.Join(dir, "msp", "signcerts", "cert.pem")) {
		return nil
	}
	tmpl := o.template(id.Name, []string{id.OU})
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if len(id.Attributes) > 0 {
		value, err := json.Marshal(map[string]map[string]string{"attrs": id.Attributes})
		if err != nil {
			return err
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: AttributeOID, Value: value}}
	}
	key, der, err := o.issue(o.ca, tmpl)
	if err != nil {
		return err
	}
	if err := o.writeMSP(filepath.Join(dir, "msp"), der, key); err != nil {
		return err
	}
	switch id.OU {
	case OUPeer, OUOrderer:
		return o.TLSPair(filepath.Join(dir, "tls"), id.Name, id.Hosts)
	case OUAdmin:
		return o.ClientTLSPair(filepath.Join(dir, "tls"), id.Name)
	}
	return nil
}

// TLSPair writes cert.pem, key.pem and ca.pem (the org's TLS root) into
// dir: a node's certificate from the TLS CA, valid for both server and
// client authentication (peers gossip and orderers cluster with it).
func (o *Org) TLSPair(dir, cn string, hosts []string) error {
	return o.pair(dir, cn, hosts, o.tlsca, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
}

// ServerTLSPair writes a server's pair from the TLS CA, for server
// authentication only: no mutual-TLS endpoint accepts it from a client.
func (o *Org) ServerTLSPair(dir, cn string, hosts []string) error {
	return o.pair(dir, cn, hosts, o.tlsca, x509.ExtKeyUsageServerAuth)
}

// ClientTLSPair writes a client's pair from the TLS client CA, for client
// authentication only: the admin's, for the orderer's channel
// participation API and the operations endpoints; ca.pem is the TLS root,
// to check the servers with.
func (o *Org) ClientTLSPair(dir, cn string) error {
	return o.pair(dir, cn, nil, o.tlsclient, x509.ExtKeyUsageClientAuth)
}

// ChaincodeClientTLSPair writes the peer's client pair towards the
// chaincode service, from the chaincode client CA.
func (o *Org) ChaincodeClientTLSPair(dir, cn string) error {
	return o.pair(dir, cn, nil, o.ccclient, x509.ExtKeyUsageClientAuth)
}

func (o *Org) pair(dir, cn string, hosts []string, a authority, usage ...x509.ExtKeyUsage) error {
	if exists(filepath.Join(dir, "cert.pem")) {
		return nil
	}
	tmpl := o.template(cn, nil)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	tmpl.ExtKeyUsage = usage
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	key, der, err := o.issue(a, tmpl)
	if err != nil {
		return err
	}
	if err := writeCert(filepath.Join(dir, "cert.pem"), der); err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, "key.pem"), key); err != nil {
		return err
	}
	return writeCert(filepath.Join(dir, "ca.pem"), o.tlsca.cert.Raw)
}

// writeMSP lays out a Fabric MSP directory; with a nil signing cert it is the
// org's public MSP definition.
func (o *Org) writeMSP(dir string, signCert []byte, key *ecdsa.PrivateKey) error {
	if err := writeCert(filepath.Join(dir, "cacerts", "ca.pem"), o.ca.cert.Raw); err != nil {
		return err
	}
	if err := writeCert(filepath.Join(dir, "tlscacerts", "tlsca.pem"), o.tlsca.cert.Raw); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(nodeOUConfig), 0o644); err != nil {
		return err
	}
	if signCert == nil {
		return nil
	}
	if err := writeCert(filepath.Join(dir, "signcerts", "cert.pem"), signCert); err != nil {
		return err
	}
	return writeKey(filepath.Join(dir, "keystore", "priv_sk"), key)
}

const nodeOUConfig = `NodeOUs:
  Enable: true
  ClientOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: peer
  AdminOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: admin
  OrdererOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: orderer
`

// lowS signs with canonical low-S ECDSA signatures, which Fabric requires of
// the certificates it validates.
type lowS struct{ *ecdsa.PrivateKey }

func (k lowS) Sign(r io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	sig, err := ecdsa.SignASN1(r, k.PrivateKey, digest)
	if err != nil {
		return nil, err
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &rs); err != nil {
		return nil, err
	}
	n := k.Curve.Params().N
	if rs.S.Cmp(new(big.Int).Rsh(n, 1)) > 0 {
		rs.S.Sub(n, rs.S)
	}
	return asn1.Marshal(rs)
}

func ski(pub *ecdsa.PublicKey) []byte {
	raw, _ := pub.Bytes()
	sum := sha256.Sum256(raw)
	return sum[:]
}

func loadAuthority(certFile, keyFile string) (authority, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return authority{}, err
	}
	block, _ := pem.Decode(cb)
	if block == nil {
		return authority{}, fmt.Errorf("%s: not PEM", certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return authority{}, fmt.Errorf("%s: %w", certFile, err)
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return authority{}, err
	}
	block, _ = pem.Decode(kb)
	if block == nil {
		return authority{}, fmt.Errorf("%s: not PEM", keyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return authority{}, fmt.Errorf("%s: %w", keyFile, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return authority{}, fmt.Errorf("%s: not an ECDSA key", keyFile)
	}
	return authority{cert: cert, key: key}, nil
}

func writeCert(path string, der []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}
