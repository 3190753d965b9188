package audit_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/inter-nmi/pki/network/pkg/audit"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

func value(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMeterType(t *testing.T) {
	ptbType := meter.MeterType{ID: "PTB-T1", NMI: "PTBMSP", Manufacturer: "Example Metering GmbH", Model: "EM-3000", Certificate: "DE-M 26 MI003 PTB001"}
	as := func(change func(*meter.MeterType)) meter.MeterType {
		mt := ptbType
		change(&mt)
		return mt
	}
	v1 := meter.ApprovedSoftware{Software: meter.Software{ID: "1.0", Checksum: "sha256:aaaaaaaa"}, ApprovedFrom: "2026-01-01T00:00:00Z", ApprovedTx: "t1"}
	v2 := meter.ApprovedSoftware{Software: meter.Software{ID: "1.1", Checksum: "sha256:bbbbbbbb"}, ApprovedFrom: "2026-06-01T00:00:00Z", ApprovedTx: "t2"}
	withV1 := as(func(mt *meter.MeterType) { mt.Versions = []meter.ApprovedSoftware{v1} })
	withV2 := as(func(mt *meter.MeterType) { mt.Versions = []meter.ApprovedSoftware{v1, v2} })
	withdrawn := as(func(mt *meter.MeterType) {
		w := v2
		w.Withdrawal = &meter.Withdrawal{Reason: "faulty", From: "2026-09-01T00:00:00Z", TxID: "t3"}
		mt.Versions = []meter.ApprovedSoftware{v1, w}
	})
	for _, tc := range []struct {
		name, key, id string
		value         any
		prev          *meter.MeterType
		creator       string
		kind          string
		says          string
	}{
		{"a new type of its NMI", "type/PTB-T1", "PTB-T1", ptbType, nil, "PTBMSP", "", ""},
		{"a change by its NMI", "type/PTB-T1", "PTB-T1", ptbType, &ptbType, "PTBMSP", "", ""},
		{"a change its NMI's policy allowed, submitted by another", "type/PTB-T1", "PTB-T1", ptbType, &ptbType, "CMIMSP", "", ""},
		{"not a type ID", "type/PTB T1", "PTB T1", ptbType, nil, "PTBMSP", audit.KindKey, "not a meter type ID"},
		{"not a type record", "type/PTB-T1", "PTB-T1", []int{1}, nil, "PTBMSP", audit.KindValue, "not a meter type record"},
		{"under another type's key", "type/PTB-T9", "PTB-T9", ptbType, nil, "PTBMSP", audit.KindMismatch, `"PTB-T1"`},
		{"in another NMI's name", "type/PTB-T1", "PTB-T1", ptbType, nil, "CMIMSP", audit.KindOwner, `names "PTBMSP"`},
		{"in another NMI's namespace", "type/PTB-T2", "PTB-T2", as(func(mt *meter.MeterType) { mt.ID, mt.NMI = "PTB-T2", "CMIMSP" }), nil, "CMIMSP", audit.KindOwner, `start with "CMI-"`},
		{"the NMI changes", "type/PTB-T1", "PTB-T1", as(func(mt *meter.MeterType) { mt.NMI = "CMIMSP" }), &ptbType, "CMIMSP", audit.KindOwner, `from "PTBMSP" to "CMIMSP"`},
		{"a version added", "type/PTB-T1", "PTB-T1", withV2, &withV1, "PTBMSP", "", ""},
		{"a version withdrawn", "type/PTB-T1", "PTB-T1", withdrawn, &withV2, "PTBMSP", "", ""},
		{"a version dropped", "type/PTB-T1", "PTB-T1", withV1, &withV2, "PTBMSP", audit.KindRewrite, "drops versions"},
		{"a withdrawal undone", "type/PTB-T1", "PTB-T1", withV2, &withdrawn, "PTBMSP", audit.KindRewrite, "undoes or changes the withdrawal of version 1.1"},
		{"an approval moved", "type/PTB-T1", "PTB-T1", as(func(mt *meter.MeterType) {
			mt.Versions = []meter.ApprovedSoftware{v1, {Software: v2.Software, ApprovedFrom: "2020-01-01T00:00:00Z"}}
		}), &withV2, "PTBMSP", audit.KindRewrite, "changes the approval of version 1.1"},
		{"the certificate changed", "type/PTB-T1", "PTB-T1", as(func(mt *meter.MeterType) { mt.Certificate = "forged" }), &ptbType, "PTBMSP", audit.KindRewrite, "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mt, f := audit.MeterType(tc.key, tc.id, value(t, tc.value), tc.prev, tc.creator)
			if tc.kind == "" {
				if f != nil || mt == nil || mt.ID != tc.id {
					t.Fatalf("%+v, %+v", mt, f)
				}
				return
			}
			if f == nil || mt != nil || f.Kind != tc.kind || !strings.Contains(f.Problem, tc.says) {
				t.Fatalf("%+v, %+v; want a finding of kind %s saying %s", mt, f, tc.kind, tc.says)
			}
		})
	}
}

// logged is a meter's first software log entry as the chaincode writes it,
// with the meter's record counting it.
func logged(t *testing.T, key *meter.PrivateKey) (meter.UpdateReport, meter.Meter) {
	t.Helper()
	st := meter.UpdateStatement{MeterID: "PTB-0001", Time: "2026-12-07T10:00:00Z", Result: meter.UpdateSuccess,
		From: meter.Software{ID: "1.0.0", Checksum: "sha256:aaaaaaaa"}, To: meter.Software{ID: "1.1.0", Checksum: "sha256:bbbbbbbb"}}
	su, err := meter.SignUpdate(key, st)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(su.Statement)
	r := meter.UpdateReport{MeterID: "PTB-0001", Number: 1, Time: st.Time, From: st.From, To: st.To, Result: st.Result,
		Statement: base64.StdEncoding.EncodeToString(su.Statement), Signature: base64.StdEncoding.EncodeToString(su.Signature),
		KeyVersion: 1, SubmittedBy: "CMIMSP", TxID: "tx"}
	m := meter.Meter{ID: "PTB-0001", NMI: "PTBMSP", KeyVersion: 1, Status: meter.StatusActive,
		Updates: &meter.UpdateMark{Count: 1, LastTime: st.Time, LastHash: hex.EncodeToString(sum[:]), LastTx: "tx"}}
	return r, m
}

func TestSoftwareLog(t *testing.T) {
	key, err := meter.GenerateKey(meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	r, m := logged(t, key)
	with := func(change func(*meter.Meter)) map[string]meter.Meter {
		c := m
		mark := *m.Updates
		c.Updates = &mark
		change(&c)
		return map[string]meter.Meter{c.ID: c}
	}
	other := r
	other.MeterID = "PTB-0002"
	for _, tc := range []struct {
		name, key string
		value     any
		written   map[string]meter.Meter
		kind      string
		says      string
	}{
		{"written with the record counting it", wire.SoftwareLogKey("PTB-0001", 1), r, with(func(*meter.Meter) {}), "", ""},
		{"a malformed key", "swlog/PTB-0001/1", r, with(func(*meter.Meter) {}), audit.KindKey, "6 or more digits"},
		{"not a log entry", wire.SoftwareLogKey("PTB-0001", 1), "text", with(func(*meter.Meter) {}), audit.KindValue, "not a software log entry"},
		{"under another meter's key", wire.SoftwareLogKey("PTB-0001", 1), other, with(func(*meter.Meter) {}), audit.KindMismatch, `"PTB-0002"`},
		{"under another number", wire.SoftwareLogKey("PTB-0001", 2), r, with(func(*meter.Meter) {}), audit.KindMismatch, "entry 2"},
		{"without its meter's record", wire.SoftwareLogKey("PTB-0001", 1), r, nil, audit.KindUnbound, "without the meter's record"},
		{"the record counting another number", wire.SoftwareLogKey("PTB-0001", 1), r, with(func(m *meter.Meter) { m.Updates.Count = 2 }), audit.KindUnbound, "entry 1"},
		{"the record naming another statement", wire.SoftwareLogKey("PTB-0001", 1), r, with(func(m *meter.Meter) { m.Updates.LastHash = "00" }), audit.KindUnbound, "last statement"},
		{"the record without updates", wire.SoftwareLogKey("PTB-0001", 1), r, with(func(m *meter.Meter) { m.Updates = nil }), audit.KindUnbound, ""},
		{"another key version in force", wire.SoftwareLogKey("PTB-0001", 1), r, with(func(m *meter.Meter) { m.KeyVersion = 2 }), audit.KindSignature, "version 2 is in force"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, rest := wire.KeyKind(tc.key)
			got, f := audit.SoftwareLog(tc.key, rest, value(t, tc.value), tc.written)
			if tc.kind == "" {
				if f != nil || got == nil || got.Number != 1 {
					t.Fatalf("%+v, %+v", got, f)
				}
				return
			}
			if f == nil || got != nil || f.Kind != tc.kind || !strings.Contains(f.Problem, tc.says) {
				t.Fatalf("%+v, %+v; want a finding of kind %s saying %s", got, f, tc.kind, tc.says)
			}
		})
	}
}

func TestStatement(t *testing.T) {
	key, err := meter.GenerateKey(meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := meter.GenerateKey(meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	pem := key.Public().PEM()
	r, _ := logged(t, key)
	change := func(f func(*meter.UpdateReport)) *meter.UpdateReport {
		c := r
		f(&c)
		return &c
	}
	forOther, _ := logged(t, key)
	forOther.MeterID = "PTB-0002"
	for _, tc := range []struct {
		name   string
		report *meter.UpdateReport
		pem    string
		kind   string
		says   string
	}{
		{"signed by the meter", &r, pem, "", ""},
		{"signed by another key", &r, stranger.Public().PEM(), audit.KindSignature, "not a statement of the meter"},
		{"a key version the meter never held", &r, "", audit.KindSignature, "never held"},
		{"a garbage signature", change(func(r *meter.UpdateReport) {
			r.Signature = base64.StdEncoding.EncodeToString([]byte{0x30, 0x06, 2, 1, 1, 2, 1, 1})
		}), pem, audit.KindSignature, "key version 1"},
		{"a statement naming another meter", &forOther, pem, audit.KindSignature, "signed for meter"},
		{"an entry saying other software", change(func(r *meter.UpdateReport) { r.To.ID = "6.6.6" }), pem, audit.KindMismatch, "the meter signed 1.0.0 → 1.1.0"},
		{"a statement that is not base64", change(func(r *meter.UpdateReport) { r.Statement = "%%" }), pem, audit.KindValue, "not base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := audit.Statement(tc.report, tc.pem)
			if tc.kind == "" {
				if f != nil {
					t.Fatalf("%+v", f)
				}
				return
			}
			if f == nil || f.Kind != tc.kind || !strings.Contains(f.Problem, tc.says) {
				t.Fatalf("%+v; want a finding of kind %s saying %s", f, tc.kind, tc.says)
			}
		})
	}
}

func TestRecordTypeNeverChanges(t *testing.T) {
	prev := meter.Meter{ID: "PTB-0001", NMI: "PTBMSP", KeyVersion: 1, Status: meter.StatusActive}
	next := prev
	next.TypeID = "PTB-T1"
	if _, f := audit.Record("meter/PTB-0001", "PTB-0001", value(t, next), &prev, "PTBMSP"); f != nil {
		t.Fatalf("a type assigned to a meter of unknown type: %+v", f)
	}
	typed := next
	typed.TypeID = "PTB-T2"
	if m, f := audit.Record("meter/PTB-0001", "PTB-0001", value(t, typed), &next, "PTBMSP"); f == nil || m != nil || f.Kind != audit.KindRewrite {
		t.Fatalf("a meter's type changed: %+v, %+v; want a finding of kind %s", m, f, audit.KindRewrite)
	}
}
