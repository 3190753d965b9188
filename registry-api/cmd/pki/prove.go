package main

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/usage"
)

func (a *app) proveCommand() *cobra.Command {
	var keyFile, keysDir, meterID, nmi, csvFile string
	c := &cobra.Command{
		Use:   "prove --nmi MSPID (--key meter.key.pem --meter ID | --keys DIR --csv meters.csv)",
		Short: "Make a meter's proof of possession for the NMI that registers it, offline",
		Long: `Make the proof a registration must carry: the meter's signature, with its private
key, over the registration statement for its meter ID and the MSP ID of the NMI it
is delivered to (docs/signing-format.md):

  {"type":"meterRegistration","meterId":"<id>","nmi":"<MSP ID>","publicKeySha256":"<fingerprint>"}

The meter maker makes it at manufacture or installation, where the private key is;
the NMI's operator sends it with the registration ("pki register --proof", or the
proof column of a CSV). A registry refuses a registration without it, and one made
for another NMI or meter ID, so whoever merely knows a meter's public key cannot
bind it. --nmi is the MSP ID as "pki consortium" shows it (e.g. PTBMSP).

With --key and --meter, print the proof (standard base64 of the DER signature) on
one line. With --keys and --csv, read a delivery list (the registry's CSV columns,
at least meterId and publicKey) and write it to stdout with every row's proof
column filled (added if missing), signed with the private key in DIR whose public
key the row names; DIR's files are PEM private keys (*.pem; public keys are skipped).
Nothing is sent anywhere: private keys never leave this machine.`,
		Example: `  pki meter prove --key meter.key.pem --meter PTB-0001 --nmi PTBMSP > proof.b64
  pki meter prove --key meter.key.pem --meter PTB-0001 --nmi PTBMSP | pki register --id PTB-0001 --key meter.pub.pem \
      --manufacturer ACME --model E350 --serial 123456 --software-id fw-1.2 \
      --software-checksum sha256:9f86d081884c7d65 --proof -
  pki meter prove --keys meter-keys/ --nmi PTBMSP --csv delivery.csv > delivery-proved.csv`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkMSPID(nmi); err != nil {
				return err
			}
			single, batch := keyFile != "" || meterID != "", keysDir != "" || csvFile != ""
			switch {
			case single && batch:
				return usage.Errorf("give --key and --meter for one meter, or --keys and --csv for a delivery list, not both")
			case batch && (keysDir == "" || csvFile == ""):
				return usage.Errorf("--keys and --csv go together: the directory of the meters' private keys and the CSV to fill")
			case batch:
				if a.output == outputJSON {
					return usage.Errorf("--csv writes CSV; -o json does not go with it")
				}
				return a.proveCSV(csvFile, keysDir, nmi)
			case keyFile == "":
				return usage.Errorf("--key is required: the meter's private key (or give --keys and --csv)")
			case meterID == "":
				return usage.Errorf("--meter is required: the ID the meter is registered under")
			}
			if err := meter.ValidateMeterID(meterID); err != nil {
				return usage.Wrap(err)
			}
			key, err := a.readPrivateKey(keyFile)
			if err != nil {
				return err
			}
			reg := meter.Registration{MeterID: meterID, PublicKey: key.Public().PEM()}
			if err := reg.Prove(key, nmi); err != nil {
				return err
			}
			res := struct {
				MeterID     string `json:"meterId"`
				NMI         string `json:"nmi"`
				Fingerprint string `json:"fingerprint"`
				Proof       string `json:"proof"`
			}{meterID, nmi, key.Public().Fingerprint(), reg.Proof}
			return a.print(res, func(w io.Writer) { fmt.Fprintln(w, res.Proof) })
		},
	}
	f := c.Flags()
	f.StringVar(&nmi, "nmi", "", "MSP ID of the NMI that registers the meter, e.g. PTBMSP")
	f.StringVar(&keyFile, "key", "", "the meter's private key (PEM)")
	f.StringVar(&meterID, "meter", "", "the meter's ID")
	f.StringVar(&keysDir, "keys", "", "directory of the meters' private keys (PEM files), for --csv")
	f.StringVar(&csvFile, "csv", "", "delivery list to fill the proof column of (- for stdin); written to stdout")
	return c
}

// checkMSPID refuses an empty MSP ID, or one a person would not read as
// written; a proof is bound to the exact ID.
func checkMSPID(nmi string) error {
	if nmi == "" {
		return usage.Errorf("--nmi is required: the MSP ID of the NMI that registers the meter (e.g. PTBMSP; pki consortium shows it)")
	}
	for _, r := range nmi {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return usage.Errorf("--nmi %q holds a space or an unprintable character; an MSP ID is one word such as PTBMSP", nmi)
		}
	}
	return nil
}

// proveCSV writes the CSV of file to stdout with each row's proof made by
// the private key in dir of the row's public key.
func (a *app) proveCSV(file, dir, nmi string) error {
	keys, err := a.readPrivateKeys(dir)
	if err != nil {
		return err
	}
	b, err := a.readInput(file)
	if err != nil {
		return err
	}
	if file == "-" {
		file = "stdin"
	}
	r := csv.NewReader(bytes.NewReader(b))
	header, err := r.Read()
	if err != nil {
		return usage.Errorf("%s: no CSV header row: %v", file, err)
	}
	header[0] = strings.TrimPrefix(header[0], "\ufeff")
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	for _, need := range []string{"meterId", "publicKey"} {
		if _, ok := col[need]; !ok {
			return usage.Errorf("%s: the CSV lacks the column %q; its header names %s", file, need, strings.Join(header, ", "))
		}
	}
	proofCol, ok := col["proof"]
	if !ok {
		proofCol = len(header)
		header = append(header, "proof")
	}
	rows := [][]string{header}
	var refused []string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return usage.Errorf("%s: %v", file, err)
		}
		line, _ := r.FieldPos(0)
		id := strings.TrimSpace(rec[col["meterId"]])
		if proofCol == len(rec) {
			rec = append(rec, "")
		}
		rec[proofCol], err = proveRow(id, strings.TrimSpace(rec[col["publicKey"]]), keys, nmi)
		if err != nil {
			refused = append(refused, fmt.Sprintf("line %d (meter %q): %v", line, id, err))
		}
		rows = append(rows, rec)
	}
	if len(rows) == 1 {
		return usage.Errorf("%s lists no meters", file)
	}
	if n := len(refused); n > 0 {
		if n > 20 {
			refused = append(refused[:20], fmt.Sprintf("and %d rows more", n-20))
		}
		return fmt.Errorf("%s: %d of %d rows cannot be proved; nothing was written:\n  %s", file, n, len(rows)-1, strings.Join(refused, "\n  "))
	}
	w := csv.NewWriter(a.stdout)
	if err := w.WriteAll(rows); err != nil {
		return fmt.Errorf("write the CSV: %w", err)
	}
	fmt.Fprintf(a.stderr, "pki: proved %d meters for %s\n", len(rows)-1, nmi)
	return nil
}

// proveRow makes the proof of one row: its meter ID, its public key (PEM
// or base64 DER, as the registry reads the cell) and the matching private
// key.
func proveRow(id, publicKey string, keys map[string]*meter.PrivateKey, nmi string) (string, error) {
	if err := meter.ValidateMeterID(id); err != nil {
		return "", err
	}
	var pub *meter.PublicKey
	var err error
	if strings.HasPrefix(publicKey, "-----BEGIN") {
		pub, err = meter.ParsePublicKeyPEM(publicKey)
	} else if der, b64err := base64.StdEncoding.DecodeString(publicKey); b64err == nil {
		pub, err = meter.ParsePublicKeyDER(der)
	} else {
		err = errors.New("publicKey is neither PEM nor base64 DER")
	}
	if err != nil {
		return "", err
	}
	key := keys[pub.Fingerprint()]
	if key == nil {
		return "", fmt.Errorf("no private key of public key %s in the keys directory", pub.Fingerprint())
	}
	reg := meter.Registration{MeterID: id, PublicKey: pub.PEM()}
	if err := reg.Prove(key, nmi); err != nil {
		return "", err
	}
	return reg.Proof, nil
}

// readPrivateKeys reads every PEM private key of dir, by the fingerprint of
// its public key; files holding no private key are skipped.
func (a *app) readPrivateKeys(dir string) (map[string]*meter.PrivateKey, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.pem"))
	if err != nil {
		return nil, usage.Errorf("--keys %s: %v", dir, err)
	}
	keys := map[string]*meter.PrivateKey{}
	var readable []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, usage.Errorf("%v", err)
		}
		if !strings.Contains(string(b), "PRIVATE KEY-----") {
			continue
		}
		k, err := parsePrivateKey(f, b)
		if err != nil {
			return nil, err
		}
		keys[k.Public().Fingerprint()] = k
		if exposed(f) {
			readable = append(readable, filepath.Base(f))
		}
	}
	if len(keys) == 0 {
		return nil, usage.Errorf("--keys %s holds no PEM private key (*.pem)", dir)
	}
	if len(readable) > 0 {
		fmt.Fprintf(a.stderr, "pki: warning: %d private keys in %s are readable by others than their owner (%s first); make them private: chmod 600 %s/*.pem\n",
			len(readable), dir, readable[0], dir)
	}
	return keys, nil
}
