package consortium

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/network/internal/consortium/ccaas"
	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/network/pkg/supervise"
	"github.com/inter-nmi/pki/network/pkg/topology"
)

// The meter-PKI chaincode runs as a service: each NMI packages its own
// connection details, installs the package on its peer and runs the server.
// Its definition on the channel (version, endorsement policy, sequence) is
// agreed by the Fabric lifecycle: every member NMI approves, one commits.
//
// Nothing about the definition is remembered locally: the next sequence,
// what is committed and who has approved are read from the channel each
// time, so a deployment interrupted at any point (a crashed peer, a killed
// command) is finished by running the same command again.

// chaincodeLabel is the package label; every NMI packages its own connection
// details, so package IDs differ per NMI while the label is shared.
func (nw *Network) chaincodeLabel() string {
	c := nw.Topology.Chaincode
	return c.Name + "_" + c.Version
}

// chaincodePackage writes (once) the NMI's chaincode-as-a-service package and
// returns its path and package ID (label:SHA-256 of the package file, as
// peer lifecycle chaincode calculatepackageid computes it).
func (nw *Network) chaincodePackage(n *topology.NMI) (string, string, error) {
	path := filepath.Join(nw.chaincodeDir(n), "package.tar.gz")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := nw.writeChaincodePackage(n, path); err != nil {
			return "", "", err
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	return path, ccaas.ID(nw.chaincodeLabel(), b), nil
}

func (nw *Network) writeChaincodePackage(n *topology.NMI, path string) error {
	read := func(p string) (string, error) {
		b, err := os.ReadFile(p)
		return string(b), err
	}
	client := filepath.Join(nw.chaincodeDir(n), "client")
	key, err := read(filepath.Join(client, "key.pem"))
	if err != nil {
		return err
	}
	cert, err := read(filepath.Join(client, "cert.pem"))
	if err != nil {
		return err
	}
	root, err := read(nw.tlsCA(n))
	if err != nil {
		return err
	}
	pkg, err := ccaas.Package(nw.chaincodeLabel(), ccaas.Connection{Address: n.ChaincodeAddress(), ClientKey: key, ClientCert: cert, RootCert: root})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// The package holds the peer's client key for the chaincode service.
	return os.WriteFile(path, pkg, 0o600)
}

func (nw *Network) startChaincode(ctx context.Context) error {
	for i := range nw.Topology.NMIs {
		if err := nw.launchChaincode(&nw.Topology.NMIs[i]); err != nil {
			return err
		}
	}
	return nw.forEach(ctx, nw.awaitChaincode)
}

// StartChaincode starts an NMI's chaincode server (if not running) and waits
// until it accepts TLS connections.
func (nw *Network) StartChaincode(ctx context.Context, name string) error {
	n, err := nw.Topology.NMI(name)
	if err != nil {
		return err
	}
	if err := nw.launchChaincode(n); err != nil {
		return err
	}
	return nw.awaitChaincode(ctx, n)
}

func (nw *Network) launchChaincode(n *topology.NMI) error {
	_, id, err := nw.chaincodePackage(n)
	if err != nil {
		return err
	}
	server := filepath.Join(nw.chaincodeDir(n), "server")
	env := []string{
		"CHAINCODE_ID=" + id,
		"CHAINCODE_SERVER_ADDRESS=" + n.ChaincodeAddress(),
		"CHAINCODE_TLS_CERT=" + filepath.Join(server, "cert.pem"),
		"CHAINCODE_TLS_KEY=" + filepath.Join(server, "key.pem"),
		"CHAINCODE_CLIENT_CA_CERT=" + filepath.Join(nw.CryptoDir(n), "chaincodeca", "cert.pem"),
	}
	if profiling() {
		env = append(env, "CHAINCODE_PPROF_ADDRESS="+profileAddress(n, n.ChaincodeServer.Port))
	}
	_, err = nw.procs().Start(supervise.Process{Name: chaincodeProc(n), Bin: nw.bin("pki-chaincode"), Dir: nw.chaincodeDir(n), Netns: nw.namespace(n), Env: env})
	return err
}

func (nw *Network) awaitChaincode(ctx context.Context, n *topology.NMI) error {
	return nw.waitFor(ctx, chaincodeProc(n), nodeStartTimeout, func(ctx context.Context) error {
		return nw.chaincodeReachable(ctx, n)
	})
}

func (nw *Network) install(ctx context.Context, n *topology.NMI) error {
	path, id, err := nw.chaincodePackage(n)
	if err != nil {
		return err
	}
	out, err := nw.peerCLI(ctx, n, "lifecycle", "chaincode", "queryinstalled", "-O", "json")
	if err != nil {
		return err
	}
	if strings.Contains(string(out), `"`+id+`"`) {
		return nil
	}
	_, err = nw.peerCLI(ctx, n, "lifecycle", "chaincode", "install", path)
	return err
}

// definition is a chaincode definition as the consortium agrees on it.
type definition struct {
	Sequence int
	Version  string
	// Endorsers of Members' peers must endorse each transaction.
	Endorsers int
	// Members are the MSP IDs whose peers the endorsement policy counts.
	Members []string
}

// policy is the endorsement policy in Fabric's policy language.
func (d definition) policy() string {
	peers := make([]string, len(d.Members))
	for i, m := range d.Members {
		peers[i] = fmt.Sprintf("'%s.peer'", m)
	}
	return fmt.Sprintf("OutOf(%d, %s)", d.Endorsers, strings.Join(peers, ", "))
}

// sameAs reports whether two definitions agree in everything but the
// sequence: then the committed one is what is wanted.
func (d definition) sameAs(o definition) bool {
	return d.Version == o.Version && d.Endorsers == o.Endorsers &&
		slices.Equal(slices.Sorted(slices.Values(d.Members)), slices.Sorted(slices.Values(o.Members)))
}

// wantedDefinition is the definition the run's topology asks for, counting
// the peers of the NMIs that are members of the channel (cfg): a newcomer
// counts once the update admitting it is committed, a leaver stops counting
// once the update removing it is.
func (nw *Network) wantedDefinition(cfg *channel.Config) (definition, []*topology.NMI) {
	members := map[string]bool{}
	for _, m := range cfg.Members {
		members[m.MSPID] = true
	}
	c := nw.Topology.Chaincode
	d := definition{Version: c.Version}
	var nmis []*topology.NMI
	for i := range nw.Topology.NMIs {
		n := &nw.Topology.NMIs[i]
		if members[n.MSPID] {
			d.Members = append(d.Members, n.MSPID)
			nmis = append(nmis, n)
		}
	}
	d.Endorsers = min(c.Endorsers, len(d.Members))
	return d, nmis
}

// channelView reads the channel's configuration through the first NMI of
// the topology whose peer answers as a member. A newcomer's peer that has
// not caught up, or a stopped peer, is passed over.
func (nw *Network) channelView(ctx context.Context) (*channel.Config, *topology.NMI, error) {
	var errs []error
	for i := range nw.Topology.NMIs {
		n := &nw.Topology.NMIs[i]
		raw, err := nw.Config(ctx, n.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
			continue
		}
		cfg, err := channel.Parse(raw)
		if err != nil {
			return nil, nil, err
		}
		if slices.ContainsFunc(cfg.Members, func(m channel.Member) bool { return m.MSPID == n.MSPID }) {
			return cfg, n, nil
		}
	}
	return nil, nil, fmt.Errorf("no member's peer answers with the channel configuration: %w", errors.Join(errs...))
}

// deployDefinition approves and commits the wanted chaincode definition,
// unless the channel has it committed already. Approvals already made for
// the next sequence are kept; each step waits for the state the next one
// depends on: every approval committed at every member's peer before the
// commit, the commit at every member's peer before the gateways are tried.
func (nw *Network) deployDefinition(ctx context.Context) error {
	cfg, via, err := nw.channelView(ctx)
	if err != nil {
		return err
	}
	want, nmis := nw.wantedDefinition(cfg)
	current, err := nw.committedDefinition(ctx, via)
	if err != nil {
		return err
	}
	if current.Sequence > 0 && current.sameAs(want) {
		nw.say("    committed already: sequence %d, %s", current.Sequence, current.policy())
		if err := nw.ready(ctx, nmis); err != nil {
			return err
		}
		return nw.recordMembers(ctx, via, nmis)
	}
	want.Sequence = current.Sequence + 1
	approvals, err := nw.approvals(ctx, via, want)
	if err != nil {
		return err
	}
	errs := make([]error, len(nmis))
	var wg sync.WaitGroup
	for i, n := range nmis {
		if approvals[n.MSPID] {
			nw.say("    %s approved sequence %d already", n.Name, want.Sequence)
			continue
		}
		wg.Go(func() {
			if err := nw.approveOnce(ctx, n, want); err != nil {
				errs[i] = fmt.Errorf("%s approves: %w", n.Name, err)
				return
			}
			nw.say("    %s approved sequence %d", n.Name, want.Sequence)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Each peer that endorses the commit must have every approval.
	for _, n := range nmis {
		if err := nw.waitFor(ctx, peerProc(n), lifecycleTimeout, func(ctx context.Context) error {
			approvals, err := nw.approvals(ctx, n, want)
			if err != nil {
				return err
			}
			for _, m := range want.Members {
				if !approvals[m] {
					return fmt.Errorf("%s's peer does not have %s's approval of sequence %d yet", n.Name, m, want.Sequence)
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if err := nw.commit(ctx, via, nmis, want); err != nil {
		return err
	}
	nw.say("    sequence %d committed: %s", want.Sequence, want.policy())
	for _, n := range nmis {
		if err := nw.waitFor(ctx, peerProc(n), lifecycleTimeout, func(ctx context.Context) error {
			d, err := nw.committedDefinition(ctx, n)
			if err == nil && d.Sequence < want.Sequence {
				err = fmt.Errorf("%s's peer has sequence %d, waiting for %d", n.Name, d.Sequence, want.Sequence)
			}
			return err
		}); err != nil {
			return err
		}
	}
	if err := nw.ready(ctx, nmis); err != nil {
		return err
	}
	return nw.recordMembers(ctx, via, nmis)
}

const lifecycleTimeout = time.Minute

// committedDefinition is the chaincode's definition committed on the
// channel as n's peer knows it; its Sequence is 0 if there is none.
func (nw *Network) committedDefinition(ctx context.Context, n *topology.NMI) (definition, error) {
	out, err := nw.peerCLI(ctx, n, "lifecycle", "chaincode", "querycommitted", "--channelID", nw.Topology.Channel, "-O", "json")
	if err != nil {
		return definition{}, err
	}
	var all struct {
		Definitions []struct {
			Name                string `json:"name"`
			Sequence            int    `json:"sequence"`
			Version             string `json:"version"`
			ValidationParameter string `json:"validation_parameter"`
		} `json:"chaincode_definitions"`
	}
	if err := json.Unmarshal(out, &all); err != nil {
		return definition{}, fmt.Errorf("querycommitted: %w", err)
	}
	for _, d := range all.Definitions {
		if d.Name != nw.Topology.Chaincode.Name {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(d.ValidationParameter)
		if err != nil {
			return definition{}, fmt.Errorf("committed definition's validation parameter: %w", err)
		}
		endorsers, members, err := decodePolicy(raw)
		if err != nil {
			return definition{}, fmt.Errorf("committed definition's endorsement policy: %w", err)
		}
		return definition{Sequence: d.Sequence, Version: d.Version, Endorsers: endorsers, Members: members}, nil
	}
	return definition{}, nil
}

// decodePolicy reads an OutOf(k, 'A.peer', ...) signature policy back from
// a definition's validation parameter.
func decodePolicy(raw []byte) (int, []string, error) {
	var ap peer.ApplicationPolicy
	if err := proto.Unmarshal(raw, &ap); err != nil {
		return 0, nil, err
	}
	env := ap.GetSignaturePolicy()
	if env == nil {
		return 0, nil, errors.New("not a signature policy")
	}
	var members []string
	for _, id := range env.GetIdentities() {
		if id.GetPrincipalClassification() != msp.MSPPrincipal_ROLE {
			return 0, nil, errors.New("a principal that is not an MSP role")
		}
		var role msp.MSPRole
		if err := proto.Unmarshal(id.GetPrincipal(), &role); err != nil {
			return 0, nil, err
		}
		members = append(members, role.GetMspIdentifier())
	}
	rule, ok := env.GetRule().GetType().(*common.SignaturePolicy_NOutOf_)
	if !ok {
		return 0, nil, errors.New("not an OutOf policy")
	}
	return int(rule.NOutOf.GetN()), members, nil
}

// approvals is who has approved the definition, as n's peer knows it.
func (nw *Network) approvals(ctx context.Context, n *topology.NMI, d definition) (map[string]bool, error) {
	out, err := nw.peerCLI(ctx, n, append([]string{"lifecycle", "chaincode", "checkcommitreadiness", "-O", "json"}, nw.definitionArgs(d)...)...)
	if err != nil {
		return nil, err
	}
	var r struct {
		Approvals map[string]bool `json:"approvals"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("checkcommitreadiness: %w", err)
	}
	return r.Approvals, nil
}

func (nw *Network) definitionArgs(d definition) []string {
	return []string{"--channelID", nw.Topology.Channel, "--name", nw.Topology.Chaincode.Name, "--version", d.Version,
		"--sequence", strconv.Itoa(d.Sequence), "--signature-policy", d.policy()}
}

// approveOnce approves the definition for n unless its approval is on the
// channel already. An approval that an interrupted earlier run left in
// flight may commit meanwhile and invalidate this one (MVCC_READ_CONFLICT):
// n's peer then has the approval, which is what counts.
func (nw *Network) approveOnce(ctx context.Context, n *topology.NMI, d definition) error {
	var err error
	for range 3 {
		if err = nw.approve(ctx, n, d); err == nil {
			return nil
		}
		approvals, qerr := nw.approvals(ctx, n, d)
		if qerr == nil && approvals[n.MSPID] {
			return nil
		}
		if !strings.Contains(err.Error(), "MVCC_READ_CONFLICT") {
			return err
		}
	}
	return err
}

// approve has n's admin approve the definition with n's own package; the
// peer CLI returns once the approval is committed at n's peer.
func (nw *Network) approve(ctx context.Context, n *topology.NMI, d definition) error {
	_, id, err := nw.chaincodePackage(n)
	if err != nil {
		return err
	}
	args := append([]string{"lifecycle", "chaincode", "approveformyorg", "--package-id", id}, nw.definitionArgs(d)...)
	_, err = nw.peerCLI(ctx, n, append(args, nw.ordererArgs(nw.Topology, n)...)...)
	if err != nil && strings.Contains(err.Error(), "with unchanged content") {
		// An approval from an interrupted earlier run committed meanwhile:
		// the peer refuses the same approval twice.
		return nil
	}
	return err
}

// commit has via's admin commit the definition, endorsed by every member's
// peer.
func (nw *Network) commit(ctx context.Context, via *topology.NMI, nmis []*topology.NMI, d definition) error {
	args := append([]string{"lifecycle", "chaincode", "commit"}, nw.definitionArgs(d)...)
	args = append(args, nw.ordererArgs(nw.Topology, via)...)
	for _, n := range nmis {
		args = append(args, "--peerAddresses", n.PeerAddress(), "--tlsRootCertFiles", nw.exchangedTLSCA(n))
	}
	_, err := nw.peerCLI(ctx, via, args...)
	return err
}
