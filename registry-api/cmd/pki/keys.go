package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/usage"
)

func (a *app) meterCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "meter",
		Short: "Make meter keys, registration proofs and fingerprints, offline",
		Long: `Meter key tools that need no registry: make a meter's key pair as a meter maker
or a test bench would, make the meter's proof of possession that its registration
must carry, and compute the fingerprint of a key (SHA-256 of the DER
SubjectPublicKeyInfo, as "openssl pkey -pubin -outform DER | openssl dgst -sha256").`,
		Args: noArgs,
		RunE: groupRun,
	}
	c.AddCommand(a.keygenCommand(), a.proveCommand(), a.fingerprintCommand())
	return c
}

func (a *app) keygenCommand() *cobra.Command {
	var curve, out, pub string
	var force bool
	c := &cobra.Command{
		Use:   "keygen --out meter.key.pem [--pub meter.pub.pem] [--curve P-256]",
		Short: "Make a meter key pair",
		Long: `Make an ECDSA key pair for a meter. The private key is written as PKCS#8 PEM
with mode 0600 (as "openssl genpkey" writes it); the public key, which the NMI
registers, as a PEM "PUBLIC KEY" block. Existing files are kept unless --force.
P-256 is what a meter should use; P-384 and secp256k1 are accepted for secure
elements that offer only those.`,
		Example: `  pki meter keygen --out meter.key.pem --pub meter.pub.pem
  pki meter keygen --curve secp256k1 --out k1.key.pem -o json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cv, err := meter.ParseCurve(curve)
			if err != nil {
				return usage.Wrap(err)
			}
			if out == "" {
				return usage.Errorf("--out is required: the file for the private key")
			}
			if out == pub {
				return usage.Errorf("--out and --pub name the same file")
			}
			k, err := meter.GenerateKey(cv)
			if err != nil {
				return err
			}
			priv, err := k.PEM()
			if err != nil {
				return err
			}
			if err := writeFile(out, priv, 0o600, force); err != nil {
				return err
			}
			if pub != "" {
				if err := writeFile(pub, k.Public().PEM(), 0o644, force); err != nil {
					return err
				}
			}
			res := struct {
				Curve       meter.Curve `json:"curve"`
				Fingerprint string      `json:"fingerprint"`
				KeyFile     string      `json:"keyFile"`
				PubFile     string      `json:"pubFile,omitempty"`
			}{cv, k.Public().Fingerprint(), out, pub}
			return a.print(res, func(w io.Writer) {
				fields(w, "fingerprint", res.Fingerprint, "curve", string(cv), "private key", out+" (mode 0600)", "public key", pub)
			})
		},
	}
	c.Flags().StringVar(&curve, "curve", string(meter.P256), "curve: P-256, P-384 or secp256k1")
	c.Flags().StringVar(&out, "out", "", "file for the private key (written with mode 0600)")
	c.Flags().StringVar(&pub, "pub", "", "file for the public key")
	c.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	return c
}

func (a *app) fingerprintCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "fingerprint KEY.pem|-",
		Short: "Print the fingerprint of a meter key",
		Long: `Print the fingerprint of a meter key: the hex SHA-256 of its DER
SubjectPublicKeyInfo, as the registry shows it. The file may hold the public key
or the private key (whose public half is then used); - reads stdin.`,
		Example: `  pki meter fingerprint meter.pub.pem
  openssl pkey -in meter.key.pem -pubout | pki meter fingerprint -`,
		Args: exactArgs(1, "one key file (or - for stdin)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.readInput(args[0])
			if err != nil {
				return err
			}
			k, err := parseAnyKey(string(b))
			if err != nil {
				return usage.Errorf("%s: %v", args[0], err)
			}
			res := struct {
				Curve       meter.Curve `json:"curve"`
				Fingerprint string      `json:"fingerprint"`
			}{k.Curve(), k.Fingerprint()}
			return a.print(res, func(w io.Writer) {
				fields(w, "fingerprint", res.Fingerprint, "curve", string(res.Curve))
			})
		},
	}
}

// parseAnyKey reads a public key, or a private key's public half.
func parseAnyKey(text string) (*meter.PublicKey, error) {
	if strings.Contains(text, "PRIVATE KEY-----") {
		k, err := meter.ParsePrivateKeyPEM(text)
		if err != nil {
			return nil, err
		}
		return k.Public(), nil
	}
	return meter.ParsePublicKeyPEM(text)
}

// readPublicKey reads a meter's public key file; a private key is refused,
// since the registry must only ever see the public half.
func readPublicKey(path string) (*meter.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usage.Errorf("%v", err)
	}
	if strings.Contains(string(b), "PRIVATE KEY-----") {
		return nil, usage.Errorf("%s holds a private key; give the public key (pki meter keygen --pub, or openssl pkey -pubout)", path)
	}
	k, err := meter.ParsePublicKeyPEM(string(b))
	if err != nil {
		return nil, usage.Errorf("%s: %v", path, err)
	}
	return k, nil
}

// readPrivateKey reads a meter's private key file, and warns when others
// than its owner may read it.
func (a *app) readPrivateKey(path string) (*meter.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usage.Errorf("%v", err)
	}
	k, err := parsePrivateKey(path, b)
	if err != nil {
		return nil, err
	}
	if exposed(path) {
		fmt.Fprintf(a.stderr, "pki: warning: the private key %s is readable by others than its owner; make it private: chmod 600 %s\n", path, path)
	}
	return k, nil
}

// parsePrivateKey reads the private key of file path, naming a public key
// given in its place.
func parsePrivateKey(path string, b []byte) (*meter.PrivateKey, error) {
	text := string(b)
	if !strings.Contains(text, "PRIVATE KEY-----") && strings.Contains(text, "PUBLIC KEY-----") {
		return nil, usage.Errorf("%s holds a public key; this needs the meter's private key", path)
	}
	k, err := meter.ParsePrivateKeyPEM(text)
	if err != nil {
		return nil, usage.Errorf("%s: %v", path, err)
	}
	return k, nil
}

// exposed reports whether a file's mode lets its group or others read it.
func exposed(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().Perm()&0o044 != 0
}

// writeFile writes text with mode, refusing to replace a file unless force.
func writeFile(path, text string, mode os.FileMode, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, mode)
	if errors.Is(err, fs.ErrExist) {
		return usage.Errorf("%s exists; remove it or give --force", path)
	}
	if err != nil {
		return err
	}
	// An existing file keeps its mode when truncated.
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
