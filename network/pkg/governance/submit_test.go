package governance

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/orderer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"
)

func TestEnvelope(t *testing.T) {
	cfg := ownConfig(t)
	p, err := AddOrg(cfg, channelID, "METAS", metasDefinition(t, "metas.good.json"))
	if err != nil {
		t.Fatal(err)
	}
	sign(t, p, signer(t, "PTB", "Admin"), signer(t, "CMI", "Admin"))
	submitter := signer(t, "INMETRO", "Admin")
	env, err := p.Envelope(submitter)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Signatures) != 2 {
		t.Errorf("Envelope changed the proposal: %d signatures", len(p.Signatures))
	}
	var payload common.Payload
	if err := proto.Unmarshal(env.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	var sh common.SignatureHeader
	if err := proto.Unmarshal(payload.Header.SignatureHeader, &sh); err != nil {
		t.Fatal(err)
	}
	var si msp.SerializedIdentity
	if err := proto.Unmarshal(sh.Creator, &si); err != nil || si.Mspid != "INMETROMSP" {
		t.Fatalf("envelope creator %q (%v)", si.Mspid, err)
	}
	if err := verifySignature(submitter.Certificate, env.Payload, env.Signature); err != nil {
		t.Errorf("envelope signature: %v", err)
	}
	sent, err := UnmarshalProposal(mustMarshal(t, env))
	if err != nil {
		t.Fatal(err)
	}
	if s := sent.Status(cfg); !s.Met || len(sent.Signatures) != 3 {
		t.Errorf("submitted:\n%s", s)
	}

	// A submitter who signed already adds no second signature.
	env, err = p.Envelope(signer(t, "PTB", "Admin"))
	if err != nil {
		t.Fatal(err)
	}
	if sent, err := UnmarshalProposal(mustMarshal(t, env)); err != nil || len(sent.Signatures) != 2 {
		t.Errorf("submitted by a signer: %v", err)
	}
}

// fakeOrderer answers every broadcast with one response.
type fakeOrderer struct {
	orderer.UnimplementedAtomicBroadcastServer
	resp *orderer.BroadcastResponse
	got  chan *common.Envelope
}

func (f *fakeOrderer) Broadcast(stream orderer.AtomicBroadcast_BroadcastServer) error {
	env, err := stream.Recv()
	if err != nil {
		return err
	}
	f.got <- env
	return stream.Send(f.resp)
}

// startOrderer serves a fake AtomicBroadcast with PTB's TLS pair on a
// loopback port.
func startOrderer(t *testing.T, resp *orderer.BroadcastResponse) (string, *fakeOrderer) {
	t.Helper()
	dir := filepath.Join(fixtureDir, "PTB", "orderer-tls")
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewServerTLSFromCert(&pair)))
	fake := &fakeOrderer{resp: resp, got: make(chan *common.Envelope, 1)}
	orderer.RegisterAtomicBroadcastServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), fake
}

func TestBroadcast(t *testing.T) {
	p, err := AddOrg(ownConfig(t), channelID, "METAS", metasDefinition(t, "metas.good.json"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := p.Envelope(signer(t, "PTB", "Admin"))
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(fixtureDir, "PTB", "orderer-tls", "ca.pem")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	addr, fake := startOrderer(t, &orderer.BroadcastResponse{Status: common.Status_SUCCESS})
	if err := Broadcast(ctx, addr, root, env); err != nil {
		t.Fatal(err)
	}
	if got := <-fake.got; !proto.Equal(got, env) {
		t.Error("the orderer received another envelope")
	}

	const refusal = "error applying config update to existing channel 'metrology': error authorizing update: error validating DeltaSet: policy for [Group]  /Channel/Application not satisfied: implicit policy evaluation failed - 2 sub-policies were satisfied, but this policy requires 3 of the 'Admins' sub-policies to be satisfied"
	addr, _ = startOrderer(t, &orderer.BroadcastResponse{Status: common.Status_BAD_REQUEST, Info: refusal})
	err = Broadcast(ctx, addr, root, env)
	var be *BroadcastError
	if !errors.As(err, &be) || be.Status != common.Status_BAD_REQUEST || be.Info != refusal {
		t.Fatalf("refusal: %v", err)
	}
	if !strings.Contains(err.Error(), "BAD_REQUEST: "+refusal) {
		t.Errorf("error text %q", err)
	}

	// An orderer whose certificate another CA issued is not trusted.
	other := filepath.Join(fixtureDir, "CMI", "orderer-tls", "ca.pem")
	if err := Broadcast(ctx, addr, other, env); err == nil || errors.As(err, new(*BroadcastError)) {
		t.Errorf("untrusted orderer: %v", err)
	}
}
