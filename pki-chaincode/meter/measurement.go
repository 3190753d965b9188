package meter

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"regexp"
	"strconv"
	"time"
)

// Limits on what a meter or data concentrator may submit.
const (
	MaxPayloadBytes    = 16 << 10 // a signed payload, ciphertext included
	MaxCiphertextBytes = 12 << 10 // base64 text of the optional FE ciphertext
	MaxBatch           = 1000     // measurements in one concentrator batch
	MaxValueLen        = 32
	MaxUnitLen         = 16
	// MaxSignatureBytes bounds a DER ECDSA signature: two integers of the
	// largest accepted curve (P-384, 48 bytes each) with their headers.
	MaxSignatureBytes = 2*48 + 8
)

// Plausibility window of the meter's clock against the transaction time. The
// meter's clock is evidence, never trusted alone: a reading from the future is
// refused, and so is one older than a concentrator could plausibly have held it.
const (
	MaxClockAhead = 10 * time.Minute
	MaxAge        = 45 * 24 * time.Hour
)

// Measurement is the payload a meter signs: ECDSA over SHA-256 of the exact
// JSON bytes, DER-encoded. The meter may order fields and space them as it
// likes; what is verified and kept are the bytes it signed.
//
//	{"meterId":"PTB-0001","seq":42,"time":"2026-11-21T10:15:00Z","value":1234.5,"unit":"kWh"}
type Measurement struct {
	MeterID string `json:"meterId"`
	// Seq strictly increases per meter; it is the replay guard.
	Seq uint64 `json:"seq"`
	// Time is the meter's clock, RFC 3339 with an offset.
	Time string `json:"time"`
	// Value is a decimal number without exponent, kept as its literal text.
	// An encrypted reading (with Ciphertext) carries none: its plaintext is
	// the customer's.
	Value string `json:"value"`
	Unit  string `json:"unit"`
	// Ciphertext is the optional functional-encryption ciphertext of the
	// reading (base64), for privacy-preserving billing (see package fe of
	// fe-billing for its envelope).
	Ciphertext string `json:"ciphertext,omitempty"`
	// SoftwareID is the identification of the legally relevant software
	// that made the reading (WELMEC 7.2 P2; OCMF's MF). Optional: when it
	// is present the ledger refuses the reading unless the meter ran that
	// software at the reading's time and it was approved for the meter's
	// type then. Meter makers should send it.
	SoftwareID string `json:"softwareId,omitempty"`
}

var (
	seqRE     = regexp.MustCompile(`^[1-9][0-9]{0,19}$`)
	decimalRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?$`)
	unitRE    = regexp.MustCompile(`^[A-Za-z0-9/_.%-]+$`)
	base64RE  = regexp.MustCompile(`^[A-Za-z0-9+/]*={0,2}$`)
)

// MarshalJSON writes Value as a JSON number, the form meters send, and
// leaves it out of an encrypted reading.
func (m Measurement) MarshalJSON() ([]byte, error) {
	var value json.RawMessage
	if m.Value != "" {
		if !decimalRE.MatchString(m.Value) {
			return nil, Errorf(CodeMalformed, "value %q is not a decimal number", m.Value)
		}
		value = json.RawMessage(m.Value)
	}
	type plain struct {
		MeterID    string          `json:"meterId"`
		Seq        uint64          `json:"seq"`
		Time       string          `json:"time"`
		Value      json.RawMessage `json:"value,omitempty"`
		Unit       string          `json:"unit"`
		Ciphertext string          `json:"ciphertext,omitempty"`
		SoftwareID string          `json:"softwareId,omitempty"`
	}
	return json.Marshal(plain{m.MeterID, m.Seq, m.Time, value, m.Unit, m.Ciphertext, m.SoftwareID})
}

// Payload validates m and returns the bytes a meter signs.
func (m Measurement) Payload() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// MeasuredAt returns the meter's timestamp.
func (m Measurement) MeasuredAt() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, m.Time)
	return t
}

// ParseMeasurement reads a signed payload strictly: one JSON object, no
// duplicate or unknown fields, every field valid. It never panics on any input.
// It reads the object once: the endorsing peers parse every item of a
// batch, and so does every index of the blocks.
func ParseMeasurement(payload []byte) (Measurement, error) {
	var m Measurement
	if len(payload) == 0 {
		return m, Errorf(CodeMalformed, "payload is empty")
	}
	if len(payload) > MaxPayloadBytes {
		return m, Errorf(CodeTooLarge, "payload is %d bytes, at most %d allowed", len(payload), MaxPayloadBytes)
	}
	fields, err := objectFields(payload)
	if err != nil {
		return m, err
	}
	// A field that is null counts as absent, as encoding/json reads it.
	present := func(name string) (json.RawMessage, bool) {
		raw, ok := fields[name]
		return raw, ok && string(raw) != "null"
	}
	str := func(name string, dst *string) (bool, error) {
		raw, ok := present(name)
		if !ok {
			return false, nil
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return true, Errorf(CodeMalformed, "payload: %s must be a string: %v", name, err)
		}
		return true, nil
	}
	hasID, err := str("meterId", &m.MeterID)
	if err != nil {
		return m, err
	}
	seqRaw, hasSeq := present("seq")
	hasTime, err := str("time", &m.Time)
	if err != nil {
		return m, err
	}
	value, hasValue := present("value")
	hasUnit, err := str("unit", &m.Unit)
	if err != nil {
		return m, err
	}
	hasCipher, err := str("ciphertext", &m.Ciphertext)
	if err != nil {
		return m, err
	}
	hasSoftware, err := str("softwareId", &m.SoftwareID)
	if err != nil {
		return m, err
	}
	if hasSoftware && m.SoftwareID == "" {
		return m, Errorf(CodeMalformed, "softwareId is present but empty")
	}
	switch {
	case !hasID:
		return m, Errorf(CodeMalformed, "payload has no meterId")
	case !hasSeq:
		return m, Errorf(CodeMalformed, "payload has no seq")
	case !hasTime:
		return m, Errorf(CodeMalformed, "payload has no time")
	case !hasValue && !hasCipher:
		return m, Errorf(CodeMalformed, "payload has no value (only an encrypted reading, with a ciphertext, may leave it out)")
	case !hasUnit:
		return m, Errorf(CodeMalformed, "payload has no unit")
	}
	if !seqRE.Match(seqRaw) {
		return m, Errorf(CodeMalformed, "seq %s is not a positive integer", truncate(string(seqRaw)))
	}
	seq, err := strconv.ParseUint(string(seqRaw), 10, 64)
	if err != nil {
		return m, Errorf(CodeMalformed, "seq %s is out of range", truncate(string(seqRaw)))
	}
	m.Seq = seq
	if hasValue {
		if m.Value = string(value); m.Value == "" {
			return m, Errorf(CodeMalformed, "value is empty")
		}
	}
	if hasCipher && m.Ciphertext == "" {
		return m, Errorf(CodeMalformed, "ciphertext is present but empty")
	}
	return m, m.validate()
}

func (m Measurement) validate() error {
	if err := ValidateMeterID(m.MeterID); err != nil {
		return err
	}
	if m.Seq == 0 {
		return Errorf(CodeMalformed, "seq must be at least 1")
	}
	if _, err := ParseTime(m.Time); err != nil {
		return err
	}
	if m.Value == "" && m.Ciphertext == "" {
		return Errorf(CodeMalformed, "a measurement needs a value, or a ciphertext when it is encrypted")
	}
	if m.Value != "" && (len(m.Value) > MaxValueLen || !decimalRE.MatchString(m.Value)) {
		return Errorf(CodeMalformed, "value %s is not a decimal number (digits, optional sign and fraction, no exponent, at most %d characters)", truncate(m.Value), MaxValueLen)
	}
	if m.Unit == "" || len(m.Unit) > MaxUnitLen || !unitRE.MatchString(m.Unit) {
		return Errorf(CodeMalformed, "unit %q is invalid: 1 to %d characters of letters, digits and / _ . %% -", truncate(m.Unit), MaxUnitLen)
	}
	if len(m.Ciphertext) > MaxCiphertextBytes {
		return Errorf(CodeTooLarge, "ciphertext is %d bytes, at most %d allowed", len(m.Ciphertext), MaxCiphertextBytes)
	}
	if !base64RE.MatchString(m.Ciphertext) || len(m.Ciphertext)%4 != 0 {
		return Errorf(CodeMalformed, "ciphertext is not standard base64")
	}
	if m.SoftwareID != "" {
		if len(m.SoftwareID) > MaxMetadataLen {
			return Errorf(CodeTooLarge, "softwareId is %d bytes, at most %d allowed", len(m.SoftwareID), MaxMetadataLen)
		}
		return CheckText("softwareId", m.SoftwareID)
	}
	return nil
}

// CheckPlausible refuses a meter time ahead of the transaction time by more
// than MaxClockAhead, or older than MaxAge.
func (m Measurement) CheckPlausible(txTime time.Time) error {
	return CheckMeterTime(m.Time, m.MeasuredAt(), txTime)
}

// CheckMeterTime refuses a time a meter stated (text, parsed as t) that
// lies ahead of the transaction time by more than MaxClockAhead, or
// before it by more than MaxAge.
func CheckMeterTime(text string, t, txTime time.Time) error {
	if t.After(txTime.Add(MaxClockAhead)) {
		return Errorf(CodeImplausibleTime, "meter time %s is %s ahead of the transaction time %s (at most %s allowed)",
			text, t.Sub(txTime).Round(time.Second), txTime.UTC().Format(time.RFC3339), MaxClockAhead)
	}
	if t.Before(txTime.Add(-MaxAge)) {
		return Errorf(CodeImplausibleTime, "meter time %s is older than %s before the transaction time %s",
			text, MaxAge, txTime.UTC().Format(time.RFC3339))
	}
	return nil
}

// ParseTime parses an RFC 3339 timestamp that carries an offset.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, Errorf(CodeMalformed, "time %q is not RFC 3339 (for example 2026-11-21T10:15:00Z)", truncate(s))
	}
	if t.Year() < 2000 || t.Year() > 9999 {
		return time.Time{}, Errorf(CodeMalformed, "time %q is out of range", truncate(s))
	}
	return t, nil
}

// objectFields reads the payload as exactly one JSON object whose keys are
// known and unique, and returns each field's raw value: two parsers must
// never read two different measurements from one signed payload.
func objectFields(payload []byte) (map[string]json.RawMessage, error) {
	return objectFieldsOf(payload, payloadFields, "payload")
}

// objectFieldsOf reads b as exactly one JSON object whose keys are among
// known and unique (what names it in errors), and returns each field's raw
// value.
func objectFieldsOf(b []byte, known map[string]bool, what string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, Errorf(CodeMalformed, "%s is not JSON: %v", what, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, Errorf(CodeMalformed, "%s must be a JSON object", what)
	}
	fields := make(map[string]json.RawMessage, len(known))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, Errorf(CodeMalformed, "%s is not JSON: %v", what, err)
		}
		key, _ := tok.(string)
		// encoding/json matches field names case-insensitively; a parser
		// that does not would read "meterid" as another field.
		if !known[key] {
			return nil, Errorf(CodeMalformed, "%s has unknown field %q (field names are case-sensitive)", what, truncate(key))
		}
		if _, seen := fields[key]; seen {
			return nil, Errorf(CodeMalformed, "%s repeats field %q", what, truncate(key))
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, Errorf(CodeMalformed, "%s is not JSON: %v", what, err)
		}
		fields[key] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, Errorf(CodeMalformed, "%s is not JSON: %v", what, err)
	}
	// Anything but the end of input, invalid JSON included, is trailing data.
	if _, err := dec.Token(); err != io.EOF {
		return nil, Errorf(CodeMalformed, "%s has data after its JSON object", what)
	}
	return fields, nil
}

// payloadFields are the exact field names of a signed payload.
var payloadFields = map[string]bool{"meterId": true, "seq": true, "time": true, "value": true, "unit": true, "ciphertext": true, "softwareId": true}

// SignedMeasurement is what a meter or concentrator delivers: the meter it
// speaks for, the exact payload bytes and the meter's DER signature over them
// (both base64 in JSON).
type SignedMeasurement struct {
	MeterID   string `json:"meterId"`
	Payload   []byte `json:"payload"`
	Signature []byte `json:"signature"`
}

// Sign builds a signed measurement with the meter's key.
func Sign(key *PrivateKey, m Measurement) (SignedMeasurement, error) {
	payload, err := m.Payload()
	if err != nil {
		return SignedMeasurement{}, err
	}
	sig, err := key.Sign(payload)
	if err != nil {
		return SignedMeasurement{}, err
	}
	return SignedMeasurement{MeterID: m.MeterID, Payload: payload, Signature: sig}, nil
}

// CheckForm checks all of a delivered measurement that needs neither the
// meter's key nor the ledger: the meter ID, the payload (parsed strictly),
// that the payload names the meter it was delivered for, and that the
// signature is one DER-encoded ECDSA signature of at most
// MaxSignatureBytes. It is the one rule of an item's form: the registry
// refuses what it refuses before the item shares a transaction with
// others' items, and the chaincode refuses such an item alone.
func (s SignedMeasurement) CheckForm() (Measurement, error) {
	if err := ValidateMeterID(s.MeterID); err != nil {
		return Measurement{}, err
	}
	m, err := ParseMeasurement(s.Payload)
	if err != nil {
		return m, err
	}
	if m.MeterID != s.MeterID {
		return m, Errorf(CodeMeterMismatch, "payload is signed for meter %q but was submitted for meter %q", truncate(m.MeterID), s.MeterID)
	}
	return m, checkSignatureForm(s.Signature)
}

// Open checks the form (CheckForm) and that the signature verifies against
// key. It does not judge replay, revocation or time; the ledger does.
func (s SignedMeasurement) Open(key *PublicKey) (Measurement, error) {
	m, err := s.CheckForm()
	if err != nil {
		return m, err
	}
	return m, key.Verify(s.Payload, s.Signature)
}

func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// SignedFromBase64 reads a signed measurement as SubmitMeasurement and
// VerifyMeasurement take it: the meter ID, the payload and the DER
// signature, both in standard base64.
func SignedFromBase64(meterID, payload, signature string) (SignedMeasurement, error) {
	if len(payload) > MaxPayloadBytes*4/3+4 {
		return SignedMeasurement{}, Errorf(CodeTooLarge, "payload exceeds %d bytes", MaxPayloadBytes)
	}
	p, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return SignedMeasurement{}, Errorf(CodeMalformed, "payload is not standard base64: %v", err)
	}
	s, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return SignedMeasurement{}, Errorf(CodeMalformed, "signature is not standard base64: %v", err)
	}
	return SignedMeasurement{MeterID: meterID, Payload: p, Signature: s}, nil
}

// ReadAccepted reads a payload the ledger accepted, which ParseMeasurement
// has checked strictly already on every endorsing peer, in one plain pass:
// for the indexes of the blocks, which read every accepted measurement
// again and need not check it again.
func ReadAccepted(payload []byte) (Measurement, error) {
	var raw struct {
		MeterID    string          `json:"meterId"`
		Seq        uint64          `json:"seq"`
		Time       string          `json:"time"`
		Value      json.RawMessage `json:"value"`
		Unit       string          `json:"unit"`
		Ciphertext string          `json:"ciphertext"`
		SoftwareID string          `json:"softwareId"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return Measurement{}, Errorf(CodeMalformed, "payload: %v", err)
	}
	return Measurement{MeterID: raw.MeterID, Seq: raw.Seq, Time: raw.Time, Value: string(raw.Value), Unit: raw.Unit,
		Ciphertext: raw.Ciphertext, SoftwareID: raw.SoftwareID}, nil
}
