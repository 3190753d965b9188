package meter_test

import (
	"strings"
	"testing"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

var (
	v1 = meter.Software{ID: "EM3-FW 2.1", Checksum: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
	v2 = meter.Software{ID: "EM3-FW 2.2", Checksum: "sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"}
)

func TestStatementRoundTrip(t *testing.T) {
	s := meter.UpdateStatement{MeterID: "PTB-0001", Time: "2026-12-07T10:00:00Z", From: v1, To: v2, Result: meter.UpdateSuccess}
	b, err := s.Statement()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"softwareUpdate","meterId":"PTB-0001","time":"2026-12-07T10:00:00Z","fromSoftwareId":"EM3-FW 2.1","fromSoftwareChecksum":"` + v1.Checksum +
		`","toSoftwareId":"EM3-FW 2.2","toSoftwareChecksum":"` + v2.Checksum + `","result":"success"}`
	if string(b) != want {
		t.Fatalf("statement\n%s\nwant\n%s", b, want)
	}
	back, err := meter.ParseStatement(b)
	if err != nil {
		t.Fatal(err)
	}
	s.Type = meter.StatementType
	if back != s {
		t.Fatalf("parsed %+v, want %+v", back, s)
	}
}

func TestParseStatementBad(t *testing.T) {
	good := func(edit func(string) string) []byte {
		s := meter.UpdateStatement{MeterID: "PTB-0001", Time: "2026-12-07T10:00:00Z", From: v1, To: v2, Result: meter.UpdateFailure, Detail: "flash verify failed"}
		b, err := s.Statement()
		if err != nil {
			t.Fatal(err)
		}
		return []byte(edit(string(b)))
	}
	for _, c := range []struct {
		name string
		b    []byte
		want meter.Code
	}{
		{"empty", nil, meter.CodeMalformed},
		{"an unknown field", good(func(s string) string { return strings.Replace(s, `"result"`, `"extra":"x","result"`, 1) }), meter.CodeMalformed},
		{"a field twice", good(func(s string) string {
			return strings.Replace(s, `"result":"failure"`, `"result":"failure","result":"success"`, 1)
		}), meter.CodeMalformed},
		{"a field in another case", good(func(s string) string { return strings.Replace(s, `"meterId"`, `"meterid"`, 1) }), meter.CodeMalformed},
		{"another type", good(func(s string) string { return strings.Replace(s, `softwareUpdate`, `keyRotation`, 1) }), meter.CodeMalformed},
		{"an unknown result", good(func(s string) string { return strings.Replace(s, `"failure"`, `"partial"`, 1) }), meter.CodeMalformed},
		{"a checksum without algorithm", good(func(s string) string { return strings.Replace(s, `sha256:60303`, `60303`, 1) }), meter.CodeMalformed},
		{"no time", good(func(s string) string { return strings.Replace(s, `"time":"2026-12-07T10:00:00Z",`, ``, 1) }), meter.CodeMalformed},
		{"a number for a string", good(func(s string) string { return strings.Replace(s, `"time":"2026-12-07T10:00:00Z"`, `"time":7`, 1) }), meter.CodeMalformed},
		{"trailing data", good(func(s string) string { return s + "{}" }), meter.CodeMalformed},
		{"a bidirectional override", good(func(s string) string { return strings.Replace(s, `EM3-FW 2.2`, "EM3-FW \u202e2.2", 1) }), meter.CodeMalformed},
		{"too large", []byte(`{"detail":"` + strings.Repeat("x", meter.MaxStatementBytes) + `"}`), meter.CodeTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := meter.ParseStatement(c.b)
			if meter.CodeOf(err) != c.want {
				t.Fatalf("got %v, want %s", err, c.want)
			}
		})
	}
}

func TestMeasurementSoftwareID(t *testing.T) {
	m := meter.Measurement{MeterID: "PTB-0001", Seq: 1, Time: "2026-12-07T10:00:00Z", Value: "1.5", Unit: "kWh", SoftwareID: "EM3-FW 2.1"}
	b, err := m.Payload()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"meterId":"PTB-0001","seq":1,"time":"2026-12-07T10:00:00Z","value":1.5,"unit":"kWh","softwareId":"EM3-FW 2.1"}`; string(b) != want {
		t.Fatalf("payload %s, want %s", b, want)
	}
	back, err := meter.ParseMeasurement(b)
	if err != nil || back != m {
		t.Fatalf("parsed %+v, %v", back, err)
	}
	if acc, err := meter.ReadAccepted(b); err != nil || acc.SoftwareID != m.SoftwareID {
		t.Fatalf("ReadAccepted: %+v, %v", acc, err)
	}
	for _, bad := range []string{
		`{"meterId":"PTB-0001","seq":1,"time":"2026-12-07T10:00:00Z","value":1.5,"unit":"kWh","softwareId":""}`,
		`{"meterId":"PTB-0001","seq":1,"time":"2026-12-07T10:00:00Z","value":1.5,"unit":"kWh","softwareId":7}`,
		`{"meterId":"PTB-0001","seq":1,"time":"2026-12-07T10:00:00Z","value":1.5,"unit":"kWh","softwareId":"a\u0007"}`,
		`{"meterId":"PTB-0001","seq":1,"time":"2026-12-07T10:00:00Z","value":1.5,"unit":"kWh","softwareId":"` + strings.Repeat("x", meter.MaxMetadataLen+1) + `"}`,
	} {
		if _, err := meter.ParseMeasurement([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestSoftwareAt(t *testing.T) {
	at := func(s string) time.Time {
		v, err := meter.ParseTime(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	m := &meter.Meter{ID: "PTB-0001", RegisteredAt: "2026-01-01T00:00:00Z", RegisteredTx: "reg",
		Metadata: meter.Metadata{SoftwareID: v1.ID, SoftwareChecksum: v1.Checksum}}
	if m.SoftwareAt(at("2025-06-01T00:00:00Z")) != v1 || m.CurrentSoftware() != v1 {
		t.Fatal("a meter never updated runs its registration's software")
	}
	m.Install(v2, "2026-06-01T00:00:00Z", "upd")
	for when, want := range map[string]meter.Software{
		"2025-06-01T00:00:00Z": v1, // before its registration: the oldest known
		"2026-05-31T23:59:59Z": v1,
		"2026-06-01T00:00:00Z": v2,
		"2026-12-01T00:00:00Z": v2,
	} {
		if got := m.SoftwareAt(at(when)); got != want {
			t.Errorf("at %s: %s, want %s", when, got, want)
		}
	}
	for i := range 2 * meter.MaxInstalled {
		m.Install(meter.Software{ID: "x", Checksum: v1.Checksum}, at("2026-07-01T00:00:00Z").Add(time.Duration(i)*time.Hour).Format(time.RFC3339), "u")
	}
	if len(m.Software) != meter.MaxInstalled {
		t.Fatalf("the record remembers %d installs, at most %d", len(m.Software), meter.MaxInstalled)
	}
}

func TestCheckApproved(t *testing.T) {
	mt := &meter.MeterType{ID: "PTB-EM3000", Versions: []meter.ApprovedSoftware{
		{Software: v1, ApprovedFrom: "2026-01-01T00:00:00Z"},
		{Software: v2, ApprovedFrom: "2026-06-01T00:00:00Z", Withdrawal: &meter.Withdrawal{Reason: "faulty", From: "2026-09-01T00:00:00Z"}},
	}}
	for _, c := range []struct {
		sw   meter.Software
		at   string
		want bool
	}{
		{v1, "2026-01-01T00:00:00Z", true},
		{v1, "2025-12-31T23:59:59Z", false},
		{v2, "2026-05-31T00:00:00Z", false},
		{v2, "2026-08-31T23:59:59Z", true},
		{v2, "2026-09-01T00:00:00Z", false},
		{meter.Software{ID: v1.ID, Checksum: v2.Checksum}, "2026-07-01T00:00:00Z", false},
		{meter.Software{ID: "other", Checksum: v1.Checksum}, "2026-07-01T00:00:00Z", false},
	} {
		at, _ := meter.ParseTime(c.at)
		err := mt.CheckApproved(c.sw, at)
		if (err == nil) != c.want || (err != nil && meter.CodeOf(err) != meter.CodeSoftwareNotApproved) {
			t.Errorf("%s at %s: %v, want approved %v", c.sw, c.at, err, c.want)
		}
	}
}
