package meter_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// The fixtures are shared with the contract package and made by
// the repository's testdata/generate.sh with the openssl command line.
const (
	keysDir = "../../testdata/keys"
	msmtDir = "../../testdata/measurements"
)

// testCurves names the fixture of each accepted curve.
var testCurves = []struct {
	name  string
	curve meter.Curve
}{
	{"p256", meter.P256},
	{"p384", meter.P384},
	{"secp256k1", meter.Secp256k1},
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func publicKey(t testing.TB, name string) *meter.PublicKey {
	t.Helper()
	k, err := meter.ParsePublicKeyPEM(string(readFile(t, filepath.Join(keysDir, name+".good.pem"))))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return k
}

func privateKey(t testing.TB, name string) *meter.PrivateKey {
	t.Helper()
	k, err := meter.ParsePrivateKeyPEM(string(readFile(t, filepath.Join(keysDir, name+".key.pem"))))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return k
}

// checkCovered fails when the fixtures matching pattern in dir and the names
// a table expects differ, so a new fixture cannot go untested.
func checkCovered(t *testing.T, dir, pattern string, names []string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, filepath.Base(f))
	}
	want := append([]string(nil), names...)
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("fixtures %s in %s:\n%s\nthe table lists:\n%s", pattern, dir, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// wantCode fails unless err is a refusal with code want.
func wantCode(t *testing.T, err error, want meter.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", want)
	}
	if got := meter.CodeOf(err); got != want {
		t.Fatalf("got %v, want code %s", err, want)
	}
	if !strings.HasPrefix(err.Error(), string(want)+": ") || len(err.Error()) <= len(want)+2 {
		t.Fatalf("error %q is not %q followed by a message", err, want+": ")
	}
}
