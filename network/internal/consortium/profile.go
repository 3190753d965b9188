package consortium

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/inter-nmi/pki/network/pkg/gateway"
	"github.com/inter-nmi/pki/network/pkg/topology"
)

// Profile tells a client of a running consortium where each NMI's nodes are
// and which identities it may use: what the registry, the explorer and the
// end-to-end tests connect with.
type Profile struct {
	Channel   string       `json:"channel"`
	Chaincode string       `json:"chaincode"`
	NMIs      []NMIProfile `json:"nmis"`
}

// NMIProfile is one NMI's endpoints and client identities.
type NMIProfile struct {
	Name  string       `json:"name"`
	MSPID string       `json:"mspId"`
	Peer  gateway.Peer `json:"peer"`
	// PeerOperations is the peer's operations endpoint (/healthz, /metrics).
	PeerOperations string `json:"peerOperations"`
	// Users maps a user name (Admin, registrar, auditor, ingest) to its identity.
	Users   map[string]gateway.Identity `json:"users"`
	Orderer *OrdererProfile             `json:"orderer,omitempty"`
	// Registry is the NMI's registry API (HTTPS, its certificate from
	// TLSRootCert) and Tokens the files of its credentials, by role.
	Registry string            `json:"registry"`
	Tokens   map[string]string `json:"tokens"`
	// RegistryOperations serves the registry's /metrics, /healthz and
	// /readyz (HTTPS, the same certificate), apart from its API.
	RegistryOperations string `json:"registryOperations"`
	// TLSRootCert is the NMI's TLS CA, which its operations endpoints use too.
	TLSRootCert string `json:"tlsRootCert"`
}

// OrdererProfile is an NMI's orderer.
type OrdererProfile struct {
	Address    string `json:"address"`
	Admin      string `json:"admin"`
	Operations string `json:"operations"`
	// Process is the orderer's process name for Stop and Start.
	Process string `json:"process"`
}

// LoadProfile reads a profile written by Up.
func LoadProfile(path string) (*Profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read network profile: %w", err)
	}
	var p Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("network profile %s: %w", path, err)
	}
	return &p, nil
}

// NMI returns the profile of the NMI with the given name or MSP ID.
func (p *Profile) NMI(name string) (*NMIProfile, error) {
	for i := range p.NMIs {
		if p.NMIs[i].Name == name || p.NMIs[i].MSPID == name {
			return &p.NMIs[i], nil
		}
	}
	return nil, fmt.Errorf("no NMI %q in the network profile", name)
}

// Dial connects one of the NMI's users to the NMI's peer.
func (n *NMIProfile) Dial(user string) (*gateway.Conn, error) {
	id, ok := n.Users[user]
	if !ok {
		return nil, fmt.Errorf("NMI %s has no user %q", n.Name, user)
	}
	return gateway.Dial(n.Peer, id, gateway.DefaultOptions)
}

func (l Layout) profile(t *topology.Topology) *Profile {
	p := &Profile{Channel: t.Channel, Chaincode: t.Chaincode.Name}
	for i := range t.NMIs {
		n := &t.NMIs[i]
		np := NMIProfile{
			Name: n.Name, MSPID: n.MSPID,
			Peer:               gateway.Peer{Address: n.PeerAddress(), HostName: n.PeerHost(), TLSRootCert: l.tlsCA(n)},
			PeerOperations:     n.PeerOperationsAddress(),
			Users:              map[string]gateway.Identity{},
			Registry:           RegistryURL(n),
			RegistryOperations: "https://" + n.RegistryOperationsAddress(),
			Tokens:             map[string]string{},
			TLSRootCert:        l.tlsCA(n),
		}
		for _, u := range users {
			dir := filepath.Join(l.user(n, u.Name), "msp")
			np.Users[u.Name] = gateway.Identity{
				MSPID: n.MSPID,
				Cert:  filepath.Join(dir, "signcerts", "cert.pem"),
				Key:   filepath.Join(dir, "keystore", "priv_sk"),
			}
		}
		for role := range roleIdentity {
			np.Tokens[string(role)] = filepath.Join(l.CredentialsDir(n), string(role)+".token")
		}
		if n.Orderer != nil {
			np.Orderer = &OrdererProfile{
				Address: n.OrdererAddress(), Admin: n.OrdererAdminAddress(),
				Operations: n.OrdererOperationsAddress(), Process: ordererProc(n),
			}
		}
		p.NMIs = append(p.NMIs, np)
	}
	return p
}

func (l Layout) writeProfile(t *topology.Topology) error {
	b, err := json.MarshalIndent(l.profile(t), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(l.ProfileFile(), b, 0o644)
}
