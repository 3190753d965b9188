package governance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"

	"github.com/hyperledger/fabric-config/protolator"
	"github.com/hyperledger/fabric-config/protolator/protoext/ordererext"
	"github.com/hyperledger/fabric-config/protolator/protoext/peerext"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"
)

// orgPolicies are the policies every NMI's organisation defines.
var orgPolicies = []string{"Readers", "Writers", adminsPolicy, "Endorsement"}

// ReadOrgDefinition reads the organisation definition an NMI exports with
// `configtxgen -printOrg <Name>`: Fabric's JSON form of a ConfigGroup with
// the organisation's MSP, its policies, and either its anchor peers or, when
// it runs an orderer, its orderer endpoints. Errors for a definition that
// could not work wrap ErrMalformedDefinition.
func ReadOrgDefinition(path string) (*common.ConfigGroup, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read organisation definition: %w", err)
	}
	org, err := ParseOrgDefinition(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return org, nil
}

// ParseOrgDefinition is ReadOrgDefinition on the file's content.
func ParseOrgDefinition(data []byte) (*common.ConfigGroup, error) {
	// The opaque values decode by the kind of group: configtxgen prints an
	// orderer organisation (with Endpoints) or an application organisation.
	var probe struct {
		Values map[string]json.RawMessage `json:"values"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, malformed("not JSON: %v", err)
	}
	org := &common.ConfigGroup{}
	var msg proto.Message = &peerext.DynamicApplicationOrgGroup{ConfigGroup: org}
	if _, ok := probe.Values[endpointsKey]; ok {
		msg = &ordererext.DynamicOrdererOrgGroup{ConfigGroup: org}
	}
	if err := protolator.DeepUnmarshalJSON(bytes.NewReader(data), msg); err != nil {
		return nil, malformed("%v", err)
	}
	if err := ValidateOrgDefinition(org); err != nil {
		return nil, err
	}
	return org, nil
}

// ValidateOrgDefinition checks an organisation group: an X.509 MSP whose
// name is the MSP ID, parseable root and TLS root CA certificates, the
// Readers, Writers, Admins and Endorsement policies naming only that MSP,
// and well-formed anchor peers or endpoints.
func ValidateOrgDefinition(org *common.ConfigGroup) error {
	if org == nil {
		return malformed("no organisation definition")
	}
	if len(org.GetGroups()) > 0 {
		return malformed("an organisation has no sub-groups, this one has %d", len(org.GetGroups()))
	}
	if org.GetModPolicy() == "" {
		return malformed("the organisation has no mod_policy")
	}
	for _, key := range slices.Sorted(maps.Keys(org.GetValues())) {
		switch key {
		case mspKey, anchorPeersKey, endpointsKey:
		default:
			return malformed("unexpected value %q", key)
		}
		if org.GetValues()[key].GetModPolicy() == "" {
			return malformed("value %s has no mod_policy", key)
		}
	}
	if _, ok := org.GetValues()[mspKey]; !ok {
		return malformed("no MSP value")
	}
	_, fc, err := fabricMSP(org)
	if err != nil {
		return malformed("%v", err)
	}
	id := fc.GetName()
	if id == "" {
		return malformed("the MSP has no name (its MSP ID)")
	}
	if err := validateMSPCerts(fc); err != nil {
		return malformed("MSP %s: %v", id, err)
	}
	for _, name := range orgPolicies {
		p := org.GetPolicies()[name]
		if p == nil {
			return malformed("MSP %s: no %s policy", id, name)
		}
		if p.GetModPolicy() == "" {
			return malformed("MSP %s: policy %s has no mod_policy", id, name)
		}
		if err := validateOrgPolicy(id, p.GetPolicy()); err != nil {
			return malformed("MSP %s: policy %s: %v", id, name, err)
		}
	}
	if v := org.GetValues()[anchorPeersKey]; v != nil {
		var ap peer.AnchorPeers
		if err := proto.Unmarshal(v.GetValue(), &ap); err != nil {
			return malformed("anchor peers: %v", err)
		}
		for _, a := range ap.GetAnchorPeers() {
			if a.GetHost() == "" || a.GetPort() <= 0 || a.GetPort() > 65535 {
				return malformed("anchor peer %s:%d is not a host and port", a.GetHost(), a.GetPort())
			}
		}
	}
	if v := org.GetValues()[endpointsKey]; v != nil {
		var ep common.OrdererAddresses
		if err := proto.Unmarshal(v.GetValue(), &ep); err != nil {
			return malformed("orderer endpoints: %v", err)
		}
		if len(ep.GetAddresses()) == 0 {
			return malformed("orderer endpoints are empty")
		}
		for _, a := range ep.GetAddresses() {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return malformed("orderer endpoint %q: %v", a, err)
			}
		}
	}
	return nil
}

func validateMSPCerts(fc *msp.FabricMSPConfig) error {
	if len(fc.GetRootCerts()) == 0 {
		return fmt.Errorf("no root CA certificates")
	}
	if len(fc.GetTlsRootCerts()) == 0 {
		return fmt.Errorf("no TLS root CA certificates")
	}
	for _, set := range []struct {
		what  string
		certs [][]byte
		ca    bool
	}{
		{"root certificate", fc.GetRootCerts(), true},
		{"intermediate certificate", fc.GetIntermediateCerts(), true},
		{"TLS root certificate", fc.GetTlsRootCerts(), true},
		{"TLS intermediate certificate", fc.GetTlsIntermediateCerts(), true},
		{"admin certificate", fc.GetAdmins(), false},
	} {
		for i, b := range set.certs {
			c, err := parseCertPEM(b)
			if err != nil {
				return fmt.Errorf("%s %d: %w", set.what, i, err)
			}
			if set.ca && !c.IsCA {
				return fmt.Errorf("%s %d (%s) is not a CA certificate", set.what, i, c.Subject)
			}
		}
	}
	if ous := fc.GetFabricNodeOus(); ous.GetEnable() && ous.GetAdminOuIdentifier().GetOrganizationalUnitIdentifier() == "" && len(fc.GetAdmins()) == 0 {
		return fmt.Errorf("NodeOUs enabled without an admin OU and without admin certificates: nobody could administer it")
	}
	return nil
}

// validateOrgPolicy checks that a policy decodes and that a signature
// policy names no other MSP than the organisation's own.
func validateOrgPolicy(id string, p *common.Policy) error {
	switch common.Policy_PolicyType(p.GetType()) {
	case common.Policy_SIGNATURE:
		var env common.SignaturePolicyEnvelope
		if err := proto.Unmarshal(p.GetValue(), &env); err != nil {
			return err
		}
		if env.GetRule() == nil {
			return fmt.Errorf("no rule")
		}
		for _, pr := range env.GetIdentities() {
			other, err := principalMSP(pr)
			if err != nil {
				return err
			}
			if other != id {
				return fmt.Errorf("names MSP %s, not the definition's MSP %s", other, id)
			}
		}
		return nil
	case common.Policy_IMPLICIT_META:
		var imp common.ImplicitMetaPolicy
		return proto.Unmarshal(p.GetValue(), &imp)
	default:
		return fmt.Errorf("policy type %d is neither a signature nor an implicit meta policy", p.GetType())
	}
}

// principalMSP is the MSP a principal belongs to.
func principalMSP(pr *msp.MSPPrincipal) (string, error) {
	switch pr.GetPrincipalClassification() {
	case msp.MSPPrincipal_ROLE:
		var r msp.MSPRole
		if err := proto.Unmarshal(pr.GetPrincipal(), &r); err != nil {
			return "", err
		}
		return r.GetMspIdentifier(), nil
	case msp.MSPPrincipal_IDENTITY:
		var si msp.SerializedIdentity
		if err := proto.Unmarshal(pr.GetPrincipal(), &si); err != nil {
			return "", err
		}
		return si.GetMspid(), nil
	case msp.MSPPrincipal_ORGANIZATION_UNIT:
		var ou msp.OrganizationUnit
		if err := proto.Unmarshal(pr.GetPrincipal(), &ou); err != nil {
			return "", err
		}
		return ou.GetMspIdentifier(), nil
	default:
		return "", fmt.Errorf("unsupported principal classification %s", pr.GetPrincipalClassification())
	}
}
