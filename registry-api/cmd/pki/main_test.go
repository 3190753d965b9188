package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/client"
)

// now is the clock the tests give the commands.
var now = time.Date(2026, 5, 21, 10, 0, 0, 0, time.UTC)

// result is what one command line did.
type result struct {
	code           int
	stdout, stderr string
}

// pki runs a command line with environment vars (NAME=value) and stdin.
func pki(t *testing.T, stdin string, vars []string, args ...string) result {
	t.Helper()
	envs := map[string]string{}
	for _, v := range vars {
		k, val, _ := strings.Cut(v, "=")
		envs[k] = val
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, env{
		getenv: func(k string) string { return envs[k] },
		stdin:  strings.NewReader(stdin),
		stdout: &out, stderr: &errOut,
		now: func() time.Time { return now },
	})
	return result{code, out.String(), errOut.String()}
}

func (r result) want(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

// keyPair writes a new meter key pair into dir and returns the file names.
func keyPair(t *testing.T, dir, name string, curve meter.Curve) (keyFile, pubFile string) {
	t.Helper()
	keyFile, pubFile = filepath.Join(dir, name+".key.pem"), filepath.Join(dir, name+".pub.pem")
	pki(t, "", nil, "meter", "keygen", "--curve", string(curve), "--out", keyFile, "--pub", pubFile).want(t, exitOK)
	return keyFile, pubFile
}

func writeTemp(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// untouchable is a registry that fails the test when it is called: usage
// errors must be caught before any request.
func untouchable(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("usage error reached the registry: %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	key, pub := keyPair(t, dir, "m", meter.P256)
	proof := writeTemp(t, "proof.b64", "MEUCIQ==")
	junk := writeTemp(t, "junk", "not a proof!")
	csv := writeTemp(t, "meters.csv", "meterId\n")
	token := writeTemp(t, "token", "secret-token\n")
	api := untouchable(t)
	reg := []string{"--key", pub, "--proof", proof, "--manufacturer", "ACME", "--model", "E350", "--serial", "1", "--software-id", "fw", "--software-checksum", "sha256:9f86d081884c7d65"}
	env := []string{"PKI_API=" + api, "PKI_TOKEN_FILE=" + token}
	for _, tc := range []struct {
		name  string
		env   []string
		stdin string
		args  []string
		want  string
	}{
		{"no command", env, "", nil, "needs a command"},
		{"unknown command", env, "", []string{"lsit"}, "did you mean list"},
		{"unknown subcommand", env, "", []string{"meter", "keygn"}, "did you mean keygen"},
		{"unknown flag", env, "", []string{"list", "--bogus"}, "unknown flag"},
		{"bad output", env, "", []string{"-o", "yaml", "list"}, "--output"},
		{"no address", nil, "", []string{"list"}, "no registry address"},
		{"no credential", []string{"PKI_API=" + api}, "", []string{"list"}, "no credential"},
		{"two credentials", env, "", []string{"--token", "x", "--token-file", token, "list"}, "not both"},
		{"missing token file", env, "", []string{"--token-file", filepath.Join(dir, "none"), "list"}, "token file"},
		{"bad status", env, "", []string{"list", "--status", "gone"}, "status"},
		{"show without ID", env, "", []string{"show"}, "one meter ID"},
		{"show bad ID", env, "", []string{"show", "not an id"}, "meter ID"},
		{"register half", env, "", []string{"register", "--id", "M-1"}, "missing --key"},
		{"register csv and id", env, "", []string{"register", "--csv", csv, "--id", "M-1"}, "--id does not go"},
		{"register private key", env, "", slices.Concat([]string{"register", "--id", "M-1", "--key", key}, reg[2:]), "holds a private key"},
		{"register without proof", env, "", slices.Concat([]string{"register", "--id", "M-1"}, reg[:2], reg[4:]), "missing --proof"},
		{"register bad proof", env, "", slices.Concat([]string{"register", "--id", "M-1"}, reg[:3], []string{junk}, reg[4:]), "pki meter prove"},
		{"register csv and proof", env, "", []string{"register", "--csv", csv, "--proof", proof}, "--proof does not go"},
		{"prove no nmi", env, "", []string{"meter", "prove", "--key", key, "--meter", "M-1"}, "--nmi is required"},
		{"prove nmi with a space", env, "", []string{"meter", "prove", "--key", key, "--meter", "M-1", "--nmi", "PTB MSP"}, "one word"},
		{"prove no key", env, "", []string{"meter", "prove", "--meter", "M-1", "--nmi", "PTBMSP"}, "--key is required"},
		{"prove no meter", env, "", []string{"meter", "prove", "--key", key, "--nmi", "PTBMSP"}, "--meter is required"},
		{"prove bad meter ID", env, "", []string{"meter", "prove", "--key", key, "--meter", "no spaces", "--nmi", "PTBMSP"}, "meter ID"},
		{"prove with a public key", env, "", []string{"meter", "prove", "--key", pub, "--meter", "M-1", "--nmi", "PTBMSP"}, "holds a public key"},
		{"prove one and a list", env, "", []string{"meter", "prove", "--key", key, "--keys", dir, "--csv", csv, "--nmi", "PTBMSP"}, "not both"},
		{"prove keys without csv", env, "", []string{"meter", "prove", "--keys", dir, "--nmi", "PTBMSP"}, "go together"},
		{"prove csv as json", env, "", []string{"meter", "prove", "--keys", dir, "--csv", csv, "--nmi", "PTBMSP", "-o", "json"}, "-o json does not go"},
		{"prove csv without publicKey", env, "", []string{"meter", "prove", "--keys", dir, "--csv", csv, "--nmi", "PTBMSP"}, `lacks the column "publicKey"`},
		{"prove keys of no private key", env, "", []string{"meter", "prove", "--keys", t.TempDir(), "--csv", csv, "--nmi", "PTBMSP"}, "holds no PEM private key"},
		{"register bad checksum", env, "", slices.Concat([]string{"register", "--id", "M-1"}, reg[:len(reg)-1], []string{"9f86"}), "softwareChecksum"},
		{"pre-enrol no identity", env, "", []string{"pre-enrol", "--id", "M-1"}, "exactly one"},
		{"pre-enrol bad hash", env, "", []string{"pre-enrol", "--id", "M-1", "--identity-hash", "abc"}, "64 lowercase hex"},
		{"rotate both proofs", env, "", []string{"rotate", "M-1", "--key", pub, "--proof", proof, "--old-key", key}, "exactly one"},
		{"rotate no proof", env, "", []string{"rotate", "M-1", "--key", pub}, "exactly one"},
		{"rotate no key", env, "", []string{"rotate", "M-1", "--old-key", key}, "--key is required"},
		{"revoke no reason", env, "", []string{"revoke", "M-1"}, "--reason is required"},
		{"revoke bad reason", env, "", []string{"revoke", "M-1", "--reason", "lost"}, "unknown"},
		{"revoke bad date", env, "", []string{"revoke", "M-1", "--reason", "keyCompromise", "--invalidity-date", "yesterday"}, "RFC 3339"},
		{"sign no seq", env, "", []string{"sign", "--key", key, "--meter", "M-1", "--value", "1"}, "--seq is required"},
		{"sign bad value", env, "", []string{"sign", "--key", key, "--meter", "M-1", "--seq", "1", "--value", "1e3"}, "decimal"},
		{"sign bad time", env, "", []string{"sign", "--key", key, "--meter", "M-1", "--seq", "1", "--value", "1", "--time", "noon"}, "RFC 3339"},
		{"keygen no out", env, "", []string{"meter", "keygen"}, "--out is required"},
		{"keygen bad curve", env, "", []string{"meter", "keygen", "--curve", "P-224", "--out", filepath.Join(dir, "x")}, "P-224"},
		{"fingerprint not a key", env, "junk", []string{"meter", "fingerprint", "-"}, "not PEM"},
		{"submit not JSON", env, "nonsense", []string{"submit", "-"}, "not JSON"},
		{"submit unknown field", env, `{"meterId":"M-1","payload":"eA==","signature":"eA==","extra":1}`, []string{"submit", "-"}, "unknown field"},
		{"submit empty", env, "", []string{"submit", "-"}, "no measurement"},
		{"type show bad ID", env, "", []string{"type", "show", "PTB E350"}, "type ID"},
		{"type record not JSON", env, "nonsense", []string{"type", "record", "-"}, "not a meter type"},
		{"type record unknown field", env, `{"typeId":"PTB-E350","nmi":"CMIMSP"}`, []string{"type", "record", "-"}, "unknown field"},
		{"type approve without checksum", env, "", []string{"type", "approve", "PTB-E350", "--software-id", "fw-1.3"}, "--software-checksum are required"},
		{"type approve bad checksum", env, "", []string{"type", "approve", "PTB-E350", "--software-id", "fw-1.3", "--software-checksum", "9f86"}, "softwareChecksum"},
		{"type approve bad date", env, "", []string{"type", "approve", "PTB-E350", "--software-id", "fw-1.3", "--software-checksum", "sha256:9f86d081", "--from", "soon"}, "RFC 3339"},
		{"type withdraw without reason", env, "", []string{"type", "withdraw", "PTB-E350", "--software-id", "fw-1.2"}, "--reason is required"},
		{"type withdraw without software", env, "", []string{"type", "withdraw", "PTB-E350", "--reason", "fault"}, "--software-id is required"},
		{"type meters without type", env, "", []string{"type", "meters"}, "one type ID"},
		{"assign-type one argument", env, "", []string{"assign-type", "PTB-0001"}, "a meter ID and a type ID"},
		{"assign-type bad type", env, "", []string{"assign-type", "PTB-0001", "~x"}, "type ID"},
		{"register bad type", env, "", slices.Concat([]string{"register", "--id", "M-1", "--type-id", "~x"}, reg), "type ID"},
		{"software update without a way", env, "", []string{"software", "update", "M-1"}, "exactly one of"},
		{"software update two ways", env, "", []string{"software", "update", "M-1", "--key", key, "--signed", "-"}, "exactly one of"},
		{"software update key without meter", env, "", []string{"software", "update", "--key", key, "--to-id", "fw", "--to-checksum", "sha256:9f86d081"}, "METER-ID"},
		{"software update statement without signature", env, "", []string{"software", "update", "--statement", junk}, "go together"},
		{"software update unreadable statement", env, "", []string{"software", "update", "--statement", junk, "--signature", proof}, "give METER-ID"},
		{"software update signed for another meter", env, `{"meterId":"M-2","statement":"e30=","signature":"MAA="}`, []string{"software", "update", "M-1", "--signed", "-"}, "not M-1"},
		{"software update signed not JSON", env, "nonsense", []string{"software", "update", "--signed", "-"}, "not a signed update statement"},
		{"software sign without from", env, "", []string{"software", "sign", "--key", key, "--meter", "M-1", "--to-id", "fw", "--to-checksum", "sha256:9f86d081"}, "--from-id and --from-checksum are required"},
		{"software sign without to", env, "", []string{"software", "sign", "--key", key, "--meter", "M-1", "--from-id", "fw", "--from-checksum", "sha256:9f86d081"}, "--to-id and --to-checksum are required"},
		{"software sign bad time", env, "", []string{"software", "sign", "--key", key, "--meter", "M-1", "--from-id", "fw", "--from-checksum", "sha256:9f86d081",
			"--to-id", "fw2", "--to-checksum", "sha256:9f86d081", "--time", "noon"}, "RFC 3339"},
		{"software log two meters", env, "", []string{"software", "log", "M-1", "M-2"}, "one meter ID"},
		{"verify two", env, `{"meterId":"M-1","payload":"eA==","signature":"eA=="}{"meterId":"M-1","payload":"eA==","signature":"eA=="}`, []string{"verify", "-"}, "verify takes one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := pki(t, tc.stdin, tc.env, tc.args...)
			r.want(t, exitUsage)
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, r.stderr)
			}
			if strings.Contains(r.stderr+r.stdout, "secret-token") {
				t.Error("the token was printed")
			}
		})
	}
}

// TestHelp runs --help on every command and wants an example in each that
// does something.
func TestHelp(t *testing.T) {
	var cmds []*cobra.Command
	for _, c := range (&app{registry: client.NewFlags(nil)}).rootCommand().Commands() {
		if c.Name() != "help" && c.Name() != "completion" {
			cmds = append(append(cmds, c), c.Commands()...)
		}
	}
	for _, c := range cmds {
		path := strings.Fields(c.CommandPath())[1:]
		r := pki(t, "", nil, append(path, "--help")...)
		r.want(t, exitOK)
		if !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("pki %s --help shows no usage", strings.Join(path, " "))
		}
		if !c.HasSubCommands() && c.Example == "" {
			t.Errorf("pki %s has no example", strings.Join(path, " "))
		}
	}
}
