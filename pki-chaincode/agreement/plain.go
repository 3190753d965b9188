package agreement

import "github.com/inter-nmi/pki/pki-chaincode/meter"

// plain says in one sentence what each of the billing contract's own
// refusal codes means, as meter.Plain does for the meter-PKI contract's.
var plain = map[meter.Code]string{
	CodePeriodExists:    "The meter's billing period is already bound.",
	CodePeriodNotFound:  "The meter's billing period is not bound.",
	CodePeriodMismatch:  "A statement names another billing period than the one it was submitted for.",
	CodeAgreementExists: "The tariff of this billing period is already agreed.",
	CodeNoAgreement:     "The billing period has no agreed tariff yet.",
	CodeTariffMismatch:  "A statement names another tariff than the agreed one.",
	CodeKeyIssued:       "The functional key of this billing period is already recorded as issued.",
	CodeBillExists:      "The bill of this billing period is already recorded.",
	CodeSlotsMismatch:   "The bill counts other time slots than the billing period has.",
}

// Plain is the plain-language sentence of a refusal the billing contract
// answers with: its own codes' here, the codes it shares with the
// meter-PKI contract meter.Plain's; "" for a code neither defines.
func Plain(c meter.Code) string {
	if s, ok := plain[c]; ok {
		return s
	}
	return meter.Plain(c)
}
