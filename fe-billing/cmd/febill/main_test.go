package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
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
		var usage *usageError
		if !errors.As(err, &usage) {
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
