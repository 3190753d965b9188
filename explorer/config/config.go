// Package config is the explorer's configuration file: where it listens,
// whose peer it reads the channel from and with which identity, whose
// credentials it accepts, where its index lives and which nodes it watches.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"

	"github.com/inter-nmi/pki/network/pkg/configfile"
	"github.com/inter-nmi/pki/network/pkg/gateway"
	"github.com/inter-nmi/pki/network/pkg/health"
)

// Config of the explorer.
type Config struct {
	Listen string `yaml:"listen"`
	TLS    struct {
		Cert string `yaml:"cert"`
		Key  string `yaml:"key"`
	} `yaml:"tls"`
	Channel string `yaml:"channel"`
	// GenesisBlockHash pins the channel's genesis block: the SHA-256 header
	// hash of block 0 (chain.GenesisHash), in hex. Required: block 0 names
	// the orderers whose signatures every later block is checked against,
	// so it must come from the consortium, out of band, not from the peer.
	GenesisBlockHash string       `yaml:"genesisBlockHash"`
	Peer             gateway.Peer `yaml:"peer"`
	// Identity reads the channel: an auditor's, it writes nothing.
	Identity gateway.Identity `yaml:"identity"`
	// Credentials are files of hashed tokens; their auditor tokens sign in.
	Credentials []string `yaml:"credentials"`
	// Data is the index database.
	Data     string        `yaml:"data"`
	Nodes    []health.Node `yaml:"nodes"`
	LogLevel string        `yaml:"logLevel"`
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

// Validate reports every missing setting.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %w", c.Listen, err))
	}
	errs = append(errs, configfile.Required(map[string]string{"tls.cert": c.TLS.Cert, "tls.key": c.TLS.Key, "channel": c.Channel,
		"peer.address": c.Peer.Address, "peer.tlsRootCert": c.Peer.TLSRootCert, "identity.mspId": c.Identity.MSPID,
		"identity.cert": c.Identity.Cert, "identity.key": c.Identity.Key, "data": c.Data})...)
	if _, err := c.GenesisHash(); err != nil {
		errs = append(errs, err)
	}
	if len(c.Credentials) == 0 {
		errs = append(errs, errors.New("credentials: at least one file is required"))
	}
	return errors.Join(errs...)
}

// GenesisHash returns the pinned genesis block hash.
func (c *Config) GenesisHash() ([]byte, error) {
	if c.GenesisBlockHash == "" {
		return nil, errors.New("genesisBlockHash is required: the header hash of the channel's block 0, obtained from the consortium")
	}
	h, err := hex.DecodeString(c.GenesisBlockHash)
	if err != nil || len(h) != sha256.Size {
		return nil, fmt.Errorf("genesisBlockHash %q: want the SHA-256 header hash of block 0, 64 hexadecimal digits", c.GenesisBlockHash)
	}
	return h, nil
}

// Save writes the configuration.
func (c *Config) Save(path string) error {
	return configfile.Save(path, c, 0o644)
}
