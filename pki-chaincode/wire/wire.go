// Package wire is how measurements travel to the ledger and how they sit in
// its blocks: the transaction names, the packed encoding of a
// concentrator's batch, the compact outcome a batch transaction answers
// with, and Decode, which reads back from a committed transaction every
// item's outcome. The chaincode writes this, the registry sends it, and the
// off-chain indexes (the registry's and the explorer's) and the fault
// campaign's reconciliation read it.
//
// The evidence of a verified measurement is its transaction in the block:
// the exact signed bytes and signature are the transaction's arguments,
// under the endorsing NMIs' and the orderers' signatures. World state holds
// only what consensus needs (the meter records and each meter's replay
// guard), so a batch writes one key per meter, not one per measurement.
package wire

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// Transaction names of the measurement path.
const (
	// TxSubmitMeasurement takes one signed measurement: meter ID, payload
	// and signature (both base64). Its result is a meter.ItemResult.
	TxSubmitMeasurement = "SubmitMeasurement"
	// TxSubmitMeasurements takes a batch as a JSON array of
	// meter.SignedMeasurement; its result is an Outcome.
	TxSubmitMeasurements = "SubmitMeasurements"
	// TxSubmitPacked takes a batch packed by Pack as its one argument; its
	// result is an Outcome. The registry sends batches this way.
	TxSubmitPacked = "SubmitMeasurementsPacked"
)

// Namespace is the chaincode's name on the channel: its world-state
// namespace and the name transactions invoke it by.
const Namespace = "pki"

// Contract is the meter-PKI contract's name in the chaincode's metadata.
// It is the chaincode's default contract: its transactions are invoked
// without a prefix (the billing contract's as "billing:<transaction>").
const Contract = "pki"

// TxAttestMeter takes a meter ID and returns the meter's record for an
// attestation bundle (package network/pkg/proof); the registry and the
// explorer find attestations in the blocks by this name.
const TxAttestMeter = "AttestMeter"

// AttestationType marks an Attestation, so that no other signed response
// can be taken for one.
const AttestationType = "meterAttestation"

// Attestation is what AttestMeter returns: the meter's record as the
// endorsing peers read it. Their endorsements sign it together with the
// read of meter/<id> at its version, and the ordering puts it in a block:
// carried with that block and the channel's configuration chain, it is a
// certificate of the key binding anyone can check offline.
type Attestation struct {
	Type  string       `json:"type"`
	Meter *meter.Meter `json:"meter"`
	// TxID and At are the attestation transaction's ID and time (the
	// proposal's timestamp, within 5 minutes of each endorser's clock).
	TxID string `json:"txId"`
	At   string `json:"at"`
}

// packMagic starts a packed batch (and names its version).
var packMagic = []byte("PKM1")

// maxPackedItem bounds one unpacked item: a meter ID, the largest payload
// and a DER signature, with their length prefixes.
const maxPackedItem = 64 + meter.MaxPayloadBytes + 160

// maxPackedField bounds one field of a packed item. It is a bound of the
// framing, not of an item's form: an item whose meter ID, payload or
// signature is longer than its form allows still unpacks, and the
// chaincode refuses that item alone (meter.SignedMeasurement.CheckForm).
const maxPackedField = meter.MaxPayloadBytes + 1

// Pack encodes a batch compactly: a magic, then gzip of each item's meter
// ID, payload and signature, each prefixed by its length. The payloads of a
// batch are JSON of one shape and compress well; the signatures do not.
func Pack(items []meter.SignedMeasurement) ([]byte, error) {
	var buf bytes.Buffer
	buf.Write(packMagic)
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	var n [binary.MaxVarintLen64]byte
	field := func(b []byte) {
		zw.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
		zw.Write(b)
	}
	for _, it := range items {
		field([]byte(it.MeterID))
		field(it.Payload)
		field(it.Signature)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ErrPacked is a packed batch that cannot be read.
var ErrPacked = errors.New("packed batch")

// Unpack decodes a packed batch of at most meter.MaxBatch items. It never
// reads more than the largest such batch could decompress to, so a crafted
// argument cannot exhaust the endorsing peers' chaincode. It judges the
// framing only, never an item's form: one item cannot make the batch
// unreadable.
func Unpack(b []byte) ([]meter.SignedMeasurement, error) {
	if !bytes.HasPrefix(b, packMagic) {
		return nil, meter.Errorf(meter.CodeMalformed, "%v: it does not start with %q", ErrPacked, packMagic)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b[len(packMagic):]))
	if err != nil {
		return nil, meter.Errorf(meter.CodeMalformed, "%v: %v", ErrPacked, err)
	}
	limit := int64(meter.MaxBatch)*maxPackedItem + 1
	raw, err := io.ReadAll(io.LimitReader(zr, limit))
	if err != nil {
		return nil, meter.Errorf(meter.CodeMalformed, "%v: %v", ErrPacked, err)
	}
	if int64(len(raw)) == limit {
		return nil, meter.Errorf(meter.CodeTooLarge, "%v: more than %d measurements' worth of data", ErrPacked, meter.MaxBatch)
	}
	var items []meter.SignedMeasurement
	r := bytes.NewReader(raw)
	field := func(max uint64) ([]byte, error) {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return nil, err
		}
		if n > max || n > uint64(r.Len()) {
			return nil, fmt.Errorf("a field of %d bytes", n)
		}
		out := make([]byte, n)
		_, err = io.ReadFull(r, out)
		return out, err
	}
	for r.Len() > 0 {
		if len(items) == meter.MaxBatch {
			return nil, meter.Errorf(meter.CodeTooLarge, "the batch holds more than %d measurements", meter.MaxBatch)
		}
		id, err := field(maxPackedField)
		if err == nil {
			var p, s []byte
			if p, err = field(maxPackedField); err == nil {
				if s, err = field(maxPackedField); err == nil {
					items = append(items, meter.SignedMeasurement{MeterID: string(id), Payload: p, Signature: s})
					continue
				}
			}
		}
		return nil, meter.Errorf(meter.CodeMalformed, "%v: item %d: %v", ErrPacked, len(items), err)
	}
	return items, nil
}

// Outcome is what a batch transaction answers and keeps in its block: the
// counts, the key version that verified each meter's accepted items, and
// every item that was not accepted (refused, with code and reason, or a
// duplicate of an accepted one). Items it does not list were accepted.
type Outcome struct {
	TxID       string `json:"txId"`
	Items      int    `json:"items"`
	Accepted   int    `json:"accepted"`
	Rejected   int    `json:"rejected"`
	Duplicates int    `json:"duplicates,omitempty" metadata:",optional"`
	// KeyVersions are, for the meters with an accepted item, the key
	// version that verified it.
	KeyVersions map[string]int `json:"keyVersions,omitempty" metadata:",optional"`
	// Exceptions are the items not accepted, in input order.
	Exceptions []meter.ItemResult `json:"exceptions,omitempty" metadata:",optional"`
}

// Counts is the event of a batch transaction.
type Counts struct {
	Items      int `json:"items"`
	Accepted   int `json:"accepted"`
	Rejected   int `json:"rejected"`
	Duplicates int `json:"duplicates,omitempty"`
}

// Counts of the outcome, as its event carries them.
func (o *Outcome) Counts() Counts {
	return Counts{Items: o.Items, Accepted: o.Accepted, Rejected: o.Rejected, Duplicates: o.Duplicates}
}

// Expand lists every item's outcome, in input order, from the items the
// batch held.
func (o *Outcome) Expand(items []meter.SignedMeasurement) ([]meter.ItemResult, error) {
	parsed := make([]meter.Measurement, len(items))
	for i, sm := range items {
		parsed[i], _ = meter.ParseMeasurement(sm.Payload)
	}
	return o.ExpandParsed(items, parsed)
}

// ExpandParsed is Expand for items whose payloads the caller parsed
// already (zero where they did not parse).
func (o *Outcome) ExpandParsed(items []meter.SignedMeasurement, parsed []meter.Measurement) ([]meter.ItemResult, error) {
	if len(items) != o.Items || len(parsed) != len(items) {
		return nil, fmt.Errorf("the outcome is of %d items, the batch held %d", o.Items, len(items))
	}
	out := make([]meter.ItemResult, len(items))
	for i, sm := range items {
		out[i] = meter.ItemResult{Index: i, MeterID: sm.MeterID, Seq: parsed[i].Seq, Outcome: meter.OutcomeAccepted, KeyVersion: o.KeyVersions[sm.MeterID]}
	}
	for _, e := range o.Exceptions {
		if e.Index < 0 || e.Index >= len(out) {
			return nil, fmt.Errorf("the outcome names item %d of %d", e.Index, len(out))
		}
		out[e.Index] = e
	}
	return out, nil
}

// Item is one measurement a committed transaction delivered, with what the
// chaincode made of it.
type Item struct {
	Index  int
	Signed meter.SignedMeasurement
	// Measurement is the parsed payload; zero if it did not parse.
	Measurement meter.Measurement
	Result      meter.ItemResult
}

// ErrNotMeasurements is returned by Decode for a transaction that delivers
// no measurements.
var ErrNotMeasurements = errors.New("not a measurement transaction")

// Decode reads a committed measurement transaction of the pki chaincode:
// its function, its arguments (after the function name) and its result.
// Every item comes back with its outcome: accepted (with the key version
// that verified it), refused (with code and reason) or a duplicate.
func Decode(function string, args []string, result []byte) ([]Item, error) {
	var items []meter.SignedMeasurement
	switch function {
	case TxSubmitMeasurement:
		if len(args) != 3 {
			return nil, fmt.Errorf("%s with %d arguments", function, len(args))
		}
		var r meter.ItemResult
		if err := json.Unmarshal(result, &r); err != nil {
			return nil, fmt.Errorf("%s result: %w", function, err)
		}
		sm, err := meter.SignedFromBase64(args[0], args[1], args[2])
		if err != nil {
			return nil, err
		}
		m, _ := meter.ParseMeasurement(sm.Payload)
		return []Item{{Signed: sm, Measurement: m, Result: r}}, nil
	case TxSubmitMeasurements:
		if len(args) != 1 {
			return nil, fmt.Errorf("%s with %d arguments", function, len(args))
		}
		if err := json.Unmarshal([]byte(args[0]), &items); err != nil {
			return nil, fmt.Errorf("%s batch: %w", function, err)
		}
	case TxSubmitPacked:
		if len(args) != 1 {
			return nil, fmt.Errorf("%s with %d arguments", function, len(args))
		}
		var err error
		if items, err = Unpack([]byte(args[0])); err != nil {
			return nil, err
		}
	default:
		return nil, ErrNotMeasurements
	}
	var o Outcome
	if err := json.Unmarshal(result, &o); err != nil {
		return nil, fmt.Errorf("%s result: %w", function, err)
	}
	// What the chaincode accepted it parsed strictly; an index reads it
	// again plainly. Anything else is parsed as the chaincode did.
	notAccepted := make(map[int]bool, len(o.Exceptions))
	for _, e := range o.Exceptions {
		notAccepted[e.Index] = true
	}
	parsed := make([]meter.Measurement, len(items))
	for i, sm := range items {
		if notAccepted[i] {
			parsed[i], _ = meter.ParseMeasurement(sm.Payload)
		} else {
			parsed[i], _ = meter.ReadAccepted(sm.Payload)
		}
	}
	results, err := o.ExpandParsed(items, parsed)
	if err != nil {
		return nil, err
	}
	out := make([]Item, len(items))
	for i, sm := range items {
		out[i] = Item{Index: i, Signed: sm, Measurement: parsed[i], Result: results[i]}
	}
	return out, nil
}
