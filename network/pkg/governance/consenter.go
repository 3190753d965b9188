package governance

import (
	"bytes"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"
)

// MinConsenters is the smallest consenter set the consortium accepts:
// SmartBFT tolerates f faulty nodes with n >= 3f+1, so one fault needs four.
const MinConsenters = 4

// Consenter is a SmartBFT ordering node as the channel's consenter mapping
// lists it. Certificates are PEM.
type Consenter struct {
	// ID identifies the node in the consensus protocol; 0 means the next
	// free ID (one above the highest).
	ID    uint32
	Host  string
	Port  uint32
	MSPID string
	// Identity is the node's enrolment certificate, with which it signs
	// blocks.
	Identity []byte
	// ClientTLSCert and ServerTLSCert authenticate its cluster connections.
	ClientTLSCert []byte
	ServerTLSCert []byte
}

// Address is the node's host:port.
func (c Consenter) Address() string {
	return net.JoinHostPort(c.Host, strconv.FormatUint(uint64(c.Port), 10))
}

// AddConsenter proposes that a node join the consenter set. If its
// organisation name is not yet in the Orderer group, it joins it, built from
// org: its MSP and policies, and its Endpoints (or, if org has none, the
// node's address); org may be nil when name is an Application organisation
// already, and is not used when name is an Orderer organisation. The
// consenter's certificates must come from that organisation's CAs. The
// Orderer group's BlockValidation policy is recomputed for the
// new set, as the orderer requires (see BlockValidationPolicy).
func AddConsenter(cfg *common.Config, channel, name string, org *common.ConfigGroup, c Consenter) (*Proposal, error) {
	fail := func(err error) (*Proposal, error) {
		return nil, fmt.Errorf("add consenter %s for %s: %w", c.Address(), name, err)
	}
	if err := validateName(name); err != nil {
		return fail(err)
	}
	if c.MSPID == "" || c.Host == "" || c.Port == 0 || c.Port > 65535 {
		return fail(fmt.Errorf("%w: MSP ID, host and port (1-65535) are required", ErrInvalidConsenter))
	}
	tx, err := startTx(cfg)
	if err != nil {
		return nil, err
	}
	updated := tx.UpdatedConfig()
	ord, err := subGroup(updated, ordererGroup)
	if err != nil {
		return fail(err)
	}
	set, err := consenters(ord)
	if err != nil {
		return fail(err)
	}
	description := ""
	member := ord.GetGroups()[name]
	if member == nil {
		if org == nil {
			if org = updated.GetChannelGroup().GetGroups()[applicationGroup].GetGroups()[name]; org == nil {
				return fail(fmt.Errorf("%w: %s is in neither the Orderer nor the Application group; give its definition", ErrUnknownOrg, name))
			}
		}
		if err := ValidateOrgDefinition(org); err != nil {
			return fail(err)
		}
		if id := mspID(org); id != c.MSPID {
			return fail(fmt.Errorf("%w: the consenter is of MSP %s, the organisation definition of MSP %s", ErrInvalidConsenter, c.MSPID, id))
		}
		if other, _ := orgByMSPID(ord, c.MSPID); other != "" {
			return fail(fmt.Errorf("%w: %s is Orderer organisation %s", ErrMSPIDPresent, c.MSPID, other))
		}
		if err := checkMSPUnique(updated, org); err != nil {
			return fail(err)
		}
		if member, err = ordererOrg(org, c); err != nil {
			return fail(err)
		}
		if ord.Groups == nil {
			ord.Groups = map[string]*common.ConfigGroup{}
		}
		ord.Groups[name] = member
		description = fmt.Sprintf("; organisation %s (MSP %s) joins the Orderer group", name, c.MSPID)
	} else if id := mspID(member); id != c.MSPID {
		return fail(fmt.Errorf("%w: the consenter is of MSP %s, Orderer organisation %s of MSP %s", ErrInvalidConsenter, c.MSPID, name, id))
	}
	_, fc, err := fabricMSP(member)
	if err != nil {
		return fail(err)
	}
	if err := checkConsenterCerts(c, fc); err != nil {
		return fail(err)
	}
	var highest uint32
	for _, e := range set.GetConsenterMapping() {
		switch {
		case c.ID != 0 && e.GetId() == c.ID:
			return fail(fmt.Errorf("%w: ID %d is consenter %s:%d", ErrInvalidConsenter, c.ID, e.GetHost(), e.GetPort()))
		case e.GetHost() == c.Host && e.GetPort() == c.Port:
			return fail(fmt.Errorf("%w: %s is consenter %d", ErrInvalidConsenter, c.Address(), e.GetId()))
		case sameCert(e.GetIdentity(), c.Identity):
			return fail(fmt.Errorf("%w: its identity is consenter %d's", ErrInvalidConsenter, e.GetId()))
		}
		highest = max(highest, e.GetId())
	}
	if c.ID == 0 {
		c.ID = highest + 1
	}
	set.ConsenterMapping = append(set.ConsenterMapping, &common.Consenter{
		Id: c.ID, Host: c.Host, Port: c.Port, MspId: c.MSPID,
		Identity: c.Identity, ClientTlsCert: c.ClientTLSCert, ServerTlsCert: c.ServerTLSCert,
	})
	if err := setConsenters(ord, set); err != nil {
		return fail(err)
	}
	n := len(set.ConsenterMapping)
	return newProposal(tx, channel, fmt.Sprintf("Add consenter %d (%s, MSP %s) to the SmartBFT consenter set of channel %s: %d nodes, tolerating %d faulty, block quorum %d%s",
		c.ID, c.Address(), c.MSPID, channel, n, (n-1)/3, bftQuorum(n), description))
}

// RemoveConsenter proposes that consenter id leave the consenter set; it
// refuses to leave fewer than MinConsenters. When the node was its
// organisation's last, the organisation leaves the Orderer group too, so
// that clients stop being sent to its endpoints; it stays in the
// Application group.
func RemoveConsenter(cfg *common.Config, channel string, id uint32) (*Proposal, error) {
	tx, err := startTx(cfg)
	if err != nil {
		return nil, err
	}
	updated := tx.UpdatedConfig()
	ord, err := subGroup(updated, ordererGroup)
	if err != nil {
		return nil, err
	}
	set, err := consenters(ord)
	if err != nil {
		return nil, fmt.Errorf("remove consenter %d: %w", id, err)
	}
	i := slices.IndexFunc(set.ConsenterMapping, func(c *common.Consenter) bool { return c.GetId() == id })
	if i < 0 {
		ids := make([]uint32, 0, len(set.ConsenterMapping))
		for _, c := range set.ConsenterMapping {
			ids = append(ids, c.GetId())
		}
		return nil, fmt.Errorf("remove consenter %d: %w (consenters: %v)", id, ErrUnknownConsenter, ids)
	}
	if n := len(set.ConsenterMapping) - 1; n < MinConsenters {
		return nil, fmt.Errorf("remove consenter %d: %w: %d would remain; SmartBFT needs n >= 3f+1, so at least %d to tolerate one faulty node",
			id, ErrTooFewConsenters, n, MinConsenters)
	}
	gone := set.ConsenterMapping[i]
	set.ConsenterMapping = slices.Delete(set.ConsenterMapping, i, i+1)
	if err := setConsenters(ord, set); err != nil {
		return nil, fmt.Errorf("remove consenter %d: %w", id, err)
	}
	n := len(set.ConsenterMapping)
	description := fmt.Sprintf("Remove consenter %d (%s:%d, MSP %s) from the SmartBFT consenter set of channel %s: %d nodes, tolerating %d faulty, block quorum %d",
		id, gone.GetHost(), gone.GetPort(), gone.GetMspId(), channel, n, (n-1)/3, bftQuorum(n))
	if !slices.ContainsFunc(set.ConsenterMapping, func(c *common.Consenter) bool { return c.GetMspId() == gone.GetMspId() }) {
		if name, _ := orgByMSPID(ord, gone.GetMspId()); name != "" {
			delete(ord.Groups, name)
			description += fmt.Sprintf("; organisation %s, which runs no other consenter, leaves the Orderer group", name)
		}
	}
	return newProposal(tx, channel, description)
}

// setConsenters writes the consenter mapping and the BlockValidation policy
// that must match it.
func setConsenters(ord *common.ConfigGroup, set *common.Orderers) error {
	if err := setValue(ord, orderersKey, set); err != nil {
		return err
	}
	pol, err := BlockValidationPolicy(set.GetConsenterMapping())
	if err != nil {
		return err
	}
	modPolicy := adminsPolicy
	if old := ord.GetPolicies()[blockValidationKey]; old != nil {
		modPolicy = old.GetModPolicy()
	}
	if ord.Policies == nil {
		ord.Policies = map[string]*common.ConfigPolicy{}
	}
	ord.Policies[blockValidationKey] = &common.ConfigPolicy{ModPolicy: modPolicy, Policy: pol}
	return nil
}

// BlockValidationPolicy is the Orderer group's BlockValidation policy for a
// consenter set, as Fabric's policies.EncodeBFTBlockVerificationPolicy builds
// it: a quorum of ceil((n+f+1)/2) of the consenters' identities, in mapping
// order. A SmartBFT orderer does not rewrite this policy on reconfiguration;
// it rejects any config whose BlockValidation differs from this, byte for
// byte (smartbft ConfigBlockValidator.checkConsentersMatchPolicy).
func BlockValidationPolicy(set []*common.Consenter) (*common.Policy, error) {
	var (
		rules      []*common.SignaturePolicy
		identities []*msp.MSPPrincipal
	)
	for i, c := range set {
		id, err := proto.Marshal(&msp.SerializedIdentity{Mspid: c.GetMspId(), IdBytes: c.GetIdentity()})
		if err != nil {
			return nil, err
		}
		rules = append(rules, &common.SignaturePolicy{Type: &common.SignaturePolicy_SignedBy{SignedBy: int32(i)}})
		identities = append(identities, &msp.MSPPrincipal{PrincipalClassification: msp.MSPPrincipal_IDENTITY, Principal: id})
	}
	env, err := proto.Marshal(&common.SignaturePolicyEnvelope{
		Rule: &common.SignaturePolicy{Type: &common.SignaturePolicy_NOutOf_{
			NOutOf: &common.SignaturePolicy_NOutOf{N: int32(bftQuorum(len(set))), Rules: rules},
		}},
		Identities: identities,
	})
	if err != nil {
		return nil, err
	}
	return &common.Policy{Type: int32(common.Policy_SIGNATURE), Value: env}, nil
}

// bftQuorum is policies.ComputeBFTQuorum: ceil((n+f+1)/2) with f = (n-1)/3.
func bftQuorum(n int) int {
	f := (n - 1) / 3
	return (n + f + 2) / 2
}

// ordererOrg builds an Orderer-group organisation from a definition: MSP,
// policies and Endpoints, no anchor peers (which the Orderer group refuses).
func ordererOrg(def *common.ConfigGroup, c Consenter) (*common.ConfigGroup, error) {
	org := &common.ConfigGroup{
		ModPolicy: def.GetModPolicy(),
		Groups:    map[string]*common.ConfigGroup{},
		Values:    map[string]*common.ConfigValue{mspKey: proto.Clone(def.GetValues()[mspKey]).(*common.ConfigValue)},
		Policies:  map[string]*common.ConfigPolicy{},
	}
	for k, p := range def.GetPolicies() {
		org.Policies[k] = proto.Clone(p).(*common.ConfigPolicy)
	}
	if ep := def.GetValues()[endpointsKey]; ep != nil {
		org.Values[endpointsKey] = proto.Clone(ep).(*common.ConfigValue)
		return org, nil
	}
	return org, setValue(org, endpointsKey, &common.OrdererAddresses{Addresses: []string{c.Address()}})
}

// checkConsenterCerts checks that the node's identity was issued by its
// organisation's CA and its TLS certificates by its TLS CA: otherwise its
// block signatures or its cluster connections would be refused.
func checkConsenterCerts(c Consenter, fc *msp.FabricMSPConfig) error {
	check := func(what string, pemBytes []byte, roots, intermediates [][]byte) error {
		if len(pemBytes) == 0 {
			return fmt.Errorf("%w: no %s", ErrInvalidConsenter, what)
		}
		cert, err := parseCertPEM(pemBytes)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalidConsenter, what, err)
		}
		if _, err := issuerOf(cert, roots, intermediates, time.Now()); err != nil {
			return fmt.Errorf("%w: %s (%s) is not issued by MSP %s: %w", ErrInvalidConsenter, what, cert.Subject, fc.GetName(), err)
		}
		return nil
	}
	if err := check("identity certificate", c.Identity, fc.GetRootCerts(), fc.GetIntermediateCerts()); err != nil {
		return err
	}
	if err := check("client TLS certificate", c.ClientTLSCert, fc.GetTlsRootCerts(), fc.GetTlsIntermediateCerts()); err != nil {
		return err
	}
	return check("server TLS certificate", c.ServerTLSCert, fc.GetTlsRootCerts(), fc.GetTlsIntermediateCerts())
}

// sameCert compares two PEM certificates by their DER encoding.
func sameCert(a, b []byte) bool {
	ca, errA := parseCertPEM(a)
	cb, errB := parseCertPEM(b)
	if errA != nil || errB != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Raw, cb.Raw)
}
