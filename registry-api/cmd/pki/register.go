package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/usage"
)

func (a *app) registerCommand() *cobra.Command {
	var reg meter.Registration
	var keyFile, proofFile, csvFile string
	c := &cobra.Command{
		Use:   "register (--id ID --key pub.pem --proof proof.b64 --manufacturer .. --model .. --serial .. --software-id .. --software-checksum ALG:HEX | --csv meters.csv)",
		Short: "Register a meter, or a manufacturer's CSV of meters",
		Long: `Register a meter under this NMI: bind its public key to its ID, with the
instrument's metadata and the identifier and checksum of its legally relevant
software (WELMEC 7.2). Needs an operator token.

The registration carries the meter's proof of possession (--proof): the meter's
signature over its registration statement for this meter ID and this NMI's MSP
ID, which the meter maker makes where the private key is ("pki meter prove").
The registry refuses a registration without it, or with one made for another
NMI or meter ID (BAD_SIGNATURE): a public key alone binds nothing.

With --csv, register every meter of a manufacturer's delivery list in one batch
(at most 10,000 rows; all or nothing). The file is sent as it is; its header
names the columns meterId, publicKey (PEM or base64 DER), manufacturer, model,
serialNumber, softwareId, softwareChecksum, proof and, optionally, identity and
typeId ("pki meter prove --csv" fills the proof column).

--type-id (or a typeId cell) names the meter's type ("pki type"): its software must
then be a version approved for the type now. A meter registered without a type can
be given one later ("pki assign-type").`,
		Example: `  pki register --id PTB-0001 --key meter.pub.pem --proof proof.b64 --manufacturer ACME --model E350 \
      --serial 123456 --software-id fw-1.2 --software-checksum sha256:9f86d081884c7d65
  pki register --csv delivery-2026-05.csv
  pki meter prove --keys meter-keys/ --nmi PTBMSP --csv delivery.csv | pki register --csv -`,
		Args: exactArgs(0, "no arguments; name the meter with --id"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if csvFile != "" {
				for _, name := range []string{"id", "key", "proof", "manufacturer", "model", "serial", "software-id", "software-checksum", "identity", "type-id"} {
					if cmd.Flags().Changed(name) {
						return usage.Errorf("--csv registers the meters the file lists; --%s does not go with it", name)
					}
				}
				return a.registerCSV(cmd, csvFile)
			}
			var missing []string
			for _, name := range []string{"id", "key", "proof", "manufacturer", "model", "serial", "software-id", "software-checksum"} {
				if !cmd.Flags().Changed(name) {
					missing = append(missing, "--"+name)
				}
			}
			if len(missing) > 0 {
				return usage.Errorf("missing %s (or give --csv)", strings.Join(missing, ", "))
			}
			key, err := readPublicKey(keyFile)
			if err != nil {
				return err
			}
			reg.PublicKey = key.PEM()
			if _, err := reg.Validate(); err != nil {
				return usage.Wrap(err)
			}
			b, err := a.readInput(proofFile)
			if err != nil {
				return err
			}
			if reg.Proof, err = proofText(b); err != nil {
				return usage.Errorf("--proof %s: %v (make it with pki meter prove)", proofFile, err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.RegisterMeter(cmd.Context(), reg)
			if err != nil {
				return fmt.Errorf("register meter %s: %w", reg.MeterID, err)
			}
			return a.print(r, func(w io.Writer) { receiptText(w, "registered", r) })
		},
	}
	f := c.Flags()
	f.StringVar(&reg.MeterID, "id", "", "meter ID: 1-64 of A-Z a-z 0-9 . _ : -")
	f.StringVar(&keyFile, "key", "", "the meter's public key (PEM)")
	f.StringVar(&proofFile, "proof", "", "file with the meter's proof of possession for this NMI (base64 or DER; - for stdin), from pki meter prove")
	f.StringVar(&reg.Manufacturer, "manufacturer", "", "manufacturer")
	f.StringVar(&reg.Model, "model", "", "model")
	f.StringVar(&reg.SerialNumber, "serial", "", "serial number")
	f.StringVar(&reg.SoftwareID, "software-id", "", "identifier of the legally relevant software")
	f.StringVar(&reg.SoftwareChecksum, "software-checksum", "", "checksum of the legally relevant software, ALG:HEX (sha256:…)")
	f.StringVar(&reg.Identity, "identity", "", "the meter identity whose SHA-256 was pre-enrolled")
	f.StringVar(&reg.TypeID, "type-id", "", "the meter's type, under which its software is approved")
	f.StringVar(&csvFile, "csv", "", "register the meters of a manufacturer's CSV file (- for stdin)")
	return c
}

func (a *app) registerCSV(cmd *cobra.Command, file string) error {
	b, err := a.readInput(file)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	e, err := c.RegisterMetersCSV(cmd.Context(), b)
	if err != nil {
		return fmt.Errorf("register the meters of %s: %w", file, err)
	}
	return a.print(e, func(w io.Writer) {
		fmt.Fprintf(w, "registered %d meters in %d transactions\n", e.Registered, len(e.Transactions))
		row(w, "TX", "BLOCK", "METERS")
		for _, t := range e.Transactions {
			row(w, t.TxID, t.Block, t.Meters)
		}
	})
}

func (a *app) preEnrolCommand() *cobra.Command {
	var req api.PreEnrolmentRequest
	var identity string
	c := &cobra.Command{
		Use:   "pre-enrol --id ID (--identity-hash HEX | --identity TEXT)",
		Short: "Announce a meter by the SHA-256 of its identity",
		Long: `Pre-enrol a meter: record the SHA-256 of its identity before the meter itself is
registered. The registration must then present the identity (register --identity),
and is refused unless it hashes to the pre-enrolled value. With --identity the hash
is computed here and only the hash is sent.`,
		Example: `  pki pre-enrol --id PTB-0002 --identity "ACME E350 123457 2026-05"
  pki pre-enrol --id PTB-0002 --identity-hash 5f1d…(64 hex)`,
		Args: exactArgs(0, "no arguments; name the meter with --id"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			hashSet, identitySet := cmd.Flags().Changed("identity-hash"), cmd.Flags().Changed("identity")
			switch {
			case req.MeterID == "":
				return usage.Errorf("--id is required")
			case hashSet == identitySet:
				return usage.Errorf("give exactly one of --identity-hash and --identity")
			case identitySet:
				req.IdentityHash = meter.IdentityHash(identity)
			}
			req.IdentityHash = strings.ToLower(strings.TrimSpace(req.IdentityHash))
			if err := meter.ValidateMeterID(req.MeterID); err != nil {
				return usage.Wrap(err)
			}
			if err := meter.ValidateHash(req.IdentityHash); err != nil {
				return usage.Wrap(err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.PreEnrol(cmd.Context(), req)
			if err != nil {
				return fmt.Errorf("pre-enrol meter %s: %w", req.MeterID, err)
			}
			return a.print(r, func(w io.Writer) {
				p := r.PreEnrolment
				fmt.Fprintf(w, "pre-enrolled %s in block %d, transaction %s\n", p.MeterID, r.Block, r.TxID)
				fields(w, "meter", p.MeterID, "nmi", p.NMI, "identity hash", p.IdentityHash, "at", p.At)
			})
		},
	}
	c.Flags().StringVar(&req.MeterID, "id", "", "meter ID")
	c.Flags().StringVar(&req.IdentityHash, "identity-hash", "", "hex SHA-256 of the meter's identity")
	c.Flags().StringVar(&identity, "identity", "", "the meter's identity; its SHA-256 is sent")
	return c
}
