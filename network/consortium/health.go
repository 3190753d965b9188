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
	"time"

	"github.com/inter-nmi/pki/network/topology"
)

// healthz asks a node's operations endpoint whether it is healthy.
func healthz(ctx context.Context, address, tlsRootCert string) error {
	pem, err := os.ReadFile(tlsRootCert)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+address+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	return nil
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
// passes. Polling a health endpoint is the readiness signal; there are no
// fixed sleeps.
func (l Layout) waitFor(ctx context.Context, proc string, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		if proc != "" {
			if _, alive := l.running(proc); !alive {
				return fmt.Errorf("%s exited; see %s", proc, l.LogFile(proc))
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s not ready after %s: %w (log: %s)", proc, timeout, last, l.LogFile(proc))
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
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
	var out []Health
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
	h.PID, h.Running = l.running(proc)
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
