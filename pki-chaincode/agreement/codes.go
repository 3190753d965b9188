package agreement

import "github.com/inter-nmi/pki/pki-chaincode/meter"

// The billing contract's own refusal codes. Its other refusals (a malformed
// request, a signature that does not verify, a forbidden role) carry the
// meter-PKI contract's codes, since they mean the same. The spelling is part
// of the public interface: never rename one, only add.
const (
	CodePeriodExists    meter.Code = "PERIOD_EXISTS"    // the meter's billing period is bound already
	CodePeriodNotFound  meter.Code = "PERIOD_NOT_FOUND" // the meter's billing period is not bound
	CodePeriodMismatch  meter.Code = "PERIOD_MISMATCH"  // a statement names another period than the one submitted for
	CodeAgreementExists meter.Code = "AGREEMENT_EXISTS" // the period's tariff is agreed already
	CodeNoAgreement     meter.Code = "NO_AGREEMENT"     // the period has no agreed tariff yet
	CodeTariffMismatch  meter.Code = "TARIFF_MISMATCH"  // a statement names another tariff than the agreed one
	CodeKeyIssued       meter.Code = "KEY_ISSUED"       // the period's functional key is recorded as issued already
	CodeBillExists      meter.Code = "BILL_EXISTS"      // the period's bill is recorded already
	CodeSlotsMismatch   meter.Code = "SLOTS_MISMATCH"   // a bill counts other slots than the period has
)

// Codes lists the billing contract's own refusal codes, in the order they
// are declared; a client of both contracts knows meter.Codes and these.
var Codes = []meter.Code{
	CodePeriodExists, CodePeriodNotFound, CodePeriodMismatch, CodeAgreementExists, CodeNoAgreement,
	CodeTariffMismatch, CodeKeyIssued, CodeBillExists, CodeSlotsMismatch,
}
