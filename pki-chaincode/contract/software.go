package contract

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/state"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// Meter types and their legally relevant software (docs/software.md). The
// NMI that examined a type records it and alone changes it, under its
// key-level policy (its peer, or a majority of the NMIs); meters name
// their type; each meter reports its own updates in statements it signs.

// RecordMeterType records a meter type examined by the submitting
// registrar's NMI, with the software versions approved for it. request is
// a JSON meter.TypeRecord. The same request again answers the record and
// writes nothing.
func (r *Registry) RecordMeterType(ctx contractapi.TransactionContextInterface, request string) (*meter.MeterType, error) {
	c, err := registrar(ctx, "record meter types")
	if err != nil {
		return nil, err
	}
	var req meter.TypeRecord
	if err := decodeStrict(request, &req); err != nil {
		return nil, err
	}
	if err := req.Validate(c.nmi); err != nil {
		return nil, err
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	if mt, found, err := state.Get[meter.MeterType](ctx, wire.TypeKey(req.TypeID)); err != nil {
		return nil, err
	} else if found {
		if sameType(&mt, c.nmi, req) {
			return &mt, nil
		}
		return nil, meter.Errorf(meter.CodeTypeExists, "meter type %s is already recorded by %s", req.TypeID, mt.NMI)
	}
	mt := &meter.MeterType{ID: req.TypeID, NMI: c.nmi, Manufacturer: req.Manufacturer, Model: req.Model,
		Certificate: req.Certificate, RecordedTx: t.id, RecordedAt: t.stamp(), UpdatedTx: t.id, UpdatedAt: t.stamp()}
	for _, v := range req.Versions {
		from, err := t.effective(v.ApprovedFrom)
		if err != nil {
			return nil, err
		}
		mt.Versions = append(mt.Versions, meter.ApprovedSoftware{Software: v.Software, ApprovedFrom: from, ApprovedTx: t.id, ApprovedAt: t.stamp()})
	}
	if err := t.putOwned(wire.TypeKey(mt.ID), mt, c.nmi); err != nil {
		return nil, err
	}
	return mt, state.Emit(ctx, wire.EventMeterTypeRecorded, wire.TypeEvent{NMI: c.nmi, TypeID: mt.ID})
}

// sameType reports whether the recorded type is what req asks for, by the
// same NMI: a repeated request.
func sameType(mt *meter.MeterType, nmi string, req meter.TypeRecord) bool {
	if mt.NMI != nmi || mt.Manufacturer != req.Manufacturer || mt.Model != req.Model || mt.Certificate != req.Certificate ||
		len(mt.Versions) != len(req.Versions) {
		return false
	}
	for i, v := range req.Versions {
		got := mt.Versions[i]
		if got.Software != v.Software {
			return false
		}
		if v.ApprovedFrom != "" {
			if at, err := meter.ParseTime(v.ApprovedFrom); err != nil || formatTime(at) != got.ApprovedFrom {
				return false
			}
		}
	}
	return true
}

// effective is an RFC 3339 time as stored, or the transaction's time when
// s is empty.
func (t tx) effective(s string) (string, error) {
	if s == "" {
		return t.stamp(), nil
	}
	at, err := meter.ParseTime(s)
	if err != nil {
		return "", err
	}
	return formatTime(at), nil
}

// ApproveSoftware approves another software version for a type from
// approvedFrom (RFC 3339; empty: now). Only the type's certifying NMI may.
func (r *Registry) ApproveSoftware(ctx contractapi.TransactionContextInterface, typeID, softwareID, checksum, approvedFrom string) (*meter.MeterType, error) {
	c, err := registrar(ctx, "approve software")
	if err != nil {
		return nil, err
	}
	sw := meter.Software{ID: softwareID, Checksum: checksum}
	if err := sw.Validate(""); err != nil {
		return nil, err
	}
	mt, err := loadCertified(ctx, c, typeID, "approve software for")
	if err != nil {
		return nil, err
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	from, err := t.effective(approvedFrom)
	if err != nil {
		return nil, err
	}
	if v := mt.Version(softwareID); v != nil {
		if v.Checksum == checksum && (approvedFrom == "" || v.ApprovedFrom == from) {
			// A repeated request: the record as it stands.
			return mt, nil
		}
		return nil, meter.Errorf(meter.CodeVersionExists, "software %s is listed for type %s already (checksum %s, approved from %s): a changed software needs a new identification", softwareID, mt.ID, v.Checksum, v.ApprovedFrom)
	}
	if len(mt.Versions) >= meter.MaxTypeVersions {
		return nil, meter.Errorf(meter.CodeTooLarge, "type %s lists %d software versions, at most %d", mt.ID, len(mt.Versions), meter.MaxTypeVersions)
	}
	mt.Versions = append(mt.Versions, meter.ApprovedSoftware{Software: sw, ApprovedFrom: from, ApprovedTx: t.id, ApprovedAt: t.stamp()})
	mt.UpdatedTx, mt.UpdatedAt = t.id, t.stamp()
	if err := t.putOwned(wire.TypeKey(mt.ID), mt, mt.NMI); err != nil {
		return nil, err
	}
	return mt, state.Emit(ctx, wire.EventSoftwareApproved, wire.TypeEvent{NMI: mt.NMI, TypeID: mt.ID, SoftwareID: softwareID})
}

// WithdrawSoftware withdraws a software version of a type from a time on
// (RFC 3339; empty: now), with a reason: readings a meter signed from then
// on naming the version are refused SOFTWARE_NOT_APPROVED, and no meter may
// update to it. Only the type's certifying NMI may; a withdrawal is final.
func (r *Registry) WithdrawSoftware(ctx contractapi.TransactionContextInterface, typeID, softwareID, reason, from string) (*meter.MeterType, error) {
	c, err := registrar(ctx, "withdraw software")
	if err != nil {
		return nil, err
	}
	if reason == "" {
		return nil, malformed("a withdrawal needs a reason (for example: fault found in the energy register)")
	}
	if len(reason) > meter.MaxWithdrawalReason {
		return nil, meter.Errorf(meter.CodeTooLarge, "reason is %d bytes, at most %d allowed", len(reason), meter.MaxWithdrawalReason)
	}
	if err := meter.CheckText("reason", reason); err != nil {
		return nil, err
	}
	mt, err := loadCertified(ctx, c, typeID, "withdraw software of")
	if err != nil {
		return nil, err
	}
	v := mt.Version(softwareID)
	if v == nil {
		return nil, meter.Errorf(meter.CodeVersionNotFound, "type %s lists no software %q", mt.ID, truncated(softwareID))
	}
	if v.Withdrawal != nil {
		return nil, meter.Errorf(meter.CodeVersionWithdrawn, "software %s of type %s is withdrawn already, from %s (%s)", softwareID, mt.ID, v.Withdrawal.From, v.Withdrawal.Reason)
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	at, err := t.effective(from)
	if err != nil {
		return nil, err
	}
	approved, _ := meter.ParseTime(v.ApprovedFrom)
	if a, _ := meter.ParseTime(at); a.Before(approved) {
		return nil, malformed("the withdrawal's date %s lies before the version's approval from %s", at, v.ApprovedFrom)
	}
	v.Withdrawal = &meter.Withdrawal{Reason: reason, From: at, TxID: t.id, At: t.stamp()}
	mt.UpdatedTx, mt.UpdatedAt = t.id, t.stamp()
	if err := t.putOwned(wire.TypeKey(mt.ID), mt, mt.NMI); err != nil {
		return nil, err
	}
	return mt, state.Emit(ctx, wire.EventSoftwareWithdrawn, wire.TypeEvent{NMI: mt.NMI, TypeID: mt.ID, SoftwareID: softwareID})
}

// loadCertified reads a type that the caller's NMI certified.
func loadCertified(ctx contractapi.TransactionContextInterface, c caller, typeID, action string) (*meter.MeterType, error) {
	mt, err := loadType(ctx, typeID)
	if err != nil {
		return nil, err
	}
	if mt.NMI != c.nmi {
		return nil, meter.Errorf(meter.CodeNotOwner, "meter type %s was certified by %s; %s may not %s it", mt.ID, mt.NMI, c.nmi, action)
	}
	return mt, nil
}

func loadType(ctx contractapi.TransactionContextInterface, typeID string) (*meter.MeterType, error) {
	if err := meter.ValidateTypeID(typeID); err != nil {
		return nil, err
	}
	mt, found, err := state.Get[meter.MeterType](ctx, wire.TypeKey(typeID))
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, meter.Errorf(meter.CodeTypeNotFound, "meter type %s is not recorded", typeID)
	}
	return &mt, nil
}

func truncated(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// AssignMeterType names the type of a meter registered without one; only
// its NMI may, and only to a type for which the software the meter runs
// is approved now. A meter's type never changes once set.
func (r *Registry) AssignMeterType(ctx contractapi.TransactionContextInterface, meterID, typeID string) (*meter.Meter, error) {
	c, err := registrar(ctx, "assign meter types")
	if err != nil {
		return nil, err
	}
	m, err := r.GetMeter(ctx, meterID)
	if err != nil {
		return nil, err
	}
	if err := c.owns(m, "assign a type to"); err != nil {
		return nil, err
	}
	if m.TypeID == typeID {
		return m, nil
	}
	if m.TypeID != "" {
		return nil, malformed("meter %s is of type %s already; a meter's type does not change", m.ID, m.TypeID)
	}
	mt, err := loadType(ctx, typeID)
	if err != nil {
		return nil, err
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	if err := mt.CheckApproved(m.CurrentSoftware(), t.time); err != nil {
		return nil, meter.Errorf(meter.CodeSoftwareNotApproved, "meter %s runs software %s: %s", m.ID, m.CurrentSoftware(), message(err))
	}
	m.TypeID = mt.ID
	m.UpdatedTx, m.UpdatedAt = t.id, t.stamp()
	if err := t.writeMeter(m, m.Status); err != nil {
		return nil, err
	}
	if err := state.Put(ctx, wire.TypeIndexKey(mt.ID, m.ID), m.ID); err != nil {
		return nil, err
	}
	return m, state.Emit(ctx, wire.EventMeterTypeAssigned, wire.TypeEvent{NMI: m.NMI, TypeID: mt.ID, MeterID: m.ID})
}

// typeOf reads the type a registration names and checks that the
// registered software is approved for it now; types caches the types read
// in the transaction.
func (t tx) typeOf(reg meter.Registration, types map[string]*meter.MeterType) error {
	mt, ok := types[reg.TypeID]
	if !ok {
		var err error
		if mt, err = loadType(t.ctx, reg.TypeID); err != nil {
			return err
		}
		types[reg.TypeID] = mt
	}
	sw := meter.Software{ID: reg.SoftwareID, Checksum: reg.SoftwareChecksum}
	if err := mt.CheckApproved(sw, t.time); err != nil {
		return meter.Errorf(meter.CodeSoftwareNotApproved, "meter %s: %s", reg.MeterID, message(err))
	}
	return nil
}

// SubmitSoftwareUpdate delivers a meter's update statement (the signed
// bytes and the DER signature, both base64): the meter reports what
// software it loaded, when, and with what result. The statement must be
// signed with the meter's key in force, newer than its last, start from
// the software the meter runs, and, for a successful update, load a
// version approved for the meter's type at the statement's time. A
// statement the ledger accepts is recorded in the meter's software log
// (GetSoftwareLog); one it refuses is answered with the refusal's code,
// the transaction carrying it is the evidence, and nothing is written.
func (r *Registry) SubmitSoftwareUpdate(ctx contractapi.TransactionContextInterface, meterID, statement, signature string) (*meter.UpdateOutcome, error) {
	c, err := writer(ctx, "deliver update statements")
	if err != nil {
		return nil, err
	}
	su, err := meter.SignedUpdateFromBase64(meterID, statement, signature)
	if err != nil {
		return nil, err
	}
	if err := meter.ValidateMeterID(meterID); err != nil {
		return nil, err
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	out := &meter.UpdateOutcome{MeterID: meterID, TxID: t.id}
	report, dup, err := t.update(c, su)
	switch code := meter.CodeOf(err); {
	case err == nil && dup:
		out.Outcome, out.Report = meter.UpdateDuplicate, report
		return out, nil
	case err == nil:
		out.Outcome, out.Report = meter.UpdateAccepted, report
	case code == meter.CodeInternal || code == "":
		return nil, err
	default:
		out.Outcome, out.Code, out.Reason = meter.UpdateRefused, code, message(err)
	}
	event := *out
	event.Report = nil
	return out, state.Emit(ctx, wire.EventSoftwareUpdate, event)
}

// update judges a delivered statement and records it; dup reports exactly
// these bytes recorded before (report is then that entry).
func (t tx) update(c caller, su meter.SignedUpdate) (report *meter.UpdateReport, dup bool, err error) {
	m, err := loadMeter(t.ctx, su.MeterID)
	if err != nil {
		return nil, false, err
	}
	key, err := parsedKey(m.PublicKey)
	if err != nil {
		return nil, false, state.Internal("stored key of "+m.ID, err)
	}
	st, err := su.Open(key)
	if err != nil {
		return nil, false, err
	}
	sum := sha256.Sum256(su.Statement)
	hash := hex.EncodeToString(sum[:])
	if m.Updates != nil && !st.At().After(mustParse(m.Updates.LastTime)) {
		// Not newer than the last recorded: a re-delivery, or a replay.
		if r, err := t.recorded(m, hash); err != nil || r != nil {
			return r, r != nil, err
		}
		return nil, false, meter.Errorf(meter.CodeReplay, "meter %s: the statement's time %s is not after its last recorded statement's, %s", m.ID, st.Time, m.Updates.LastTime)
	}
	if m.Status == meter.StatusRevoked {
		return nil, false, meter.Errorf(meter.CodeMeterRevoked, "meter %s was revoked (%s) at %s; its statements are no longer accepted", m.ID, m.Revocation.Reason, m.Revocation.RevokedAt)
	}
	if err := meter.CheckMeterTime(st.Time, st.At(), t.time); err != nil {
		return nil, false, err
	}
	if current := m.CurrentSoftware(); st.From != current {
		return nil, false, meter.Errorf(meter.CodeSoftwareMismatch, "meter %s runs software %s by its log; the statement says it updated from %s", m.ID, current, st.From)
	}
	if n := len(m.Software); n > 0 && !st.At().After(mustParse(m.Software[n-1].Since)) {
		return nil, false, meter.Errorf(meter.CodeReplay, "meter %s: the statement's time %s is not after its current software's start, %s", m.ID, st.Time, m.Software[n-1].Since)
	}
	if st.Result == meter.UpdateSuccess {
		if m.TypeID == "" {
			return nil, false, meter.Errorf(meter.CodeSoftwareNotApproved, "meter %s has no type: its NMI must assign one (AssignMeterType) before an update can be checked against the software approved for it", m.ID)
		}
		mt, err := loadType(t.ctx, m.TypeID)
		if err != nil {
			return nil, false, err
		}
		if err := mt.CheckApproved(st.To, st.At()); err != nil {
			return nil, false, meter.Errorf(meter.CodeSoftwareNotApproved, "meter %s may not load %s: %s", m.ID, st.To, message(err))
		}
		m.Install(st.To, st.Time, t.id)
	}
	number := 1
	if m.Updates != nil {
		number = m.Updates.Count + 1
	}
	report = &meter.UpdateReport{MeterID: m.ID, Number: number, Time: st.Time, From: st.From, To: st.To,
		Result: st.Result, Detail: st.Detail, Statement: base64.StdEncoding.EncodeToString(su.Statement),
		Signature: base64.StdEncoding.EncodeToString(su.Signature), KeyVersion: m.KeyVersion,
		SubmittedBy: c.nmi, TxID: t.id, RecordedAt: t.stamp()}
	m.Updates = &meter.UpdateMark{Count: number, LastTime: st.Time, LastHash: hash, LastTx: t.id}
	m.UpdatedTx, m.UpdatedAt = t.id, t.stamp()
	if err := t.writeMeter(m, m.Status); err != nil {
		return nil, false, err
	}
	if err := t.putOwned(wire.SoftwareLogKey(m.ID, number), report, m.NMI); err != nil {
		return nil, false, err
	}
	return report, false, nil
}

// recorded finds the log entry of exactly the statement whose hash is
// given, nil if the meter's log holds none.
func (t tx) recorded(m *meter.Meter, hash string) (*meter.UpdateReport, error) {
	log, err := softwareLog(t.ctx, m.ID)
	if err != nil {
		return nil, err
	}
	for _, r := range slices.Backward(log) {
		b, err := base64.StdEncoding.DecodeString(r.Statement)
		if err != nil {
			continue
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) == hash {
			return r, nil
		}
	}
	return nil, nil
}

// mustParse reads a time the chaincode itself stored.
func mustParse(s string) time.Time {
	at, _ := meter.ParseTime(s)
	return at
}

// GetMeterType returns a meter type's record.
func (r *Registry) GetMeterType(ctx contractapi.TransactionContextInterface, typeID string) (*meter.MeterType, error) {
	return loadType(ctx, typeID)
}

// ListMeterTypes lists meter types by ID, optionally only those certified
// by one NMI (MSP ID), pageSize at a time (default 100, at most 1000).
func (r *Registry) ListMeterTypes(ctx contractapi.TransactionContextInterface, nmi string, pageSize int32, bookmark string) (*wire.TypePage, error) {
	prefix := wire.TypeKey("")
	if nmi != "" {
		if !mspIDRE.MatchString(nmi) {
			return nil, malformed("NMI %q is not an MSP ID", nmi)
		}
		// A type ID lies in its NMI's namespace.
		prefix = wire.TypeKey(meter.Namespace(nmi))
	}
	out := &wire.TypePage{Types: []*meter.MeterType{}}
	var err error
	out.Bookmark, err = pageRange(ctx, prefix, prefix+wire.RangeEnd, pageSize, bookmark, func(b []byte) error {
		mt := new(meter.MeterType)
		out.Types = append(out.Types, mt)
		return json.Unmarshal(b, mt)
	})
	return out, err
}

// ListTypeMeters lists the meters of a type by meter ID, pageSize at a time.
func (r *Registry) ListTypeMeters(ctx contractapi.TransactionContextInterface, typeID string, pageSize int32, bookmark string) (*wire.MeterPage, error) {
	if err := meter.ValidateTypeID(typeID); err != nil {
		return nil, err
	}
	prefix := wire.TypeIndexKey(typeID, "")
	out := &wire.MeterPage{Meters: []*meter.Meter{}}
	var err error
	out.Bookmark, err = pageRange(ctx, prefix, prefix+wire.RangeEnd, pageSize, bookmark, func(b []byte) error {
		var id string
		if err := json.Unmarshal(b, &id); err != nil {
			return err
		}
		m, err := loadMeter(ctx, id)
		out.Meters = append(out.Meters, m)
		return err
	})
	return out, err
}

// GetMeterTypeHistory returns every version of a type's record, oldest
// first, with the transaction that wrote it.
func (r *Registry) GetMeterTypeHistory(ctx contractapi.TransactionContextInterface, typeID string) ([]*wire.TypeVersion, error) {
	if err := meter.ValidateTypeID(typeID); err != nil {
		return nil, err
	}
	out, err := keyHistory(ctx, wire.TypeKey(typeID), func(txID, at string, mt *meter.MeterType) *wire.TypeVersion {
		return &wire.TypeVersion{TxID: txID, Time: at, Type: mt}
	})
	if err == nil && len(out) == 0 {
		return nil, meter.Errorf(meter.CodeTypeNotFound, "meter type %s is not recorded", typeID)
	}
	return out, err
}

// GetSoftwareLog returns the update statements recorded for a meter,
// oldest first: its software history. A meter that never reported one has
// an empty log; its software is its registration's.
func (r *Registry) GetSoftwareLog(ctx contractapi.TransactionContextInterface, meterID string) ([]*meter.UpdateReport, error) {
	if err := meter.ValidateMeterID(meterID); err != nil {
		return nil, err
	}
	if _, err := loadMeter(ctx, meterID); err != nil {
		return nil, err
	}
	return softwareLog(ctx, meterID)
}

func softwareLog(ctx contractapi.TransactionContextInterface, meterID string) ([]*meter.UpdateReport, error) {
	prefix := wire.SoftwareLogPrefix(meterID)
	it, err := ctx.GetStub().GetStateByRange(prefix, prefix+wire.RangeEnd)
	if err != nil {
		return nil, state.Internal("read software log", err)
	}
	defer it.Close()
	out := []*meter.UpdateReport{}
	for it.HasNext() {
		kv, err := it.Next()
		if err != nil {
			return nil, state.Internal("read software log", err)
		}
		r := new(meter.UpdateReport)
		if err := json.Unmarshal(kv.Value, r); err != nil {
			return nil, state.Internal("decode "+kv.Key, err)
		}
		out = append(out, r)
	}
	return out, nil
}
