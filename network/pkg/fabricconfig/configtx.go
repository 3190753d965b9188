package fabricconfig

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The channel configuration, as configtxgen reads it from configtx.yaml.
type (
	// Policy is a channel policy: Signature or ImplicitMeta.
	Policy struct {
		Type string `yaml:"Type"`
		Rule string `yaml:"Rule"`
	}
	// AnchorPeer is a peer the other organisations' peers gossip with.
	AnchorPeer struct {
		Host string `yaml:"Host"`
		Port int    `yaml:"Port"`
	}
	// Organization is an NMI as the channel configuration knows it.
	Organization struct {
		Name string `yaml:"Name"`
		ID   string `yaml:"ID"`
		// MSPDir is the NMI's public MSP, as it exported it.
		MSPDir           string            `yaml:"MSPDir"`
		Policies         map[string]Policy `yaml:"Policies"`
		OrdererEndpoints []string          `yaml:"OrdererEndpoints,omitempty"`
		AnchorPeers      []AnchorPeer      `yaml:"AnchorPeers,omitempty"`
	}
	// Consenter is an orderer of the BFT consenter set; the certificates
	// are files.
	Consenter struct {
		ID            int    `yaml:"ID"`
		Host          string `yaml:"Host"`
		Port          int    `yaml:"Port"`
		MSPID         string `yaml:"MSPID"`
		Identity      string `yaml:"Identity"`
		ClientTLSCert string `yaml:"ClientTLSCert"`
		ServerTLSCert string `yaml:"ServerTLSCert"`
	}
)

func implicit(rule string) Policy { return Policy{Type: "ImplicitMeta", Rule: rule} }

func signature(rule string) Policy { return Policy{Type: "Signature", Rule: rule} }

// NewOrganization is an NMI's organisation definition: its MSP (mspDir, the
// public MSP it exported), the policies every NMI has (Readers, Writers,
// Admins, Endorsement by its roles), its anchor peer and, if it runs one,
// its orderer's endpoint ("" for none).
func NewOrganization(name, mspID, mspDir string, anchor AnchorPeer, ordererEndpoint string) Organization {
	roles := func(rs ...string) string {
		parts := make([]string, len(rs))
		for i, r := range rs {
			parts[i] = fmt.Sprintf("'%s.%s'", mspID, r)
		}
		return "OR(" + strings.Join(parts, ", ") + ")"
	}
	org := Organization{
		Name:   name,
		ID:     mspID,
		MSPDir: mspDir,
		Policies: map[string]Policy{
			"Readers":     signature(roles("admin", "peer", "client", "orderer")),
			"Writers":     signature(roles("admin", "client", "orderer")),
			"Admins":      signature(roles("admin")),
			"Endorsement": signature(roles("peer")),
		},
		AnchorPeers: []AnchorPeer{anchor},
	}
	if ordererEndpoint != "" {
		org.OrdererEndpoints = []string{ordererEndpoint}
	}
	return org
}

// OrgConfigTx is the configtx.yaml from which `configtxgen -printOrg` prints
// an organisation's definition.
func OrgConfigTx(org Organization) ([]byte, error) {
	return yaml.Marshal(map[string]any{"Organizations": []Organization{org}})
}

// Profile is the name of the configtx.yaml profile ConfigTx writes, which
// `configtxgen -profile` names.
const Profile = "Metrology"

// Channel is what the channel's genesis block says.
type Channel struct {
	// Organizations are the channel's members (the application group).
	Organizations []Organization
	// OrdererOrganizations are the members that run an orderer.
	OrdererOrganizations []Organization
	// Consenters are the BFT consenter set, IDs from 1.
	Consenters []Consenter
	// BatchInterval is how long the leader waits to fill a block.
	BatchInterval time.Duration
	// MaxMessageCount is the most transactions a block holds.
	MaxMessageCount int
}

// ConfigTx is the configtx.yaml with the one profile (Profile) from which
// configtxgen makes the channel's genesis block: SmartBFT ordering, V3_0
// channel capabilities, and majority-of-admins governance.
func ConfigTx(c Channel) ([]byte, error) {
	standard := map[string]Policy{
		"Readers": implicit("ANY Readers"),
		"Writers": implicit("ANY Writers"),
		"Admins":  implicit("MAJORITY Admins"),
	}
	with := func(extra map[string]Policy) map[string]Policy {
		out := map[string]Policy{}
		for k, v := range standard {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	profile := map[string]any{
		"Policies":     standard,
		"Capabilities": map[string]bool{"V3_0": true},
		"Orderer": map[string]any{
			"OrdererType":  "BFT",
			"BatchTimeout": c.BatchInterval.String(),
			"BatchSize": map[string]any{
				"MaxMessageCount":   c.MaxMessageCount,
				"AbsoluteMaxBytes":  "64 MB",
				"PreferredMaxBytes": "4 MB",
			},
			"SmartBFT": map[string]any{
				"RequestBatchMaxCount":      c.MaxMessageCount,
				"RequestBatchMaxBytes":      64 << 20,
				"RequestBatchMaxInterval":   c.BatchInterval.String(),
				"IncomingMessageBufferSize": 200,
				"RequestPoolSize":           100000,
				"RequestForwardTimeout":     "2s",
				"RequestComplainTimeout":    "10s",
				"RequestAutoRemoveTimeout":  "3m",
				"ViewChangeResendInterval":  "5s",
				"ViewChangeTimeout":         "20s",
				"LeaderHeartbeatTimeout":    "10s",
				"LeaderHeartbeatCount":      10,
				"CollectTimeout":            "1s",
			},
			"ConsenterMapping": c.Consenters,
			"Organizations":    c.OrdererOrganizations,
			"Policies":         with(map[string]Policy{"BlockValidation": implicit("ANY Writers")}),
			"Capabilities":     map[string]bool{"V2_0": true},
		},
		"Application": map[string]any{
			"Organizations": c.Organizations,
			"Policies": with(map[string]Policy{
				"LifecycleEndorsement": implicit("MAJORITY Endorsement"),
				"Endorsement":          implicit("MAJORITY Endorsement"),
			}),
			"Capabilities": map[string]bool{"V2_5": true},
		},
	}
	return yaml.Marshal(map[string]any{"Profiles": map[string]any{Profile: profile}})
}
