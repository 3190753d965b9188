package wan

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Serve runs a proxy per link, each delaying what passes it by the link's
// one-way delay in both directions, until ctx ends.
func Serve(ctx context.Context, links []Link) error {
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	var started []*toxiproxy.Proxy
	defer func() {
		for _, p := range started {
			p.Stop()
		}
	}()
	for i, l := range links {
		p := toxiproxy.NewProxy(server, fmt.Sprintf("%s-%s-%d", l.From, l.To, i), l.Listen, l.Target)
		if err := p.Start(); err != nil {
			return fmt.Errorf("proxy %s -> %s on %s: %w", l.From, l.Target, l.Listen, err)
		}
		started = append(started, p)
		ms := l.OneWay.Milliseconds()
		for _, stream := range []string{"upstream", "downstream"} {
			toxic := fmt.Sprintf(`{"type":"latency","stream":%q,"attributes":{"latency":%d}}`, stream, ms)
			if _, err := p.Toxics.AddToxicJson(strings.NewReader(toxic)); err != nil {
				return fmt.Errorf("proxy %s -> %s: %s latency: %w", l.From, l.Target, stream, err)
			}
		}
	}
	<-ctx.Done()
	return nil
}

// AwaitListening returns once every link's proxy accepts connections.
func AwaitListening(ctx context.Context, links []Link) error {
	for _, l := range links {
		for {
			c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", l.Listen)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("proxy %s -> %s on %s: %w", l.From, l.Target, l.Listen, err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// Route makes each link's namespace send its connections to the link's
// target through the link's proxy: a destination NAT rule in the
// namespace's nat OUTPUT chain (iptables, Debian package iptables). The
// rules go with the namespace.
func Route(links []Link) error {
	for _, l := range links {
		host, port, err := net.SplitHostPort(l.Target)
		if err != nil {
			return err
		}
		args := []string{"netns", "exec", l.Namespace, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp",
			"-d", host, "--dport", port, "-j", "DNAT", "--to-destination", l.Listen}
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// Available reports whether this machine can route links through proxies.
func Available() error {
	if _, err := exec.LookPath("iptables"); err != nil {
		return fmt.Errorf("the iptables tool (Debian package iptables) is not installed: %w", err)
	}
	return nil
}
