// Package health checks the operations endpoints of the consortium's peers
// and orderers: Healthz asks one node once (the explorer's poller and the
// consortium tool's readiness checks both use it), and a Poller keeps the
// latest answer of every node, so the dashboard shows which nodes answer.
package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// NodeStatus is one node's last health check.
type NodeStatus struct {
	Name    string
	Role    string // peer, orderer, registry-api, ...
	NMI     string
	Address string
	Healthy bool
	// Detail says what the check found (the error, when unhealthy).
	Detail  string
	Checked time.Time
}

// Healthz asks the HTTPS endpoint at address (host:port) for /healthz, as a
// Fabric peer's or orderer's operations endpoint serves it, and returns nil
// if it answers 200. Any other answer is an *UnhealthyError; an endpoint
// that cannot be reached returns the client's error.
func Healthz(ctx context.Context, client *http.Client, address string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+address+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	e := &UnhealthyError{Status: resp.Status, Body: strings.TrimSpace(string(body))}
	var answer struct {
		FailedChecks []FailedCheck `json:"failed_checks"`
	}
	if json.Unmarshal(body, &answer) == nil {
		e.FailedChecks = answer.FailedChecks
	}
	return e
}

// maxBody is as much of a /healthz answer as is read.
const maxBody = 64 << 10

// UnhealthyError is an answer of /healthz other than 200 OK: Fabric answers
// 503 with the checks that failed.
type UnhealthyError struct {
	// Status is the HTTP status line's text, e.g. "503 Service Unavailable".
	Status string
	// FailedChecks are the components Fabric reports failing, if the answer
	// is its JSON.
	FailedChecks []FailedCheck
	// Body is the answer as received, trimmed.
	Body string
}

// FailedCheck is one entry of the failed_checks of Fabric's /healthz answer.
type FailedCheck struct {
	Component string `json:"component"`
	Reason    string `json:"reason"`
}

func (e *UnhealthyError) Error() string {
	if len(e.FailedChecks) > 0 {
		parts := make([]string, len(e.FailedChecks))
		for i, c := range e.FailedChecks {
			parts[i] = c.Component + ": " + c.Reason
		}
		return e.Status + ": " + strings.Join(parts, "; ")
	}
	body := e.Body
	if len(body) > 1024 {
		body = string(bytes.ToValidUTF8([]byte(body[:1024]), nil)) + "..."
	}
	return fmt.Sprintf("%s: %s", e.Status, body)
}

// Node is an operations endpoint to poll.
type Node struct {
	Name    string `yaml:"name"`
	Role    string `yaml:"role"`
	NMI     string `yaml:"nmi"`
	Address string `yaml:"address"`
	// TLSRootCert is the PEM file of the node's TLS CA.
	TLSRootCert string `yaml:"tlsRootCert"`
}

// Poller keeps the latest status of every node.
type Poller struct {
	nodes   []Node
	clients []*http.Client
	mu      sync.RWMutex
	status  []NodeStatus
}

// New prepares a poller; it reads every node's TLS root once.
func New(nodes []Node) (*Poller, error) {
	p := &Poller{nodes: nodes, status: make([]NodeStatus, len(nodes))}
	for i, n := range nodes {
		pem, err := os.ReadFile(n.TLSRootCert)
		if err != nil {
			return nil, fmt.Errorf("%s TLS root: %w", n.Name, err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		p.clients = append(p.clients, &http.Client{Timeout: 3 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}})
		p.status[i] = NodeStatus{Name: n.Name, Role: n.Role, NMI: n.NMI, Address: n.Address, Detail: "not checked yet"}
	}
	return p, nil
}

// Nodes returns the latest status of every node.
func (p *Poller) Nodes() []NodeStatus {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return append([]NodeStatus(nil), p.status...)
}

// Run polls every interval until ctx ends.
func (p *Poller) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		p.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (p *Poller) poll(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range p.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := p.check(ctx, i)
			p.mu.Lock()
			p.status[i] = st
			p.mu.Unlock()
		}()
	}
	wg.Wait()
}

func (p *Poller) check(ctx context.Context, i int) NodeStatus {
	n := p.nodes[i]
	st := NodeStatus{Name: n.Name, Role: n.Role, NMI: n.NMI, Address: n.Address, Checked: time.Now().UTC()}
	if err := Healthz(ctx, p.clients[i], n.Address); err != nil {
		st.Detail = err.Error()
		return st
	}
	st.Healthy = true
	return st
}
