package contract

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/state"
)

// Event names for measurements.
const (
	EventMeasurementAccepted   = "MeasurementAccepted"
	EventMeasurementsSubmitted = "MeasurementsSubmitted"
)

// unattributed files rejections whose meter ID is not even well formed.
const unattributed = "-"

// lastAccepted is the replay guard of one meter.
type lastAccepted struct {
	Seq  uint64 `json:"seq"`
	Time string `json:"time"`
	TxID string `json:"txId"`
}

// meterState is what verifying a meter's measurements needs, read once per
// transaction.
type meterState struct {
	meter *meter.Meter
	key   *meter.PublicKey
	last  uint64
}

// verifier checks signed measurements within one transaction. It caches each
// meter's state, so a batch reads a meter and parses its key once, and it sees
// the sequence numbers the batch itself accepted.
type verifier struct {
	t      tx
	meters map[string]*meterState
	// accepted are the items this transaction accepted so far, by meter and
	// seq: a transaction does not read its own writes.
	accepted map[string]acceptedItem
}

type acceptedItem struct {
	payload []byte
}

func newVerifier(t tx) *verifier {
	return &verifier{t: t, meters: map[string]*meterState{}, accepted: map[string]acceptedItem{}}
}

func (v *verifier) state(id string) (*meterState, error) {
	if st, ok := v.meters[id]; ok {
		return st, nil
	}
	m, err := loadMeter(v.t.ctx, id)
	if err != nil {
		return nil, err
	}
	key, err := meter.ParsePublicKeyPEM(m.PublicKey)
	if err != nil {
		return nil, state.Internal("stored key of "+id, err)
	}
	last, _, err := state.Get[lastAccepted](v.t.ctx, lastSeqKey(id))
	if err != nil {
		return nil, err
	}
	st := &meterState{meter: m, key: key, last: last.Seq}
	v.meters[id] = st
	return st, nil
}

// check decides whether sm would be accepted now, without writing. A
// re-delivery of exactly the signed bytes accepted before is not an error:
// it returns the transaction that accepted them (dupOf), and nothing is to
// be written.
func (v *verifier) check(sm meter.SignedMeasurement) (m meter.Measurement, st *meterState, dupOf string, err error) {
	if err := meter.ValidateMeterID(sm.MeterID); err != nil {
		return meter.Measurement{}, nil, "", err
	}
	if st, err = v.state(sm.MeterID); err != nil {
		return meter.Measurement{}, nil, "", err
	}
	if parsed, err := meter.ParseMeasurement(sm.Payload); err == nil && parsed.MeterID == sm.MeterID && parsed.Seq <= st.last {
		if dupOf, err = v.duplicateOf(sm, parsed); dupOf != "" || err != nil {
			return parsed, st, dupOf, err
		}
	}
	if st.meter.Status == meter.StatusRevoked {
		return meter.Measurement{}, st, "", meter.Errorf(meter.CodeMeterRevoked, "meter %s was revoked (%s) at %s; its measurements are no longer accepted",
			sm.MeterID, st.meter.Revocation.Reason, st.meter.Revocation.RevokedAt)
	}
	if m, err = sm.Open(st.key); err != nil {
		return m, st, "", err
	}
	if err := m.CheckPlausible(v.t.time); err != nil {
		return m, st, "", err
	}
	if m.Seq <= st.last {
		return m, st, "", meter.Errorf(meter.CodeReplay, "meter %s: seq %d is not above the last accepted seq %d", sm.MeterID, m.Seq, st.last)
	}
	return m, st, "", nil
}

// duplicateOf finds the transaction that accepted exactly sm's payload as
// m.Seq, if one did, and checks that sm's signature verifies with the key
// version that accepted it (a meter may have rotated its key since). The
// same seq with other bytes is no duplicate: the caller refuses it as a
// replay.
func (v *verifier) duplicateOf(sm meter.SignedMeasurement, m meter.Measurement) (string, error) {
	if item, ok := v.accepted[itemKey(sm.MeterID, m.Seq)]; ok {
		if !bytes.Equal(item.payload, sm.Payload) {
			return "", nil
		}
		return v.t.id, v.meters[sm.MeterID].key.Verify(sm.Payload, sm.Signature)
	}
	rec, found, err := state.Get[meter.MeasurementRecord](v.t.ctx, measurementKey(m.MeterID, m.MeasuredAt(), m.Seq))
	if err != nil || !found || rec.Payload != base64.StdEncoding.EncodeToString(sm.Payload) {
		return "", err
	}
	key := v.meters[sm.MeterID].key
	if rec.KeyVersion != v.meters[sm.MeterID].meter.KeyVersion {
		kv, found, err := state.Get[meter.KeyVersion](v.t.ctx, keyVersionKey(m.MeterID, rec.KeyVersion))
		if err != nil {
			return "", err
		}
		if !found {
			return "", state.Internal("key version of "+m.MeterID, fmt.Errorf("version %d is missing", rec.KeyVersion))
		}
		if key, err = meter.ParsePublicKeyPEM(kv.PublicKey); err != nil {
			return "", state.Internal("stored key of "+m.MeterID, err)
		}
	}
	if err := key.Verify(sm.Payload, sm.Signature); err != nil {
		return "", err
	}
	return rec.TxID, nil
}

func itemKey(meterID string, seq uint64) string {
	return meterID + "\x00" + strconv.FormatUint(seq, 10)
}

// accept stores a checked measurement and advances the replay guard.
func (v *verifier) accept(sm meter.SignedMeasurement, m meter.Measurement, st *meterState) error {
	rec := meter.MeasurementRecord{
		MeterID: m.MeterID, Seq: m.Seq, Time: m.Time, Value: m.Value, Unit: m.Unit, Ciphertext: m.Ciphertext,
		Payload:    base64.StdEncoding.EncodeToString(sm.Payload),
		Signature:  base64.StdEncoding.EncodeToString(sm.Signature),
		KeyVersion: st.meter.KeyVersion, Fingerprint: st.meter.Fingerprint,
		TxID: v.t.id, AcceptedAt: v.t.stamp(),
	}
	if err := state.Put(v.t.ctx, measurementKey(m.MeterID, m.MeasuredAt(), m.Seq), rec); err != nil {
		return err
	}
	st.last = m.Seq
	v.accepted[itemKey(m.MeterID, m.Seq)] = acceptedItem{payload: sm.Payload}
	return state.Put(v.t.ctx, lastSeqKey(m.MeterID), lastAccepted{Seq: m.Seq, Time: m.Time, TxID: v.t.id})
}

// SubmitMeasurement verifies one signed measurement (payload and DER
// signature, both base64) against the meter's active key and stores it.
// A refusal is an error and writes nothing.
func (r *Registry) SubmitMeasurement(ctx contractapi.TransactionContextInterface, meterID, payload, signature string) (*meter.ItemResult, error) {
	if _, err := writer(ctx, "submit measurements"); err != nil {
		return nil, err
	}
	sm, err := signedFromArgs(meterID, payload, signature)
	if err != nil {
		return nil, err
	}
	t, err := newTx(ctx)
	if err != nil {
		return nil, err
	}
	v := newVerifier(t)
	m, st, dupOf, err := v.check(sm)
	if err != nil {
		return nil, err
	}
	if dupOf != "" {
		// Accepted before: answered as such, with nothing to write.
		return &meter.ItemResult{MeterID: m.MeterID, Seq: m.Seq, Outcome: meter.OutcomeDuplicate, TxID: dupOf}, nil
	}
	if err := v.accept(sm, m, st); err != nil {
		return nil, err
	}
	res := &meter.ItemResult{MeterID: m.MeterID, Seq: m.Seq, KeyVersion: st.meter.KeyVersion, Outcome: meter.OutcomeAccepted}
	return res, state.Emit(ctx, EventMeasurementAccepted, res)
}

// SubmitMeasurements takes a data concentrator's batch (a JSON array of
// meter.SignedMeasurement, at most meter.MaxBatch). Each item is judged on its
// own: valid ones are stored, refused ones are recorded as rejections with
// their reason, and the result lists every item's outcome in input order.
func (r *Registry) SubmitMeasurements(ctx contractapi.TransactionContextInterface, batch string) (*meter.BatchResult, error) {
	if _, err := writer(ctx, "submit measurements"); err != nil {
		return nil, err
	}
	var items []meter.SignedMeasurement
	if err := decodeStrict(batch, &items); err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, malformed("the batch is empty")
	}
	if len(items) > meter.MaxBatch {
		return nil, meter.Errorf(meter.CodeTooLarge, "the batch holds %d measurements, at most %d", len(items), meter.MaxBatch)
	}
	t, err := newTx(ctx)
	if err != nil {
		return nil, err
	}
	v := newVerifier(t)
	res := &meter.BatchResult{TxID: t.id, Items: make([]meter.ItemResult, len(items))}
	for i, sm := range items {
		item := &res.Items[i]
		item.Index, item.MeterID = i, sm.MeterID
		m, st, dupOf, err := v.check(sm)
		item.Seq = m.Seq
		if err == nil && dupOf != "" {
			item.Outcome, item.TxID = meter.OutcomeDuplicate, dupOf
			res.Duplicates++
			continue
		}
		if err == nil {
			err = v.accept(sm, m, st)
		}
		if err == nil {
			item.Outcome, item.KeyVersion = meter.OutcomeAccepted, st.meter.KeyVersion
			res.Accepted++
			continue
		}
		if meter.CodeOf(err) == meter.CodeInternal {
			return nil, err
		}
		item.Outcome, item.Code, item.Reason = meter.OutcomeRejected, meter.CodeOf(err), message(err)
		res.Rejected++
		if err := t.reject(i, sm, m, err); err != nil {
			return nil, err
		}
	}
	if res.Accepted+res.Rejected == 0 {
		// Every item was a re-delivery: nothing to write, nothing to order.
		return res, nil
	}
	return res, state.Emit(ctx, EventMeasurementsSubmitted, res)
}

// reject keeps a refused batch item as evidence.
func (t tx) reject(index int, sm meter.SignedMeasurement, m meter.Measurement, cause error) error {
	filed := sm.MeterID
	if meter.ValidateMeterID(filed) != nil {
		filed = unattributed
	}
	sum := sha256.Sum256(sm.Payload)
	rej := meter.Rejection{
		MeterID: sm.MeterID, Seq: m.Seq, Code: meter.CodeOf(cause), Reason: message(cause),
		PayloadHash: hex.EncodeToString(sum[:]), TxID: t.id, Index: index, RejectedAt: t.stamp(),
	}
	if len(rej.MeterID) > 64 {
		rej.MeterID = rej.MeterID[:64]
	}
	return state.Put(t.ctx, rejectionKey(filed, t.id, index), rej)
}

// VerifyMeasurement answers whether a signed measurement would be accepted
// now (signature, key status, time, replay) without storing anything.
func (r *Registry) VerifyMeasurement(ctx contractapi.TransactionContextInterface, meterID, payload, signature string) (*meter.Verification, error) {
	sm, err := signedFromArgs(meterID, payload, signature)
	if err != nil {
		return nil, err
	}
	t, err := newTx(ctx)
	if err != nil {
		return nil, err
	}
	m, st, dupOf, err := newVerifier(t).check(sm)
	out := &meter.Verification{MeterID: meterID, Seq: m.Seq, TxID: dupOf}
	if st != nil {
		out.KeyVersion = st.meter.KeyVersion
	}
	switch code := meter.CodeOf(err); {
	case err == nil:
		out.Valid = true
	case code == meter.CodeInternal || code == "":
		return nil, err
	default:
		out.Code, out.Reason = code, message(err)
	}
	return out, nil
}

func signedFromArgs(meterID, payload, signature string) (meter.SignedMeasurement, error) {
	if len(payload) > meter.MaxPayloadBytes*4/3+4 {
		return meter.SignedMeasurement{}, meter.Errorf(meter.CodeTooLarge, "payload exceeds %d bytes", meter.MaxPayloadBytes)
	}
	p, err := decodeBase64("payload", payload)
	if err != nil {
		return meter.SignedMeasurement{}, err
	}
	s, err := decodeBase64("signature", signature)
	if err != nil {
		return meter.SignedMeasurement{}, err
	}
	return meter.SignedMeasurement{MeterID: meterID, Payload: p, Signature: s}, nil
}

// MeasurementPage is one page of GetMeasurements.
type MeasurementPage struct {
	Measurements []*meter.MeasurementRecord `json:"measurements"`
	Bookmark     string                     `json:"bookmark"`
}

// GetMeasurements lists a meter's accepted measurements whose meter time lies
// in [from, to] (RFC 3339; either may be empty for an open end), oldest first.
func (r *Registry) GetMeasurements(ctx contractapi.TransactionContextInterface, meterID, from, to string, pageSize int32, bookmark string) (*MeasurementPage, error) {
	if err := meter.ValidateMeterID(meterID); err != nil {
		return nil, err
	}
	prefix := measurementPrefix(meterID)
	start, end := prefix, prefix+rangeEnd
	if from != "" {
		at, err := meter.ParseTime(from)
		if err != nil {
			return nil, err
		}
		start = prefix + timeKey(at)
	}
	if to != "" {
		at, err := meter.ParseTime(to)
		if err != nil {
			return nil, err
		}
		end = prefix + timeKey(at) + "/" + rangeEnd
	}
	if start > end {
		return nil, malformed("from %s lies after to %s", from, to)
	}
	out := &MeasurementPage{Measurements: []*meter.MeasurementRecord{}}
	var err error
	out.Bookmark, err = pageRange(ctx, start, end, pageSize, bookmark, func(b []byte) error {
		rec := new(meter.MeasurementRecord)
		out.Measurements = append(out.Measurements, rec)
		return json.Unmarshal(b, rec)
	})
	return out, err
}

// RejectionPage is one page of GetRejections.
type RejectionPage struct {
	Rejections []*meter.Rejection `json:"rejections"`
	Bookmark   string             `json:"bookmark"`
}

// GetRejections lists the batch items refused for a meter; meter ID "-"
// lists those whose meter ID was malformed.
func (r *Registry) GetRejections(ctx contractapi.TransactionContextInterface, meterID string, pageSize int32, bookmark string) (*RejectionPage, error) {
	if meterID != unattributed {
		if err := meter.ValidateMeterID(meterID); err != nil {
			return nil, err
		}
	}
	prefix := rejectionPrefix(meterID)
	out := &RejectionPage{Rejections: []*meter.Rejection{}}
	var err error
	out.Bookmark, err = pageRange(ctx, prefix, prefix+rangeEnd, pageSize, bookmark, func(b []byte) error {
		rej := new(meter.Rejection)
		out.Rejections = append(out.Rejections, rej)
		return json.Unmarshal(b, rej)
	})
	return out, err
}

// pageRange walks one page of [start, end) and returns the bookmark of the
// next page, empty when there is none.
func pageRange(ctx contractapi.TransactionContextInterface, start, end string, pageSize int32, bookmark string, each func([]byte) error) (string, error) {
	size, err := page(pageSize)
	if err != nil {
		return "", err
	}
	// The peer starts the range at the bookmark, whatever it is: one from
	// outside [start, end) would list another range.
	if bookmark != "" && (bookmark < start || bookmark >= end) {
		return "", malformed("bookmark %q does not belong to this listing", bookmark)
	}
	it, meta, err := ctx.GetStub().GetStateByRangeWithPagination(start, end, size, bookmark)
	if err != nil {
		return "", malformed("cannot read from bookmark %q: %v", bookmark, err)
	}
	defer it.Close()
	var n int32
	for it.HasNext() {
		kv, err := it.Next()
		if err != nil {
			return "", state.Internal("range read", err)
		}
		if err := each(kv.Value); err != nil {
			return "", state.Internal("decode "+kv.Key, err)
		}
		n++
	}
	if n < size {
		return "", nil
	}
	return meta.GetBookmark(), nil
}
