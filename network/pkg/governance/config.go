package governance

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"
)

// Names of the channel configuration's groups, values and policies, as
// Fabric's channelconfig package spells them.
const (
	channelGroup       = "Channel"
	applicationGroup   = "Application"
	ordererGroup       = "Orderer"
	mspKey             = "MSP"
	anchorPeersKey     = "AnchorPeers"
	endpointsKey       = "Endpoints"
	orderersKey        = "Orderers"
	blockValidationKey = "BlockValidation"
	adminsPolicy       = "Admins"
)

// subGroup returns a group directly under the channel group.
func subGroup(cfg *common.Config, name string) (*common.ConfigGroup, error) {
	g := cfg.GetChannelGroup().GetGroups()[name]
	if g == nil {
		return nil, fmt.Errorf("channel configuration has no %s group", name)
	}
	return g, nil
}

// fabricMSP decodes an organisation group's MSP value.
func fabricMSP(org *common.ConfigGroup) (*msp.MSPConfig, *msp.FabricMSPConfig, error) {
	v := org.GetValues()[mspKey]
	if v == nil {
		return nil, nil, errors.New("no MSP value")
	}
	var mc msp.MSPConfig
	if err := proto.Unmarshal(v.GetValue(), &mc); err != nil {
		return nil, nil, fmt.Errorf("MSP value: %w", err)
	}
	if mc.GetType() != 0 {
		return nil, nil, fmt.Errorf("MSP type %d is not an X.509 (FABRIC) MSP", mc.GetType())
	}
	var fc msp.FabricMSPConfig
	if err := proto.Unmarshal(mc.GetConfig(), &fc); err != nil {
		return nil, nil, fmt.Errorf("MSP value: %w", err)
	}
	return &mc, &fc, nil
}

// mspID is the MSP ID of an organisation group, or "" if it has none.
func mspID(org *common.ConfigGroup) string {
	_, fc, err := fabricMSP(org)
	if err != nil {
		return ""
	}
	return fc.GetName()
}

// orgByMSPID finds the organisation of a group by its MSP ID.
func orgByMSPID(g *common.ConfigGroup, id string) (string, *common.ConfigGroup) {
	for _, name := range slices.Sorted(maps.Keys(g.GetGroups())) {
		if org := g.GetGroups()[name]; mspID(org) == id {
			return name, org
		}
	}
	return "", nil
}

// checkMSPUnique enforces Fabric's rule that one MSP ID has one definition
// across the whole channel (Application and Orderer organisations alike).
func checkMSPUnique(cfg *common.Config, org *common.ConfigGroup) error {
	want, fc, err := fabricMSP(org)
	if err != nil {
		return err
	}
	for _, top := range []string{applicationGroup, ordererGroup} {
		g := cfg.GetChannelGroup().GetGroups()[top]
		name, other := orgByMSPID(g, fc.GetName())
		if other == nil {
			continue
		}
		have, _, err := fabricMSP(other)
		if err != nil {
			return fmt.Errorf("%s organisation %s: %w", top, name, err)
		}
		if !proto.Equal(have, want) {
			return fmt.Errorf("MSP %s is already defined differently by %s organisation %s; Fabric allows one definition per MSP ID", fc.GetName(), top, name)
		}
	}
	return nil
}

// consenters decodes the Orderer group's consenter mapping.
func consenters(ord *common.ConfigGroup) (*common.Orderers, error) {
	v := ord.GetValues()[orderersKey]
	if v == nil {
		return nil, errors.New("orderer group has no Orderers value: not a BFT channel")
	}
	var set common.Orderers
	if err := proto.Unmarshal(v.GetValue(), &set); err != nil {
		return nil, fmt.Errorf("consenter mapping (Orderers value): %w", err)
	}
	return &set, nil
}

// setValue replaces a value's content, keeping its mod_policy; a new value
// is governed by the group's Admins, as configtxgen does it.
func setValue(g *common.ConfigGroup, key string, m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	if g.Values == nil {
		g.Values = map[string]*common.ConfigValue{}
	}
	v := g.Values[key]
	if v == nil {
		v = &common.ConfigValue{ModPolicy: adminsPolicy}
		g.Values[key] = v
	}
	v.Value = b
	return nil
}

// configID is Fabric's rule for the names of config elements.
var configID = regexp.MustCompile(`^[a-zA-Z0-9.\-_]{1,249}$`)

func validateName(name string) error {
	if !configID.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("%q is not a valid organisation name (letters, digits, '.', '-', '_')", name)
	}
	return nil
}

// parseCertPEM parses one PEM certificate.
func parseCertPEM(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

func certPool(pems [][]byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	for i, p := range pems {
		c, err := parseCertPEM(p)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", i, err)
		}
		pool.AddCert(c)
	}
	return pool, nil
}
