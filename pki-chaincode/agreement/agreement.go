// Package agreement defines what the ledger records of a billing period —
// never a key, never a reading: the binding of the customer's functional
// public key to a meter and period, the tariff both parties agreed to, the
// fact that a functional key was issued, and the bill. Each record is a
// statement signed by the party it speaks for (ECDSA over SHA-256, the same
// keys and format as meters use), so the chaincode accepts it from any
// client of the consortium and checks who stands behind it.
package agreement

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// Statement types.
const (
	TypePeriod = "fePeriod"
	TypeTariff = "feTariff"
	TypeKey    = "feKeyIssued"
	TypeBill   = "feBill"
)

// PeriodStatement binds the customer's functional public key (by its hash)
// to a meter and a billing period. The customer signs it.
type PeriodStatement struct {
	Type       string `json:"type"`
	MeterID    string `json:"meterId"`
	Period     string `json:"period"`
	Start      string `json:"start"`    // RFC 3339
	Interval   string `json:"interval"` // Go duration, e.g. 15m0s
	Slots      int    `json:"slots"`
	Group      int    `json:"group"`
	MaxReading uint64 `json:"maxReading"`
	MaxWeight  uint64 `json:"maxWeight"`
	// PublicKeySHA256 is fe.PublicKey.Hash(): the key the meter encrypts with.
	PublicKeySHA256 string `json:"publicKeySha256"`
	// CustomerKeySHA256 is the fingerprint of the customer's ECDSA key
	// that signs it: the meter's consent names whom it consents to, so no
	// one who sees the request can bind the period with a key of theirs.
	CustomerKeySHA256 string `json:"customerKeySha256"`
}

// TariffStatement is the agreement on a tariff (by its hash) between the
// customer and the utility, each named by the fingerprint of its key.
// Customer and utility both sign it: no one who sees the request can put a
// key of theirs in the utility's place.
type TariffStatement struct {
	Type              string `json:"type"`
	MeterID           string `json:"meterId"`
	Period            string `json:"period"`
	TariffSHA256      string `json:"tariffSha256"`
	CustomerKeySHA256 string `json:"customerKeySha256"`
	UtilityKeySHA256  string `json:"utilityKeySha256"`
}

// KeyStatement records that the customer issued the functional key for the
// agreed tariff to the utility. The customer signs it.
type KeyStatement struct {
	Type              string `json:"type"`
	MeterID           string `json:"meterId"`
	Period            string `json:"period"`
	TariffSHA256      string `json:"tariffSha256"`
	CustomerKeySHA256 string `json:"customerKeySha256"`
	UtilityKeySHA256  string `json:"utilityKeySha256"`
}

// BillStatement is the utility's bill to the customer for the period: the
// amount (in the tariff's units, milli-cents), computed over Slots
// readings. The utility signs it.
type BillStatement struct {
	Type              string `json:"type"`
	MeterID           string `json:"meterId"`
	Period            string `json:"period"`
	TariffSHA256      string `json:"tariffSha256"`
	CustomerKeySHA256 string `json:"customerKeySha256"`
	UtilityKeySHA256  string `json:"utilityKeySha256"`
	Amount            uint64 `json:"amount"`
	Slots             int    `json:"slots"`
}

// Bytes is the canonical encoding a party signs: the statement's JSON with
// fields in declaration order.
func Bytes(statement any) []byte {
	b, _ := json.Marshal(statement)
	return b
}

// Sign signs a statement with a party's key and returns the base64 DER
// signature.
func Sign(key *meter.PrivateKey, statement any) (string, error) {
	sig, err := key.Sign(Bytes(statement))
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Verify checks a party's base64 signature over a statement.
func Verify(pub *meter.PublicKey, statement any, signature string) error {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return meter.Errorf(meter.CodeMalformed, "signature is not standard base64")
	}
	return pub.Verify(Bytes(statement), sig)
}

var (
	periodRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,31}$`)
	hashRE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Validate checks a period statement's fields.
func (s PeriodStatement) Validate() error {
	if err := meter.ValidateMeterID(s.MeterID); err != nil {
		return err
	}
	if err := ValidatePeriod(s.Period); err != nil {
		return err
	}
	if _, err := meter.ParseTime(s.Start); err != nil {
		return err
	}
	if d, err := time.ParseDuration(s.Interval); err != nil || d < time.Minute {
		return meter.Errorf(meter.CodeMalformed, "interval %q is not a duration of a minute or more", s.Interval)
	}
	switch {
	case s.Type != TypePeriod:
		return meter.Errorf(meter.CodeMalformed, "statement type %q, want %q", s.Type, TypePeriod)
	case s.Slots < 1 || s.Slots > 31*96:
		return meter.Errorf(meter.CodeMalformed, "slots %d out of range 1..%d", s.Slots, 31*96)
	case s.Group != 2048 && s.Group != 3072:
		return meter.Errorf(meter.CodeMalformed, "group %d: 2048 or 3072 bits", s.Group)
	case s.MaxReading < 1 || s.MaxWeight < 1:
		return meter.Errorf(meter.CodeMalformed, "maxReading and maxWeight must be positive")
	case !hashRE.MatchString(s.PublicKeySHA256):
		return meter.Errorf(meter.CodeMalformed, "publicKeySha256 must be 64 lowercase hex characters")
	}
	return ValidateHash("customerKeySha256", s.CustomerKeySHA256)
}

// ValidatePeriod accepts 1 to 32 characters of letters, digits and . _ : -.
func ValidatePeriod(id string) error {
	if !periodRE.MatchString(id) {
		return meter.Errorf(meter.CodeMalformed, "period %q must be 1 to 32 letters, digits and . _ : -", id)
	}
	return nil
}

// ValidateHash accepts a lowercase hex SHA-256.
func ValidateHash(field, h string) error {
	if !hashRE.MatchString(h) {
		return meter.Errorf(meter.CodeMalformed, "%s must be 64 lowercase hex characters", field)
	}
	return nil
}

// Record is everything the ledger holds of one meter's billing period.
type Record struct {
	Period PeriodStatement `json:"period"`
	// CustomerKey is the customer's public key (PEM), bound with the period.
	CustomerKey       string `json:"customerKey"`
	CustomerSignature string `json:"customerSignature"`
	PeriodTx          string `json:"periodTx"`

	Tariff *TariffRecord `json:"tariff,omitempty" metadata:",optional"`
	Key    *KeyRecord    `json:"key,omitempty" metadata:",optional"`
	Bill   *BillRecord   `json:"bill,omitempty" metadata:",optional"`
}

// TariffRecord is the agreed tariff.
type TariffRecord struct {
	TariffSHA256      string `json:"tariffSha256"`
	UtilityKey        string `json:"utilityKey"`
	CustomerSignature string `json:"customerSignature"`
	UtilitySignature  string `json:"utilitySignature"`
	TxID              string `json:"txId"`
	At                string `json:"at"`
}

// KeyRecord records that the functional key was issued.
type KeyRecord struct {
	TariffSHA256      string `json:"tariffSha256"`
	CustomerSignature string `json:"customerSignature"`
	TxID              string `json:"txId"`
	At                string `json:"at"`
}

// BillRecord is the utility's bill.
type BillRecord struct {
	Amount           uint64 `json:"amount"`
	TariffSHA256     string `json:"tariffSha256"`
	Slots            int    `json:"slots"`
	UtilitySignature string `json:"utilitySignature"`
	TxID             string `json:"txId"`
	At               string `json:"at"`
}

// Key is the world-state key of a meter's period record.
func Key(meterID, period string) string { return fmt.Sprintf("fe/%s/%s", meterID, period) }
