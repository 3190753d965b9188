package contract

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"slices"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/state"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// RegisterMeter binds a public key to a meter under the submitting registrar's
// NMI. request is a JSON meter.Registration.
func (r *Registry) RegisterMeter(ctx contractapi.TransactionContextInterface, request string) (*meter.Meter, error) {
	c, err := registrar(ctx, "register meters")
	if err != nil {
		return nil, err
	}
	var reg meter.Registration
	if err := decodeStrict(request, &reg); err != nil {
		return nil, err
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	m, existing, err := t.register(c, reg, check(c, reg), newBatchSeen())
	if err != nil {
		return nil, err
	}
	if existing {
		// A repeated registration: the record as it stands, nothing written.
		return m, nil
	}
	return m, state.Emit(ctx, wire.EventMeterRegistered, wire.Enrolment{NMI: c.nmi, MeterIDs: []string{m.ID}})
}

// RegisterMeters enrols up to wire.MaxBulkRegistration meters at once, as an NMI
// does from a manufacturer's delivery list. It is all or nothing: one invalid
// entry refuses the whole batch, naming the entry, and nothing is written.
func (r *Registry) RegisterMeters(ctx contractapi.TransactionContextInterface, requests string) (*wire.Enrolment, error) {
	c, err := registrar(ctx, "register meters")
	if err != nil {
		return nil, err
	}
	var regs []meter.Registration
	if err := decodeStrict(requests, &regs); err != nil {
		return nil, err
	}
	if len(regs) == 0 {
		return nil, malformed("the batch is empty")
	}
	if len(regs) > wire.MaxBulkRegistration {
		return nil, meter.Errorf(meter.CodeTooLarge, "the batch holds %d meters, at most %d per transaction", len(regs), wire.MaxBulkRegistration)
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	// The registrations' keys and proofs are checked on every core first:
	// each proof is a signature verification, the bulk of the work.
	checked := make([]checkedRegistration, len(regs))
	parallel(len(regs), func(i int) { checked[i] = check(c, regs[i]) })
	seen := newBatchSeen()
	out := &wire.Enrolment{NMI: c.nmi, MeterIDs: make([]string, 0, len(regs))}
	for i, reg := range regs {
		m, existing, err := t.register(c, reg, checked[i], seen)
		if err != nil {
			if code := meter.CodeOf(err); code != "" {
				return nil, meter.Errorf(code, "entry %d (meter %q): %s", i, reg.MeterID, message(err))
			}
			return nil, err
		}
		if existing {
			out.Existing = append(out.Existing, m.ID)
			continue
		}
		out.MeterIDs = append(out.MeterIDs, m.ID)
	}
	if len(out.MeterIDs) == 0 {
		return out, nil
	}
	return out, state.Emit(ctx, wire.EventMeterRegistered, out)
}

// batchSeen remembers what a transaction has written so far, since a
// transaction does not read its own writes.
type batchSeen struct {
	ids, fingerprints map[string]bool
	// types are the meter types read, by ID.
	types map[string]*meter.MeterType
}

func newBatchSeen() batchSeen {
	return batchSeen{ids: map[string]bool{}, fingerprints: map[string]bool{}, types: map[string]*meter.MeterType{}}
}

// checkedRegistration is a registration's parsed key, or why it is refused
// before the ledger is read.
type checkedRegistration struct {
	key *meter.PublicKey
	err error
}

// check validates reg and verifies its proof of possession for the
// caller's NMI: the meter, not whoever learnt its public key, asks that
// this NMI bind it, so no registrar can take another NMI's meter keys.
func check(c caller, reg meter.Registration) checkedRegistration {
	key, err := reg.Validate()
	if err == nil {
		err = reg.VerifyProof(key, c.nmi)
	}
	return checkedRegistration{key: key, err: err}
}

// register binds reg's key to its meter, or reports (existing) that this
// NMI registered the meter with exactly this key, metadata and identity
// before: a repeated request, answered with the record and writing nothing.
func (t tx) register(c caller, reg meter.Registration, checked checkedRegistration, seen batchSeen) (*meter.Meter, bool, error) {
	if checked.err != nil {
		return nil, false, checked.err
	}
	key := checked.key
	if seen.ids[reg.MeterID] {
		return nil, false, meter.Errorf(meter.CodeMeterExists, "meter %s appears twice in the batch", reg.MeterID)
	}
	if m, found, err := state.Get[meter.Meter](t.ctx, wire.MeterKey(reg.MeterID)); err != nil {
		return nil, false, err
	} else if found {
		same, err := t.sameRegistration(c, reg, key, &m)
		if err != nil || same {
			return &m, same, err
		}
		return nil, false, meter.Errorf(meter.CodeMeterExists, "meter %s is already registered by %s", reg.MeterID, m.NMI)
	}
	if err := meter.CheckNamespace(reg.MeterID, c.nmi); err != nil {
		return nil, false, err
	}
	if reg.TypeID != "" {
		if err := t.typeOf(reg, seen.types); err != nil {
			return nil, false, err
		}
	}
	fp := key.Fingerprint()
	if seen.fingerprints[fp] {
		return nil, false, meter.Errorf(meter.CodeKeyInUse, "key %s appears twice in the batch: every meter needs its own key", fp)
	}
	if owner, found, err := state.Get[string](t.ctx, wire.FingerprintKey(fp)); err != nil {
		return nil, false, err
	} else if found {
		return nil, false, meter.Errorf(meter.CodeKeyInUse, "key %s is already bound to meter %s: every meter needs its own key", fp, owner)
	}
	identityHash, err := t.consumePreEnrolment(c, reg)
	if err != nil {
		return nil, false, err
	}
	m := &meter.Meter{
		ID: reg.MeterID, NMI: c.nmi, PublicKey: key.PEM(), Curve: key.Curve(), Fingerprint: fp,
		KeyVersion: 1, Status: meter.StatusActive, Metadata: reg.Metadata, IdentityHash: identityHash,
		RegisteredTx: t.id, RegisteredAt: t.stamp(), UpdatedTx: t.id, UpdatedAt: t.stamp(), TypeID: reg.TypeID,
	}
	kv := meter.KeyVersion{MeterID: m.ID, Version: 1, PublicKey: m.PublicKey, Curve: m.Curve,
		Fingerprint: fp, ValidFrom: t.stamp(), TxID: t.id}
	if err := t.writeMeter(m, ""); err != nil {
		return nil, false, err
	}
	if err := t.putOwned(wire.KeyVersionKey(m.ID, 1), kv, c.nmi); err != nil {
		return nil, false, err
	}
	if err := state.Put(t.ctx, wire.FingerprintKey(fp), m.ID); err != nil {
		return nil, false, err
	}
	if m.TypeID != "" {
		if err := state.Put(t.ctx, wire.TypeIndexKey(m.TypeID, m.ID), m.ID); err != nil {
			return nil, false, err
		}
	}
	seen.ids[m.ID], seen.fingerprints[fp] = true, true
	return m, false, nil
}

// sameRegistration reports whether the recorded meter m is what reg asked
// for, registered by the same NMI: same first key, metadata and identity.
func (t tx) sameRegistration(c caller, reg meter.Registration, key *meter.PublicKey, m *meter.Meter) (bool, error) {
	if m.NMI != c.nmi || m.Metadata != reg.Metadata || m.TypeID != reg.TypeID {
		return false, nil
	}
	if (reg.Identity == "") != (m.IdentityHash == "") || (reg.Identity != "" && meter.IdentityHash(reg.Identity) != m.IdentityHash) {
		return false, nil
	}
	first, found, err := state.Get[meter.KeyVersion](t.ctx, wire.KeyVersionKey(m.ID, 1))
	if err != nil || !found {
		return false, err
	}
	return first.Fingerprint == key.Fingerprint(), nil
}

// consumePreEnrolment checks a registration against a pre-enrolled identity
// hash and removes the pre-enrolment. It returns the hash that was matched.
func (t tx) consumePreEnrolment(c caller, reg meter.Registration) (string, error) {
	pre, found, err := state.Get[meter.PreEnrolment](t.ctx, wire.PreEnrolmentKey(reg.MeterID))
	if err != nil {
		return "", err
	}
	if found && t.expired(&pre) {
		// An expired pre-enrolment reserves nothing: it goes, and the
		// meter is registered as one never pre-enrolled.
		if err := t.ctx.GetStub().DelState(wire.PreEnrolmentKey(reg.MeterID)); err != nil {
			return "", state.Internal("remove expired pre-enrolment", err)
		}
		if reg.Identity != "" {
			return "", meter.Errorf(meter.CodePreEnrolmentExpired, "the pre-enrolment of meter %s by %s expired at %s: register it without identity, or pre-enrol it again", reg.MeterID, pre.NMI, pre.Expiry())
		}
		return "", nil
	}
	if !found {
		if reg.Identity != "" {
			return "", malformed("meter %s was not pre-enrolled, so no identity is expected", reg.MeterID)
		}
		return "", nil
	}
	if pre.NMI != c.nmi {
		return "", meter.Errorf(meter.CodeNotOwner, "meter %s is pre-enrolled by %s; %s may not register it", reg.MeterID, pre.NMI, c.nmi)
	}
	if reg.Identity == "" {
		return "", meter.Errorf(meter.CodeIdentityMismatch, "meter %s is pre-enrolled: the registration must present its identity", reg.MeterID)
	}
	if meter.IdentityHash(reg.Identity) != pre.IdentityHash {
		return "", meter.Errorf(meter.CodeIdentityMismatch, "the presented identity does not hash to the value pre-enrolled for meter %s", reg.MeterID)
	}
	if err := t.ctx.GetStub().DelState(wire.PreEnrolmentKey(reg.MeterID)); err != nil {
		return "", state.Internal("remove pre-enrolment", err)
	}
	return pre.IdentityHash, nil
}

// writeMeter stores the record and keeps the listing indexes in step with its
// status; previous is the status before this write ("" for a new meter).
func (t tx) writeMeter(m *meter.Meter, previous meter.Status) error {
	if err := t.putOwned(wire.MeterKey(m.ID), m, m.NMI); err != nil {
		return err
	}
	if previous == m.Status {
		return nil
	}
	stub := t.ctx.GetStub()
	if previous != "" {
		if err := stub.DelState(wire.NMIIndexKey(m.NMI, string(previous), m.ID)); err != nil {
			return state.Internal("update index", err)
		}
		if err := stub.DelState(wire.StatusIndexKey(string(previous), m.ID)); err != nil {
			return state.Internal("update index", err)
		}
	}
	if err := state.Put(t.ctx, wire.NMIIndexKey(m.NMI, string(m.Status), m.ID), m.ID); err != nil {
		return err
	}
	return state.Put(t.ctx, wire.StatusIndexKey(string(m.Status), m.ID), m.ID)
}

// PreEnrollMeter stores the SHA-256 (hex) of a meter's identity ahead of its
// registration, which must then present that identity. The pre-enrolment
// reserves the meter ID for the NMI for meter.PreEnrolmentValidity; its NMI
// may withdraw it, a majority of the NMIs may release it
// (VoteConsortium), and once expired any NMI may pre-enrol the ID anew.
func (r *Registry) PreEnrollMeter(ctx contractapi.TransactionContextInterface, meterID, identityHash string) (*meter.PreEnrolment, error) {
	c, err := registrar(ctx, "pre-enrol meters")
	if err != nil {
		return nil, err
	}
	if err := meter.ValidateMeterID(meterID); err != nil {
		return nil, err
	}
	if err := meter.CheckNamespace(meterID, c.nmi); err != nil {
		return nil, err
	}
	if err := meter.ValidateHash(identityHash); err != nil {
		return nil, err
	}
	if _, found, err := state.Get[meter.Meter](ctx, wire.MeterKey(meterID)); err != nil {
		return nil, err
	} else if found {
		return nil, meter.Errorf(meter.CodeMeterExists, "meter %s is already registered", meterID)
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	if pre, found, err := state.Get[meter.PreEnrolment](ctx, wire.PreEnrolmentKey(meterID)); err != nil {
		return nil, err
	} else if found && !t.expired(&pre) {
		return nil, meter.Errorf(meter.CodePreEnrolled, "meter %s is already pre-enrolled by %s until %s", meterID, pre.NMI, pre.Expiry())
	}
	pre := &meter.PreEnrolment{MeterID: meterID, NMI: c.nmi, IdentityHash: identityHash, TxID: t.id, At: t.stamp(),
		ExpiresAt: formatTime(t.time.Add(meter.PreEnrolmentValidity))}
	if err := t.putOwned(wire.PreEnrolmentKey(meterID), pre, c.nmi); err != nil {
		return nil, err
	}
	return pre, state.Emit(ctx, wire.EventMeterPreEnrolled, wire.MeterEvent{NMI: c.nmi, MeterID: meterID})
}

// expired reports whether a pre-enrolment no longer reserves its meter ID
// at the transaction's time.
func (t tx) expired(pre *meter.PreEnrolment) bool {
	at, err := meter.ParseTime(pre.Expiry())
	return err == nil && !t.time.Before(at)
}

// WithdrawPreEnrolment removes a pending pre-enrolment; only its NMI may.
func (r *Registry) WithdrawPreEnrolment(ctx contractapi.TransactionContextInterface, meterID string) (*meter.PreEnrolment, error) {
	c, err := registrar(ctx, "withdraw pre-enrolments")
	if err != nil {
		return nil, err
	}
	pre, err := r.GetPreEnrolment(ctx, meterID)
	if err != nil {
		return nil, err
	}
	if pre.NMI != c.nmi {
		return nil, meter.Errorf(meter.CodeNotOwner, "meter %s is pre-enrolled by %s; %s may not withdraw it (a majority of the NMIs may release it)", meterID, pre.NMI, c.nmi)
	}
	if _, err := r.newTx(ctx); err != nil {
		return nil, err
	}
	if err := ctx.GetStub().DelState(wire.PreEnrolmentKey(meterID)); err != nil {
		return nil, state.Internal("remove pre-enrolment", err)
	}
	return pre, state.Emit(ctx, wire.EventPreEnrolmentWithdrawn, wire.MeterEvent{NMI: c.nmi, MeterID: meterID})
}

// GetPreEnrolment returns a pending pre-enrolment.
func (r *Registry) GetPreEnrolment(ctx contractapi.TransactionContextInterface, meterID string) (*meter.PreEnrolment, error) {
	if err := meter.ValidateMeterID(meterID); err != nil {
		return nil, err
	}
	pre, found, err := state.Get[meter.PreEnrolment](ctx, wire.PreEnrolmentKey(meterID))
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, meter.Errorf(meter.CodeMeterNotFound, "meter %s has no pending pre-enrolment", meterID)
	}
	return &pre, nil
}

// GetMeter returns a meter's record.
func (r *Registry) GetMeter(ctx contractapi.TransactionContextInterface, meterID string) (*meter.Meter, error) {
	if err := meter.ValidateMeterID(meterID); err != nil {
		return nil, err
	}
	return loadMeter(ctx, meterID)
}

func loadMeter(ctx contractapi.TransactionContextInterface, meterID string) (*meter.Meter, error) {
	m, found, err := state.Get[meter.Meter](ctx, wire.MeterKey(meterID))
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, meter.Errorf(meter.CodeMeterNotFound, "meter %s is not registered", meterID)
	}
	return &m, nil
}

var mspIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ListMeters lists meters, optionally only those of one NMI (MSP ID) and/or
// one status, pageSize at a time (default 100, at most 1000). The order is
// by meter ID; filtered by NMI alone, active meters come before revoked ones.
func (r *Registry) ListMeters(ctx contractapi.TransactionContextInterface, nmi, status string, pageSize int32, bookmark string) (*wire.MeterPage, error) {
	st, err := meter.ParseStatus(status)
	if err != nil {
		return nil, err
	}
	if nmi != "" && !mspIDRE.MatchString(nmi) {
		return nil, malformed("NMI %q is not an MSP ID", nmi)
	}
	var prefix string
	indexed := true
	switch {
	case nmi != "" && st != "":
		prefix = wire.NMIIndexKey(nmi, string(st), "")
	case nmi != "":
		prefix = wire.NMIIndexPrefix(nmi)
	case st != "":
		prefix = wire.StatusIndexKey(string(st), "")
	default:
		prefix, indexed = wire.MeterKey(""), false
	}
	out := &wire.MeterPage{Meters: []*meter.Meter{}}
	out.Bookmark, err = pageRange(ctx, prefix, prefix+wire.RangeEnd, pageSize, bookmark, func(b []byte) error {
		if indexed {
			// An index entry's value is the meter ID as a JSON string.
			var id string
			if err := json.Unmarshal(b, &id); err != nil {
				return err
			}
			m, err := loadMeter(ctx, id)
			out.Meters = append(out.Meters, m)
			return err
		}
		m := new(meter.Meter)
		out.Meters = append(out.Meters, m)
		return json.Unmarshal(b, m)
	})
	return out, err
}

// GetMeterHistory returns every version of a meter's record, oldest first,
// with the transaction that wrote it.
func (r *Registry) GetMeterHistory(ctx contractapi.TransactionContextInterface, meterID string) ([]*wire.MeterVersion, error) {
	if err := meter.ValidateMeterID(meterID); err != nil {
		return nil, err
	}
	out, err := keyHistory(ctx, wire.MeterKey(meterID), func(txID, at string, m *meter.Meter) *wire.MeterVersion {
		return &wire.MeterVersion{TxID: txID, Time: at, Meter: m}
	})
	if err == nil && len(out) == 0 {
		return nil, meter.Errorf(meter.CodeMeterNotFound, "meter %s is not registered", meterID)
	}
	return out, err
}

// keyHistory reads every value key has held, oldest first, each decoded
// as a T (nil where the key was deleted) and made a version with the
// transaction that wrote it and its time.
func keyHistory[T, V any](ctx contractapi.TransactionContextInterface, key string, version func(txID, at string, value *T) V) ([]V, error) {
	it, err := ctx.GetStub().GetHistoryForKey(key)
	if err != nil {
		return nil, state.Internal("read history", err)
	}
	defer it.Close()
	var out []V
	for it.HasNext() {
		h, err := it.Next()
		if err != nil {
			return nil, state.Internal("read history", err)
		}
		var value *T
		if !h.IsDelete {
			value = new(T)
			if err := json.Unmarshal(h.Value, value); err != nil {
				return nil, state.Internal("decode history", err)
			}
		}
		out = append(out, version(h.TxId, formatTime(h.Timestamp.AsTime()), value))
	}
	slices.Reverse(out) // the history database returns the newest first
	return out, nil
}

// GetMeterKeys returns every key version a meter has held, oldest first.
func (r *Registry) GetMeterKeys(ctx contractapi.TransactionContextInterface, meterID string) ([]*meter.KeyVersion, error) {
	if err := meter.ValidateMeterID(meterID); err != nil {
		return nil, err
	}
	prefix := wire.KeyVersionPrefix(meterID)
	it, err := ctx.GetStub().GetStateByRange(prefix, prefix+wire.RangeEnd)
	if err != nil {
		return nil, state.Internal("read key versions", err)
	}
	defer it.Close()
	var out []*meter.KeyVersion
	for it.HasNext() {
		kv, err := it.Next()
		if err != nil {
			return nil, state.Internal("read key versions", err)
		}
		v := new(meter.KeyVersion)
		if err := json.Unmarshal(kv.Value, v); err != nil {
			return nil, state.Internal("decode "+kv.Key, err)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, meter.Errorf(meter.CodeMeterNotFound, "meter %s is not registered", meterID)
	}
	return out, nil
}

// RotateKey replaces a meter's key. proof is the current key's DER signature
// (base64) over meter.RotationStatement for the new key: the meter itself
// proves possession of the key being replaced.
func (r *Registry) RotateKey(ctx contractapi.TransactionContextInterface, meterID, newPublicKey, proof string) (*meter.Meter, error) {
	c, err := registrar(ctx, "rotate keys")
	if err != nil {
		return nil, err
	}
	m, err := r.GetMeter(ctx, meterID)
	if err != nil {
		return nil, err
	}
	if err := c.owns(m, "rotate the key of"); err != nil {
		return nil, err
	}
	if m.Status != meter.StatusActive {
		return nil, meter.Errorf(meter.CodeMeterRevoked, "meter %s is revoked (%s): a revoked key cannot prove possession; register a new meter ID or reinstate it first", m.ID, m.Revocation.Reason)
	}
	newKey, err := meter.ParsePublicKeyPEM(newPublicKey)
	if err != nil {
		return nil, err
	}
	sig, err := decodeBase64("proof", proof)
	if err != nil {
		return nil, err
	}
	if owner, found, err := state.Get[string](ctx, wire.FingerprintKey(newKey.Fingerprint())); err != nil {
		return nil, err
	} else if found {
		return nil, meter.Errorf(meter.CodeKeyInUse, "key %s is already bound to meter %s: a rotation needs a fresh key", newKey.Fingerprint(), owner)
	}
	current, err := meter.ParsePublicKeyPEM(m.PublicKey)
	if err != nil {
		return nil, state.Internal("stored key of "+m.ID, err)
	}
	version := m.KeyVersion + 1
	if err := current.Verify(meter.RotationStatement(m.ID, version, newKey), sig); err != nil {
		return nil, meter.Errorf(meter.CodeBadSignature, "proof of possession for meter %s does not verify against key version %d: %s", m.ID, m.KeyVersion, message(err))
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	m.PublicKey, m.Curve, m.Fingerprint, m.KeyVersion = newKey.PEM(), newKey.Curve(), newKey.Fingerprint(), version
	m.UpdatedTx, m.UpdatedAt = t.id, t.stamp()
	kv := meter.KeyVersion{MeterID: m.ID, Version: version, PublicKey: m.PublicKey, Curve: m.Curve,
		Fingerprint: m.Fingerprint, ValidFrom: t.stamp(), TxID: t.id, ProofSignature: base64.StdEncoding.EncodeToString(sig)}
	if err := t.writeMeter(m, m.Status); err != nil {
		return nil, err
	}
	if err := t.putOwned(wire.KeyVersionKey(m.ID, version), kv, m.NMI); err != nil {
		return nil, err
	}
	if err := state.Put(ctx, wire.FingerprintKey(m.Fingerprint), m.ID); err != nil {
		return nil, err
	}
	return m, state.Emit(ctx, wire.EventKeyRotated, wire.MeterEvent{NMI: m.NMI, MeterID: m.ID, KeyVersion: version})
}

// RevokeMeter revokes a meter's key with an RFC 5280 reason. invalidityDate
// (RFC 3339, optional) states since when the key is known or suspected to be
// invalid. Measurements accepted before stay on the ledger; none are accepted
// after.
func (r *Registry) RevokeMeter(ctx contractapi.TransactionContextInterface, meterID, reason, invalidityDate string) (*meter.Meter, error) {
	c, err := registrar(ctx, "revoke meters")
	if err != nil {
		return nil, err
	}
	why, err := meter.ParseReason(reason)
	if err != nil {
		return nil, err
	}
	m, err := r.GetMeter(ctx, meterID)
	if err != nil {
		return nil, err
	}
	if err := c.owns(m, "revoke"); err != nil {
		return nil, err
	}
	if m.Status == meter.StatusRevoked {
		return nil, meter.Errorf(meter.CodeMeterRevoked, "meter %s is already revoked (%s since %s)", m.ID, m.Revocation.Reason, m.Revocation.RevokedAt)
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	if invalidityDate != "" {
		at, err := meter.ParseTime(invalidityDate)
		if err != nil {
			return nil, err
		}
		if at.After(t.time) {
			return nil, malformed("invalidity date %s lies after the revocation time %s", invalidityDate, t.stamp())
		}
		invalidityDate = formatTime(at)
	}
	m.Status = meter.StatusRevoked
	m.Revocation = &meter.Revocation{Reason: why, RevokedAt: t.stamp(), InvalidityDate: invalidityDate, TxID: t.id}
	m.UpdatedTx, m.UpdatedAt = t.id, t.stamp()
	if err := t.writeMeter(m, meter.StatusActive); err != nil {
		return nil, err
	}
	return m, state.Emit(ctx, wire.EventMeterRevoked, wire.MeterEvent{NMI: m.NMI, MeterID: m.ID, KeyVersion: m.KeyVersion, Reason: string(why)})
}

// ReinstateMeter lifts a certificateHold (RFC 5280 removeFromCRL). Any other
// revocation is final.
func (r *Registry) ReinstateMeter(ctx contractapi.TransactionContextInterface, meterID string) (*meter.Meter, error) {
	c, err := registrar(ctx, "reinstate meters")
	if err != nil {
		return nil, err
	}
	m, err := r.GetMeter(ctx, meterID)
	if err != nil {
		return nil, err
	}
	if err := c.owns(m, "reinstate"); err != nil {
		return nil, err
	}
	if m.Status != meter.StatusRevoked || m.Revocation.Reason != meter.ReasonCertificateHold {
		return nil, meter.Errorf(meter.CodeNotOnHold, "meter %s is not on certificateHold; only a hold can be lifted", m.ID)
	}
	if len(m.Revocation.DecidedBy) > 0 {
		return nil, meter.Errorf(meter.CodeNotOwner, "the hold on meter %s was decided by a majority of the NMIs (%v); its owner alone may not lift it", m.ID, m.Revocation.DecidedBy)
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	m.Status, m.Revocation = meter.StatusActive, nil
	m.UpdatedTx, m.UpdatedAt = t.id, t.stamp()
	if err := t.writeMeter(m, meter.StatusRevoked); err != nil {
		return nil, err
	}
	return m, state.Emit(ctx, wire.EventMeterReinstated, wire.MeterEvent{NMI: m.NMI, MeterID: m.ID, KeyVersion: m.KeyVersion})
}

// maxRequest bounds a request: a bulk registration of MaxBulkRegistration
// meters with their keys, proofs and metadata, or a batch of measurements.
const maxRequest = 16 << 20

func decodeStrict(s string, v any) error { return state.DecodeRequest(s, v, maxRequest) }

func decodeBase64(field, s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, malformed("%s is not standard base64: %v", field, err)
	}
	return b, nil
}

// message is a refusal's text without its code.
func message(err error) string {
	var refusal *meter.Error
	if errors.As(err, &refusal) {
		return refusal.Message
	}
	return err.Error()
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
