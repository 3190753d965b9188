package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inter-nmi/pki/registry-api/usage"
)

func run(args ...string) (string, error) {
	cmd := root()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// Every command refuses to run without what it needs, as a usage error
// (exit status 2), before touching any file or the network.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"customer", "keygen"},
		{"customer", "keygen", "--meter", "M-1", "--period", "p1"}, // no --api / --token-file
		{"customer", "agree", "--meter", "M-1"},
		{"customer", "derive", "--period", "p1"},
		{"customer", "check"},
		{"utility", "tariff"},
		{"utility", "bill", "--meter", "M-1", "--period", "p1"},
		{"meter", "stream"},
		{"customer", "keygen", "--slots", "many"},
	} {
		_, err := run(args...)
		if !usage.Is(err) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

func TestPartyKeyIsMadeOnceAndPrivate(t *testing.T) {
	dir := t.TempDir()
	k1, err := partyKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := partyKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Public().Equal(k2.Public()) {
		t.Fatal("a second call made a new key")
	}
	info, err := os.Stat(filepath.Join(dir, "party.key.pem"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v", info, err)
	}
}

func TestHelpEverywhere(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"customer", "--help"}, {"customer", "derive", "--help"}, {"meter", "stream", "--help"}, {"utility", "bill", "--help"}} {
		out, err := run(args...)
		if err != nil || !bytes.Contains([]byte(out), []byte("Usage:")) {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
}

// A key written over an existing world-readable file, or through a
// symbolic link to one, ends up readable by its owner alone, and the file
// the link pointed to never receives it.
func TestKeysAreWrittenPrivate(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "M-1_p1.function.json")
	if err := os.WriteFile(out, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(dir, "shared.json")
	if err := os.WriteFile(shared, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(shared, link); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{out, link} {
		if err := writeJSON(file, map[string]string{"key": "s3cret"}, secret); err != nil {
			t.Fatal(err)
		}
		info, err := os.Lstat(file)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 || !info.Mode().IsRegular() {
			t.Errorf("%s: mode %v after writing a key, want a regular file 0600", filepath.Base(file), info.Mode())
		}
	}
	if b, _ := os.ReadFile(shared); !bytes.Equal(b, []byte("{}\n")) {
		t.Errorf("the file the link pointed to received the key: %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("%d files left in the directory, want 3 (no temporary files)", len(entries))
	}
}

// A key file other users can read is refused, saying why, not used.
func TestKeyReadableByOthersRefused(t *testing.T) {
	dir := t.TempDir()
	if _, err := partyKey(dir); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "party.key.pem")
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := partyKey(dir); err == nil || !strings.Contains(err.Error(), "other users can access it") {
		t.Fatalf("a world-readable signing key: %v, want a refusal", err)
	}
	var v any
	master := filepath.Join(dir, "M-1_p1.master.json")
	if err := os.WriteFile(master, []byte("{}"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := readSecretJSON(master, &v); err == nil {
		t.Fatal("a group-readable master key was read")
	}
}
