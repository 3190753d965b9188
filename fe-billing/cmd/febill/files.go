package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/inter-nmi/pki/fe-billing/fe"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// A party's directory holds its files:
//
//	party.key.pem                  the party's signing key (customer or utility), 0600
//	<meter>_<period>.master.json   the customer's master key, 0600
//	<meter>_<period>.public.json   the public key, for the meter
//	<meter>_<period>.tariff.json   the tariff
//	<meter>_<period>.tariff.sig    the utility's signature on it (base64)
//	<meter>_<period>.function.json the functional key, for the utility, 0600
func path(dir, meterID, period, kind string) string {
	return filepath.Join(dir, fmt.Sprintf("%s_%s.%s.json", meterID, period, kind))
}

func sigPath(dir, meterID, period string) string {
	return filepath.Join(dir, fmt.Sprintf("%s_%s.tariff.sig", meterID, period))
}

// secret is the mode of every file that holds a key only its party may
// read: the signing key, the master key and the functional key.
const secret os.FileMode = 0o600

func writeJSON(file string, v any, mode os.FileMode) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	return writeFile(file, append(b, '\n'), mode)
}

// writeFile replaces file with data, with exactly mode, whatever was there
// before: it writes a new file (created 0600) beside it and renames it over
// the old one, so an existing world-readable file (or a symbolic link to
// one) never receives a key, and a crash leaves the old file or the new
// one, never part of it.
func writeFile(file string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after the rename, there is nothing to remove
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), file)
}

func readJSON(file string, v any) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	return decodeJSON(file, b, v)
}

// readSecretJSON reads a key file, refusing one that other users can read
// or write: its key may be known to them, and using it would hide that.
func readSecretJSON(file string, v any) error {
	b, err := readSecret(file)
	if err != nil {
		return err
	}
	return decodeJSON(file, b, v)
}

func readSecret(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s holds a key but other users can access it (mode %04o): its key may be known to them; if you are sure it is not, chmod 600 it", file, perm)
	}
	return io.ReadAll(f)
}

func decodeJSON(file string, b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// partyKey loads the party's signing key from dir, making one on first use.
func partyKey(dir string) (*meter.PrivateKey, error) {
	file := filepath.Join(dir, "party.key.pem")
	b, err := readSecret(file)
	if errors.Is(err, os.ErrNotExist) {
		k, err := meter.GenerateKey(meter.P256)
		if err != nil {
			return nil, err
		}
		text, err := k.PEM()
		if err != nil {
			return nil, err
		}
		return k, writeFile(file, []byte(text), secret)
	}
	if err != nil {
		return nil, err
	}
	return meter.ParsePrivateKeyPEM(string(b))
}

func readTariff(file string) (fe.Tariff, error) {
	var t fe.Tariff
	return t, readJSON(file, &t)
}
