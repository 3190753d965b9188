package audit

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// Meter types and software logs (docs/software.md). A type's key, like a
// meter's, is guarded by its certifying NMI's key-level policy only once it
// exists: two colluding NMIs can write a new type under any ID, in any
// NMI's name. A software log entry's key is new with every statement, so
// the entry is believed only where the meter's record, which its owner's
// policy guards, counts it in the same transaction, and where the meter's
// own key signed its statement.

// MeterType checks a type record written under type/<id> by a transaction
// of creator: the key names a type, the value is that type's record, a new
// type's certifying NMI is the one that submitted it and its ID lies in
// that NMI's namespace, and a type's NMI never changes. prev is the type's
// record before, nil for a new type.
func MeterType(key, id string, value []byte, prev *meter.MeterType, creator string) (*meter.MeterType, *Finding) {
	if meter.ValidateTypeID(id) != nil {
		return nil, found(KindKey, "%q is not a meter type ID; the type record was not applied", cut(id, 64))
	}
	var mt meter.MeterType
	if err := json.Unmarshal(value, &mt); err != nil {
		return nil, found(KindValue, "the value is not a meter type record (%s); it was not applied", cut(err.Error(), 256))
	}
	switch {
	case mt.ID != id:
		return nil, found(KindMismatch, "the value is the record of meter type %q, written under the key of type %q; it was not applied to either", cut(mt.ID, 64), id)
	case prev == nil && mt.NMI != creator:
		return nil, found(KindOwner, "the new meter type's record names %q as its certifying NMI, but %q submitted it; it was not applied", cut(mt.NMI, 64), creator)
	case prev == nil && meter.CheckNamespace(id, mt.NMI) != nil:
		return nil, found(KindOwner, "meter type %q is not in %s's namespace (its type IDs start with %q); it was not applied", id, mt.NMI, meter.Namespace(mt.NMI))
	case prev != nil && mt.NMI != prev.NMI:
		return nil, found(KindOwner, "the record changes meter type %s's certifying NMI from %q to %q; it was not applied", id, prev.NMI, cut(mt.NMI, 64))
	}
	if prev != nil {
		if why := typeRewrite(prev, &mt); why != "" {
			return nil, found(KindRewrite, "the record of meter type %s %s, which the chaincode never does (it only adds versions and withdraws one once); it was not applied", id, why)
		}
	}
	return &mt, nil
}

// typeRewrite says how next changes what the chaincode never changes in a
// type record, "" when it does not: the certifying NMI with one colluding
// NMI satisfies both the key-level and the chaincode policy, and could
// otherwise undo a withdrawal or remove a version from the record.
func typeRewrite(prev, next *meter.MeterType) string {
	switch {
	case next.Manufacturer != prev.Manufacturer || next.Model != prev.Model || next.Certificate != prev.Certificate:
		return "changes its manufacturer, model or certificate"
	case next.RecordedTx != prev.RecordedTx || next.RecordedAt != prev.RecordedAt:
		return "changes when it was recorded"
	case len(next.Versions) < len(prev.Versions):
		return fmt.Sprintf("drops versions (%d listed before, %d now)", len(prev.Versions), len(next.Versions))
	}
	for i := range prev.Versions {
		was, is := prev.Versions[i], next.Versions[i]
		if was.Software != is.Software || was.ApprovedFrom != is.ApprovedFrom || was.ApprovedTx != is.ApprovedTx || was.ApprovedAt != is.ApprovedAt {
			return fmt.Sprintf("changes the approval of version %s", cut(was.ID, 64))
		}
		if was.Withdrawal != nil && (is.Withdrawal == nil || *is.Withdrawal != *was.Withdrawal) {
			return fmt.Sprintf("undoes or changes the withdrawal of version %s", cut(was.ID, 64))
		}
	}
	return ""
}

// SoftwareLog checks an entry of a meter's software log written under
// swlog/<id>/<number> (rest is what follows "swlog/"): the key is well
// formed, the value is that meter's entry of that number, and the same
// transaction wrote the meter's record counting it (written: the records
// it wrote, as applied), with the hash of its statement as the last one
// and the key version it names in force, as the chaincode writes them.
// Statement then checks the meter's signature.
func SoftwareLog(key, rest string, value []byte, written map[string]meter.Meter) (*meter.UpdateReport, *Finding) {
	id, num, _ := cutLast(rest, "/")
	number, err := strconv.Atoi(num)
	if meter.ValidateMeterID(id) != nil || err != nil || number < 1 || wire.SoftwareLogKey(id, number) != key {
		return nil, found(KindKey, "the key is not swlog/<meter ID>/<number of 6 or more digits>; the log entry was not applied")
	}
	var r meter.UpdateReport
	if err := json.Unmarshal(value, &r); err != nil {
		return nil, found(KindValue, "the value is not a software log entry (%s); it was not applied", cut(err.Error(), 256))
	}
	if r.MeterID != id || r.Number != number {
		return nil, found(KindMismatch, "the value is entry %d of meter %q's software log, written under the key of entry %d of meter %q; it was not applied to either",
			r.Number, cut(r.MeterID, 64), number, id)
	}
	statement, err := base64.StdEncoding.DecodeString(r.Statement)
	if err != nil {
		return nil, found(KindValue, "entry %d of meter %s's software log carries a statement that is not base64; it was not applied", number, id)
	}
	sum := sha256.Sum256(statement)
	m, ok := written[id]
	if !ok || m.Updates == nil || m.Updates.Count != number || m.Updates.LastHash != hex.EncodeToString(sum[:]) {
		return nil, found(KindUnbound, "entry %d of meter %q's software log was written without the meter's record counting it as its last statement in the same transaction, as the chaincode writes them; it was not applied",
			number, id)
	}
	if r.KeyVersion != m.KeyVersion {
		return nil, found(KindSignature, "entry %d of meter %s's software log names key version %d, but version %d is in force; it was not applied",
			number, id, r.KeyVersion, m.KeyVersion)
	}
	return &r, nil
}

// Statement says why a software log entry's statement is not one its
// meter made, nil when it is: it must be signed with the key of the
// version the entry names (pem, "" if the index has no such version), name
// the entry's meter, and say what the entry says (time, software from and
// to, result).
func Statement(r *meter.UpdateReport, pem string) *Finding {
	id, n, v := r.MeterID, r.Number, r.KeyVersion
	if pem == "" {
		return found(KindSignature, "entry %d of meter %s's software log names key version %d, which the meter never held; it was not applied", n, id, v)
	}
	key, err := parsedKey(pem)
	if err != nil {
		return found(KindSignature, "meter %s's key version %d cannot be read (%v); entry %d of its software log was not applied", id, v, err, n)
	}
	statement, serr := base64.StdEncoding.DecodeString(r.Statement)
	signature, gerr := base64.StdEncoding.DecodeString(r.Signature)
	if serr != nil || gerr != nil {
		return found(KindValue, "entry %d of meter %s's software log carries a statement or signature that is not base64; it was not applied", n, id)
	}
	st, err := meter.SignedUpdate{MeterID: id, Statement: statement, Signature: signature}.Open(key)
	if err != nil {
		return found(KindSignature, "entry %d of meter %s's software log is not a statement of the meter signed with its key version %d: %s; it was not applied",
			n, id, v, cut(err.Error(), 256))
	}
	if st.Time != r.Time || st.From != r.From || st.To != r.To || st.Result != r.Result || st.Detail != r.Detail {
		return found(KindMismatch, "entry %d of meter %s's software log says %s → %s (%s) at %s, but the meter signed %s → %s (%s) at %s; it was not applied",
			n, id, cut(r.From.ID, 64), cut(r.To.ID, 64), cut(r.Result, 16), cut(r.Time, 40), st.From.ID, st.To.ID, st.Result, st.Time)
	}
	return nil
}
