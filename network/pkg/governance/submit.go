package governance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"github.com/hyperledger/fabric-config/configtx"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/orderer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Envelope is the transaction that submits the proposal: its signatures,
// plus the submitter's own if it has not signed yet (as `peer channel
// update` does), in an envelope the submitter signs. The proposal itself is
// left as it is.
func (p *Proposal) Envelope(submitter Signer) (*common.Envelope, error) {
	if err := submitter.check(); err != nil {
		return nil, fmt.Errorf("submit proposal: %w", err)
	}
	sigs := p.Signatures
	if !p.signedBy(submitter) {
		sig, err := submitter.signingIdentity().CreateConfigSignature(p.Update)
		if err != nil {
			return nil, fmt.Errorf("submit proposal: %w", err)
		}
		sigs = append(sigs[:len(sigs):len(sigs)], sig)
	}
	env, err := configtx.NewEnvelope(p.Update, sigs...)
	if err != nil {
		return nil, fmt.Errorf("submit proposal: %w", err)
	}
	if err := submitter.signingIdentity().SignEnvelope(env); err != nil {
		return nil, fmt.Errorf("submit proposal: %w", err)
	}
	return env, nil
}

// Broadcast sends an envelope to an orderer's AtomicBroadcast service over
// TLS, trusting the orderer's TLS root CA in tlsRootCertPEMFile. Unless the
// orderer answers SUCCESS it returns a *BroadcastError with the orderer's
// status and reason; a refused configuration update changes nothing.
func Broadcast(ctx context.Context, ordererAddress, tlsRootCertPEMFile string, env *common.Envelope) error {
	pemBytes, err := os.ReadFile(tlsRootCertPEMFile)
	if err != nil {
		return fmt.Errorf("broadcast: orderer TLS root: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		return fmt.Errorf("broadcast: %s holds no PEM certificate", tlsRootCertPEMFile)
	}
	host, _, err := net.SplitHostPort(ordererAddress)
	if err != nil {
		return fmt.Errorf("broadcast: orderer address: %w", err)
	}
	creds := credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12})
	conn, err := grpc.NewClient(ordererAddress, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("broadcast to %s: %w", ordererAddress, err)
	}
	defer conn.Close()
	stream, err := orderer.NewAtomicBroadcastClient(conn).Broadcast(ctx)
	if err != nil {
		return fmt.Errorf("broadcast to %s: %w", ordererAddress, err)
	}
	if err := stream.Send(env); err != nil {
		return fmt.Errorf("broadcast to %s: %w", ordererAddress, err)
	}
	resp, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("broadcast to %s: %w", ordererAddress, err)
	}
	if err := stream.CloseSend(); err != nil {
		return fmt.Errorf("broadcast to %s: %w", ordererAddress, err)
	}
	if resp.GetStatus() != common.Status_SUCCESS {
		return &BroadcastError{Status: resp.GetStatus(), Info: resp.GetInfo()}
	}
	return nil
}
