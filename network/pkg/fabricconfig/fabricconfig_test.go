package fabricconfig

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendering (go test -update rewrites it); got:\n%s", path, got)
	}
}

func sample(t *testing.T, name string) *Sample {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSample(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ptbPeer is a peer as the consortium describes PTB's.
var ptbPeer = Peer{
	ID:                 "peer0.ptb.nmi.test",
	NetworkID:          "metrology",
	Address:            "127.0.0.1:7151",
	ChaincodeAddress:   "127.0.0.1:7152",
	OperationsAddress:  "127.0.0.1:7153",
	MSPID:              "PTBMSP",
	MSPDir:             "/run/nmi/ptb/crypto/peers/peer0/msp",
	TLSCert:            "/run/nmi/ptb/crypto/peers/peer0/tls/cert.pem",
	TLSKey:             "/run/nmi/ptb/crypto/peers/peer0/tls/key.pem",
	TLSRootCert:        "/run/nmi/ptb/crypto/tlsca/cert.pem",
	OperationsClientCA: "/run/nmi/ptb/crypto/tlsclientca/cert.pem",
	DataDir:            "/run/nmi/ptb/peer/data",
	ExternalBuilder:    "/src/network/builder",
}

var ptbOrderer = Orderer{
	ListenHost:        "127.0.0.1",
	Port:              7150,
	TLSCert:           "/run/nmi/ptb/crypto/orderers/orderer0/tls/cert.pem",
	TLSKey:            "/run/nmi/ptb/crypto/orderers/orderer0/tls/key.pem",
	TLSRootCert:       "/run/nmi/ptb/crypto/tlsca/cert.pem",
	MSPID:             "PTBMSP",
	MSPDir:            "/run/nmi/ptb/crypto/orderers/orderer0/msp",
	DataDir:           "/run/nmi/ptb/orderer/data",
	OperationsAddress: "127.0.0.1:7155",
	AdminAddress:      "127.0.0.1:7154",
	ClientCA:          "/run/nmi/ptb/crypto/tlsclientca/cert.pem",
}

func TestPeerConfig(t *testing.T) {
	s := sample(t, "core.yaml")
	b, err := PeerConfig(s, ptbPeer)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "peer.golden.yaml", b)

	profiled := ptbPeer
	profiled.ProfileAddress = "127.0.0.1:7193"
	b, err = PeerConfig(s, profiled)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "peer-pprof.golden.yaml", b)
}

func TestOrdererConfig(t *testing.T) {
	s := sample(t, "orderer.yaml")
	b, err := OrdererConfig(s, ptbOrderer)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "orderer.golden.yaml", b)

	profiled := ptbOrderer
	profiled.ProfileAddress = "127.0.0.1:7195"
	b, err = OrdererConfig(s, profiled)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "orderer-pprof.golden.yaml", b)
}

// Two NMIs, one running an orderer: the shape of the real topology.
func TestConfigTx(t *testing.T) {
	ptb := NewOrganization("PTB", "PTBMSP", "/run/exchange/ptb/msp", AnchorPeer{Host: "127.0.0.1", Port: 7151}, "127.0.0.1:7150")
	nmim := NewOrganization("NMIM", "NMIMMSP", "/run/exchange/nmim/msp", AnchorPeer{Host: "127.0.0.1", Port: 7551}, "")
	b, err := ConfigTx(Channel{
		Organizations:        []Organization{ptb, nmim},
		OrdererOrganizations: []Organization{ptb},
		Consenters: []Consenter{{ID: 1, Host: "127.0.0.1", Port: 7150, MSPID: "PTBMSP",
			Identity:      "/run/exchange/ptb/orderer/identity.pem",
			ClientTLSCert: "/run/exchange/ptb/orderer/tls.pem",
			ServerTLSCert: "/run/exchange/ptb/orderer/tls.pem"}},
		BatchInterval:   50 * time.Millisecond,
		MaxMessageCount: 500,
	})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "configtx.golden.yaml", b)

	b, err = OrgConfigTx(nmim)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "orgdef.golden.yaml", b)
}

// A topology's failure detection settings reach the channel's SmartBFT
// options; those it leaves unset keep the defaults.
func TestConfigTxDetection(t *testing.T) {
	b, err := ConfigTx(Channel{BatchInterval: time.Second, MaxMessageCount: 10,
		Detection: Detection{LeaderHeartbeatTimeout: 7 * time.Second, SpeedUpViewChange: true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"LeaderHeartbeatTimeout: 7s",
		"LeaderHeartbeatCount: " + strconv.Itoa(DefaultDetection.LeaderHeartbeatCount),
		"ViewChangeTimeout: " + DefaultDetection.ViewChangeTimeout.String(),
		"SpeedUpViewChange: true",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("configtx.yaml lacks %q", want)
		}
	}
}

// Rendering starts from the sample every time: one node's settings never
// leak into the next node's configuration.
func TestSampleUnchanged(t *testing.T) {
	s := sample(t, "core.yaml")
	profiled := ptbPeer
	profiled.ProfileAddress = "127.0.0.1:7193"
	if _, err := PeerConfig(s, profiled); err != nil {
		t.Fatal(err)
	}
	b, err := PeerConfig(s, ptbPeer)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Peer struct {
			Profile struct {
				Enabled bool `yaml:"enabled"`
			} `yaml:"profile"`
		} `yaml:"peer"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Peer.Profile.Enabled {
		t.Fatal("the profiled peer's setting reached the next rendering")
	}
}

func TestRender(t *testing.T) {
	s, err := ParseSample([]byte("# comment kept\na:\n  b: 1 # old\nlist: [1, 2]\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Render([]Setting{{"a.b", 2}, {"a.c.d", "new"}, {"e", []string{"x"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := "# comment kept\na:\n    b: 2\n    c:\n        d: new\nlist: [1, 2]\ne:\n    - x\n"
	if string(b) != want {
		t.Fatalf("Render =\n%s\nwant\n%s", b, want)
	}
	if _, err := s.Render([]Setting{{"list.x", 1}}); err == nil || !strings.Contains(err.Error(), "list.x: list is not a mapping") {
		t.Fatalf("setting below a sequence: %v", err)
	}
	if _, err := s.Render([]Setting{{"a.b.c", 1}}); err == nil || !strings.Contains(err.Error(), "a.b.c: a.b is not a mapping") {
		t.Fatalf("setting below a scalar: %v", err)
	}
}

func TestParseSample(t *testing.T) {
	for name, in := range map[string]string{
		"empty":    "",
		"comments": "# nothing else\n",
		"not YAML": "a: [1,\n",
	} {
		if _, err := ParseSample([]byte(in)); err == nil {
			t.Errorf("%s: ParseSample accepted %q", name, in)
		}
	}
}
