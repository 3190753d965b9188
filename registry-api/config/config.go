// Package config is a registry's configuration file: where it listens, which
// NMI it serves, its peer, the Fabric identity behind each role, and where
// its credentials and data are kept. The consortium tool writes one per NMI.
package config

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/inter-nmi/pki/network/pkg/configfile"
	"github.com/inter-nmi/pki/network/pkg/gateway"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/idempotency"
	"github.com/inter-nmi/pki/registry-api/ledger"
)

// Config of one NMI's registry.
type Config struct {
	// Listen is the HTTPS listen address of the API.
	Listen string `yaml:"listen"`
	// Operations is the HTTPS listen address (same certificate) of
	// /metrics, /healthz and /readyz for the NMI's monitoring: an address
	// only the NMI's own network reaches, never the API's. Empty: no
	// metrics are served.
	Operations string `yaml:"operations,omitempty"`
	// OperationsClientCA is the CA whose client certificates /metrics on
	// the operations address requires (the NMI's TLS client CA, as for its
	// peer's and orderer's /metrics); required with Operations, since the
	// metrics tell who calls what how often.
	OperationsClientCA string `yaml:"operationsClientCA,omitempty"`
	TLS                struct {
		Cert string `yaml:"cert"`
		Key  string `yaml:"key"`
	} `yaml:"tls"`
	// NMI is the MSP ID the registry speaks for.
	NMI       string       `yaml:"nmi"`
	Channel   string       `yaml:"channel"`
	Chaincode string       `yaml:"chaincode"`
	Peer      gateway.Peer `yaml:"peer"`
	// Identities maps each role to the NMI's Fabric identity acting for it.
	Identities map[api.Role]gateway.Identity `yaml:"identities"`
	// Credentials is the file of hashed bearer tokens.
	Credentials string `yaml:"credentials"`
	// Data is the registry's database (idempotency answers).
	Data string `yaml:"data"`
	// DataMaxMiB bounds the live records in Data, in MiB: beyond it the
	// oldest go first, before their 24 hours are over (default 1024, at
	// least 16).
	DataMaxMiB int64 `yaml:"dataMaxMiB,omitempty"`
	// Readings is its index of the peer's blocks (measurements and
	// refusals); default: readings.db beside Data.
	Readings string `yaml:"readings,omitempty"`
	// GroupSlots is how many transactions of grouped single deliveries may
	// be in flight at once (default 2).
	GroupSlots int `yaml:"groupSlots,omitempty"`
	// GroupWindow is how long a group gathers at least (default 5ms).
	GroupWindow time.Duration `yaml:"groupWindow,omitempty"`
	LogLevel    string        `yaml:"logLevel"`
}

// Load reads and checks a configuration file: configfile.Load refuses
// unknown settings and runs Validate.
func Load(path string) (*Config, error) {
	c, err := configfile.Load[Config](path)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate reports every missing or malformed setting.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %w", c.Listen, err))
	}
	if c.Operations != "" {
		if _, _, err := net.SplitHostPort(c.Operations); err != nil {
			errs = append(errs, fmt.Errorf("operations %q: %w", c.Operations, err))
		} else if c.Operations == c.Listen {
			errs = append(errs, fmt.Errorf("operations %q is the API's address: the metrics must be served apart from the API", c.Operations))
		}
		if c.OperationsClientCA == "" {
			errs = append(errs, fmt.Errorf("operationsClientCA is required with operations: /metrics answers only clients of the NMI's TLS client CA, never anyone who reaches the address"))
		}
	}
	if c.DataMaxMiB != 0 && c.DataMaxMiB < minDataMiB {
		errs = append(errs, fmt.Errorf("dataMaxMiB %d is below %d: the transactions of the requests in flight must fit (some 130 kB per batch of 1,000 readings)",
			c.DataMaxMiB, minDataMiB))
	}
	errs = append(errs, configfile.Required(map[string]string{"tls.cert": c.TLS.Cert, "tls.key": c.TLS.Key, "nmi": c.NMI,
		"channel": c.Channel, "chaincode": c.Chaincode, "peer.address": c.Peer.Address,
		"peer.tlsRootCert": c.Peer.TLSRootCert, "credentials": c.Credentials, "data": c.Data})...)
	for _, r := range api.Roles {
		id, ok := c.Identities[r]
		if !ok {
			errs = append(errs, fmt.Errorf("identities.%s is required", r))
			continue
		}
		if id.MSPID != c.NMI {
			errs = append(errs, fmt.Errorf("identities.%s belongs to %s, not to %s", r, id.MSPID, c.NMI))
		}
	}
	return errors.Join(errs...)
}

// Save writes the configuration.
func (c *Config) Save(path string) error {
	return configfile.Save(path, c, 0o644)
}

// Ledger is the ledger configuration of the registry.
func (c *Config) Ledger() ledger.Config {
	return ledger.Config{Peer: c.Peer, Identities: c.Identities, Channel: c.Channel, Chaincode: c.Chaincode}
}

// minDataMiB is the least bound of Data.
const minDataMiB = 16

// DataMaxBytes bounds the live records in Data.
func (c *Config) DataMaxBytes() int64 {
	if c.DataMaxMiB == 0 {
		return idempotency.DefaultMaxBytes
	}
	return c.DataMaxMiB << 20
}

// ReadingsPath is where the index of the peer's blocks is kept.
func (c *Config) ReadingsPath() string {
	if c.Readings != "" {
		return c.Readings
	}
	return filepath.Join(filepath.Dir(c.Data), "readings.db")
}
