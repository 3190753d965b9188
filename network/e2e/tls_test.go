//go:build e2e

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMutualTLSClients presents each certificate an NMI's hosts hold to
// each of its mutual-TLS endpoints: the orderer's channel participation
// API and operations /metrics accept the admin's client certificate only,
// the chaincode service the peer's; the registry's and the explorer's
// server certificates and the nodes' own are refused.
func TestMutualTLSClients(t *testing.T) {
	ptb, err := network.Topology.NMI("PTB")
	if err != nil {
		t.Fatal(err)
	}
	crypto, nmi := network.CryptoDir(ptb), filepath.Join(network.Root, "nmi", "ptb")
	certs := map[string]string{
		"admin":             filepath.Join(crypto, "users", "Admin", "tls"),
		"peer to chaincode": filepath.Join(nmi, "chaincode", "client"),
		"registry server":   filepath.Join(nmi, "registry", "tls"),
		"explorer server":   filepath.Join(network.Root, "explorer", "tls"),
		"peer node":         filepath.Join(crypto, "peers", "peer0", "tls"),
		"orderer node":      filepath.Join(crypto, "orderers", "orderer0", "tls"),
	}
	endpoints := []struct {
		name, address string
		// path is fetched over HTTPS; without one, the TLS handshake
		// alone is the verdict.
		path    string
		accepts string
	}{
		{"orderer channel participation API", ptb.OrdererAdminAddress(), "/participation/v1/channels", "admin"},
		{"orderer operations", ptb.OrdererOperationsAddress(), "/metrics", "admin"},
		{"peer operations", ptb.PeerOperationsAddress(), "/metrics", "admin"},
		{"registry operations", ptb.RegistryOperationsAddress(), "/metrics", "admin"},
		{"chaincode service", ptb.ChaincodeAddress(), "", "peer to chaincode"},
	}
	roots := x509.NewCertPool()
	pem, err := os.ReadFile(network.TLSCACert(ptb))
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(pem)
	for _, e := range endpoints {
		for who, dir := range certs {
			pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
			if err != nil {
				t.Fatalf("%s: %v", who, err)
			}
			host, _, _ := strings.Cut(e.address, ":")
			// TLS 1.2: the server checks the client's certificate within
			// the handshake, so the handshake's result is its verdict.
			cfg := &tls.Config{RootCAs: roots, ServerName: host, Certificates: []tls.Certificate{pair}, MaxVersion: tls.VersionTLS12}
			var verdict error
			if e.path == "" {
				conn, err := tls.DialWithDialer(dialer, "tcp", e.address, cfg)
				if err == nil {
					conn.Close()
				}
				verdict = err
			} else {
				hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
				resp, err := hc.Get("https://" + e.address + e.path)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("HTTP status %d", resp.StatusCode)
					}
				}
				hc.CloseIdleConnections()
				verdict = err
			}
			if accepted := verdict == nil; accepted != (who == e.accepts) {
				t.Errorf("%s presented to the %s: accepted=%v (%v), want accepted only for %s", who, e.name, accepted, verdict, e.accepts)
			}
		}
	}
}

var dialer = &net.Dialer{Timeout: 10 * time.Second}
