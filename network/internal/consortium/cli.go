package consortium

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/inter-nmi/pki/network/pkg/supervise"
	"github.com/inter-nmi/pki/network/pkg/topology"
)

// run executes one Fabric command-line tool, inside a host's network
// namespace if ns is set, and returns its standard output. A failure carries
// the tool's own words.
func (l Layout) run(ctx context.Context, ns string, env []string, tool string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, l.bin(tool), args...)
	if ns != "" {
		cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, l.bin(tool)}, args...)...)
	}
	cmd.Env = append(supervise.BaseEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args[:min(2, len(args))], " "), err, toolError(msg))
	}
	return stdout.Bytes(), nil
}

// toolError is what a Fabric tool said about its failure: its "Error:"
// lines (the peer CLI follows them with its usage text), else its last
// lines.
func toolError(msg string) string {
	var errs []string
	for _, line := range strings.Split(msg, "\n") {
		if strings.HasPrefix(line, "Error:") {
			errs = append(errs, line)
		}
	}
	if len(errs) > 0 {
		return strings.Join(errs, "\n")
	}
	return lastLines(msg, 6)
}

// peerCLI runs the peer CLI as the NMI's admin against its own peer, from
// the NMI's own host.
func (l Layout) peerCLI(ctx context.Context, n *topology.NMI, args ...string) ([]byte, error) {
	return l.run(ctx, l.namespace(n), l.adminEnv(n), "peer", args...)
}

// adminEnv makes the peer CLI act as the NMI's admin against its own peer.
func (l Layout) adminEnv(n *topology.NMI) []string {
	return []string{
		"FABRIC_CFG_PATH=" + filepath.Join(l.Bin, "sampleconfig"),
		"FABRIC_LOGGING_SPEC=warning",
		"CORE_PEER_LOCALMSPID=" + n.MSPID,
		"CORE_PEER_MSPCONFIGPATH=" + filepath.Join(l.user(n, UserAdmin), "msp"),
		"CORE_PEER_ADDRESS=" + n.PeerAddress(),
		"CORE_PEER_TLS_ENABLED=true",
		"CORE_PEER_TLS_ROOTCERT_FILE=" + l.tlsCA(n),
	}
}

// ordererArgs points the peer CLI at an orderer: the NMI's own if it runs one,
// otherwise the first in the topology, trusted through the exchanged TLS root.
func (l Layout) ordererArgs(t *topology.Topology, n *topology.NMI) []string {
	o := n
	if o.Orderer == nil {
		o = t.Orderers()[0]
	}
	return []string{"-o", o.OrdererAddress(), "--tls", "--cafile", l.exchangedTLSCA(o)}
}

// osnadmin runs the channel participation CLI as the NMI's admin, with mutual
// TLS, and returns the HTTP status it reports and the response body.
func (l Layout) osnadmin(ctx context.Context, n *topology.NMI, args ...string) (int, string, error) {
	admin := filepath.Join(l.user(n, UserAdmin), "tls")
	full := append(args,
		"-o", n.OrdererAdminAddress(),
		"--ca-file", l.tlsCA(n),
		"--client-cert", filepath.Join(admin, "cert.pem"),
		"--client-key", filepath.Join(admin, "key.pem"))
	out, err := l.run(ctx, l.namespace(n), nil, "osnadmin", full...)
	if err != nil {
		return 0, "", err
	}
	first, body, _ := strings.Cut(string(out), "\n")
	status, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(first, "Status:")))
	if err != nil {
		return 0, "", fmt.Errorf("osnadmin: unexpected output %q", lastLines(string(out), 3))
	}
	return status, strings.TrimSpace(body), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
