//go:build e2e

// Package e2e holds the end-to-end tests: they run against a real consortium
// of native Fabric processes, started once for the whole run by
//
//	consortium exec -- go test -tags e2e ./network/e2e/...
//
// which points them at it through PKI_NETWORK (the run directory).
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"

	"github.com/inter-nmi/pki/network/internal/consortium"
	"github.com/inter-nmi/pki/network/pkg/gateway"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

var (
	network *consortium.Network
	profile *consortium.Profile
)

func TestMain(m *testing.M) {
	root := os.Getenv("PKI_NETWORK")
	if root == "" {
		fmt.Fprintln(os.Stderr, "PKI_NETWORK is not set: run the end-to-end tests with `make e2e`, which starts a consortium for them")
		os.Exit(2)
	}
	var err error
	if network, err = consortium.Open(root); err == nil {
		profile, err = consortium.LoadProfile(network.ProfileFile())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "open consortium:", err)
		os.Exit(2)
	}
	code := m.Run()
	for _, w := range watchers {
		w.Close()
	}
	os.Exit(code)
}

// watchers are auditor connections to the members' peers, by NMI, used to
// wait until a block is committed everywhere.
var watchers = map[string]*gateway.Conn{}

// settle waits until every member's peer has committed the block, so that
// the next step, endorsed on any of them, reads the state the block left.
func settle(t *testing.T, block uint64) {
	t.Helper()
	for _, n := range profile.NMIs {
		conn, ok := watchers[n.Name]
		if !ok {
			var err error
			if conn, err = n.Dial(consortium.UserAuditor); err != nil {
				t.Fatalf("connect %s auditor: %v", n.Name, err)
			}
			watchers[n.Name] = conn
		}
		s := &session{nmi: n.Name, network: conn.GetNetwork(profile.Channel)}
		s.awaitBlock(t, block)
	}
}

// session is one NMI user talking to its own NMI's gateway.
type session struct {
	nmi      string
	gw       *client.Gateway
	network  *client.Network
	contract *client.Contract
}

func connect(t *testing.T, nmi, user string) *session {
	t.Helper()
	np, err := profile.NMI(nmi)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := np.Dial(user)
	if err != nil {
		t.Fatalf("connect %s %s: %v", nmi, user, err)
	}
	t.Cleanup(func() { conn.Close() })
	nw := conn.GetNetwork(profile.Channel)
	return &session{nmi: nmi, gw: conn.Gateway, network: nw, contract: nw.GetContract(profile.Chaincode)}
}

// receipt is what a committed transaction tells its submitter.
type receipt struct {
	result []byte
	txID   string
	block  uint64
}

// submit endorses, orders and waits for the commit of a transaction; it
// fails the test unless the transaction committed as valid, and returns once
// every NMI's peer has the block.
func (s *session) submit(t *testing.T, fn string, args ...string) receipt {
	t.Helper()
	r, err := s.trySubmit(fn, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", s.nmi, fn, err)
	}
	settle(t, r.block)
	return r
}

func (s *session) trySubmit(fn string, args ...string) (receipt, error) {
	proposal, err := s.contract.NewProposal(fn, client.WithArguments(args...))
	if err != nil {
		return receipt{}, err
	}
	tx, err := proposal.Endorse()
	if err != nil {
		return receipt{}, err
	}
	status, err := s.hand(tx)
	if err != nil {
		return receipt{}, err
	}
	if !status.Successful {
		return receipt{}, fmt.Errorf("transaction %s committed as invalid: %s", status.TransactionID, status.Code)
	}
	return receipt{result: tx.Result(), txID: status.TransactionID, block: status.BlockNumber}, nil
}

// hand gives an endorsed transaction to the ordering service as the
// registry does (gateway.Submit: a failed hand-over is followed by asking
// whether it commits before sending it again) and returns its status.
func (s *session) hand(tx *client.Transaction) (*client.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return gateway.Submit(ctx, s.gw, profile.Channel, tx, gateway.DefaultBackoff, gateway.Hooks{})
}

// refused submits a transaction that must be refused with code.
func (s *session) refused(t *testing.T, code meter.Code, fn string, args ...string) {
	t.Helper()
	_, err := s.trySubmit(fn, args...)
	assertRefusal(t, err, code)
}

func (s *session) evaluate(t *testing.T, fn string, args ...string) []byte {
	t.Helper()
	out, err := s.contract.EvaluateTransaction(fn, args...)
	if err != nil {
		t.Fatalf("%s evaluate %s: %v", s.nmi, fn, err)
	}
	return out
}

// awaitBlock returns once this session's peer has committed the block: the
// block event arrives only then. Peers of different NMIs commit a block each
// in their own time.
func (s *session) awaitBlock(t *testing.T, block uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events, err := s.network.BlockEvents(ctx, client.WithStartBlock(block))
	if err != nil {
		t.Fatalf("%s block events: %v", s.nmi, err)
	}
	select {
	case <-events:
	case <-ctx.Done():
		t.Fatalf("%s's peer has not committed block %d within 30s", s.nmi, block)
	}
}

func assertRefusal(t *testing.T, err error, code meter.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected refusal %s, got success", code)
	}
	var endorse *client.EndorseError
	if !errors.As(err, &endorse) {
		t.Fatalf("expected the refusal %s at endorsement, got %T: %v", code, err, err)
	}
	refusal, ok := meter.ParseError(err.Error())
	if !ok || refusal.Code != code {
		t.Fatalf("expected refusal %s, got: %v", code, err)
	}
	t.Logf("refused as expected: %s: %s", refusal.Code, refusal.Message)
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, b, err)
	}
	return v
}

var idCounter atomic.Int64

// uniqueID makes meter IDs that do not collide between tests or reruns on a
// kept network.
func uniqueID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e9, idCounter.Add(1))
}

// opensslKey makes a meter key pair with the openssl command line, as a meter
// maker's production line would, and returns the private and public PEM paths.
func opensslKey(t *testing.T, curve string) (priv, pub string) {
	t.Helper()
	dir := t.TempDir()
	priv, pub = filepath.Join(dir, "key.pem"), filepath.Join(dir, "pub.pem")
	openssl(t, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:"+curve, "-out", priv)
	openssl(t, "pkey", "-in", priv, "-pubout", "-out", pub)
	return priv, pub
}

// opensslSign signs the exact bytes of payload with openssl dgst -sha256 -sign.
func opensslSign(t *testing.T, priv string, payload []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	in, sig := filepath.Join(dir, "payload"), filepath.Join(dir, "sig.der")
	if err := os.WriteFile(in, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	openssl(t, "dgst", "-sha256", "-sign", priv, "-out", sig, in)
	b, err := os.ReadFile(sig)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openssl(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
