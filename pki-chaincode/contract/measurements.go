package contract

import (
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/state"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// World state holds, of measurements, only each meter's replay guard
// (wire.Guard): a batch writes one key per meter whatever its size. The
// measurements themselves, accepted and refused, are the transaction in the
// block, its outcome naming every item not accepted (package wire).

// meterState is what verifying a meter's measurements needs, read once per
// transaction.
type meterState struct {
	meter *meter.Meter
	key   *meter.PublicKey
	guard wire.Guard
	dirty bool
}

// verifier checks signed measurements within one transaction. It reads
// every meter of the transaction in one round trip, verifies the
// signatures on every core, reads the replay guards of the meters whose
// items are signed by them in a second, then judges the items in input
// order, seeing the sequence numbers the transaction itself accepted.
type verifier struct {
	t      tx
	meters map[string]*meterState
	// accepted are the items this transaction accepted, by meter and seq,
	// with the hash of their bytes: a transaction does not read its own
	// writes.
	accepted map[string]wire.Hash
	// types are the meter types read for readings that name their
	// software, by ID.
	types map[string]*meter.MeterType
}

func newVerifier(t tx) *verifier {
	return &verifier{t: t, meters: map[string]*meterState{}, accepted: map[string]wire.Hash{}, types: map[string]*meter.MeterType{}}
}

// opened is an item checked ahead of judging: its form and its signature
// against its meter's current key (err), or, for a meter that rotated its
// key, against an earlier key (oldKey).
type opened struct {
	m      meter.Measurement
	err    error
	oldKey bool
}

// load reads what judging the items needs and checks every item's form and
// signature. It reads the records of the items' meters, then the replay
// guards of only those meters with an item that one of the meter's keys
// signed: an item no key of its meter signed puts nothing into the
// transaction's read set but the meter's record, which changes rarely, so
// junk naming a busy meter cannot make the honest transactions that carry
// its readings conflict on its guard.
func (v *verifier) load(items []meter.SignedMeasurement) ([]opened, error) {
	seen := map[string]bool{}
	var ids []string
	for _, sm := range items {
		if !seen[sm.MeterID] && meter.ValidateMeterID(sm.MeterID) == nil {
			seen[sm.MeterID] = true
			ids = append(ids, sm.MeterID)
		}
	}
	slices.Sort(ids)
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = wire.MeterKey(id)
	}
	records, err := v.readAll(keys)
	if err != nil {
		return nil, err
	}
	for i, id := range ids {
		if records[i] == nil {
			continue
		}
		m := new(meter.Meter)
		if err := json.Unmarshal(records[i], m); err != nil {
			return nil, state.Internal("decode meter "+id, err)
		}
		key, err := parsedKey(m.PublicKey)
		if err != nil {
			return nil, state.Internal("stored key of "+id, err)
		}
		v.meters[id] = &meterState{meter: m, key: key}
	}
	checked := v.open(items)
	signed := map[string]bool{}
	for i, sm := range items {
		st := v.meters[sm.MeterID]
		if st == nil {
			continue
		}
		if checked[i].err != nil && st.meter.KeyVersion > 1 && meter.CodeOf(checked[i].err) == meter.CodeBadSignature {
			if checked[i].oldKey, err = v.signedEarlier(sm, st); err != nil {
				return nil, err
			}
		}
		if checked[i].err == nil || checked[i].oldKey {
			signed[sm.MeterID] = true
		}
	}
	guarded := slices.Sorted(maps.Keys(signed))
	for i, id := range guarded {
		keys[i] = wire.GuardKey(id)
	}
	guards, err := v.readAll(keys[:len(guarded)])
	if err != nil {
		return nil, err
	}
	for i, id := range guarded {
		st := v.meters[id]
		if st.guard, err = wire.UnmarshalGuard(guards[i]); err != nil {
			return nil, state.Internal("replay guard of "+id, err)
		}
		switch st.guard.KeyVersion {
		case st.meter.KeyVersion:
		case wire.LegacyKeyVersion:
			// Written before sequence spaces: it is the current key's.
			st.guard.KeyVersion = st.meter.KeyVersion
		default:
			// The owner rotated the key: a new sequence space.
			st.guard.Reset(st.meter.KeyVersion)
		}
	}
	return checked, nil
}

// readAll reads keys in one request to the peer. The peer must answer one
// value per key (nil for a key not set): a storage failure answered as no
// values must fail the endorsement, never read as "no replay guard".
func (v *verifier) readAll(keys []string) ([][]byte, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	values, err := v.t.ctx.GetStub().GetMultipleStates(keys...)
	if err != nil {
		return nil, state.Internal("read meters", err)
	}
	if len(values) != len(keys) {
		return nil, state.Internal("read meters", fmt.Errorf("the peer answered %d values for %d keys", len(values), len(keys)))
	}
	return values, nil
}

// signedEarlier reports whether one of the meter's earlier keys signed the
// item: a reading accepted before a rotation and delivered again. Key
// versions are written once and never change.
func (v *verifier) signedEarlier(sm meter.SignedMeasurement, st *meterState) (bool, error) {
	for version := st.meter.KeyVersion - 1; version >= 1; version-- {
		kv, found, err := state.Get[meter.KeyVersion](v.t.ctx, wire.KeyVersionKey(sm.MeterID, version))
		if err != nil || !found {
			return false, err
		}
		key, err := parsedKey(kv.PublicKey)
		if err != nil {
			return false, state.Internal("stored key of "+sm.MeterID, err)
		}
		if key.Verify(sm.Payload, sm.Signature) == nil {
			return true, nil
		}
	}
	return false, nil
}

// keyCache keeps parsed meter keys by their PEM, a pure function of it,
// so a busy meter's key is parsed once per chaincode process.
var keyCache sync.Map

func parsedKey(pem string) (*meter.PublicKey, error) {
	if k, ok := keyCache.Load(pem); ok {
		return k.(*meter.PublicKey), nil
	}
	k, err := meter.ParsePublicKeyPEM(pem)
	if err != nil {
		return nil, err
	}
	keyCache.Store(pem, k)
	return k, nil
}

// open checks every item's form and signature (meter.SignedMeasurement.Open,
// the one rule), on every core. The results depend on nothing but the
// items and the meters read, and are kept in input order, so every
// endorsing peer reaches the same verdicts.
func (v *verifier) open(items []meter.SignedMeasurement) []opened {
	out := make([]opened, len(items))
	work := func(i int) {
		sm := items[i]
		st := v.meters[sm.MeterID]
		if st == nil {
			return
		}
		m, err := sm.Open(st.key)
		out[i] = opened{m: m, err: err}
	}
	parallel(len(items), work)
	return out
}

// parallel runs work(0..n-1) on every core. work must write only its own
// index's results, so the outcome is the same as in order.
func parallel(n int, work func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			work(i)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range workers {
		wg.Go(func() {
			for i := range next {
				work(i)
			}
		})
	}
	wg.Wait()
}

// judge decides one item, in input order, and updates the meter's guard
// in memory when it is accepted. A re-delivery of exactly the signed bytes
// accepted before is not an error: duplicate is set (with the accepting
// transaction's ID when it is this one), and nothing is to be written.
func (v *verifier) judge(sm meter.SignedMeasurement, o opened) (m meter.Measurement, st *meterState, duplicate bool, dupOf string, err error) {
	if err := meter.ValidateMeterID(sm.MeterID); err != nil {
		return meter.Measurement{}, nil, false, "", err
	}
	if st = v.meters[sm.MeterID]; st == nil {
		return meter.Measurement{}, nil, false, "", meter.Errorf(meter.CodeMeterNotFound, "meter %s is not registered", sm.MeterID)
	}
	m = o.m
	verdict := st.guard.Check(m.Seq)
	if m.Seq != 0 && m.MeterID == sm.MeterID && verdict == wire.Seen {
		if dup, of := v.duplicate(sm, m, st, o); dup {
			return m, st, true, of, nil
		}
	}
	if st.meter.Status == meter.StatusRevoked {
		return m, st, false, "", meter.Errorf(meter.CodeMeterRevoked, "meter %s was revoked (%s) at %s; its measurements are no longer accepted",
			sm.MeterID, st.meter.Revocation.Reason, st.meter.Revocation.RevokedAt)
	}
	if o.err != nil {
		return m, st, false, "", o.err
	}
	if err := m.CheckPlausible(v.t.time); err != nil {
		return m, st, false, "", err
	}
	switch verdict {
	case wire.Seen:
		return m, st, false, "", meter.Errorf(meter.CodeReplay, "meter %s: seq %d was accepted before", sm.MeterID, m.Seq)
	case wire.TooOld:
		return m, st, false, "", meter.Errorf(meter.CodeReplay, "meter %s: seq %d is more than %d below the highest accepted seq %d",
			sm.MeterID, m.Seq, wire.ReplayWindow, st.guard.Last)
	case wire.TooFar:
		return m, st, false, "", meter.Errorf(meter.CodeSeqOutOfRange, "meter %s: seq %d is more than %d above the highest accepted seq %d of key version %d",
			sm.MeterID, m.Seq, uint64(wire.MaxSeqAdvance), st.guard.Last, st.meter.KeyVersion)
	}
	if m.SoftwareID != "" {
		if err := v.checkSoftware(st.meter, m); err != nil {
			return m, st, false, "", err
		}
	}
	st.guard.Accept(m.Seq, sm.Payload)
	st.dirty = true
	v.accepted[itemKey(sm.MeterID, m.Seq)] = wire.HashOf(sm.Payload)
	return m, st, false, "", nil
}

// checkSoftware judges a reading that names its software: the meter must
// have run that software at the reading's time (its update log, from the
// meter's own signed statements), and, for a meter of a known type, the
// software must have been approved for the type then.
func (v *verifier) checkSoftware(mt *meter.Meter, m meter.Measurement) error {
	at := m.MeasuredAt()
	ran := mt.SoftwareAt(at)
	if m.SoftwareID != ran.ID {
		return meter.Errorf(meter.CodeSoftwareMismatch, "meter %s ran software %s at %s by its update log; the reading names %s",
			mt.ID, ran.ID, m.Time, m.SoftwareID)
	}
	if mt.TypeID == "" {
		return nil
	}
	typ, ok := v.types[mt.TypeID]
	if !ok {
		var err error
		if typ, err = loadType(v.t.ctx, mt.TypeID); err != nil {
			return err
		}
		v.types[mt.TypeID] = typ
	}
	return typ.CheckApproved(ran, at)
}

// duplicate reports whether sm is exactly the signed bytes accepted as
// m.Seq: the same hash, and a signature that verifies, with the meter's
// current key or one it held before (it may have rotated since). The same
// seq with other bytes is no duplicate: the caller refuses it as a replay.
func (v *verifier) duplicate(sm meter.SignedMeasurement, m meter.Measurement, st *meterState, o opened) (bool, string) {
	if o.err != nil && !o.oldKey {
		return false, ""
	}
	h := wire.HashOf(sm.Payload)
	if acc, ok := v.accepted[itemKey(sm.MeterID, m.Seq)]; ok {
		return acc == h, v.t.id
	}
	acc, ok := st.guard.Find(m.Seq)
	return ok && acc.Hash == h, ""
}

func itemKey(meterID string, seq uint64) string {
	return meterID + "\x00" + strconv.FormatUint(seq, 10)
}

// save writes the guards of the meters whose readings were accepted, in
// one batch to the peer.
func (v *verifier) save() error {
	var ids []string
	for id, st := range v.meters {
		if st.dirty {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	stub := v.t.ctx.GetStub()
	stub.StartWriteBatch()
	for _, id := range ids {
		if err := stub.PutState(wire.GuardKey(id), v.meters[id].guard.Marshal()); err != nil {
			return state.Internal("write replay guard of "+id, err)
		}
	}
	if err := stub.FinishWriteBatch(); err != nil {
		return state.Internal("write replay guards", err)
	}
	return nil
}

// SubmitMeasurement verifies one signed measurement (payload and DER
// signature, both base64) against the meter's active key and accepts it.
// A refusal is an error and writes nothing; a re-delivery of exactly the
// accepted bytes answers as a duplicate and writes nothing.
func (r *Registry) SubmitMeasurement(ctx contractapi.TransactionContextInterface, meterID, payload, signature string) (*meter.ItemResult, error) {
	if _, err := writer(ctx, "submit measurements"); err != nil {
		return nil, err
	}
	sm, err := meter.SignedFromBase64(meterID, payload, signature)
	if err != nil {
		return nil, err
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	v := newVerifier(t)
	checked, err := v.load([]meter.SignedMeasurement{sm})
	if err != nil {
		return nil, err
	}
	m, st, dup, dupOf, err := v.judge(sm, checked[0])
	if err != nil {
		return nil, err
	}
	if dup {
		return &meter.ItemResult{MeterID: m.MeterID, Seq: m.Seq, Outcome: meter.OutcomeDuplicate, TxID: dupOf}, nil
	}
	if err := v.save(); err != nil {
		return nil, err
	}
	res := &meter.ItemResult{MeterID: m.MeterID, Seq: m.Seq, KeyVersion: st.meter.KeyVersion, Outcome: meter.OutcomeAccepted}
	return res, state.Emit(ctx, wire.EventMeasurementAccepted, res)
}

// SubmitMeasurements takes a data concentrator's batch (a JSON array of
// meter.SignedMeasurement, at most meter.MaxBatch). Each item is judged on its
// own; the outcome counts them and lists every item not accepted, refusals
// with their reason: the transaction in its block is the evidence of every
// item, accepted or refused.
func (r *Registry) SubmitMeasurements(ctx contractapi.TransactionContextInterface, batch string) (*wire.Outcome, error) {
	if _, err := writer(ctx, "submit measurements"); err != nil {
		return nil, err
	}
	var items []meter.SignedMeasurement
	if err := decodeStrict(batch, &items); err != nil {
		return nil, err
	}
	return r.submitBatch(ctx, items)
}

// SubmitMeasurementsPacked is SubmitMeasurements with the batch packed
// (wire.Pack): the registry's encoding, a third of the bytes.
func (r *Registry) SubmitMeasurementsPacked(ctx contractapi.TransactionContextInterface, packed string) (*wire.Outcome, error) {
	if _, err := writer(ctx, "submit measurements"); err != nil {
		return nil, err
	}
	items, err := wire.Unpack([]byte(packed))
	if err != nil {
		return nil, err
	}
	return r.submitBatch(ctx, items)
}

func (r *Registry) submitBatch(ctx contractapi.TransactionContextInterface, items []meter.SignedMeasurement) (*wire.Outcome, error) {
	if len(items) == 0 {
		return nil, malformed("the batch is empty")
	}
	if len(items) > meter.MaxBatch {
		return nil, meter.Errorf(meter.CodeTooLarge, "the batch holds %d measurements, at most %d", len(items), meter.MaxBatch)
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	v := newVerifier(t)
	checked, err := v.load(items)
	if err != nil {
		return nil, err
	}
	out := &wire.Outcome{TxID: t.id, Items: len(items), KeyVersions: map[string]int{}}
	for i, sm := range items {
		m, st, dup, dupOf, err := v.judge(sm, checked[i])
		switch {
		case err == nil && dup:
			out.Duplicates++
			out.Exceptions = append(out.Exceptions, meter.ItemResult{Index: i, MeterID: sm.MeterID, Seq: m.Seq,
				Outcome: meter.OutcomeDuplicate, TxID: dupOf})
		case err == nil:
			out.Accepted++
			out.KeyVersions[sm.MeterID] = st.meter.KeyVersion
		case meter.CodeOf(err) == meter.CodeInternal || meter.CodeOf(err) == "":
			return nil, err
		default:
			out.Rejected++
			id := sm.MeterID
			if len(id) > 64 {
				id = id[:64]
			}
			out.Exceptions = append(out.Exceptions, meter.ItemResult{Index: i, MeterID: id, Seq: m.Seq,
				Outcome: meter.OutcomeRejected, Code: meter.CodeOf(err), Reason: message(err)})
		}
	}
	if len(out.KeyVersions) == 0 {
		out.KeyVersions = nil
	}
	if out.Accepted+out.Rejected == 0 {
		// Every item was a re-delivery: nothing to write, nothing to order.
		return out, nil
	}
	if err := v.save(); err != nil {
		return nil, err
	}
	return out, state.Emit(ctx, wire.EventMeasurementsSubmitted, out.Counts())
}

// VerifyMeasurement answers whether a signed measurement would be accepted now
// (signature, key status, time, replay) without storing anything.
func (r *Registry) VerifyMeasurement(ctx contractapi.TransactionContextInterface, meterID, payload, signature string) (*meter.Verification, error) {
	sm, err := meter.SignedFromBase64(meterID, payload, signature)
	if err != nil {
		return nil, err
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	v := newVerifier(t)
	checked, err := v.load([]meter.SignedMeasurement{sm})
	if err != nil {
		return nil, err
	}
	m, st, dup, dupOf, err := v.judge(sm, checked[0])
	out := &meter.Verification{MeterID: meterID, Seq: m.Seq}
	if st != nil {
		out.KeyVersion = st.meter.KeyVersion
	}
	switch code := meter.CodeOf(err); {
	case err == nil:
		out.Valid = true
		if dup {
			out.Duplicate, out.TxID = true, dupOf
		}
	case code == meter.CodeInternal || code == "":
		return nil, err
	default:
		out.Code, out.Reason = code, message(err)
	}
	return out, nil
}
