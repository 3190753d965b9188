package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadNMI(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("metas.yaml", `name: METAS
mspId: METASMSP
country: CH
domain: metas.nmi.test
host: 10.0.0.6
peer: {port: 7651, chaincodePort: 7652, operationsPort: 7653}
chaincodeServer: {port: 7656}
registry: {port: 8086}
`)
	n, err := readNMI(good)
	if err != nil {
		t.Fatal(err)
	}
	if n.MSPID != "METASMSP" || n.Peer.Port != 7651 || n.Registry.Port != 8086 || n.Host != "10.0.0.6" {
		t.Fatalf("read %+v", n)
	}
	for name, tc := range map[string]struct{ body, want string }{
		"orderer": {`name: METAS
orderer: {port: 7650, adminPort: 7654, operationsPort: 7655}
`, "orderer joins the consenter set by an update of its own"},
		"unknown field": {"name: METAS\nmsp: METASMSP\n", "field msp not found"},
		"not yaml":      {"{name: [", "did not find expected"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := readNMI(write(name+".yaml", tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// Usage mistakes are refused with exit status 2 before anything touches a
// network: here there is none.
func TestUsageRefused(t *testing.T) {
	root := filepath.Join(t.TempDir(), "run")
	for _, args := range [][]string{
		{"update"},
		{"update", "propose", "-out", "x.tx", "remove-org", "-nmi", "NMIM"},
		{"update", "propose", "-as", "PTB", "remove-org", "-nmi", "NMIM"},
		{"update", "propose", "-as", "PTB", "-out", "x.tx", "rename-org", "-nmi", "NMIM"},
		{"update", "propose", "-as", "PTB", "-out", "x.tx", "add-org", "-nmi", "METAS"},
		{"update", "sign", "x.tx"},
		{"update", "submit", "-as", "PTB"},
		{"update", "vote"},
		{"org", "define"},
		{"org", "adopt", "METAS"},
		{"orderer", "define", "-port", "7650"},
		{"orderer", "join"},
	} {
		var out bytes.Buffer
		code, err := run(context.Background(), append([]string{"-topology", "../../topology.yaml", "-run", root}, args...), &out)
		if code != 2 || err == nil {
			t.Errorf("%v: exit %d, %v; want 2 and an error", args, code, err)
		}
	}
	if _, err := os.Stat(root); err == nil {
		t.Fatal("a refused command created the run directory")
	}
}

// A proposal file that is not one is refused with what is wrong with it.
func TestStatusOfMalformedProposal(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.tx")
	if err := os.WriteFile(bad, []byte("not a protobuf envelope"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code, err := run(context.Background(), []string{"-topology", "../../topology.yaml", "-run", filepath.Join(t.TempDir(), "run"), "update", "status", bad}, &out)
	if code != 1 || err == nil || !strings.Contains(err.Error(), "malformed proposal") {
		t.Fatalf("exit %d, %v", code, err)
	}
}
