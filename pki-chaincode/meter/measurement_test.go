package meter_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// txTime is the transaction time the fixtures were made for.
var txTime = time.Date(2026, 11, 21, 10, 20, 0, 0, time.UTC)

func TestParseMeasurementGood(t *testing.T) {
	reading := func(id string, seq uint64) meter.Measurement {
		return meter.Measurement{MeterID: id, Seq: seq, Time: "2026-11-21T10:15:00Z", Value: "1234.5", Unit: "kWh"}
	}
	want := map[string]meter.Measurement{
		"p256.good.json":      reading("PTB-0001", 1),
		"p384.good.json":      reading("PTB-0002", 1),
		"secp256k1.good.json": reading("PTB-0003", 1),
		"ciphertext.good.json": {MeterID: "PTB-0001", Seq: 2, Time: "2026-11-21T10:30:00Z", Value: "1235", Unit: "kWh",
			Ciphertext: "AAECAwQFBgc="},
		// An encrypted reading carries no plaintext value.
		"encrypted.good.json": {MeterID: "PTB-0001", Seq: 4, Time: "2026-11-21T10:45:00Z", Unit: "Wh", Ciphertext: "AAECAwQFBgc="},
		"reordered.good.json": {MeterID: "PTB-0001", Seq: 3, Time: "2026-11-21T11:45:00.5+01:00", Value: "0.25", Unit: "kWh"},
		"max-seq.good.json":   {MeterID: "CMI-0001", Seq: 18446744073709551615, Time: "2026-11-21T10:15:00Z", Value: "-12.5", Unit: "kvarh"},
	}
	var names []string
	for name, w := range want {
		names = append(names, name)
		t.Run(name, func(t *testing.T) {
			m, err := meter.ParseMeasurement(readFile(t, filepath.Join(msmtDir, name)))
			if err != nil {
				t.Fatal(err)
			}
			if m != w {
				t.Fatalf("got %+v, want %+v", m, w)
			}
		})
	}
	checkCovered(t, msmtDir, "*.good.json", names)
}

func TestParseMeasurementBad(t *testing.T) {
	want := map[string]meter.Code{
		"duplicate-field.bad.json":      meter.CodeMalformed,
		"no-value.bad.json":             meter.CodeMalformed,
		"duplicate-field-case.bad.json": meter.CodeMalformed,
		"field-case.bad.json":           meter.CodeMalformed,
		"unknown-field.bad.json":        meter.CodeMalformed,
		"missing-field.bad.json":        meter.CodeMalformed,
		"null-field.bad.json":           meter.CodeMalformed,
		"meter-id.bad.json":             meter.CodeMalformed,
		"seq-zero.bad.json":             meter.CodeMalformed,
		"seq-negative.bad.json":         meter.CodeMalformed,
		"seq-string.bad.json":           meter.CodeMalformed,
		"seq-exponent.bad.json":         meter.CodeMalformed,
		"seq-overflow.bad.json":         meter.CodeMalformed,
		"value-exponent.bad.json":       meter.CodeMalformed,
		"value-string.bad.json":         meter.CodeMalformed,
		"value-leading-zero.bad.json":   meter.CodeMalformed,
		"time-no-offset.bad.json":       meter.CodeMalformed,
		"time-format.bad.json":          meter.CodeMalformed,
		"unit.bad.json":                 meter.CodeMalformed,
		"ciphertext.bad.json":           meter.CodeMalformed,
		"trailing-data.bad.json":        meter.CodeMalformed,
		"trailing-garbage.bad.json":     meter.CodeMalformed,
		"trailing-brace.bad.json":       meter.CodeMalformed,
		"array.bad.json":                meter.CodeMalformed,
		"truncated.bad.json":            meter.CodeMalformed,
		"empty.bad.json":                meter.CodeMalformed,
		"oversized.bad.json":            meter.CodeTooLarge,
		"ciphertext-oversized.bad.json": meter.CodeTooLarge,
	}
	var names []string
	for name, code := range want {
		names = append(names, name)
		t.Run(name, func(t *testing.T) {
			_, err := meter.ParseMeasurement(readFile(t, filepath.Join(msmtDir, name)))
			wantCode(t, err, code)
		})
	}
	checkCovered(t, msmtDir, "*.bad.json", names)
}

func TestParseMeasurementSynthetic(t *testing.T) {
	const body = `"meterId":"PTB-0001","seq":1,"time":"2026-11-21T10:15:00Z","value":1,"unit":"kWh"`
	cases := []struct {
		name, payload string
		code          meter.Code // "" for accepted
	}{
		{"trailing whitespace", "{" + body + "}\n\t ", ""},
		{"leading whitespace", " \n{" + body + "}", ""},
		{"escaped field name", `{"meter\u0049d":"PTB-0001","seq":1,"time":"2026-11-21T10:15:00Z","value":1,"unit":"kWh"}`, ""},
		{"escaped duplicate", `{"meter\u0049d":"PTB-0001",` + body + `}`, meter.CodeMalformed},
		{"empty ciphertext", "{" + body + `,"ciphertext":""}`, meter.CodeMalformed},
		{"ciphertext length not a multiple of 4", "{" + body + `,"ciphertext":"AAA"}`, meter.CodeMalformed},
		{"nested object value", `{"meterId":"PTB-0001","seq":1,"time":"2026-11-21T10:15:00Z","value":{"v":1},"unit":"kWh"}`, meter.CodeMalformed},
		{"value too long", `{"meterId":"PTB-0001","seq":1,"time":"2026-11-21T10:15:00Z","value":1.` + strings.Repeat("0", 40) + `,"unit":"kWh"}`, meter.CodeMalformed},
		{"unit too long", `{"meterId":"PTB-0001","seq":1,"time":"2026-11-21T10:15:00Z","value":1,"unit":"` + strings.Repeat("k", 17) + `"}`, meter.CodeMalformed},
		{"empty unit", `{"meterId":"PTB-0001","seq":1,"time":"2026-11-21T10:15:00Z","value":1,"unit":""}`, meter.CodeMalformed},
		{"year 1999", `{"meterId":"PTB-0001","seq":1,"time":"1999-12-31T23:59:59Z","value":1,"unit":"kWh"}`, meter.CodeMalformed},
		{"seq leading zero", `{"meterId":"PTB-0001","seq":01,"time":"2026-11-21T10:15:00Z","value":1,"unit":"kWh"}`, meter.CodeMalformed},
		{"seq fraction", `{"meterId":"PTB-0001","seq":1.0,"time":"2026-11-21T10:15:00Z","value":1,"unit":"kWh"}`, meter.CodeMalformed},
		{"null", "null", meter.CodeMalformed},
		{"two objects", "{" + body + "}{" + body + "}", meter.CodeMalformed},
		{"one byte over the limit", "{" + body + `,"ciphertext":"` + strings.Repeat("A", meter.MaxPayloadBytes) + `"}`, meter.CodeTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := meter.ParseMeasurement([]byte(tc.payload))
			if tc.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantCode(t, err, tc.code)
		})
	}
}

// The bytes the package signs are the bytes openssl signed in the fixtures,
// and they parse back to the same measurement.
func TestMeasurementPayload(t *testing.T) {
	cases := []struct {
		file string
		m    meter.Measurement
	}{
		{"p256.good.json", meter.Measurement{MeterID: "PTB-0001", Seq: 1, Time: "2026-11-21T10:15:00Z", Value: "1234.5", Unit: "kWh"}},
		{"ciphertext.good.json", meter.Measurement{MeterID: "PTB-0001", Seq: 2, Time: "2026-11-21T10:30:00Z", Value: "1235", Unit: "kWh", Ciphertext: "AAECAwQFBgc="}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			payload, err := tc.m.Payload()
			if err != nil {
				t.Fatal(err)
			}
			if want := readFile(t, filepath.Join(msmtDir, tc.file)); string(payload) != string(want) {
				t.Fatalf("payload\n%s\nwant\n%s", payload, want)
			}
			back, err := meter.ParseMeasurement(payload)
			if err != nil {
				t.Fatal(err)
			}
			if back != tc.m {
				t.Fatalf("round trip gave %+v", back)
			}
		})
	}
}

func TestMeasurementPayloadInvalid(t *testing.T) {
	good := meter.Measurement{MeterID: "PTB-0001", Seq: 1, Time: "2026-11-21T10:15:00Z", Value: "1", Unit: "kWh"}
	cases := []struct {
		name   string
		change func(*meter.Measurement)
		code   meter.Code
	}{
		{"meter ID", func(m *meter.Measurement) { m.MeterID = "PTB/0001" }, meter.CodeMalformed},
		{"seq 0", func(m *meter.Measurement) { m.Seq = 0 }, meter.CodeMalformed},
		{"time", func(m *meter.Measurement) { m.Time = "yesterday" }, meter.CodeMalformed},
		{"value exponent", func(m *meter.Measurement) { m.Value = "1e3" }, meter.CodeMalformed},
		{"value empty", func(m *meter.Measurement) { m.Value = "" }, meter.CodeMalformed},
		{"unit", func(m *meter.Measurement) { m.Unit = "" }, meter.CodeMalformed},
		{"ciphertext too large", func(m *meter.Measurement) { m.Ciphertext = strings.Repeat("A", meter.MaxCiphertextBytes+4) }, meter.CodeTooLarge},
		{"ciphertext not base64", func(m *meter.Measurement) { m.Ciphertext = "****" }, meter.CodeMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := good
			tc.change(&m)
			_, err := m.Payload()
			wantCode(t, err, tc.code)
		})
	}
}

func TestCheckPlausible(t *testing.T) {
	cases := []struct {
		time string
		ok   bool
	}{
		{"2026-11-21T10:20:00Z", true},
		{"2026-11-21T10:30:00Z", true},                 // exactly MaxClockAhead ahead
		{"2026-11-21T10:30:00.000000001Z", false},      // just beyond
		{"2026-11-21T11:30:00+01:00", true},            // the same limit in another zone
		{"2026-11-21T11:30:01+01:00", false},           // one second beyond, in another zone
		{"2026-11-21T16:00:00.000000001+05:30", false}, // 10:30:00.000000001 UTC
		{"2026-11-21T04:15:00.123456789-06:00", true},  // 10:15 UTC, nanoseconds, negative offset
		{"2026-10-07T10:20:00Z", true},                 // exactly MaxAge old
		{"2026-10-07T10:19:59.999999999Z", false},      // just older
		{"2026-10-07T11:19:59.999999999+01:00", false}, // just older, in another zone
		{"2025-11-21T10:20:00Z", false},                // a year old
		{"2027-11-21T10:20:00Z", false},                // a year ahead
	}
	for _, tc := range cases {
		t.Run(tc.time, func(t *testing.T) {
			m := meter.Measurement{MeterID: "PTB-0001", Seq: 1, Time: tc.time, Value: "1", Unit: "kWh"}
			if _, err := m.Payload(); err != nil {
				t.Fatalf("fixture is not a valid measurement: %v", err)
			}
			err := m.CheckPlausible(txTime)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, err, meter.CodeImplausibleTime)
		})
	}
}

func TestParseTime(t *testing.T) {
	for _, s := range []string{"2026-11-21T10:15:00Z", "2026-11-21T10:15:00.5+01:00", "2000-01-01T00:00:00Z"} {
		if _, err := meter.ParseTime(s); err != nil {
			t.Errorf("%s refused: %v", s, err)
		}
	}
	for _, s := range []string{"", "2026-11-21", "2026-11-21T10:15:00", "2026-11-21 10:15:00Z", "1999-12-31T23:59:59Z", "2026-13-01T00:00:00Z"} {
		_, err := meter.ParseTime(s)
		wantCode(t, err, meter.CodeMalformed)
	}
	at, err := meter.ParseTime("2026-11-21T11:15:00+01:00")
	if err != nil || !at.Equal(time.Date(2026, 11, 21, 10, 15, 0, 0, time.UTC)) {
		t.Errorf("got %v, %v", at, err)
	}
}

func TestOpenOpenSSL(t *testing.T) {
	ids := map[string]string{"p256": "PTB-0001", "p384": "PTB-0002", "secp256k1": "PTB-0003"}
	for _, tc := range testCurves {
		t.Run(tc.name, func(t *testing.T) {
			sm := meter.SignedMeasurement{
				MeterID:   ids[tc.name],
				Payload:   readFile(t, filepath.Join(msmtDir, tc.name+".good.json")),
				Signature: readFile(t, filepath.Join(msmtDir, tc.name+".sig")),
			}
			m, err := sm.Open(publicKey(t, tc.name))
			if err != nil {
				t.Fatal(err)
			}
			if m.MeterID != ids[tc.name] || m.Seq != 1 || !m.MeasuredAt().Equal(time.Date(2026, 11, 21, 10, 15, 0, 0, time.UTC)) {
				t.Errorf("opened %+v", m)
			}
			if err := m.CheckPlausible(txTime); err != nil {
				t.Errorf("fixture time is not plausible at the test transaction time: %v", err)
			}
		})
	}
}

func TestSignOpen(t *testing.T) {
	for _, tc := range testCurves {
		t.Run(tc.name, func(t *testing.T) {
			key := privateKey(t, tc.name)
			m := meter.Measurement{MeterID: "PTB-0009", Seq: 7, Time: "2026-11-21T10:15:00Z", Value: "42.125", Unit: "kWh"}
			sm, err := meter.Sign(key, m)
			if err != nil {
				t.Fatal(err)
			}
			if sm.MeterID != m.MeterID {
				t.Errorf("signed for %q", sm.MeterID)
			}
			got, err := sm.Open(key.Public())
			if err != nil {
				t.Fatal(err)
			}
			if got != m {
				t.Errorf("opened %+v, want %+v", got, m)
			}
			_, err = sm.Open(publicKey(t, "other"))
			wantCode(t, err, meter.CodeBadSignature)

			mismatch := sm
			mismatch.MeterID = "PTB-0010"
			_, err = mismatch.Open(key.Public())
			wantCode(t, err, meter.CodeMeterMismatch)

			malformed := sm
			malformed.Payload = append(append([]byte(nil), sm.Payload...), 'x')
			_, err = malformed.Open(key.Public())
			wantCode(t, err, meter.CodeMalformed)
		})
	}
	_, err := meter.Sign(privateKey(t, "p256"), meter.Measurement{MeterID: "PTB-0001"})
	wantCode(t, err, meter.CodeMalformed)
}

func TestMarshalJSONRefusesNonDecimal(t *testing.T) {
	_, err := meter.Measurement{MeterID: "PTB-0001", Seq: 1, Time: "2026-11-21T10:15:00Z", Value: `1,"unit":"MWh"`, Unit: "kWh"}.MarshalJSON()
	wantCode(t, err, meter.CodeMalformed)
}
