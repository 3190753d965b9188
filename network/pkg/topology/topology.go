// Package topology reads the consortium's topology: which NMI runs which
// node, on which host and ports. Every address the network tooling, the
// registry and the tests use comes from it, never from code.
package topology

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Topology is the whole consortium.
type Topology struct {
	Channel   string    `yaml:"channel"`
	Chaincode Chaincode `yaml:"chaincode"`
	Ordering  Ordering  `yaml:"ordering"`
	NMIs      []NMI     `yaml:"nmis"`
	Explorer  Service   `yaml:"explorer"`
}

// Chaincode is the meter-PKI chaincode's definition on the channel.
type Chaincode struct {
	Name    string `yaml:"name"`
	Version string `yaml:"version"`
	// The definition's sequence is the channel's to know: it is read from
	// the channel (querycommitted), never counted here.
	// Endorsers is how many NMIs' peers must endorse a transaction.
	Endorsers int `yaml:"endorsers"`
}

// Ordering configures the BFT ordering service.
type Ordering struct {
	Type            string        `yaml:"type"`
	BatchInterval   time.Duration `yaml:"batchInterval"`
	MaxMessageCount int           `yaml:"maxMessageCount"`
	// Detection overrides the consenters' failure detection (SmartBFT's
	// timeouts); unset fields keep the consortium's defaults.
	Detection Detection `yaml:"detection,omitempty"`
}

// Detection are the SmartBFT failure detection settings a topology may
// set (package fabricconfig, Detection, says what each does).
type Detection struct {
	LeaderHeartbeatTimeout   time.Duration `yaml:"leaderHeartbeatTimeout,omitempty"`
	LeaderHeartbeatCount     int           `yaml:"leaderHeartbeatCount,omitempty"`
	RequestForwardTimeout    time.Duration `yaml:"requestForwardTimeout,omitempty"`
	RequestComplainTimeout   time.Duration `yaml:"requestComplainTimeout,omitempty"`
	ViewChangeResendInterval time.Duration `yaml:"viewChangeResendInterval,omitempty"`
	ViewChangeTimeout        time.Duration `yaml:"viewChangeTimeout,omitempty"`
	SpeedUpViewChange        bool          `yaml:"speedUpViewChange,omitempty"`
}

// NMI is one national metrology institute: one organisation (MSP), its peer,
// optionally an orderer, its chaincode server and its registry.
type NMI struct {
	Name    string `yaml:"name"`
	MSPID   string `yaml:"mspId"`
	Country string `yaml:"country"`
	Domain  string `yaml:"domain"`
	// Host is the address the other NMIs reach this NMI's nodes on.
	Host            string   `yaml:"host"`
	Peer            Peer     `yaml:"peer"`
	Orderer         *Orderer `yaml:"orderer,omitempty"`
	ChaincodeServer Service  `yaml:"chaincodeServer"`
	Registry        Registry `yaml:"registry"`
}

// Registry is an NMI's registry API.
type Registry struct {
	Port int `yaml:"port"`
	// OperationsPort serves the registry's /metrics, /healthz and /readyz,
	// apart from the API.
	OperationsPort int `yaml:"operationsPort"`
}

// Peer is an NMI's peer node.
type Peer struct {
	Port           int `yaml:"port"`
	ChaincodePort  int `yaml:"chaincodePort"`
	OperationsPort int `yaml:"operationsPort"`
}

// Orderer is an NMI's ordering node.
type Orderer struct {
	Port           int `yaml:"port"`
	AdminPort      int `yaml:"adminPort"`
	OperationsPort int `yaml:"operationsPort"`
}

// Service is a process listening on one port.
type Service struct {
	Port int `yaml:"port"`
}

// Load reads and validates a topology file.
func Load(path string) (*Topology, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read topology: %w", err)
	}
	t, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("topology %s: %w", path, err)
	}
	return t, nil
}

// Parse decodes a topology strictly (unknown fields are errors) and validates it.
func Parse(b []byte) (*Topology, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var t Topology
	if err := dec.Decode(&t); err != nil {
		return nil, err
	}
	return &t, t.Validate()
}

var (
	nameRE  = regexp.MustCompile(`^[A-Z][A-Z0-9]{1,15}$`)
	mspRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{0,30}MSP$`)
	chanRE  = regexp.MustCompile(`^[a-z][a-z0-9.-]{0,48}$`)
	labelRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,30}$`)
)

// Validate checks names, addresses and that no two services share a port on
// one host.
func (t *Topology) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !chanRE.MatchString(t.Channel) {
		bad("channel %q: lowercase letters, digits, . and -", t.Channel)
	}
	if !labelRE.MatchString(t.Chaincode.Name) {
		bad("chaincode name %q: lowercase letters, digits, _ and -", t.Chaincode.Name)
	}
	if t.Chaincode.Version == "" {
		bad("chaincode needs a version")
	}
	if t.Ordering.Type != "BFT" {
		bad("ordering type %q: only BFT is supported", t.Ordering.Type)
	}
	if t.Ordering.BatchInterval <= 0 || t.Ordering.MaxMessageCount < 1 {
		bad("ordering needs a positive batchInterval and maxMessageCount")
	}
	d := t.Ordering.Detection
	for name, v := range map[string]time.Duration{"leaderHeartbeatTimeout": d.LeaderHeartbeatTimeout,
		"requestForwardTimeout": d.RequestForwardTimeout, "requestComplainTimeout": d.RequestComplainTimeout,
		"viewChangeResendInterval": d.ViewChangeResendInterval, "viewChangeTimeout": d.ViewChangeTimeout} {
		// SmartBFT's timers tick once a second.
		if v < 0 || v%time.Second != 0 {
			bad("ordering detection %s %s: a whole number of seconds", name, v)
		}
	}
	if d.LeaderHeartbeatCount < 0 {
		bad("ordering detection leaderHeartbeatCount %d: not negative", d.LeaderHeartbeatCount)
	}
	used := map[string]string{}
	claim := func(host string, port int, what string) {
		if port < 1 || port > 65535 {
			bad("%s: port %d out of range", what, port)
			return
		}
		key := net.JoinHostPort(host, strconv.Itoa(port))
		if other, ok := used[key]; ok {
			bad("%s and %s both use %s", what, other, key)
		}
		used[key] = what
	}
	names, msps := map[string]bool{}, map[string]bool{}
	for _, n := range t.NMIs {
		if !nameRE.MatchString(n.Name) {
			bad("NMI name %q: 2-16 uppercase letters and digits", n.Name)
		}
		if !mspRE.MatchString(n.MSPID) {
			bad("NMI %s: MSP ID %q must be letters and digits ending in MSP", n.Name, n.MSPID)
		}
		if names[n.Name] || msps[n.MSPID] {
			bad("NMI %s / %s appears twice", n.Name, n.MSPID)
		}
		names[n.Name], msps[n.MSPID] = true, true
		if net.ParseIP(n.Host) == nil {
			bad("NMI %s: host %q must be an IP address", n.Name, n.Host)
		}
		if n.Domain == "" {
			bad("NMI %s: domain is required", n.Name)
		}
		claim(n.Host, n.Peer.Port, n.Name+" peer")
		claim(n.Host, n.Peer.ChaincodePort, n.Name+" peer chaincode listener")
		claim(n.Host, n.Peer.OperationsPort, n.Name+" peer operations")
		claim(n.Host, n.ChaincodeServer.Port, n.Name+" chaincode server")
		claim(n.Host, n.Registry.Port, n.Name+" registry")
		claim(n.Host, n.Registry.OperationsPort, n.Name+" registry operations")
		if o := n.Orderer; o != nil {
			claim(n.Host, o.Port, n.Name+" orderer")
			claim(n.Host, o.AdminPort, n.Name+" orderer admin")
			claim(n.Host, o.OperationsPort, n.Name+" orderer operations")
		}
	}
	if len(t.NMIs) == 0 {
		bad("no NMIs")
	} else {
		claim(t.NMIs[0].Host, t.Explorer.Port, "explorer")
	}
	if c := t.Chaincode.Endorsers; c < 1 || c > len(t.NMIs) {
		bad("chaincode endorsers %d: must be between 1 and the number of NMIs (%d)", c, len(t.NMIs))
	}
	if n := len(t.Orderers()); n < 4 {
		bad("%d orderers: BFT needs at least 4 (3f+1 with f=1)", n)
	}
	return errors.Join(errs...)
}

// WithPortOffset returns a copy with every port shifted by offset, so a second
// consortium (the test one) can run beside the first on one machine.
func (t *Topology) WithPortOffset(offset int) (*Topology, error) {
	c := *t
	c.NMIs = make([]NMI, len(t.NMIs))
	for i, n := range t.NMIs {
		n.Peer.Port += offset
		n.Peer.ChaincodePort += offset
		n.Peer.OperationsPort += offset
		n.ChaincodeServer.Port += offset
		n.Registry.Port += offset
		n.Registry.OperationsPort += offset
		if n.Orderer != nil {
			o := *n.Orderer
			o.Port += offset
			o.AdminPort += offset
			o.OperationsPort += offset
			n.Orderer = &o
		}
		c.NMIs[i] = n
	}
	c.Explorer.Port += offset
	return &c, c.Validate()
}

// NMI returns the NMI with the given name or MSP ID.
func (t *Topology) NMI(name string) (*NMI, error) {
	for i := range t.NMIs {
		if t.NMIs[i].Name == name || t.NMIs[i].MSPID == name {
			return &t.NMIs[i], nil
		}
	}
	return nil, fmt.Errorf("no NMI %q in the topology", name)
}

// Orderers returns the NMIs that run an orderer, in topology order; their
// position + 1 is the orderer's consenter ID.
func (t *Topology) Orderers() []*NMI {
	var out []*NMI
	for i := range t.NMIs {
		if t.NMIs[i].Orderer != nil {
			out = append(out, &t.NMIs[i])
		}
	}
	return out
}

func (n *NMI) addr(port int) string { return net.JoinHostPort(n.Host, strconv.Itoa(port)) }

// PeerAddress is where clients and other peers reach the peer.
func (n *NMI) PeerAddress() string { return n.addr(n.Peer.Port) }

// PeerChaincodeAddress is the peer's chaincode listener.
func (n *NMI) PeerChaincodeAddress() string { return n.addr(n.Peer.ChaincodePort) }

// PeerOperationsAddress serves the peer's /healthz and /metrics.
func (n *NMI) PeerOperationsAddress() string { return n.addr(n.Peer.OperationsPort) }

// ChaincodeAddress is where the NMI's chaincode server listens.
func (n *NMI) ChaincodeAddress() string { return n.addr(n.ChaincodeServer.Port) }

// RegistryAddress is where the NMI's registry API listens.
func (n *NMI) RegistryAddress() string { return n.addr(n.Registry.Port) }

// RegistryOperationsAddress serves the registry's /metrics.
func (n *NMI) RegistryOperationsAddress() string { return n.addr(n.Registry.OperationsPort) }

// OrdererAddress is the orderer's client and cluster endpoint.
func (n *NMI) OrdererAddress() string { return n.addr(n.Orderer.Port) }

// OrdererAdminAddress is the orderer's channel participation API.
func (n *NMI) OrdererAdminAddress() string { return n.addr(n.Orderer.AdminPort) }

// OrdererOperationsAddress serves the orderer's /healthz and /metrics.
func (n *NMI) OrdererOperationsAddress() string { return n.addr(n.Orderer.OperationsPort) }

// PeerHost is the peer's host name in its certificates.
func (n *NMI) PeerHost() string { return "peer0." + n.Domain }

// OrdererHost is the orderer's host name in its certificates.
func (n *NMI) OrdererHost() string { return "orderer0." + n.Domain }

// ExplorerAddress is where the explorer listens: on the host of the first
// NMI, which runs it.
func (t *Topology) ExplorerAddress() string {
	return net.JoinHostPort(t.NMIs[0].Host, strconv.Itoa(t.Explorer.Port))
}
