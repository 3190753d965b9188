package client

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/inter-nmi/pki/registry-api/usage"
)

// FlagsHelp says how every command line of the project (pki, metersim,
// febill) reaches the registry; the commands put it in their help text.
const FlagsHelp = `The registry is reached over HTTPS with a bearer token, named by flags or by
the environment; a flag wins over its environment variable:
  --api         PKI_API          the registry's address, e.g. https://127.0.0.1:8081
  --ca          PKI_CA           PEM file of the CA of the registry's TLS certificate
                                 (the system roots when unset)
  --token-file  PKI_TOKEN_FILE   file holding the bearer token (surrounding spaces and
                                 newlines are ignored)
  --token       PKI_TOKEN        the bearer token itself; it shows in the process list,
                                 so prefer the file
Give a token or a token file, not both as flags; when no flag names one, the
environment's file is read before its token. A token is never printed.`

// Flags are the registry settings of a command line: the registry's
// address, the CA of its TLS certificate and the bearer tokens the command
// acts with, from flags or the environment under one set of rules
// (FlagsHelp).
type Flags struct {
	api, ca string
	creds   []*Credential
	getenv  func(string) string
}

// Credential is one bearer token a command takes: --NAME-file or --NAME,
// or the environment's PKI_NAME_FILE or PKI_NAME.
type Credential struct {
	name, env   string
	value, file string
}

// NewFlags makes the registry settings of a command that reads the
// environment with getenv (os.Getenv when nil).
func NewFlags(getenv func(string) string) *Flags {
	if getenv == nil {
		getenv = os.Getenv
	}
	return &Flags{getenv: getenv}
}

// Register adds --api and --ca to fs.
func (f *Flags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&f.api, "api", "", "registry address, e.g. https://127.0.0.1:8081 (env PKI_API)")
	fs.StringVar(&f.ca, "ca", "", "PEM file of the CA of the registry's TLS certificate; default the system roots (env PKI_CA)")
}

// Credential adds --NAME-file and --NAME to fs for a bearer token, which
// says what the token is for in the flags' help ("bearer token", "operator
// token"), and returns it for Connect.
func (f *Flags) Credential(fs *pflag.FlagSet, name, what string) *Credential {
	c := &Credential{name: name, env: "PKI_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
	fs.StringVar(&c.file, name+"-file", "", fmt.Sprintf("file holding the %s (env %s_FILE)", what, c.env))
	fs.StringVar(&c.value, name, "", fmt.Sprintf("the %s itself; prefer --%s-file, which keeps it out of the process list (env %s)", what, name, c.env))
	f.creds = append(f.creds, c)
	return c
}

// Options are the client options the flags and the environment give with
// the credential c, over base (which sets what the flags do not: timeouts,
// connections). A missing or conflicting setting is a usage error.
func (f *Flags) Options(c *Credential, base Options) (Options, error) {
	base.BaseURL = firstSet(f.api, f.getenv("PKI_API"))
	if base.BaseURL == "" {
		return base, usage.Errorf("no registry address: set --api or PKI_API (e.g. https://127.0.0.1:8081)")
	}
	base.CACert = firstSet(f.ca, f.getenv("PKI_CA"))
	token, err := f.token(c)
	if err != nil {
		return base, err
	}
	base.Token = token
	return base, nil
}

// Connect is a client with the credential c, over base (see Options).
func (f *Flags) Connect(c *Credential, base Options) (*Client, error) {
	o, err := f.Options(c, base)
	if err != nil {
		return nil, err
	}
	cl, err := New(o)
	if err != nil {
		return nil, usage.Wrap(err)
	}
	return cl, nil
}

func (f *Flags) token(c *Credential) (string, error) {
	if c.value != "" && c.file != "" {
		return "", usage.Errorf("give --%s or --%s-file, not both", c.name, c.name)
	}
	file, token := c.file, c.value
	if file == "" && token == "" {
		file, token = f.getenv(c.env+"_FILE"), f.getenv(c.env)
	}
	if file == "" {
		if token == "" {
			return "", usage.Errorf("no credential: set --%s-file (or %s_FILE) to a file holding the %s", c.name, c.env, strings.ReplaceAll(c.name, "-", " "))
		}
		return token, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", usage.Errorf("token file: %w", err)
	}
	token = strings.TrimSpace(string(b))
	if token == "" {
		return "", usage.Errorf("token file %s is empty", file)
	}
	return token, nil
}

// Redact is the command line args with the values of the token flags
// hidden, for a record of how a command was run.
func (f *Flags) Redact(args []string) string {
	secret := func(a string) bool {
		for _, c := range f.creds {
			if a == "--"+c.name {
				return true
			}
		}
		return false
	}
	out := make([]string, len(args))
	hide := false
	for i, a := range args {
		name, _, inline := strings.Cut(a, "=")
		switch {
		case hide:
			out[i], hide = "***", false
		case secret(a):
			out[i], hide = a, true
		case inline && secret(name):
			out[i] = name + "=***"
		default:
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}

func firstSet(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
