package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/usage"
)

func (a *app) softwareCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "software",
		Short: "Meters' software updates: sign and deliver update statements, read the log",
		Long: `A meter that has loaded legally relevant software reports it in an update statement
it signs with its own key (docs/software.md):

  {"type":"softwareUpdate","meterId":"PTB-0001","time":"2026-12-07T10:00:00Z",
   "fromSoftwareId":"fw-1.2","fromSoftwareChecksum":"sha256:…",
   "toSoftwareId":"fw-1.3","toSoftwareChecksum":"sha256:…","result":"success"}

Any NMI's ingest token delivers it. The ledger records it in the meter's software log
if the meter's key signed it, it is newer than the meter's last, it starts from the
software the meter runs and, for a success, the new software is approved for the
meter's type at the statement's time. A refused statement is kept on the ledger as
evidence and answered with its code and the transaction that carries it.`,
		Args: noArgs,
		RunE: groupRun,
	}
	c.AddCommand(a.softwareSignCommand(), a.softwareUpdateCommand(), a.softwareLogCommand())
	return c
}

// statementFlags are the flags that make an update statement.
type statementFlags struct {
	st      meter.UpdateStatement
	at      string
	failure bool
}

func (s *statementFlags) register(f *pflag.FlagSet) {
	f.StringVar(&s.st.From.ID, "from-id", "", "the software the meter ran before")
	f.StringVar(&s.st.From.Checksum, "from-checksum", "", "its checksum, ALG:HEX")
	f.StringVar(&s.st.To.ID, "to-id", "", "the software the meter loaded")
	f.StringVar(&s.st.To.Checksum, "to-checksum", "", "its checksum, ALG:HEX")
	f.BoolVar(&s.failure, "failed", false, "the update failed: the meter still runs the software it ran before")
	f.StringVar(&s.st.Detail, "detail", "", "the meter's word on a failure")
	f.StringVar(&s.at, "time", "", "the meter's clock when the update ended, RFC 3339 (default now)")
}

// statement completes the statement for meter id at now.
func (s *statementFlags) statement(id string, now time.Time) (meter.UpdateStatement, error) {
	st := s.st
	st.MeterID, st.Result, st.Time = id, meter.UpdateSuccess, s.at
	if s.failure {
		st.Result = meter.UpdateFailure
	}
	if st.Time == "" {
		st.Time = now.UTC().Truncate(time.Second).Format(time.RFC3339)
	}
	if st.To.ID == "" || st.To.Checksum == "" {
		return st, usage.Errorf("--to-id and --to-checksum are required: the software the meter loaded")
	}
	if _, err := st.Statement(); err != nil {
		return st, usage.Wrap(err)
	}
	return st, nil
}

// sign signs the statement with the meter's key, warning of a time the
// ledger will refuse.
func (a *app) signStatement(key *meter.PrivateKey, st meter.UpdateStatement) (meter.SignedUpdate, error) {
	su, err := meter.SignUpdate(key, st)
	if err != nil {
		return su, usage.Wrap(err)
	}
	if err := meter.CheckMeterTime(st.Time, st.At(), a.now()); err != nil {
		fmt.Fprintf(a.stderr, "pki: warning: the ledger will refuse this statement: %v\n", err)
	}
	return su, nil
}

func (a *app) softwareSignCommand() *cobra.Command {
	var keyFile, meterID string
	var s statementFlags
	c := &cobra.Command{
		Use:   "sign --key meter.key.pem --meter ID --from-id ID --from-checksum ALG:HEX --to-id ID --to-checksum ALG:HEX [--failed] [--time RFC3339]",
		Short: "Sign a software update statement as a meter would, offline",
		Long: `Sign a software update statement with a meter's private key, as the meter would
after loading software, and print the delivery (meterId, statement and DER
signature, both base64) as one line of JSON, ready for "pki software update
--signed". --time defaults to now; the ledger refuses a time more than 10 minutes
ahead or more than 45 days old, and one not after the meter's last statement.`,
		Example: `  pki software sign --key meter.key.pem --meter PTB-0001 --from-id fw-1.2 --from-checksum sha256:9f86d081884c7d65 \
      --to-id fw-1.3 --to-checksum sha256:2c26b46b68ffc68f > update.json
  pki software sign --key meter.key.pem --meter PTB-0001 ... | pki software update --signed -`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case keyFile == "":
				return usage.Errorf("--key is required: the meter's private key")
			case meterID == "":
				return usage.Errorf("--meter is required")
			case s.st.From.ID == "" || s.st.From.Checksum == "":
				return usage.Errorf("--from-id and --from-checksum are required: the software the meter ran before")
			}
			st, err := s.statement(meterID, a.now())
			if err != nil {
				return err
			}
			key, err := a.readPrivateKey(keyFile)
			if err != nil {
				return err
			}
			su, err := a.signStatement(key, st)
			if err != nil {
				return err
			}
			b, err := json.Marshal(su)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "%s\n", b)
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&keyFile, "key", "", "the meter's private key (PEM)")
	f.StringVar(&meterID, "meter", "", "meter ID")
	s.register(f)
	return c
}

func (a *app) softwareUpdateCommand() *cobra.Command {
	var keyFile, signedFile, statementFile, signatureFile string
	var s statementFlags
	c := &cobra.Command{
		Use:   "update [METER-ID] (--key meter.key.pem --to-id ID --to-checksum ALG:HEX | --signed FILE|- | --statement FILE --signature FILE)",
		Short: "Deliver a meter's software update statement",
		Long: `Deliver a meter's software update statement to the registry (ingest token).

With --key, sign it here with the meter's private key, as the meter would, for
METER-ID: the statement goes from the software the ledger says the meter runs (or
--from-id and --from-checksum) to --to-id and --to-checksum, at --time (default now).
The key must be the meter's current key.

With --signed, deliver a statement signed before ("pki software sign" prints one:
meterId, statement and signature in base64). With --statement and --signature,
deliver the exact bytes the meter signed and its signature (DER, as "openssl dgst
-sha256 -sign" writes it, or its base64); the meter ID is the statement's unless
METER-ID is given.

A refused statement stays on the ledger as evidence: the exit status is 1, and the
code, the reason and the transaction go to stderr.`,
		Example: `  pki software update PTB-0001 --key meter.key.pem --to-id fw-1.3 --to-checksum sha256:2c26b46b68ffc68f
  pki software update --signed update.json
  pki software update --statement statement.json --signature statement.sig`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usage.Errorf("%s takes at most one meter ID", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
				if err := meterArg(id); err != nil {
					return err
				}
			}
			modes := 0
			for _, set := range []bool{keyFile != "", signedFile != "", statementFile != "" || signatureFile != ""} {
				if set {
					modes++
				}
			}
			if modes != 1 {
				return usage.Errorf("give exactly one of --key, --signed, and --statement with --signature")
			}
			var su meter.SignedUpdate
			var c *client.Client
			var err error
			switch {
			case signedFile != "":
				if su, err = a.readSignedUpdate(signedFile, id); err != nil {
					return err
				}
			case statementFile != "":
				if su, err = a.readStatement(statementFile, signatureFile, id); err != nil {
					return err
				}
			default:
				if id == "" {
					return usage.Errorf("--key signs for the meter named by METER-ID")
				}
				key, err := a.readPrivateKey(keyFile)
				if err != nil {
					return err
				}
				if c, err = a.client(); err != nil {
					return err
				}
				if su, err = a.signUpdateFor(cmd, c, id, key, &s); err != nil {
					return err
				}
			}
			if c == nil {
				if c, err = a.client(); err != nil {
					return err
				}
			}
			r, err := c.SubmitSoftwareUpdate(cmd.Context(), su)
			if err != nil {
				return fmt.Errorf("deliver the update statement of meter %s: %w", su.MeterID, err)
			}
			return a.print(r, func(w io.Writer) { updateReceiptText(w, r) })
		},
	}
	f := c.Flags()
	f.StringVar(&keyFile, "key", "", "sign the statement here with the meter's private key (PEM)")
	f.StringVar(&signedFile, "signed", "", "a statement signed before, as pki software sign prints it (- for stdin)")
	f.StringVar(&statementFile, "statement", "", "the exact statement bytes the meter signed (- for stdin)")
	f.StringVar(&signatureFile, "signature", "", "the meter's signature over them (DER or base64)")
	s.register(f)
	return c
}

// signUpdateFor makes meter id's statement from the flags, starting from
// the software the ledger says it runs unless --from-id says otherwise,
// and signs it with key once it is the meter's current key.
func (a *app) signUpdateFor(cmd *cobra.Command, c *client.Client, id string, key *meter.PrivateKey, s *statementFlags) (meter.SignedUpdate, error) {
	m, err := c.GetMeter(cmd.Context(), id, client.Read{})
	if err != nil {
		return meter.SignedUpdate{}, fmt.Errorf("read meter %s: %w", id, err)
	}
	if fp := key.Public().Fingerprint(); fp != m.Fingerprint {
		return meter.SignedUpdate{}, usage.Errorf("--key is not the current key of meter %s: its fingerprint is %s, the registry holds %s (key version %d)",
			id, fp, m.Fingerprint, m.KeyVersion)
	}
	if s.st.From.ID == "" && s.st.From.Checksum == "" {
		s.st.From = m.CurrentSoftware()
	}
	st, err := s.statement(id, a.now())
	if err != nil {
		return meter.SignedUpdate{}, err
	}
	return a.signStatement(key, st)
}

// readSignedUpdate reads a delivery as pki software sign prints it; id,
// if given, must be the meter it names.
func (a *app) readSignedUpdate(file, id string) (meter.SignedUpdate, error) {
	var su meter.SignedUpdate
	b, err := a.readInput(file)
	if err != nil {
		return su, err
	}
	if err := decodeJSONStrict(b, &su); err != nil {
		return su, usage.Errorf("%s: not a signed update statement (meterId, statement, signature): %v", file, err)
	}
	switch {
	case len(su.Statement) == 0 || len(su.Signature) == 0:
		return su, usage.Errorf("%s lacks the statement or the signature", file)
	case su.MeterID == "":
		su.MeterID = id
	case id != "" && su.MeterID != id:
		return su, usage.Errorf("%s is delivered for meter %s, not %s", file, su.MeterID, id)
	}
	if su.MeterID == "" {
		return su, usage.Errorf("%s names no meter; give METER-ID", file)
	}
	return su, nil
}

// readStatement reads the exact bytes a meter signed and its signature;
// the meter is id, or the one the statement names.
func (a *app) readStatement(statementFile, signatureFile, id string) (meter.SignedUpdate, error) {
	if statementFile == "" || signatureFile == "" {
		return meter.SignedUpdate{}, usage.Errorf("--statement and --signature go together: the bytes the meter signed and its signature")
	}
	st, err := a.readInput(statementFile)
	if err != nil {
		return meter.SignedUpdate{}, err
	}
	b, err := a.readInput(signatureFile)
	if err != nil {
		return meter.SignedUpdate{}, err
	}
	text, err := proofText(b)
	if err != nil {
		return meter.SignedUpdate{}, usage.Errorf("--signature %s: %v", signatureFile, err)
	}
	sig, _ := base64.StdEncoding.DecodeString(text)
	if id == "" {
		parsed, err := meter.ParseStatement(st)
		if err != nil {
			return meter.SignedUpdate{}, usage.Errorf("%s: %v; give METER-ID to deliver it all the same", statementFile, err)
		}
		id = parsed.MeterID
	}
	return meter.SignedUpdate{MeterID: id, Statement: st, Signature: sig}, nil
}

// updateReceiptText writes what the ledger recorded of a statement.
func updateReceiptText(w io.Writer, r *api.SoftwareUpdateReceipt) {
	rep := r.Report
	if r.Duplicate {
		fmt.Fprintf(w, "recorded before: statement %d of meter %s, exactly these signed bytes, in block %d, transaction %s\n",
			rep.Number, r.MeterID, r.Block, r.TxID)
		return
	}
	fmt.Fprintf(w, "recorded statement %d of meter %s in block %d, transaction %s\n", rep.Number, r.MeterID, r.Block, r.TxID)
	fields(w, "time", rep.Time, "from", rep.From.String(), "to", rep.To.String(), "result", rep.Result, "detail", rep.Detail,
		"key version", fmt.Sprint(rep.KeyVersion), "delivered by", rep.SubmittedBy)
}

func (a *app) softwareLogCommand() *cobra.Command {
	var r client.Read
	c := &cobra.Command{
		Use:   "log METER-ID",
		Short: "Show a meter's software: its type, what it runs and its update log",
		Long: `Show a meter's legally relevant software: its type, the software it runs now, the
software its record remembers it ran (each from when), and its software log, every
update statement the ledger recorded, oldest first. With -o json each entry carries
the signed bytes and the meter's signature, checkable offline with its key version.`,
		Example: `  pki software log PTB-0001
  pki software log PTB-0001 -o json > PTB-0001.software.json`,
		Args: exactArgs(1, "one meter ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := meterArg(args[0]); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ms, err := c.MeterSoftware(cmd.Context(), args[0], r)
			if err != nil {
				return fmt.Errorf("read the software of meter %s: %w", args[0], err)
			}
			return a.print(ms, func(w io.Writer) {
				fields(w, "meter", ms.MeterID, "type", dash(ms.TypeID), "runs", ms.Current.String())
				fmt.Fprintln(w)
				row(w, "SOFTWARE", "CHECKSUM", "SINCE", "TX")
				for _, in := range ms.Installed {
					row(w, in.ID, in.Checksum, in.Since, short(in.TxID))
				}
				if len(ms.Log) == 0 {
					fmt.Fprintln(w, "\nno update statements recorded")
					return
				}
				fmt.Fprintln(w)
				row(w, "#", "TIME", "FROM", "TO", "RESULT", "DELIVERED BY", "TX")
				for _, e := range ms.Log {
					row(w, e.Number, e.Time, e.From.ID, e.To.ID, e.Result, e.SubmittedBy, short(e.TxID))
				}
			})
		},
	}
	minBlockFlag(c, &r)
	return c
}
