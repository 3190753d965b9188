package client_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/usage"
)

// TestFlags holds the one set of rules by which every CLI names the
// registry and its token.
func TestFlags(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flagFile, envFile, empty := file("flag.token", " from-flag-file\n"), file("env.token", "from-env-file\n"), file("empty.token", "\n")
	for _, tc := range []struct {
		name      string
		args      []string
		env       map[string]string
		api, ca   string
		token     string
		wantUsage string // a usage error containing this
	}{
		{"flags", []string{"--api", "https://a", "--ca", "ca.pem", "--token", "t"}, nil, "https://a", "ca.pem", "t", ""},
		{"environment", nil, map[string]string{"PKI_API": "https://e", "PKI_CA": "e.pem", "PKI_TOKEN": "et"}, "https://e", "e.pem", "et", ""},
		{"a flag wins over the environment", []string{"--api", "https://a", "--token-file", flagFile},
			map[string]string{"PKI_API": "https://e", "PKI_TOKEN": "et"}, "https://a", "", "from-flag-file", ""},
		{"the environment's file before its token", nil,
			map[string]string{"PKI_API": "https://e", "PKI_TOKEN": "et", "PKI_TOKEN_FILE": envFile}, "https://e", "", "from-env-file", ""},
		{"both as flags", []string{"--api", "https://a", "--token", "t", "--token-file", flagFile}, nil, "", "", "", "not both"},
		{"no address", []string{"--token", "t"}, nil, "", "", "", "no registry address"},
		{"no token", []string{"--api", "https://a"}, nil, "", "", "", "no credential: set --token-file (or PKI_TOKEN_FILE)"},
		{"empty token file", []string{"--api", "https://a", "--token-file", empty}, nil, "", "", "", "is empty"},
		{"missing token file", []string{"--api", "https://a", "--token-file", filepath.Join(dir, "none")}, nil, "", "", "", "token file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := client.NewFlags(func(k string) string { return tc.env[k] })
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			f.Register(fs)
			cred := f.Credential(fs, "token", "bearer token")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			o, err := f.Options(cred, client.Options{Retries: 7})
			if tc.wantUsage != "" {
				if !usage.Is(err) || !strings.Contains(err.Error(), tc.wantUsage) {
					t.Fatalf("err = %v, want a usage error saying %q", err, tc.wantUsage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.BaseURL != tc.api || o.CACert != tc.ca || o.Token != tc.token || o.Retries != 7 {
				t.Errorf("options %+v, want api %s, ca %s, token %s and the base's retries", o, tc.api, tc.ca, tc.token)
			}
		})
	}
}

// A second credential has flags and variables of its own name.
func TestFlagsSecondCredential(t *testing.T) {
	env := map[string]string{"PKI_API": "https://e", "PKI_TOKEN": "ingest", "PKI_OPERATOR_TOKEN": "operator"}
	f := client.NewFlags(func(k string) string { return env[k] })
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.Register(fs)
	ingest := f.Credential(fs, "token", "ingest token")
	operator := f.Credential(fs, "operator-token", "operator token")
	for cred, want := range map[*client.Credential]string{ingest: "ingest", operator: "operator"} {
		if o, err := f.Options(cred, client.Options{}); err != nil || o.Token != want {
			t.Errorf("token %q, %v; want %q", o.Token, err, want)
		}
	}
	if _, err := client.NewFlags(func(string) string { return "" }).Options(operator, client.Options{}); err == nil {
		t.Error("no registry address, yet no error")
	}
	delete(env, "PKI_OPERATOR_TOKEN")
	if _, err := f.Options(operator, client.Options{}); err == nil || !strings.Contains(err.Error(), "--operator-token-file (or PKI_OPERATOR_TOKEN_FILE)") {
		t.Errorf("err = %v, want it to name the operator token's flag and variable", err)
	}
}

func TestRedact(t *testing.T) {
	f := client.NewFlags(nil)
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.Register(fs)
	f.Credential(fs, "token", "ingest token")
	f.Credential(fs, "operator-token", "operator token")
	for in, want := range map[string]string{
		"metersim --token abc --meters 3":               "metersim --token *** --meters 3",
		"metersim --operator-token=abc --token-file f":  "metersim --operator-token=*** --token-file f",
		"metersim --token=abc --operator-token xyz":     "metersim --token=*** --operator-token ***",
		"metersim --operator-token-file op.token --api": "metersim --operator-token-file op.token --api",
	} {
		if got := f.Redact(strings.Fields(in)); got != want {
			t.Errorf("Redact(%s) = %s, want %s", in, got, want)
		}
	}
}
