package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/usage"
)

// print writes v as JSON with --output json, else what text writes.
func (a *app) print(v any, text func(w io.Writer)) error {
	if a.output == outputJSON {
		return writeJSON(a.stdout, v)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	text(tw)
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// fields writes label/value lines, skipping empty values.
func fields(w io.Writer, kv ...string) {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			fmt.Fprintf(w, "%s\t%s\n", kv[i], kv[i+1])
		}
	}
}

// row writes one tab-separated table row.
func row(w io.Writer, cols ...any) {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(w, strings.Join(parts, "\t"))
}

// short cuts a fingerprint or transaction ID for a table.
func short(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// meterText writes a meter record.
func meterText(w io.Writer, m *meter.Meter) {
	fields(w,
		"meter", m.ID,
		"nmi", m.NMI,
		"status", string(m.Status),
		"curve", string(m.Curve),
		"key version", fmt.Sprint(m.KeyVersion),
		"fingerprint", m.Fingerprint,
		"manufacturer", m.Metadata.Manufacturer,
		"model", m.Metadata.Model,
		"serial number", m.Metadata.SerialNumber,
		"software id", m.Metadata.SoftwareID,
		"software checksum", m.Metadata.SoftwareChecksum,
		"identity hash", m.IdentityHash,
		"registered", atTx(m.RegisteredAt, m.RegisteredTx),
		"updated", atTx(m.UpdatedAt, m.UpdatedTx),
	)
	if r := m.Revocation; r != nil {
		fields(w, "revoked", atTx(r.RevokedAt, r.TxID), "reason", string(r.Reason), "invalidity date", r.InvalidityDate)
	}
}

// atTx renders when something happened and in which transaction.
func atTx(at, tx string) string {
	if tx == "" {
		return at
	}
	return at + " (tx " + tx + ")"
}

// receiptText writes a meter and the transaction that changed it.
func receiptText(w io.Writer, verb string, r *api.MeterReceipt) {
	fmt.Fprintf(w, "%s %s in block %d, transaction %s\n", verb, r.Meter.ID, r.Block, r.TxID)
	meterText(w, r.Meter)
}

// readInput reads a file, or stdin for "-".
func (a *app) readInput(name string) ([]byte, error) {
	if name == "-" {
		b, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, usage.Errorf("%v", err)
	}
	return b, nil
}

// decodeJSONStrict reads exactly one JSON value into v, refusing unknown
// fields.
func decodeJSONStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}
