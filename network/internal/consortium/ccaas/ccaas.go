// Package ccaas makes the chaincode package of chaincode run as a service:
// what a peer installs is not code but the address and TLS credentials of
// the NMI's chaincode server (connection.json), labelled for the Fabric
// lifecycle (metadata.json), which the external builder in network/builder
// claims. The package's bytes depend only on its content, so its package ID
// (the label and the package's SHA-256) does too.
package ccaas

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
)

// Connection is how a peer reaches the chaincode server: over mutual TLS,
// with PEM-encoded credentials.
type Connection struct {
	// Address is the chaincode server's host:port.
	Address string
	// ClientKey and ClientCert are the peer's client pair for the server.
	ClientKey, ClientCert string
	// RootCert is the root the server's certificate chains to.
	RootCert string
}

// Package is the chaincode package (a .tar.gz) for a server reached by c.
// It holds c's client key: store it as a secret.
func Package(label string, c Connection) ([]byte, error) {
	connection, err := json.MarshalIndent(map[string]any{
		"address":              c.Address,
		"dial_timeout":         "10s",
		"tls_required":         true,
		"client_auth_required": true,
		"client_key":           c.ClientKey,
		"client_cert":          c.ClientCert,
		"root_cert":            c.RootCert,
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	code, err := targz(map[string][]byte{"connection.json": connection})
	if err != nil {
		return nil, err
	}
	metadata, err := json.Marshal(map[string]string{"type": "ccaas", "label": label})
	if err != nil {
		return nil, err
	}
	return targz(map[string][]byte{"metadata.json": metadata, "code.tar.gz": code})
}

// ID is a package's ID as `peer lifecycle chaincode calculatepackageid`
// computes it: its label and the SHA-256 of its bytes.
func ID(label string, pkg []byte) string {
	sum := sha256.Sum256(pkg)
	return label + ":" + hex.EncodeToString(sum[:])
}

// targz writes files in name order, with fixed metadata, so a package's
// bytes (and so its ID) depend only on its content.
func targz(files map[string][]byte) ([]byte, error) {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range names {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
