package governance

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"
)

// SignatureCheck is what Status found of one signature.
type SignatureCheck struct {
	MSPID   string
	Subject string
	// Admin: an admin of its MSP (the MSP's admin OU, or one of its listed
	// admin certificates).
	Admin bool
	// Problem says why the signature counts for nothing; empty if valid.
	Problem string
}

// identity is a signer whose signature verified, as the MSP sees it.
type identity struct {
	mspID string
	cert  *x509.Certificate
	admin bool
	fc    *msp.FabricMSPConfig
}

// channelMSPs are the channel's MSPs by MSP ID, from its Application and
// Orderer organisations.
func channelMSPs(cfg *common.Config) map[string]*msp.FabricMSPConfig {
	out := map[string]*msp.FabricMSPConfig{}
	for _, top := range []string{applicationGroup, ordererGroup} {
		for _, org := range cfg.GetChannelGroup().GetGroups()[top].GetGroups() {
			if _, fc, err := fabricMSP(org); err == nil {
				out[fc.GetName()] = fc
			}
		}
	}
	return out
}

// checkSignatures verifies each signature over the update as the orderer's
// MSPs would, and returns the distinct valid identities in signing order.
func checkSignatures(update []byte, sigs []*common.ConfigSignature, msps map[string]*msp.FabricMSPConfig) ([]SignatureCheck, []*identity) {
	var (
		checks []SignatureCheck
		ids    []*identity
	)
	for _, sig := range sigs {
		check, id := checkSignature(update, sig, msps)
		if id != nil && slices.ContainsFunc(ids, func(o *identity) bool { return o.mspID == id.mspID && bytes.Equal(o.cert.Raw, id.cert.Raw) }) {
			check.Problem = "a second signature by the same identity"
			id = nil
		}
		checks = append(checks, check)
		if id != nil {
			ids = append(ids, id)
		}
	}
	return checks, ids
}

func checkSignature(update []byte, sig *common.ConfigSignature, msps map[string]*msp.FabricMSPConfig) (SignatureCheck, *identity) {
	mspID, cert, err := creator(sig)
	check := SignatureCheck{MSPID: mspID}
	if err != nil {
		check.Problem = err.Error()
		return check, nil
	}
	check.Subject = cert.Subject.String()
	fc := msps[mspID]
	if fc == nil {
		check.Problem = fmt.Sprintf("MSP %s is not a member of the channel", mspID)
		return check, nil
	}
	// Like Fabric's MSP, verify the chain as of the certificate's start, so
	// that expiry alone does not invalidate a signature.
	issuer, err := issuerOf(cert, fc.GetRootCerts(), fc.GetIntermediateCerts(), cert.NotBefore.Add(time.Second))
	if err != nil {
		check.Problem = fmt.Sprintf("certificate not issued by MSP %s's CA: %v", mspID, err)
		return check, nil
	}
	if revoked(cert, issuer, fc.GetRevocationList()) {
		check.Problem = fmt.Sprintf("certificate revoked by MSP %s", mspID)
		return check, nil
	}
	msg := append(slices.Clip(sig.GetSignatureHeader()), update...)
	if err := verifySignature(cert, msg, sig.GetSignature()); err != nil {
		check.Problem = fmt.Sprintf("signature does not verify (forged, or over another update): %v", err)
		return check, nil
	}
	id := &identity{mspID: mspID, cert: cert, fc: fc}
	id.admin = id.isAdmin()
	check.Admin = id.admin
	return check, id
}

// issuerOf verifies cert's chain and returns its direct issuer.
func issuerOf(cert *x509.Certificate, roots, intermediates [][]byte, at time.Time) (*x509.Certificate, error) {
	rp, err := certPool(roots)
	if err != nil {
		return nil, err
	}
	ip, err := certPool(intermediates)
	if err != nil {
		return nil, err
	}
	chains, err := cert.Verify(x509.VerifyOptions{
		Roots: rp, Intermediates: ip, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, err
	}
	if len(chains[0]) < 2 {
		return nil, errors.New("a CA certificate does not sign")
	}
	return chains[0][1], nil
}

// revoked reports whether one of the MSP's revocation lists, signed by the
// certificate's issuer, lists it.
func revoked(cert, issuer *x509.Certificate, crls [][]byte) bool {
	for _, raw := range crls {
		der := raw
		if block, _ := pem.Decode(raw); block != nil {
			der = block.Bytes
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil || !bytes.Equal(crl.RawIssuer, cert.RawIssuer) || crl.CheckSignatureFrom(issuer) != nil {
			continue
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
				return true
			}
		}
	}
	return false
}

// verifySignature checks a signature as Fabric's BCCSP does: ECDSA over
// SHA-256 with a low S (Fabric refuses the malleable high-S form), or
// Ed25519.
func verifySignature(cert *x509.Certificate, msg, sig []byte) error {
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		var rs struct{ R, S *big.Int }
		if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) > 0 {
			return errors.New("not an ASN.1 ECDSA signature")
		}
		if rs.R.Sign() <= 0 || rs.S.Sign() <= 0 {
			return errors.New("r or s not positive")
		}
		if rs.S.Cmp(new(big.Int).Rsh(pub.Curve.Params().N, 1)) > 0 {
			return errors.New("high-S signature")
		}
		digest := sha256.Sum256(msg)
		if !ecdsa.Verify(pub, digest[:], rs.R, rs.S) {
			return errors.New("ECDSA verification failed")
		}
		return nil
	case ed25519.PublicKey:
		if !ed25519.Verify(pub, msg, sig) {
			return errors.New("Ed25519 verification failed")
		}
		return nil
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
}

// isAdmin applies Fabric's ADMIN role: a listed admin certificate, or the
// admin OU when NodeOUs are enabled.
func (id *identity) isAdmin() bool {
	for _, a := range id.fc.GetAdmins() {
		if c, err := parseCertPEM(a); err == nil && bytes.Equal(c.Raw, id.cert.Raw) {
			return true
		}
	}
	ous := id.fc.GetFabricNodeOus()
	return ous.GetEnable() && id.hasOU(ous.GetAdminOuIdentifier().GetOrganizationalUnitIdentifier())
}

func (id *identity) hasOU(ou string) bool {
	return ou != "" && slices.Contains(id.cert.Subject.OrganizationalUnit, ou)
}

// satisfies applies an MSP principal to the identity.
func (id *identity) satisfies(pr *msp.MSPPrincipal) bool {
	switch pr.GetPrincipalClassification() {
	case msp.MSPPrincipal_ROLE:
		var r msp.MSPRole
		if proto.Unmarshal(pr.GetPrincipal(), &r) != nil || r.GetMspIdentifier() != id.mspID {
			return false
		}
		ous := id.fc.GetFabricNodeOus()
		switch r.GetRole() {
		case msp.MSPRole_MEMBER:
			return true
		case msp.MSPRole_ADMIN:
			return id.admin
		case msp.MSPRole_CLIENT:
			return ous.GetEnable() && id.hasOU(ous.GetClientOuIdentifier().GetOrganizationalUnitIdentifier())
		case msp.MSPRole_PEER:
			return ous.GetEnable() && id.hasOU(ous.GetPeerOuIdentifier().GetOrganizationalUnitIdentifier())
		case msp.MSPRole_ORDERER:
			return ous.GetEnable() && id.hasOU(ous.GetOrdererOuIdentifier().GetOrganizationalUnitIdentifier())
		}
		return false
	case msp.MSPPrincipal_IDENTITY:
		var si msp.SerializedIdentity
		if proto.Unmarshal(pr.GetPrincipal(), &si) != nil || si.GetMspid() != id.mspID {
			return false
		}
		c, err := parseCertPEM(si.GetIdBytes())
		return err == nil && bytes.Equal(c.Raw, id.cert.Raw)
	case msp.MSPPrincipal_ORGANIZATION_UNIT:
		var ou msp.OrganizationUnit
		if proto.Unmarshal(pr.GetPrincipal(), &ou) != nil || ou.GetMspIdentifier() != id.mspID {
			return false
		}
		return id.hasOU(ou.GetOrganizationalUnitIdentifier())
	}
	return false
}
