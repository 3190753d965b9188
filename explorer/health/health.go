// Package health polls the operations endpoints of the consortium's peers
// and orderers, so the dashboard shows which nodes answer.
package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/inter-nmi/pki/explorer/web"
)

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
	status  []web.NodeStatus
}

// New prepares a poller; it reads every node's TLS root once.
func New(nodes []Node) (*Poller, error) {
	p := &Poller{nodes: nodes, status: make([]web.NodeStatus, len(nodes))}
	for i, n := range nodes {
		pem, err := os.ReadFile(n.TLSRootCert)
		if err != nil {
			return nil, fmt.Errorf("%s TLS root: %w", n.Name, err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		p.clients = append(p.clients, &http.Client{Timeout: 3 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}})
		p.status[i] = web.NodeStatus{Name: n.Name, Role: n.Role, NMI: n.NMI, Address: n.Address, Detail: "not checked yet"}
	}
	return p, nil
}

// Nodes returns the latest status of every node.
func (p *Poller) Nodes() []web.NodeStatus {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return append([]web.NodeStatus(nil), p.status...)
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

func (p *Poller) check(ctx context.Context, i int) web.NodeStatus {
	n := p.nodes[i]
	st := web.NodeStatus{Name: n.Name, Role: n.Role, NMI: n.NMI, Address: n.Address, Checked: time.Now().UTC()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+n.Address+"/healthz", nil)
	if err != nil {
		st.Detail = err.Error()
		return st
	}
	resp, err := p.clients[i].Do(req)
	if err != nil {
		st.Detail = err.Error()
		return st
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	st.Healthy = resp.StatusCode == http.StatusOK
	if !st.Healthy {
		st.Detail = fmt.Sprintf("%s: %s", resp.Status, body)
	}
	return st
}
