package consortium

import (
	"path/filepath"
	"strings"
	"testing"
)

// The connection profile names every NMI's endpoints from the topology and
// its identities and tokens from the layout.
func TestProfile(t *testing.T) {
	top := realTopology(t)
	l := Layout{Root: t.TempDir()}
	if err := l.writeProfile(top); err != nil {
		t.Fatal(err)
	}
	p, err := LoadProfile(l.ProfileFile())
	if err != nil {
		t.Fatal(err)
	}
	if p.Channel != top.Channel || p.Chaincode != top.Chaincode.Name || len(p.NMIs) != len(top.NMIs) {
		t.Fatalf("profile %s/%s with %d NMIs", p.Channel, p.Chaincode, len(p.NMIs))
	}
	for i := range top.NMIs {
		n := &top.NMIs[i]
		np, err := p.NMI(n.MSPID)
		if err != nil {
			t.Fatal(err)
		}
		if byName, _ := p.NMI(n.Name); byName != np {
			t.Errorf("%s: by name and by MSP ID differ", n.Name)
		}
		if np.Peer.Address != n.PeerAddress() || np.Peer.HostName != n.PeerHost() || np.PeerOperations != n.PeerOperationsAddress() ||
			np.Registry != RegistryURL(n) || np.RegistryOperations != "https://"+n.RegistryOperationsAddress() || np.TLSRootCert != l.TLSCACert(n) {
			t.Errorf("%s endpoints %+v", n.Name, np)
		}
		if len(np.Users) != len(users) {
			t.Errorf("%s has %d users", n.Name, len(np.Users))
		}
		admin := np.Users[UserAdmin]
		if admin.MSPID != n.MSPID || admin.Cert != filepath.Join(l.user(n, UserAdmin), "msp", "signcerts", "cert.pem") {
			t.Errorf("%s admin %+v", n.Name, admin)
		}
		if len(np.Tokens) != len(roleIdentity) {
			t.Errorf("%s has %d tokens for %d roles", n.Name, len(np.Tokens), len(roleIdentity))
		}
		for role, path := range np.Tokens {
			if path != filepath.Join(l.CredentialsDir(n), role+".token") {
				t.Errorf("%s %s token at %s", n.Name, role, path)
			}
		}
		switch {
		case n.Orderer == nil && np.Orderer != nil:
			t.Errorf("%s runs no orderer but its profile has one", n.Name)
		case n.Orderer != nil && (np.Orderer == nil || np.Orderer.Address != n.OrdererAddress() || np.Orderer.Process != ordererProc(n)):
			t.Errorf("%s orderer %+v", n.Name, np.Orderer)
		}
	}
	if _, err := p.NMI("NOSUCH"); err == nil {
		t.Fatal("an unknown NMI has a profile")
	}
	np, _ := p.NMI("PTB")
	if _, err := np.Dial("nobody"); err == nil || !strings.Contains(err.Error(), `no user "nobody"`) {
		t.Fatalf("Dial as an unknown user: %v", err)
	}
	if _, err := LoadProfile(filepath.Join(t.TempDir(), "network.json")); err == nil {
		t.Fatal("LoadProfile of a missing file")
	}
}
