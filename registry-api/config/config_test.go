package config_test

import (
	"strings"
	"testing"

	"github.com/inter-nmi/pki/network/pkg/gateway"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/config"
	"github.com/inter-nmi/pki/registry-api/idempotency"
)

func valid() *config.Config {
	c := &config.Config{Listen: "127.0.0.1:8081", Operations: "127.0.0.1:9081", OperationsClientCA: "tls-ca.pem",
		NMI: "PTBMSP", Channel: "metrology", Chaincode: "pki", Credentials: "credentials.json", Data: "registry.db",
		Peer: gateway.Peer{Address: "127.0.0.1:7151", TLSRootCert: "peer-ca.pem"}, Identities: map[api.Role]gateway.Identity{}}
	c.TLS.Cert, c.TLS.Key = "cert.pem", "key.pem"
	for _, r := range api.Roles {
		c.Identities[r] = gateway.Identity{MSPID: "PTBMSP"}
	}
	return c
}

func TestValidate(t *testing.T) {
	if err := valid().Validate(); err != nil {
		t.Fatalf("a valid configuration: %v", err)
	}
	// An operations address without the client CA would serve /metrics to
	// anyone who reaches it: the registry refuses to start.
	open := valid()
	open.OperationsClientCA = ""
	if err := open.Validate(); err == nil || !strings.Contains(err.Error(), "operationsClientCA is required") {
		t.Errorf("operations without a client CA: %v", err)
	}
	// No operations address: no metrics at all, and no CA needed.
	none := valid()
	none.Operations, none.OperationsClientCA = "", ""
	if err := none.Validate(); err != nil {
		t.Errorf("no operations address: %v", err)
	}
	small := valid()
	small.DataMaxMiB = 8
	if err := small.Validate(); err == nil || !strings.Contains(err.Error(), "dataMaxMiB 8 is below 16") {
		t.Errorf("a bound of 8 MiB: %v", err)
	}
	same := valid()
	same.Operations = same.Listen
	if err := same.Validate(); err == nil || !strings.Contains(err.Error(), "the API's address") {
		t.Errorf("operations on the API's address: %v", err)
	}
}

func TestDataMaxBytes(t *testing.T) {
	c := valid()
	if got := c.DataMaxBytes(); got != idempotency.DefaultMaxBytes {
		t.Errorf("by default %d bytes, want %d", got, idempotency.DefaultMaxBytes)
	}
	c.DataMaxMiB = 256
	if got := c.DataMaxBytes(); got != 256<<20 {
		t.Errorf("dataMaxMiB 256: %d bytes", got)
	}
}
