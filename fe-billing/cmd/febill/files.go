package main

import (
	"encoding/json"
	"errors"
	"fmt"
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

func writeJSON(file string, v any, mode os.FileMode) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	return os.WriteFile(file, append(b, '\n'), mode)
}

func readJSON(file string, v any) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// partyKey loads the party's signing key from dir, making one on first use.
func partyKey(dir string) (*meter.PrivateKey, error) {
	file := filepath.Join(dir, "party.key.pem")
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		k, err := meter.GenerateKey(meter.P256)
		if err != nil {
			return nil, err
		}
		text, err := k.PEM()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		return k, os.WriteFile(file, []byte(text), 0o600)
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
