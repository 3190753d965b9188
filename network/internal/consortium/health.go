package consortium

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/inter-nmi/pki/network/pkg/health"
	"github.com/inter-nmi/pki/network/pkg/topology"
)

// healthz asks a node's operations endpoint whether it is healthy.
func healthz(ctx context.Context, address, tlsRootCert string) error {
	c, err := httpsClient(tlsRootCert, "")
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	return health.Healthz(ctx, c, address)
}

// httpsClient trusts tlsRootCert; with clientDir (a directory with cert.pem
// and key.pem) it presents that client certificate, which /metrics requires.
func httpsClient(tlsRootCert, clientDir string) (*http.Client, error) {
	pem, err := os.ReadFile(tlsRootCert)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
	cfg.RootCAs.AppendCertsFromPEM(pem)
	if clientDir != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(clientDir, "cert.pem"), filepath.Join(clientDir, "key.pem"))
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}, nil
}

// httpsGet reads a path of a node's HTTPS endpoint (operations, registry)
// with a client from httpsClient.
func httpsGet(ctx context.Context, address, path, tlsRootCert, clientDir string) (int, []byte, error) {
	c, err := httpsClient(tlsRootCert, clientDir)
	if err != nil {
		return 0, nil, err
	}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+address+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, body, err
}

// tlsReachable checks that a TLS server completes a handshake, presenting
// a client certificate when certFile is given (the chaincode service wants
// the peer's).
func tlsReachable(ctx context.Context, address, rootCert, certFile, keyFile string) error {
	pem, err := os.ReadFile(rootCert)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return err
	}
	return conn.Close()
}

// waitFor polls check until it succeeds, the process dies or the deadline
// passes (see supervise.Dir.WaitFor).
func (l Layout) waitFor(ctx context.Context, proc string, timeout time.Duration, check func(context.Context) error) error {
	return l.procs().WaitFor(ctx, proc, timeout, check)
}

// Health of one node, for Status.
type Health struct {
	Process string
	Role    string
	NMI     string
	Address string
	PID     int
	Running bool
	Healthy bool
	Detail  string
}

// Status reports every node of the topology: whether its process runs and
// whether its health endpoint answers.
func (l Layout) Status(ctx context.Context, t *topology.Topology) []Health {
	out := []Health{l.health(ctx, explorerProc, "explorer", ExplorerHost(t).Name, ExplorerURL(t), func(ctx context.Context) error {
		return l.explorerHealthy(ctx, t)
	})}
	for i := range t.NMIs {
		n := &t.NMIs[i]
		if n.Orderer != nil {
			out = append(out, l.health(ctx, ordererProc(n), "orderer", n.Name, n.OrdererAddress(), func(ctx context.Context) error {
				return l.ordererHealthy(ctx, n)
			}))
		}
		out = append(out, l.health(ctx, peerProc(n), "peer", n.Name, n.PeerAddress(), func(ctx context.Context) error {
			return l.peerHealthy(ctx, n)
		}))
		out = append(out, l.health(ctx, chaincodeProc(n), "chaincode", n.Name, n.ChaincodeAddress(), func(ctx context.Context) error {
			return l.chaincodeReachable(ctx, n)
		}))
		out = append(out, l.health(ctx, registryProc(n), "registry", n.Name, RegistryURL(n), func(ctx context.Context) error {
			return l.registryReady(ctx, n)
		}))
	}
	return out
}

// peerHealthy asks the operations endpoint and then the peer's own listener,
// which opens only once the ledger is loaded.
func (l Layout) peerHealthy(ctx context.Context, n *topology.NMI) error {
	if err := healthz(ctx, n.PeerOperationsAddress(), l.tlsCA(n)); err != nil {
		return err
	}
	return tlsReachable(ctx, n.PeerAddress(), l.tlsCA(n), "", "")
}

// ordererHealthy asks the operations endpoint and the orderer's listener.
func (l Layout) ordererHealthy(ctx context.Context, n *topology.NMI) error {
	if err := healthz(ctx, n.OrdererOperationsAddress(), l.tlsCA(n)); err != nil {
		return err
	}
	return tlsReachable(ctx, n.OrdererAddress(), l.tlsCA(n), "", "")
}

func (l Layout) chaincodeReachable(ctx context.Context, n *topology.NMI) error {
	client := filepath.Join(l.chaincodeDir(n), "client")
	return tlsReachable(ctx, n.ChaincodeAddress(), l.tlsCA(n), filepath.Join(client, "cert.pem"), filepath.Join(client, "key.pem"))
}

func (l Layout) health(ctx context.Context, proc, role, nmi, addr string, check func(context.Context) error) Health {
	h := Health{Process: proc, Role: role, NMI: nmi, Address: addr}
	h.PID, h.Running = l.procs().Running(proc)
	if !h.Running {
		h.Detail = "not running"
		return h
	}
	if err := check(ctx); err != nil {
		h.Detail = err.Error()
		return h
	}
	h.Healthy = true
	return h
}

// Leader asks the running orderers which consenter currently leads the BFT
// ordering service and returns the NMI that runs it: the one most of those
// that answer name. An orderer that has just restarted, or is behind, may
// name a leader of an older view; the others outvote it.
func (nw *Network) Leader(ctx context.Context) (string, error) {
	orderers := nw.Topology.Orderers()
	var errs []error
	votes := map[string]int{}
	answered := 0
	for _, n := range orderers {
		if _, ok := nw.procs().Running(ordererProc(n)); !ok {
			continue
		}
		id, err := nw.leaderSeenBy(ctx, n)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
			continue
		}
		if id < 1 || id > len(orderers) {
			errs = append(errs, fmt.Errorf("%s reports leader %d, not a consenter ID", n.Name, id))
			continue
		}
		answered++
		votes[orderers[id-1].Name]++
	}
	for name, v := range votes {
		if 2*v > answered {
			return name, nil
		}
	}
	return "", fmt.Errorf("no leader named by most orderers (%v): %w", votes, errors.Join(errs...))
}

// leaderSeenBy reads consensus_BFT_leader_id from an orderer's metrics, which
// the operations endpoint serves to the NMI's own TLS clients.
func (l Layout) leaderSeenBy(ctx context.Context, n *topology.NMI) (int, error) {
	status, body, err := httpsGet(ctx, n.OrdererOperationsAddress(), "/metrics", l.tlsCA(n), filepath.Join(l.user(n, UserAdmin), "tls"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "consensus_BFT_leader_id{") {
			fields := strings.Fields(line)
			return strconv.Atoi(fields[len(fields)-1])
		}
	}
	return 0, fmt.Errorf("no consensus_BFT_leader_id in its metrics (status %d)", status)
}
