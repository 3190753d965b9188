// Package netns gives each NMI a host of its own on one machine: a Linux
// network namespace with its own address on a private bridge, so that a test
// of the consortium cannot rely on every node sharing 127.0.0.1. Only the
// addresses of the topology, which the test chose, are configured.
package netns

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
)

// Host is one namespace and its address.
type Host struct {
	// Namespace is the network namespace's name.
	Namespace string
	IP        string
}

// Network is a bridge and the hosts attached to it; all hosts share one /24.
type Network struct {
	Bridge string
	Hosts  []Host
}

// Gateway is the bridge's own address, which the hosts route through: .1
// of their /24.
func (n Network) Gateway() (string, error) {
	var prefix string
	for _, h := range n.Hosts {
		ip := net.ParseIP(h.IP).To4()
		if ip == nil || ip[3] <= 1 || ip[3] == 255 {
			return "", fmt.Errorf("host %s: %q is not an IPv4 address from .2 to .254", h.Namespace, h.IP)
		}
		p := fmt.Sprintf("%d.%d.%d", ip[0], ip[1], ip[2])
		if prefix != "" && p != prefix {
			return "", fmt.Errorf("hosts must share one /24: %s.0 and %s.0", prefix, p)
		}
		prefix = p
	}
	if prefix == "" {
		return "", errors.New("no hosts")
	}
	return prefix + ".1", nil
}

// Setup creates the bridge and every host that does not exist yet. It needs
// CAP_NET_ADMIN (root in CI and on the development machine).
func (n Network) Setup() error {
	gw, err := n.Gateway()
	if err != nil {
		return err
	}
	if !exists("link", "show", n.Bridge) {
		if err := ip("link", "add", n.Bridge, "type", "bridge"); err != nil {
			return err
		}
		if err := ip("addr", "add", gw+"/24", "dev", n.Bridge); err != nil {
			return err
		}
	}
	if err := ip("link", "set", n.Bridge, "up"); err != nil {
		return err
	}
	for _, h := range n.Hosts {
		if exists("netns", "pids", h.Namespace) {
			continue
		}
		veth := vethName(h.Namespace)
		steps := [][]string{
			{"netns", "add", h.Namespace},
			{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.Namespace},
			{"link", "set", veth, "master", n.Bridge, "up"},
			{"-n", h.Namespace, "addr", "add", h.IP + "/24", "dev", "eth0"},
			{"-n", h.Namespace, "link", "set", "eth0", "up"},
			{"-n", h.Namespace, "link", "set", "lo", "up"},
			{"-n", h.Namespace, "route", "add", "default", "via", gw},
		}
		for _, s := range steps {
			if err := ip(s...); err != nil {
				return fmt.Errorf("host %s: %w", h.Namespace, err)
			}
		}
	}
	return nil
}

// Teardown deletes the hosts and the bridge (their veth pairs go with them).
func (n Network) Teardown() error {
	var errs []error
	for _, h := range n.Hosts {
		if exists("netns", "pids", h.Namespace) {
			if err := ip("netns", "delete", h.Namespace); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if exists("link", "show", n.Bridge) {
		if err := ip("link", "delete", n.Bridge); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Command runs a program inside a host's namespace. `ip netns exec` enters
// the namespace and replaces itself by the program: the PID is the program's.
func Command(namespace, bin string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", namespace, bin}, args...)...)
}

// Available reports whether this machine can make namespaces: the ip tool is
// there and the caller may use it.
func Available() error {
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("the ip tool (Debian package iproute2) is not installed")
	}
	if err := ip("netns", "list"); err != nil {
		return err
	}
	return nil
}

func vethName(ns string) string {
	name := "v" + ns
	if len(name) > 15 { // IFNAMSIZ
		name = name[:15]
	}
	return name
}

func exists(args ...string) bool { return exec.Command("ip", args...).Run() == nil }

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// SetLink takes a host's link to the bridge down (cut off, as a pulled
// cable would) or up again; the namespace and its processes stay.
func SetLink(namespace string, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return ip("link", "set", vethName(namespace), state)
}
