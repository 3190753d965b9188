package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const genesis = "4f71030e4adc68296714cf59925af0348070ea7506c9800888c2c17180963c64"

func valid() *Config {
	c := &Config{Listen: "127.0.0.1:8090", Channel: "metrology", GenesisBlockHash: genesis,
		Credentials: []string{"credentials.json"}, Data: "explorer.db"}
	c.TLS.Cert, c.TLS.Key = "cert.pem", "key.pem"
	c.Peer.Address, c.Peer.TLSRootCert = "peer0.ptb.example:7051", "ca.pem"
	c.Identity.MSPID, c.Identity.Cert, c.Identity.Key = "PTBMSP", "cert.pem", "key.pem"
	return c
}

func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "explorer.yaml")
	if err := valid().Save(path); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := c.GenesisHash(); err != nil || len(h) != 32 || c.GenesisBlockHash != genesis {
		t.Fatalf("genesis hash %x %v", h, err)
	}
	raw, _ := os.ReadFile(path)
	if !strings.Contains(string(raw), "genesisBlockHash: "+genesis) {
		t.Fatalf("saved:\n%s", raw)
	}
}

// The genesis block hash is required: without it the explorer would take
// block 0, and so the orderers it checks every signature against, from the
// peer it reads.
func TestGenesisBlockHashRequired(t *testing.T) {
	for value, says := range map[string]string{
		"":                       "genesisBlockHash is required",
		"4f71030e":               "64 hexadecimal digits",
		strings.Repeat("x", 64):  "64 hexadecimal digits",
		genesis + "00":           "64 hexadecimal digits",
		strings.ToUpper(genesis): "",
		"sha256:" + genesis[:57]: "64 hexadecimal digits",
	} {
		c := valid()
		c.GenesisBlockHash = value
		err := c.Validate()
		switch {
		case says == "" && err != nil:
			t.Errorf("%q: %v", value, err)
		case says != "" && (err == nil || !strings.Contains(err.Error(), says)):
			t.Errorf("%q: %v, want an error saying %q", value, err, says)
		}
	}
}
