package consortium

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/inter-nmi/pki/network/pkg/credentials"
	"github.com/inter-nmi/pki/network/pkg/gateway"
	"github.com/inter-nmi/pki/network/pkg/msp"
	"github.com/inter-nmi/pki/network/pkg/supervise"
	"github.com/inter-nmi/pki/network/pkg/topology"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/config"
)

// roleIdentity is the NMI user that acts on the ledger for each registry role.
// The billing parties' authority is their signatures on the statements they
// submit; their Fabric identity only transports them, so it is the ingest
// user's (any client but an auditor may submit billing statements).
var roleIdentity = map[api.Role]string{
	api.RoleOperator: UserRegistrar,
	api.RoleIngest:   UserIngest,
	api.RoleAuditor:  UserAuditor,
	api.RoleCustomer: UserIngest,
	api.RoleUtility:  UserIngest,
}

// RegistryURL is where an NMI's registry answers.
func RegistryURL(n *topology.NMI) string { return "https://" + n.RegistryAddress() }

// prepareRegistry writes an NMI's registry configuration, its TLS pair (from
// the NMI's TLS CA) and its credentials: one token per role, kept hashed by
// the registry and in clear in CredentialsDir for local use.
func (nw *Network) prepareRegistry(n *topology.NMI) (string, error) {
	org, err := msp.Open(nw.CryptoDir(n), n.MSPID, n.Domain, n.Country)
	if err != nil {
		return "", err
	}
	dir := nw.registryDir(n)
	host := "registry." + n.Domain
	if err := org.ServerTLSPair(filepath.Join(dir, "tls"), host, uniq(host, n.Host, "localhost", "127.0.0.1")); err != nil {
		return "", fmt.Errorf("%s registry TLS: %w", n.Name, err)
	}
	if err := credentials.Provision(n.Name, filepath.Join(dir, "credentials.json"), nw.CredentialsDir(n)); err != nil {
		return "", fmt.Errorf("%s registry credentials: %w", n.Name, err)
	}
	cfg := &config.Config{
		Listen: n.RegistryAddress(), Operations: n.RegistryOperationsAddress(), NMI: n.MSPID, Channel: nw.Topology.Channel, Chaincode: nw.Topology.Chaincode.Name,
		Peer:        gateway.Peer{Address: n.PeerAddress(), HostName: n.PeerHost(), TLSRootCert: nw.tlsCA(n)},
		Identities:  map[api.Role]gateway.Identity{},
		Credentials: filepath.Join(dir, "credentials.json"),
		Data:        nw.RegistryDatabase(n),
		Readings:    nw.RegistryIndex(n),
		LogLevel:    "info",
	}
	cfg.TLS.Cert, cfg.TLS.Key = filepath.Join(dir, "tls", "cert.pem"), filepath.Join(dir, "tls", "key.pem")
	cfg.OperationsClientCA = nw.tlsClientCA(n)
	for role, user := range roleIdentity {
		msp := filepath.Join(nw.user(n, user), "msp")
		cfg.Identities[role] = gateway.Identity{MSPID: n.MSPID,
			Cert: filepath.Join(msp, "signcerts", "cert.pem"), Key: filepath.Join(msp, "keystore", "priv_sk")}
	}
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "registry.yaml")
	return path, cfg.Save(path)
}

func (nw *Network) startRegistries(ctx context.Context) error {
	for i := range nw.Topology.NMIs {
		if err := nw.launchRegistry(&nw.Topology.NMIs[i]); err != nil {
			return err
		}
	}
	return nw.forEach(ctx, nw.awaitRegistry)
}

// startRegistry starts one NMI's registry and waits until it is ready.
func (nw *Network) startRegistry(ctx context.Context, n *topology.NMI) error {
	if err := nw.launchRegistry(n); err != nil {
		return err
	}
	return nw.awaitRegistry(ctx, n)
}

func (nw *Network) launchRegistry(n *topology.NMI) error {
	path, err := nw.prepareRegistry(n)
	if err != nil {
		return err
	}
	var env []string
	if profiling() {
		env = append(env, "REGISTRY_PPROF_ADDRESS="+profileAddress(n, n.Registry.Port))
	}
	_, err = nw.procs().Start(supervise.Process{Name: registryProc(n), Bin: nw.bin("registry-api"), Dir: nw.registryDir(n), Netns: nw.namespace(n),
		Args: []string{"-config", path}, Env: env})
	return err
}

func (nw *Network) awaitRegistry(ctx context.Context, n *topology.NMI) error {
	return nw.waitFor(ctx, registryProc(n), nodeStartTimeout, func(ctx context.Context) error {
		return nw.registryReady(ctx, n)
	})
}

// registryReady asks the registry's /readyz: it answers 200 only while its
// peer answers.
func (l Layout) registryReady(ctx context.Context, n *topology.NMI) error {
	status, body, err := httpsGet(ctx, n.RegistryAddress(), "/readyz", l.tlsCA(n), "")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%d: %s", status, body)
	}
	return nil
}
