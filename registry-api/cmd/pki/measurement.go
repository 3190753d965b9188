package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/usage"
)

func (a *app) signCommand() *cobra.Command {
	var keyFile, at string
	var m meter.Measurement
	c := &cobra.Command{
		Use:   "sign --key meter.key.pem --meter ID --seq N --value DECIMAL [--unit kWh] [--time RFC3339]",
		Short: "Sign a measurement as a meter would, offline",
		Long: `Sign a measurement with a meter's private key, as the meter would, and print the
delivery (meterId, payload and DER signature, both base64) as one line of JSON on
stdout, ready for "pki submit" or "pki verify". The payload is the project's
signing format (docs/signing-format.md). --time defaults to now; the ledger
refuses a time more than 10 minutes ahead or more than 45 days old, and a seq
not above the meter's last accepted one. --software-id names the software that
made the reading: the ledger refuses the reading unless the meter ran it at the
reading's time (SOFTWARE_MISMATCH) and it was approved for the meter's type then
(SOFTWARE_NOT_APPROVED).`,
		Example: `  pki sign --key meter.key.pem --meter PTB-0001 --seq 42 --value 1234.5 --unit kWh
  pki sign --key meter.key.pem --meter PTB-0001 --seq 43 --value 1235.1 | pki submit -
  for i in 1 2 3; do pki sign --key meter.key.pem --meter PTB-0001 --seq $i --value $i.0; done | pki submit -`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case keyFile == "":
				return usage.Errorf("--key is required: the meter's private key")
			case m.MeterID == "":
				return usage.Errorf("--meter is required")
			case m.Seq == 0:
				return usage.Errorf("--seq is required: 1 or more, above the meter's last accepted seq")
			case m.Value == "":
				return usage.Errorf("--value is required: a decimal number such as 1234.5")
			}
			now := a.now()
			m.Time = at
			if at == "" {
				m.Time = now.UTC().Truncate(time.Second).Format(time.RFC3339)
			}
			key, err := a.readPrivateKey(keyFile)
			if err != nil {
				return err
			}
			sm, err := meter.Sign(key, m)
			if err != nil {
				return usage.Wrap(err)
			}
			if err := m.CheckPlausible(now); err != nil {
				fmt.Fprintf(a.stderr, "pki: warning: the ledger will refuse this measurement: %v\n", err)
			}
			b, err := json.Marshal(sm)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "%s\n", b)
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&keyFile, "key", "", "the meter's private key (PEM)")
	f.StringVar(&m.MeterID, "meter", "", "meter ID")
	f.Uint64Var(&m.Seq, "seq", 0, "sequence number, strictly increasing per meter")
	f.StringVar(&m.Value, "value", "", "reading, a decimal number without exponent (e.g. 1234.5)")
	f.StringVar(&m.Unit, "unit", "kWh", "unit of the reading")
	f.StringVar(&at, "time", "", "the meter's clock, RFC 3339 (default now)")
	f.StringVar(&m.Ciphertext, "ciphertext", "", "functional-encryption ciphertext of the reading (base64), for private billing")
	f.StringVar(&m.SoftwareID, "software-id", "", "the identification of the software that made the reading; the ledger then checks the meter ran it, approved, at the reading's time")
	return c
}

func (a *app) submitCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "submit FILE|-",
		Short: "Deliver signed measurements",
		Long: `Deliver signed measurements to the registry (ingest token). The input is either
one signed measurement object, delivered alone (refused as a whole if invalid), or
several: a JSON array, a {"measurements":[...]} batch, or objects one after the
other (as "pki sign" prints them). Several are delivered as a data concentrator's
batch (1,000 per request), where each is judged on its own and a refused one is
kept on the ledger as evidence.

Exit status 1 also when some items of a batch were refused; the answer is printed
all the same.`,
		Example: `  pki submit reading.json
  pki sign --key meter.key.pem --meter PTB-0001 --seq 7 --value 12.5 | pki submit -
  pki submit concentrator-batch.json -o json`,
		Args: exactArgs(1, "one file (or - for stdin)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.readInput(args[0])
			if err != nil {
				return err
			}
			items, batch, err := parseDeliveries(b)
			if err != nil {
				return usage.Errorf("%s: %v", args[0], err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if !batch {
				r, err := c.SubmitMeasurement(cmd.Context(), items[0])
				if err != nil {
					return fmt.Errorf("submit a measurement of meter %s: %w", items[0].MeterID, err)
				}
				return a.print(r, func(w io.Writer) {
					if r.Duplicate {
						fmt.Fprintf(w, "accepted before: %s seq %d, exactly these signed bytes, in block %d, transaction %s\n", r.MeterID, r.Seq, r.Block, r.TxID)
						return
					}
					fmt.Fprintf(w, "accepted %s seq %d (key version %d) in block %d, transaction %s\n", r.MeterID, r.Seq, r.KeyVersion, r.Block, r.TxID)
				})
			}
			var receipts []*api.BatchReceipt
			rejected := 0
			for from := 0; from < len(items); from += api.MaxMeasurementBatch {
				part := items[from:min(from+api.MaxMeasurementBatch, len(items))]
				r, err := c.SubmitBatch(cmd.Context(), part)
				if err != nil {
					return fmt.Errorf("submit measurements %d to %d: %w", from, from+len(part)-1, err)
				}
				for i := range r.Items {
					r.Items[i].Index += from
				}
				receipts = append(receipts, r)
				rejected += r.Rejected
			}
			var out any = receipts
			if len(receipts) == 1 {
				out = receipts[0]
			}
			if err := a.print(out, func(w io.Writer) { batchText(w, receipts) }); err != nil {
				return err
			}
			if rejected > 0 {
				return &exitError{exitFailure, fmt.Sprintf("%d of %d measurements refused", rejected, len(items))}
			}
			return nil
		},
	}
}

func batchText(w io.Writer, receipts []*api.BatchReceipt) {
	var refused []meter.ItemResult
	for _, r := range receipts {
		switch {
		case r.TxID == "":
			fmt.Fprintf(w, "batch: all %d accepted before (duplicates); nothing written\n", r.Duplicates)
		case r.Duplicates > 0:
			fmt.Fprintf(w, "batch in block %d, transaction %s: %d accepted (%d of them before, duplicates), %d refused\n", r.Block, r.TxID, r.Accepted+r.Duplicates, r.Duplicates, r.Rejected)
		default:
			fmt.Fprintf(w, "batch in block %d, transaction %s: %d accepted, %d refused\n", r.Block, r.TxID, r.Accepted, r.Rejected)
		}
		for _, it := range r.Items {
			if it.Outcome == meter.OutcomeRejected {
				refused = append(refused, it)
			}
		}
	}
	if len(refused) == 0 {
		return
	}
	fmt.Fprintln(w)
	row(w, "INDEX", "METER", "SEQ", "CODE", "REASON")
	for _, it := range refused {
		row(w, it.Index, it.MeterID, it.Seq, it.Code, it.Reason)
	}
}

// parseDeliveries reads signed measurements: one object (batch false), or an
// array, a {"measurements":[…]} object or a sequence of objects (batch true).
func parseDeliveries(b []byte) (items []meter.SignedMeasurement, batch bool, err error) {
	var values []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		var v json.RawMessage
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			return nil, false, fmt.Errorf("not JSON: %w", err)
		}
		values = append(values, v)
	}
	switch {
	case len(values) == 0:
		return nil, false, errors.New("holds no measurement")
	case len(values) > 1:
		batch = true
		for _, v := range values {
			var sm meter.SignedMeasurement
			if err := decodeStrict(v, &sm); err != nil {
				return nil, false, err
			}
			items = append(items, sm)
		}
	case bytes.HasPrefix(values[0], []byte("[")):
		batch = true
		err = decodeStrict(values[0], &items)
	default:
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(values[0], &keys); err != nil {
			return nil, false, errors.New("expected a signed measurement object, an array of them or a {\"measurements\":[…]} batch")
		}
		if _, ok := keys["measurements"]; ok {
			var mb api.MeasurementBatch
			batch, err = true, decodeStrict(values[0], &mb)
			items = mb.Measurements
		} else {
			items = make([]meter.SignedMeasurement, 1)
			err = decodeStrict(values[0], &items[0])
		}
	}
	if err != nil {
		return nil, false, err
	}
	if len(items) == 0 {
		return nil, false, errors.New("holds no measurement")
	}
	for i, sm := range items {
		if sm.MeterID == "" || len(sm.Payload) == 0 || len(sm.Signature) == 0 {
			return nil, false, fmt.Errorf("measurement %d lacks meterId, payload or signature", i)
		}
	}
	return items, batch, nil
}

// decodeStrict reads one signed measurement, or a batch of them, into v,
// refusing unknown fields.
func decodeStrict(b []byte, v any) error {
	if err := decodeJSONStrict(b, v); err != nil {
		return fmt.Errorf("not a signed measurement (meterId, payload, signature): %w", err)
	}
	return nil
}

func (a *app) verifyCommand() *cobra.Command {
	var keyFile string
	c := &cobra.Command{
		Use:   "verify FILE|- [--key meter.pub.pem]",
		Short: "Check whether a signed measurement would be accepted",
		Long: `Check one signed measurement without storing it. By default the registry answers
whether it would accept it now: meter known and not revoked, payload well formed,
signature valid against the current key, time plausible, seq above the last one.

With --key the check is local and needs no registry: the payload's format, that it
names the meter it is delivered for, the signature against the given public key,
and the time against this machine's clock; revocation and replay are not checked.

Exit status 1 when the measurement would be refused.`,
		Example: `  pki verify reading.json
  pki sign --key meter.key.pem --meter PTB-0001 --seq 1 --value 1.5 | pki verify --key meter.pub.pem -`,
		Args: exactArgs(1, "one file (or - for stdin)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.readInput(args[0])
			if err != nil {
				return err
			}
			items, batch, err := parseDeliveries(b)
			if err != nil {
				return usage.Errorf("%s: %v", args[0], err)
			}
			if batch {
				return usage.Errorf("%s holds %d measurements; verify takes one", args[0], len(items))
			}
			sm := items[0]
			var v *meter.Verification
			if keyFile != "" {
				key, err := readPublicKey(keyFile)
				if err != nil {
					return err
				}
				v = verifyLocally(sm, key, a.now())
			} else {
				c, err := a.client()
				if err != nil {
					return err
				}
				if v, err = c.Verify(cmd.Context(), sm); err != nil {
					return fmt.Errorf("verify a measurement of meter %s: %w", sm.MeterID, err)
				}
			}
			if err := a.print(v, func(w io.Writer) {
				if v.Valid {
					fmt.Fprintf(w, "valid: meter %s seq %d", v.MeterID, v.Seq)
					if v.KeyVersion > 0 {
						fmt.Fprintf(w, ", key version %d", v.KeyVersion)
					}
					fmt.Fprintln(w)
					return
				}
				fmt.Fprintf(w, "refused: %s: %s\n", v.Code, v.Reason)
			}); err != nil {
				return err
			}
			if !v.Valid {
				return &exitError{exitFailure, fmt.Sprintf("the measurement would be refused (%s)", v.Code)}
			}
			return nil
		},
	}
	c.Flags().StringVar(&keyFile, "key", "", "verify locally against this public key instead of asking the registry")
	return c
}

// verifyLocally checks format, meter, signature and time plausibility.
func verifyLocally(sm meter.SignedMeasurement, key *meter.PublicKey, now time.Time) *meter.Verification {
	m, err := sm.Open(key)
	if err == nil {
		err = m.CheckPlausible(now)
	}
	v := &meter.Verification{Valid: err == nil, MeterID: sm.MeterID, Seq: m.Seq}
	if err != nil {
		v.Code, v.Reason = meter.CodeOf(err), err.Error()
		var me *meter.Error
		if errors.As(err, &me) {
			v.Reason = me.Message
		}
	}
	return v
}
