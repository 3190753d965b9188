package ledger

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset/kvrwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	netgw "github.com/inter-nmi/pki/network/pkg/gateway"
	"github.com/inter-nmi/pki/registry-api/api"
)

// fakeGateway stands in for a peer's Gateway service at the gRPC boundary,
// so the real fabric-gateway client runs against it. It endorses with a
// chaincode function of the test, orders every transaction it accepts into
// a ledger of transaction IDs (the first copy of an ID counts, as on a
// peer), and lets a test fail any call.
type fakeGateway struct {
	mu sync.Mutex
	// chaincode answers a proposal: its result, whether it writes, or a
	// refusal.
	chaincode func(fn string, args []string) (result string, writes bool, err error)
	// endorseFault, submitFault and statusFault may fail the nth call
	// (from 1) for a transaction; a submit fault may let the transaction
	// reach the orderer first (reached).
	endorseFault func(n int) error
	submitFault  func(n int, txID string) (reached bool, err error)
	statusFault  func(n int, txID string) error
	// validation decides the code of the nth transaction ordered (from 1).
	validation func(n int, txID string) peer.TxValidationCode
	// event, when set, is the name of the chaincode event every endorsed
	// transaction emits.
	event string

	// endorsingOrgs are the organisations each endorse request named
	// (none: the gateway plans the endorsers itself).
	endorsingOrgs [][]string

	endorsed  []string // transaction IDs endorsed, in order
	submits   map[string]int
	ordered   []string // distinct transaction IDs that reached ordering
	codes     map[string]peer.TxValidationCode
	committed chan struct{} // closed and replaced at each ordering
	calls     map[string]int
}

func newFakeGateway() *fakeGateway {
	return &fakeGateway{
		chaincode: func(fn string, args []string) (string, bool, error) { return `{"ok":true}`, true, nil },
		submits:   map[string]int{}, codes: map[string]peer.TxValidationCode{},
		committed: make(chan struct{}), calls: map[string]int{},
	}
}

func (g *fakeGateway) Invoke(ctx context.Context, method string, args, reply any, _ ...grpc.CallOption) error {
	g.mu.Lock()
	g.calls[method]++
	n := g.calls[method]
	g.mu.Unlock()
	switch method {
	case gateway.Gateway_Endorse_FullMethodName:
		return g.endorse(n, args.(*gateway.EndorseRequest), reply.(*gateway.EndorseResponse))
	case gateway.Gateway_Submit_FullMethodName:
		return g.submit(args.(*gateway.SubmitRequest))
	case gateway.Gateway_CommitStatus_FullMethodName:
		return g.status(ctx, args.(*gateway.SignedCommitStatusRequest), reply.(*gateway.CommitStatusResponse))
	}
	return status.Errorf(codes.Unimplemented, "fake gateway: %s", method)
}

func (g *fakeGateway) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "fake gateway: no streams")
}

func (g *fakeGateway) endorse(n int, req *gateway.EndorseRequest, resp *gateway.EndorseResponse) error {
	if g.endorseFault != nil {
		if err := g.endorseFault(n); err != nil {
			return err
		}
	}
	var prop peer.Proposal
	if err := proto.Unmarshal(req.GetProposedTransaction().GetProposalBytes(), &prop); err != nil {
		return err
	}
	var cpp peer.ChaincodeProposalPayload
	if err := proto.Unmarshal(prop.GetPayload(), &cpp); err != nil {
		return err
	}
	var spec peer.ChaincodeInvocationSpec
	if err := proto.Unmarshal(cpp.GetInput(), &spec); err != nil {
		return err
	}
	var args []string
	for _, a := range spec.GetChaincodeSpec().GetInput().GetArgs() {
		args = append(args, string(a))
	}
	result, writes, err := g.chaincode(args[0], args[1:])
	if err != nil {
		return status.Errorf(codes.Aborted, "failed to endorse transaction: chaincode response 500, %v", err)
	}
	g.mu.Lock()
	g.endorsed = append(g.endorsed, req.GetTransactionId())
	g.endorsingOrgs = append(g.endorsingOrgs, req.GetEndorsingOrganizations())
	g.mu.Unlock()
	kv := &kvrwset.KVRWSet{Reads: []*kvrwset.KVRead{{Key: "meter/M"}}}
	if writes {
		kv.Writes = []*kvrwset.KVWrite{{Key: "meter/M", Value: []byte(result)}}
	}
	action := &peer.ChaincodeAction{
		Response: &peer.Response{Status: 200, Payload: []byte(result)},
		Results:  marshal(&rwset.TxReadWriteSet{NsRwset: []*rwset.NsReadWriteSet{{Namespace: "pki", Rwset: marshal(kv)}}}),
	}
	if g.event != "" {
		action.Events = marshal(&peer.ChaincodeEvent{ChaincodeId: "pki", TxId: req.GetTransactionId(), EventName: g.event, Payload: []byte(result)})
	}
	ch, _ := proto.Marshal(&common.ChannelHeader{Type: int32(common.HeaderType_ENDORSER_TRANSACTION), ChannelId: req.GetChannelId(), TxId: req.GetTransactionId()})
	env := &common.Envelope{Payload: marshal(&common.Payload{
		Header: &common.Header{ChannelHeader: ch},
		Data: marshal(&peer.Transaction{Actions: []*peer.TransactionAction{{Payload: marshal(&peer.ChaincodeActionPayload{
			Action: &peer.ChaincodeEndorsedAction{ProposalResponsePayload: marshal(&peer.ProposalResponsePayload{
				Extension: marshal(action),
			})},
		})}}}),
	})}
	resp.PreparedTransaction = env
	return nil
}

func (g *fakeGateway) submit(req *gateway.SubmitRequest) error {
	txID := req.GetTransactionId()
	g.mu.Lock()
	g.submits[txID]++
	n := g.submits[txID]
	g.mu.Unlock()
	reached, err := true, error(nil)
	if g.submitFault != nil {
		reached, err = g.submitFault(n, txID)
	}
	if reached {
		g.order(txID)
	}
	return err
}

// order commits a transaction, unless its ID was ordered before (a second
// copy is DUPLICATE_TXID and changes nothing).
func (g *fakeGateway) order(txID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, seen := g.codes[txID]; seen {
		return
	}
	g.ordered = append(g.ordered, txID)
	code := peer.TxValidationCode_VALID
	if g.validation != nil {
		code = g.validation(len(g.ordered), txID)
	}
	g.codes[txID] = code
	close(g.committed)
	g.committed = make(chan struct{})
}

// status answers like the peer: at once if the transaction is committed,
// else once it is, or when the call's context ends.
func (g *fakeGateway) status(ctx context.Context, req *gateway.SignedCommitStatusRequest, resp *gateway.CommitStatusResponse) error {
	var r gateway.CommitStatusRequest
	if err := proto.Unmarshal(req.GetRequest(), &r); err != nil {
		return err
	}
	txID := r.GetTransactionId()
	g.mu.Lock()
	g.calls["status "+txID]++
	n := g.calls["status "+txID]
	g.mu.Unlock()
	if g.statusFault != nil {
		if err := g.statusFault(n, txID); err != nil {
			return err
		}
	}
	for {
		g.mu.Lock()
		code, ok := g.codes[txID]
		block := uint64(0)
		for i, id := range g.ordered {
			if id == txID {
				block = uint64(10 + i)
			}
		}
		wait := g.committed
		g.mu.Unlock()
		if ok {
			resp.Result, resp.BlockNumber = code, block
			return nil
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-wait:
		}
	}
}

// transactions counts the distinct transactions that reached ordering.
func (g *fakeGateway) transactions() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.ordered...)
}

func (g *fakeGateway) codeOf(txID string) peer.TxValidationCode {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.codes[txID]
}

func marshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// fabricOver builds the ledger client over the fake gateway, with an
// identity of a throwaway self-signed certificate for every role.
func fabricOver(t *testing.T, g *fakeGateway) *Fabric {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "registry"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	ids := map[api.Role]netgw.Identity{}
	for _, r := range api.Roles {
		ids[r] = netgw.Identity{MSPID: "PTBMSP", Cert: cert, Key: keyFile}
	}
	f, err := connect(Config{Identities: ids, Channel: "metrology", Chaincode: "pki"}, g, func() error { return nil },
		slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.retry = retryPolicy{attempts: 5, base: time.Millisecond, max: 5 * time.Millisecond}
	t.Cleanup(func() { f.Close() })
	return f
}

// unavailable is the gRPC error of a peer or orderer that cannot be reached.
var unavailable = status.Error(codes.Unavailable, "connection refused")
