// Package wan gives the links between NMIs' hosts on one machine the round
// trips between the NMIs' sites, at the TCP level: these machines' kernels
// have no netem queueing discipline. Each link from one NMI to a port of
// another's host is a TCP proxy on the hosts' bridge (Shopify's toxiproxy,
// with a latency toxic of half the round trip each way), and a NAT rule in
// the first NMI's network namespace sends its connections to that port
// through the proxy. An NMI's own nodes talk to each other without delay.
package wan

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/inter-nmi/pki/network/pkg/configfile"
	"github.com/inter-nmi/pki/network/pkg/topology"
)

// Table is the round trip between each pair of NMIs' sites.
type Table struct {
	RTT []Pair `yaml:"rtt"`
}

// Pair is the round trip between two NMIs' sites, either way.
type Pair struct {
	Between [2]string     `yaml:"between"`
	RTT     time.Duration `yaml:"rtt"`
}

// Load reads a round-trip table (network/latency.yaml).
func Load(path string) (*Table, error) {
	t, err := configfile.Load[Table](path)
	return &t, err
}

// Validate refuses a pair named twice, with itself, or with a round trip
// that is not positive.
func (t *Table) Validate() error {
	seen := map[[2]string]bool{}
	for _, p := range t.RTT {
		a, b := p.Between[0], p.Between[1]
		switch {
		case a == "" || b == "" || a == b:
			return fmt.Errorf("round trip between %q and %q: two different NMIs", a, b)
		case p.RTT <= 0:
			return fmt.Errorf("round trip between %s and %s: %s is not positive", a, b, p.RTT)
		case seen[key(a, b)]:
			return fmt.Errorf("round trip between %s and %s given twice", a, b)
		}
		seen[key(a, b)] = true
	}
	return nil
}

func key(a, b string) [2]string {
	if b < a {
		a, b = b, a
	}
	return [2]string{a, b}
}

// Between is the round trip between two NMIs' sites.
func (t *Table) Between(a, b string) (time.Duration, bool) {
	for _, p := range t.RTT {
		if key(p.Between[0], p.Between[1]) == key(a, b) {
			return p.RTT, true
		}
	}
	return 0, false
}

// Link is one NMI's path to one port of another NMI's host.
type Link struct {
	// From is the NMI whose connections the link carries, Namespace its
	// network namespace.
	From, Namespace string
	// To is the NMI reached, Target the address of its node.
	To, Target string
	// Listen is the proxy's address, on the bridge.
	Listen string
	// OneWay is the delay each way: half the round trip.
	OneWay time.Duration
}

// Plan lays out the links of a topology: from every NMI to the orderer and
// the peer of every other NMI (what NMIs reach of each other; the chaincode
// server and the registry serve their own NMI and its clients). Proxies
// listen on the gateway address from port firstPort on. Every pair of NMIs
// needs a round trip in the table.
func Plan(t *topology.Topology, table *Table, namespace func(*topology.NMI) string, gateway string, firstPort int) ([]Link, error) {
	var links []Link
	var missing []error
	port := firstPort
	for i := range t.NMIs {
		from := &t.NMIs[i]
		for j := range t.NMIs {
			to := &t.NMIs[j]
			if i == j {
				continue
			}
			rtt, ok := table.Between(from.Name, to.Name)
			if !ok {
				if i < j {
					missing = append(missing, fmt.Errorf("no round trip between %s and %s", from.Name, to.Name))
				}
				continue
			}
			targets := []string{to.PeerAddress()}
			if to.Orderer != nil {
				targets = append(targets, to.OrdererAddress())
			}
			for _, target := range targets {
				links = append(links, Link{From: from.Name, Namespace: namespace(from), To: to.Name, Target: target,
					Listen: net.JoinHostPort(gateway, strconv.Itoa(port)), OneWay: rtt / 2})
				port++
			}
		}
	}
	if len(missing) > 0 {
		return nil, errors.Join(missing...)
	}
	if port > 65536 {
		return nil, fmt.Errorf("%d links from port %d run past 65535", len(links), firstPort)
	}
	return links, nil
}
