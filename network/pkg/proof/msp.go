package proof

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/network/pkg/channel"
)

// members are the NMIs' MSPs as a configuration has them: the roots of
// trust of the identities that submit and endorse transactions.
type members map[string]*member

// member is one NMI's MSP, read for verifying its identities.
type member struct {
	mspID         string
	roots         *x509.CertPool
	intermediates *x509.CertPool
	crls          []*x509.RevocationList
	nodeOUs       *channel.NodeOUs
	// problem says why the MSP cannot verify identities, if it cannot.
	problem error
}

func membersOf(cfg *channel.Config) members {
	out := members{}
	for _, m := range cfg.Members {
		if m.MSPID != "" {
			out[m.MSPID] = readMember(m)
		}
	}
	return out
}

// readMember reads an MSP's certificates. An MSP that cannot verify X.509
// identities keeps the reason, which is reported only if one of its
// identities must be verified.
func readMember(m channel.Member) *member {
	out := &member{mspID: m.MSPID, roots: x509.NewCertPool(), intermediates: x509.NewCertPool(), nodeOUs: m.NodeOUs}
	if m.MSPType != channel.MSPTypeX509 {
		out.problem = fmt.Errorf("the MSP of %s is not an X.509 MSP (type %d)", m.MSPID, m.MSPType)
		return out
	}
	var cas []*x509.Certificate
	for _, set := range []struct {
		name string
		pems []string
		pool *x509.CertPool
	}{{"root CA", m.RootCerts, out.roots}, {"intermediate CA", m.IntermediateCerts, out.intermediates}} {
		for i, p := range set.pems {
			cert, err := parseCertPEM(p)
			if err != nil {
				out.problem = fmt.Errorf("%s certificate %d of %s: %w", set.name, i, m.MSPID, err)
				return out
			}
			set.pool.AddCert(cert)
			cas = append(cas, cert)
		}
	}
	if len(m.RootCerts) == 0 {
		out.problem = fmt.Errorf("the MSP of %s has no root CA", m.MSPID)
		return out
	}
	for i, p := range m.RevocationLists {
		crl, err := parseCRL(p, cas)
		if err != nil {
			out.problem = fmt.Errorf("revocation list %d of %s: %w", i, m.MSPID, err)
			return out
		}
		out.crls = append(out.crls, crl)
	}
	return out
}

func parseCertPEM(p string) (*x509.Certificate, error) {
	block, rest := pem.Decode([]byte(p))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("data after the PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// parseCRL reads a PEM CRL and checks that one of the MSP's CAs issued it.
func parseCRL(p string, cas []*x509.Certificate) (*x509.RevocationList, error) {
	block, _ := pem.Decode([]byte(p))
	if block == nil {
		return nil, errors.New("not PEM")
	}
	crl, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		return nil, err
	}
	for _, ca := range cas {
		if crl.CheckSignatureFrom(ca) == nil {
			return crl, nil
		}
	}
	return nil, fmt.Errorf("issued by %s, which is none of the MSP's CAs", crl.Issuer)
}

// Node kinds an identity's certificate may say it is (NodeOUs).
const (
	nodePeer = "peer"
	nodeAny  = ""
)

// identity is a serialized identity verified against its MSP.
type identity struct {
	mspID string
	cert  *x509.Certificate
}

// verifyIdentity reads a serialized identity (msp.SerializedIdentity: MSP
// ID and PEM certificate) and checks it as Fabric's MSP does at the time
// given: the MSP is a member of the configuration, the certificate chains
// to one of its root CAs (through its intermediate CAs) and is valid then,
// is no CA, is not revoked by the MSP's CRLs, and, if the MSP classifies
// its identities (NodeOUs), carries exactly one node OU, issued by the CA
// the MSP names for it, and that node is kind (nodePeer) if kind is set.
func (ms members) verifyIdentity(raw []byte, at time.Time, kind string) (*identity, error) {
	var si msp.SerializedIdentity
	if err := proto.Unmarshal(raw, &si); err != nil {
		return nil, fmt.Errorf("the identity does not decode: %w", err)
	}
	id := &identity{mspID: si.GetMspid()}
	m := ms[id.mspID]
	if m == nil {
		return id, fmt.Errorf("MSP %q is not a member of the channel in the configuration in force", id.mspID)
	}
	if m.problem != nil {
		return id, m.problem
	}
	cert, err := parseCertPEM(string(si.GetIdBytes()))
	if err != nil {
		return id, fmt.Errorf("the identity of %s is not a certificate: %w", id.mspID, err)
	}
	id.cert = cert
	if cert.IsCA {
		return id, fmt.Errorf("%s of %s is a CA certificate, which cannot sign as a node", cert.Subject, id.mspID)
	}
	chains, err := cert.Verify(x509.VerifyOptions{
		Roots: m.roots, Intermediates: m.intermediates, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return id, fmt.Errorf("%s does not chain to a root CA of %s at %s: %w", cert.Subject, id.mspID, at.UTC().Format(time.RFC3339), err)
	}
	if err := m.checkRevoked(chains[0]); err != nil {
		return id, err
	}
	if m.nodeOUs == nil || !m.nodeOUs.Enabled {
		if kind != nodeAny {
			return id, fmt.Errorf("the MSP of %s does not classify its identities (NodeOUs), so %s cannot be told to be a %s", id.mspID, cert.Subject, kind)
		}
		return id, nil
	}
	node, err := m.nodeOf(cert, chains)
	if err != nil {
		return id, err
	}
	if kind != nodeAny && node != kind {
		return id, fmt.Errorf("%s of %s is a %s, not a %s", cert.Subject, id.mspID, node, kind)
	}
	return id, nil
}

// checkRevoked refuses a chain of which a certificate is on a CRL of its
// issuer, as the peers did with the configuration in force: whenever the
// revocation took effect.
func (m *member) checkRevoked(chain []*x509.Certificate) error {
	for i := 0; i+1 < len(chain); i++ {
		cert, issuer := chain[i], chain[i+1]
		for _, crl := range m.crls {
			if crl.CheckSignatureFrom(issuer) != nil {
				continue
			}
			for _, r := range crl.RevokedCertificateEntries {
				if r.SerialNumber != nil && r.SerialNumber.Cmp(cert.SerialNumber) == 0 {
					return fmt.Errorf("%s of %s is revoked by %s since %s", cert.Subject, m.mspID, issuer.Subject, r.RevocationTime.UTC().Format(time.RFC3339))
				}
			}
		}
	}
	return nil
}

// nodeOf returns which node the certificate's OUs say it is: exactly one of
// the MSP's node OUs, and, where the MSP names a CA for that OU, issued by
// it.
func (m *member) nodeOf(cert *x509.Certificate, chains [][]*x509.Certificate) (string, error) {
	ous := m.nodeOUs
	var found []string
	var which channel.NodeOU
	for _, k := range []struct {
		name string
		ou   channel.NodeOU
	}{{"client", ous.Client}, {"peer", ous.Peer}, {"admin", ous.Admin}, {"orderer", ous.Orderer}} {
		if k.ou.OU != "" && slices.Contains(cert.Subject.OrganizationalUnit, k.ou.OU) {
			found = append(found, k.name)
			which = k.ou
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%s of %s carries none of its MSP's node OUs", cert.Subject, m.mspID)
	case 1:
	default:
		return "", fmt.Errorf("%s of %s carries the node OUs %s; an identity is one kind of node", cert.Subject, m.mspID, strings.Join(found, " and "))
	}
	if which.Certificate == "" {
		return found[0], nil
	}
	ca, err := parseCertPEM(which.Certificate)
	if err != nil {
		return "", fmt.Errorf("the %s OU certificate of %s: %w", found[0], m.mspID, err)
	}
	for _, chain := range chains {
		if len(chain) > 1 && chain[1].Equal(ca) {
			return found[0], nil
		}
	}
	return "", fmt.Errorf("%s of %s was not issued by %s, the CA its MSP names for the %s OU", cert.Subject, m.mspID, ca.Subject, found[0])
}
