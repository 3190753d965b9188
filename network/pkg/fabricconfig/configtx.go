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
	// Detection is how the BFT consenters tell that their leader failed;
	// zero fields take DefaultDetection's.
	Detection Detection
}

// Detection are SmartBFT's settings for noticing a failed leader and
// electing the next. Fabric ticks SmartBFT's timers once a second, so
// every duration counts in whole seconds.
type Detection struct {
	// LeaderHeartbeatTimeout: a follower that has heard nothing from its
	// leader for this long complains (the heartbeat path, which an idle
	// cluster relies on). The leader sends LeaderHeartbeatCount heartbeats
	// per timeout, at most one per tick.
	LeaderHeartbeatTimeout time.Duration
	LeaderHeartbeatCount   int
	// RequestForwardTimeout: a request not ordered within it is forwarded
	// to the leader; RequestComplainTimeout later, the follower complains
	// (the request path: a leader that sends heartbeats but leaves requests
	// out).
	RequestForwardTimeout, RequestComplainTimeout time.Duration
	// ViewChangeResendInterval: how often a view change's messages are sent
	// again (for a node that missed them); ViewChangeTimeout: a view change
	// not done by then is given up, the node syncs and starts anew (the
	// timeout doubling each time).
	ViewChangeResendInterval, ViewChangeTimeout time.Duration
	// SpeedUpViewChange: a node joins a view change as soon as f+1 others
	// complain, instead of when its own timers expire.
	SpeedUpViewChange bool
}

// DefaultDetection is the consortium's failure detection, chosen by
// measurement (docs/performance.md, "A leader crash"): with Fabric's
// defaults (heartbeat 10 s, view change resent every 5 s and given up
// after 20 s) a crashed leader cost 8-10 s idle and up to 70 s under load,
// where a view change that a lagging orderer refused waited out the 20 s.
//   - heartbeat 3 s, 6 beats: a crash is noticed within 3-4 s; 2 s with 2
//     beats complained of live leaders (one tick of slack is too little);
//   - request forward 2 s, complain 10 s: on WAN round trips (up to 330 ms)
//     1 s and 2 s made followers complain of a live, busy leader;
//   - view change resent every 1 s, given up after 2 s (doubling on each
//     failure): a refused view change is retried in seconds, not minutes.
var DefaultDetection = Detection{
	LeaderHeartbeatTimeout: 3 * time.Second, LeaderHeartbeatCount: 6,
	RequestForwardTimeout: 2 * time.Second, RequestComplainTimeout: 10 * time.Second,
	ViewChangeResendInterval: 1 * time.Second, ViewChangeTimeout: 2 * time.Second,
}

// orDefault fills the zero fields of d from DefaultDetection.
func (d Detection) orDefault() Detection {
	def := DefaultDetection
	pick := func(v, dv time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return dv
	}
	d.LeaderHeartbeatTimeout = pick(d.LeaderHeartbeatTimeout, def.LeaderHeartbeatTimeout)
	d.RequestForwardTimeout = pick(d.RequestForwardTimeout, def.RequestForwardTimeout)
	d.RequestComplainTimeout = pick(d.RequestComplainTimeout, def.RequestComplainTimeout)
	d.ViewChangeResendInterval = pick(d.ViewChangeResendInterval, def.ViewChangeResendInterval)
	d.ViewChangeTimeout = pick(d.ViewChangeTimeout, def.ViewChangeTimeout)
	if d.LeaderHeartbeatCount <= 0 {
		d.LeaderHeartbeatCount = def.LeaderHeartbeatCount
	}
	return d
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
	d := c.Detection.orDefault()
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
				"RequestForwardTimeout":     d.RequestForwardTimeout.String(),
				"RequestComplainTimeout":    d.RequestComplainTimeout.String(),
				"RequestAutoRemoveTimeout":  "3m",
				"ViewChangeResendInterval":  d.ViewChangeResendInterval.String(),
				"ViewChangeTimeout":         d.ViewChangeTimeout.String(),
				"LeaderHeartbeatTimeout":    d.LeaderHeartbeatTimeout.String(),
				"LeaderHeartbeatCount":      d.LeaderHeartbeatCount,
				"CollectTimeout":            "1s",
				"SpeedUpViewChange":         d.SpeedUpViewChange,
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
