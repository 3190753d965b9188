package consortium

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/inter-nmi/pki/network/pkg/msp"
	"github.com/inter-nmi/pki/network/pkg/topology"
)

// GenerateCrypto creates an NMI's CAs, nodes and users in its own directory
// (reusing whatever exists) and exports its public part for the consortium.
func (l Layout) GenerateCrypto(n *topology.NMI) error {
	org, err := msp.Open(l.CryptoDir(n), n.MSPID, n.Domain, n.Country)
	if err != nil {
		return fmt.Errorf("%s crypto: %w", n.Name, err)
	}
	hosts := func(name string) []string { return uniq(name, n.Host, "localhost", "127.0.0.1") }
	if err := org.Enrol(l.peerNode(n), msp.Identity{Name: n.PeerHost(), OU: msp.OUPeer, Hosts: hosts(n.PeerHost())}); err != nil {
		return fmt.Errorf("%s peer identity: %w", n.Name, err)
	}
	if n.Orderer != nil {
		if err := org.Enrol(l.ordererNode(n), msp.Identity{Name: n.OrdererHost(), OU: msp.OUOrderer, Hosts: hosts(n.OrdererHost())}); err != nil {
			return fmt.Errorf("%s orderer identity: %w", n.Name, err)
		}
	}
	for _, u := range users {
		dir := l.user(n, u.Name)
		u.Name += "@" + n.Domain
		if err := org.Enrol(dir, u); err != nil {
			return fmt.Errorf("%s user %s: %w", n.Name, u.Name, err)
		}
	}
	ccHost := "chaincode." + n.Domain
	if err := org.ServerTLSPair(filepath.Join(l.chaincodeDir(n), "server"), ccHost, hosts(ccHost)); err != nil {
		return fmt.Errorf("%s chaincode TLS: %w", n.Name, err)
	}
	if err := org.ChaincodeClientTLSPair(filepath.Join(l.chaincodeDir(n), "client"), n.PeerHost()); err != nil {
		return fmt.Errorf("%s chaincode client TLS: %w", n.Name, err)
	}
	return l.export(n)
}

// export copies the NMI's public MSP and its orderer's public certificates to
// the exchange: exactly what the NMI would send the others.
func (l Layout) export(n *topology.NMI) error {
	dst := l.exchangeDir(n)
	if err := copyTree(filepath.Join(l.CryptoDir(n), "msp"), filepath.Join(dst, "msp")); err != nil {
		return fmt.Errorf("export %s MSP: %w", n.Name, err)
	}
	if n.Orderer == nil {
		return nil
	}
	node := l.ordererNode(n)
	for _, f := range []struct{ src, name string }{
		{filepath.Join(node, "msp", "signcerts", "cert.pem"), "identity.pem"},
		{filepath.Join(node, "tls", "cert.pem"), "tls.pem"},
	} {
		if err := copyFile(f.src, filepath.Join(dst, "orderer", f.name)); err != nil {
			return fmt.Errorf("export %s orderer: %w", n.Name, err)
		}
	}
	return nil
}

func copyTree(src, dst string) error { return copyTreeWith(src, dst, copyFile) }

// copyTreeWith copies a directory tree, each file with copy.
func copyTreeWith(src, dst string, copy func(src, dst string) error) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		return copy(path, filepath.Join(dst, rel))
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func uniq(items ...string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range items {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
