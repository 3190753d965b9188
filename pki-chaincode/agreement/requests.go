package agreement

import (
	"encoding/base64"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// Contract is the name of the billing contract in the chaincode: its
// transactions are invoked as "billing:<transaction>".
const Contract = "billing"

// The requests are the billing contract's arguments and the registry API's
// billing bodies alike: the registry checks a body with its Check before it
// costs a transaction and passes it on as it came. Check applies every rule
// that needs no ledger state; the transaction applies the rest.

// PeriodRequest binds a customer's functional public key to a meter and
// period: BindPeriod's argument.
type PeriodRequest struct {
	Statement PeriodStatement `json:"statement"`
	// CustomerKey is the customer's ECDSA public key (PEM).
	CustomerKey       string `json:"customerKey"`
	CustomerSignature string `json:"customerSignature"`
	// MeterSignature is the meter's own signature over the statement, with
	// its registered key: only whoever holds the meter binds its periods,
	// so no one can take another customer's period first.
	MeterSignature string `json:"meterSignature"`
}

// Check validates the statement, the customer's key and signature and the
// form of the meter's signature (its key is on the ledger), and returns the
// customer's key.
func (r PeriodRequest) Check() (*meter.PublicKey, error) {
	if err := r.Statement.Validate(); err != nil {
		return nil, err
	}
	customer, err := meter.ParsePublicKeyPEM(r.CustomerKey)
	if err != nil {
		return nil, err
	}
	if err := BindsKey("customerKeySha256", r.Statement.CustomerKeySHA256, customer, "customerKey"); err != nil {
		return nil, err
	}
	if err := VerifyField(customer, r.Statement, "customerSignature", r.CustomerSignature, "customerKey"); err != nil {
		return nil, err
	}
	if err := checkSignature("meterSignature", r.MeterSignature); err != nil {
		return nil, err
	}
	return customer, nil
}

// TariffRequest is AgreeTariff's argument: the tariff both parties signed.
type TariffRequest struct {
	Statement TariffStatement `json:"statement"`
	// UtilityKey is the utility's ECDSA public key (PEM).
	UtilityKey        string `json:"utilityKey"`
	CustomerSignature string `json:"customerSignature"`
	UtilitySignature  string `json:"utilitySignature"`
}

// Check validates the statement for the meter and period, the utility's key
// and signature, and the form of the customer's signature (its key is on the
// ledger), and returns the utility's key.
func (r TariffRequest) Check(meterID, period string) (*meter.PublicKey, error) {
	st := r.Statement
	if err := checkStatement(st.Type, TypeTariff, st.MeterID, st.Period, st.TariffSHA256, meterID, period); err != nil {
		return nil, err
	}
	if err := checkSignature("customerSignature", r.CustomerSignature); err != nil {
		return nil, err
	}
	if err := ValidateHash("customerKeySha256", st.CustomerKeySHA256); err != nil {
		return nil, err
	}
	utility, err := meter.ParsePublicKeyPEM(r.UtilityKey)
	if err != nil {
		return nil, err
	}
	if err := BindsKey("utilityKeySha256", st.UtilityKeySHA256, utility, "utilityKey"); err != nil {
		return nil, err
	}
	if err := VerifyField(utility, st, "utilitySignature", r.UtilitySignature, "utilityKey"); err != nil {
		return nil, err
	}
	return utility, nil
}

// KeyRequest is RecordKeyIssued's argument.
type KeyRequest struct {
	Statement         KeyStatement `json:"statement"`
	CustomerSignature string       `json:"customerSignature"`
}

// Check validates the statement for the meter and period and the form of the
// customer's signature.
func (r KeyRequest) Check(meterID, period string) error {
	st := r.Statement
	if err := checkStatement(st.Type, TypeKey, st.MeterID, st.Period, st.TariffSHA256, meterID, period); err != nil {
		return err
	}
	if err := checkParties(st.CustomerKeySHA256, st.UtilityKeySHA256); err != nil {
		return err
	}
	return checkSignature("customerSignature", r.CustomerSignature)
}

// BillRequest is RecordBill's argument.
type BillRequest struct {
	Statement        BillStatement `json:"statement"`
	UtilitySignature string        `json:"utilitySignature"`
}

// Check validates the statement for the meter and period and the form of the
// utility's signature.
func (r BillRequest) Check(meterID, period string) error {
	st := r.Statement
	if err := checkStatement(st.Type, TypeBill, st.MeterID, st.Period, st.TariffSHA256, meterID, period); err != nil {
		return err
	}
	if st.Slots < 1 {
		return malformed("the bill counts %d slots", st.Slots)
	}
	if err := checkParties(st.CustomerKeySHA256, st.UtilityKeySHA256); err != nil {
		return err
	}
	return checkSignature("utilitySignature", r.UtilitySignature)
}

// checkStatement checks the meter and period a statement was submitted for,
// and that the statement is of the expected type, speaks of them, and names
// a tariff hash.
func checkStatement(typ, wantType, stMeter, stPeriod, tariffHash, meterID, period string) error {
	if err := ValidateIDs(meterID, period); err != nil {
		return err
	}
	switch {
	case typ != wantType:
		return malformed("statement type %q, want %q", typ, wantType)
	case stMeter != meterID:
		return meter.Errorf(meter.CodeMeterMismatch, "the statement names meter %q but was submitted for meter %q", stMeter, meterID)
	case stPeriod != period:
		return meter.Errorf(CodePeriodMismatch, "the statement names period %q but was submitted for period %q", stPeriod, period)
	}
	return ValidateHash("tariffSha256", tariffHash)
}

// ValidateIDs checks a meter ID and a billing period name.
func ValidateIDs(meterID, period string) error {
	if err := meter.ValidateMeterID(meterID); err != nil {
		return err
	}
	return ValidatePeriod(period)
}

// checkParties checks the form of the parties' key fingerprints a
// statement names.
func checkParties(customer, utility string) error {
	if err := ValidateHash("customerKeySha256", customer); err != nil {
		return err
	}
	return ValidateHash("utilityKeySha256", utility)
}

// BindsKey checks that a statement's fingerprint field names key.
func BindsKey(field, fingerprint string, key *meter.PublicKey, against string) error {
	if err := ValidateHash(field, fingerprint); err != nil {
		return err
	}
	if fingerprint != key.Fingerprint() {
		return meter.Errorf(meter.CodeBadSignature, "%s does not name %s: the statement binds another key", field, against)
	}
	return nil
}

// checkSignature refuses a signature that is not even a candidate: empty or
// not standard base64.
func checkSignature(field, signature string) error {
	if _, err := base64.StdEncoding.DecodeString(signature); err != nil || signature == "" {
		return malformed("%s must be a DER ECDSA signature in standard base64", field)
	}
	return nil
}

// VerifyField checks a party's signature over a statement; field names the
// signature and against the key, for a refusal a person can act on.
func VerifyField(key *meter.PublicKey, statement any, field, signature, against string) error {
	if err := checkSignature(field, signature); err != nil {
		return err
	}
	if Verify(key, statement, signature) != nil {
		return meter.Errorf(meter.CodeBadSignature, "%s does not verify against %s", field, against)
	}
	return nil
}

func malformed(format string, args ...any) error {
	return meter.Errorf(meter.CodeMalformed, format, args...)
}
