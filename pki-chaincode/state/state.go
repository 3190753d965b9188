// Package state is what the contracts (pki and billing) share to read and
// write the world state: JSON values, chaincode events, and the internal
// error that fails the whole transaction, so that nothing it wrote is kept.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// Get reads a JSON value; found is false when the key is absent.
func Get[T any](ctx contractapi.TransactionContextInterface, key string) (v T, found bool, err error) {
	b, err := ctx.GetStub().GetState(key)
	if err != nil {
		return v, false, Internal("read "+key, err)
	}
	if b == nil {
		return v, false, nil
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, false, Internal("decode "+key, err)
	}
	return v, true, nil
}

// Put writes v as JSON.
func Put(ctx contractapi.TransactionContextInterface, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return Internal("encode "+key, err)
	}
	if err := ctx.GetStub().PutState(key, b); err != nil {
		return Internal("write "+key, err)
	}
	return nil
}

// Emit sets the transaction's event, its payload as JSON.
func Emit(ctx contractapi.TransactionContextInterface, name string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return Internal("encode event", err)
	}
	if err := ctx.GetStub().SetEvent(name, b); err != nil {
		return Internal("set event", err)
	}
	return nil
}

// Internal reports a ledger failure with code INTERNAL; a refusal (a
// *meter.Error) passes through as it is. The whole transaction fails, so
// nothing it wrote is kept.
func Internal(what string, err error) error {
	var refusal *meter.Error
	if errors.As(err, &refusal) {
		return err
	}
	return meter.Errorf(meter.CodeInternal, "%s: %v", what, err)
}

// MaxClockSkew bounds how far a proposal's timestamp may lie from the
// endorsing peer's own clock. The timestamp is the submitting client's
// clock, which Fabric does not bound; every time the ledger records (when a
// meter was registered or revoked, from when a key is valid, when a reading
// was accepted) and the plausibility window of readings derive from it.
const MaxClockSkew = 5 * time.Minute

// TxTime is the transaction's time: its proposal timestamp, refused when it
// lies more than MaxClockSkew from now (the endorsing peer's clock). Only
// the refusal depends on the peer's clock, never what is written, so every
// peer that endorses writes the same; peers whose clocks disagree by more
// than the margin refuse, and the transaction gathers no endorsements.
func TxTime(ctx contractapi.TransactionContextInterface, now func() time.Time) (time.Time, error) {
	ts, err := ctx.GetStub().GetTxTimestamp()
	if err != nil {
		return time.Time{}, Internal("read transaction time", err)
	}
	t := ts.AsTime().UTC()
	if now != nil {
		if d := t.Sub(now()); d > MaxClockSkew || d < -MaxClockSkew {
			return t, meter.Errorf(meter.CodeClockSkew, "the proposal's timestamp %s is %s from this endorsing peer's clock (at most %s either way): the submitting client's clock is wrong",
				t.Format(time.RFC3339), d.Round(time.Second), MaxClockSkew)
		}
	}
	return t, nil
}

// DecodeRequest parses a transaction's JSON argument into v, refusing a
// request over limit bytes (TOO_LARGE), unknown fields and trailing data
// (MALFORMED): a contract acts on exactly what its request type declares.
func DecodeRequest(s string, v any, limit int) error {
	if len(s) > limit {
		return meter.Errorf(meter.CodeTooLarge, "request is %d bytes, at most %s", len(s), bytesText(limit))
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return meter.Errorf(meter.CodeMalformed, "request is not valid JSON for this transaction: %v", err)
	}
	// More() misses a stray '}' or ']'; anything but the end of input is trailing data.
	if _, err := dec.Token(); err != io.EOF {
		return meter.Errorf(meter.CodeMalformed, "request has data after its JSON value")
	}
	return nil
}

// bytesText names a limit in the largest binary unit that divides it.
func bytesText(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// ExactName is a contract's BeforeTransaction: it refuses a transaction
// invoked by any name but its one name (names, as the client invokes
// them). Fabric's contract API would also answer the name with its first
// letter in lower case and, for the default contract, with the contract's
// name as a prefix; a transaction committed under such a name would be
// read by no index, its accepted readings missing everywhere.
func ExactName(names []string) func(contractapi.TransactionContextInterface) error {
	return func(ctx contractapi.TransactionContextInterface) error {
		fn, _ := ctx.GetStub().GetFunctionAndParameters()
		if slices.Contains(names, fn) {
			return nil
		}
		return meter.Errorf(meter.CodeMalformed, "transaction %q is not one of the contract's; invoke it by its exact name", cut(fn, 64))
	}
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
