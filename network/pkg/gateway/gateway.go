// Package gateway connects a client identity of an NMI to that NMI's peer
// through the Fabric Gateway service: one gRPC connection with TLS, the
// identity's certificate and its signing key.
package gateway

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-gateway/pkg/hash"
	"github.com/hyperledger/fabric-gateway/pkg/identity"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Peer is where the gateway runs and how to trust its TLS certificate.
type Peer struct {
	Address string `json:"address" yaml:"address"`
	// HostName is the name in the peer's TLS certificate.
	HostName string `json:"hostName" yaml:"hostName"`
	// TLSRootCert is the PEM file of the peer's TLS CA.
	TLSRootCert string `json:"tlsRootCert" yaml:"tlsRootCert"`
}

// Identity is a client's enrolment certificate and private key (PEM files).
type Identity struct {
	MSPID string `json:"mspId" yaml:"mspId"`
	Cert  string `json:"cert" yaml:"cert"`
	Key   string `json:"key" yaml:"key"`
}

// Conn is an open gateway connection; Close releases it.
type Conn struct {
	*client.Gateway
	grpc *grpc.ClientConn
}

// Close closes the gateway and its gRPC connection.
func (c *Conn) Close() error {
	return errors.Join(c.Gateway.Close(), c.grpc.Close())
}

// Options tune the per-call deadlines of the gateway client.
type Options struct {
	EvaluateTimeout, EndorseTimeout, SubmitTimeout, CommitStatusTimeout time.Duration
}

// DefaultOptions suit interactive use over a BFT ordering service.
var DefaultOptions = Options{
	EvaluateTimeout:     15 * time.Second,
	EndorseTimeout:      30 * time.Second,
	SubmitTimeout:       30 * time.Second,
	CommitStatusTimeout: 2 * time.Minute,
}

// Dial connects id to its NMI's peer.
func Dial(peer Peer, id Identity, opts Options) (*Conn, error) {
	conn, err := NewGRPC(peer)
	if err != nil {
		return nil, err
	}
	gw, err := Connect(conn, id, opts)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &Conn{Gateway: gw, grpc: conn}, nil
}

// NewGRPC opens the TLS connection to a peer, to be shared by every gateway
// client of a process.
func NewGRPC(peer Peer) (*grpc.ClientConn, error) {
	pem, err := os.ReadFile(peer.TLSRootCert)
	if err != nil {
		return nil, fmt.Errorf("read peer TLS root: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("peer TLS root %s holds no certificate", peer.TLSRootCert)
	}
	conn, err := grpc.NewClient(peer.Address, grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(pool, peer.HostName)))
	if err != nil {
		return nil, fmt.Errorf("connect to peer %s: %w", peer.Address, err)
	}
	return conn, nil
}

// Connect builds a gateway client for id over an existing connection.
func Connect(conn grpc.ClientConnInterface, id Identity, opts Options) (*client.Gateway, error) {
	certPEM, err := os.ReadFile(id.Cert)
	if err != nil {
		return nil, fmt.Errorf("read identity certificate: %w", err)
	}
	cert, err := identity.CertificateFromPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("identity certificate %s: %w", id.Cert, err)
	}
	xid, err := identity.NewX509Identity(id.MSPID, cert)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	keyPEM, err := os.ReadFile(id.Key)
	if err != nil {
		return nil, fmt.Errorf("read identity key: %w", err)
	}
	key, err := identity.PrivateKeyFromPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("identity key %s: %w", id.Key, err)
	}
	sign, err := identity.NewPrivateKeySign(key)
	if err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	return client.Connect(xid,
		client.WithSign(sign),
		client.WithHash(hash.SHA256),
		client.WithClientConnection(conn),
		client.WithEvaluateTimeout(opts.EvaluateTimeout),
		client.WithEndorseTimeout(opts.EndorseTimeout),
		client.WithSubmitTimeout(opts.SubmitTimeout),
		client.WithCommitStatusTimeout(opts.CommitStatusTimeout),
	)
}
