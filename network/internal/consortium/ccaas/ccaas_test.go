package ccaas

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"slices"
	"testing"
)

var ptb = Connection{Address: "127.0.0.1:7156", ClientKey: "client key\n", ClientCert: "client cert\n", RootCert: "tls root\n"}

// A package's ID is what every NMI's peers and the lifecycle agree on: the
// same connection details must always give the same bytes. The ID below is
// that of the package the consortium made before this package existed.
func TestPackageID(t *testing.T) {
	pkg, err := Package("pki_1.0", ptb)
	if err != nil {
		t.Fatal(err)
	}
	if id := ID("pki_1.0", pkg); id != "pki_1.0:2089fd9959924cf8585723366353080ef02b4e43227c7e2f7004d781455c2c89" {
		t.Fatalf("package ID %s", id)
	}
	other := ptb
	other.Address = "127.0.0.1:7256"
	pkg2, err := Package("pki_1.0", other)
	if err != nil {
		t.Fatal(err)
	}
	if ID("pki_1.0", pkg2) == ID("pki_1.0", pkg) {
		t.Fatal("two servers' packages have one ID")
	}
}

func TestPackageContent(t *testing.T) {
	pkg, err := Package("pki_1.0", ptb)
	if err != nil {
		t.Fatal(err)
	}
	outer := untar(t, pkg)
	var metadata map[string]string
	if err := json.Unmarshal(outer["metadata.json"], &metadata); err != nil {
		t.Fatal(err)
	}
	if metadata["type"] != "ccaas" || metadata["label"] != "pki_1.0" {
		t.Fatalf("metadata %v", metadata)
	}
	var connection map[string]any
	if err := json.Unmarshal(untar(t, outer["code.tar.gz"])["connection.json"], &connection); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"address": ptb.Address, "dial_timeout": "10s", "tls_required": true, "client_auth_required": true,
		"client_key": ptb.ClientKey, "client_cert": ptb.ClientCert, "root_cert": ptb.RootCert}
	if len(connection) != len(want) {
		t.Fatalf("connection %v", connection)
	}
	for k, v := range want {
		if connection[k] != v {
			t.Errorf("connection %s = %v, want %v", k, connection[k], v)
		}
	}
}

func untar(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = body
		names = append(names, h.Name)
	}
	if !slices.IsSorted(names) {
		t.Fatalf("archive entries not in name order: %v", names)
	}
	return files
}
