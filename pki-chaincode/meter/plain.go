package meter

// plain says in one sentence, for people who do not read the chaincode,
// what each refusal code means: the explorer shows it beside a refusal,
// whose reason (the chaincode's message) may quote library errors.
var plain = map[Code]string{
	CodeMalformed:           "The request or reading could not be read: a field is missing, badly formed or not valid.",
	CodeTooLarge:            "A field, reading or batch is larger than the ledger accepts.",
	CodeUnsupportedKey:      "The key is of a kind the registry does not accept (only ECDSA keys on P-256, P-384 or secp256k1 are).",
	CodeInvalidKey:          "The key could not be read, or it is not a valid point of its curve.",
	CodeKeyInUse:            "The key is already registered for another meter.",
	CodeMeterExists:         "A meter with this ID is already registered.",
	CodeMeterNotFound:       "No meter with this ID is registered.",
	CodeMeterRevoked:        "The meter's key is revoked, so nothing it signs is accepted.",
	CodeNotOnHold:           "The meter cannot be reinstated: its key is not on hold.",
	CodeBadSignature:        "The signature does not match the reading: it was not signed with the meter's registered key, or the reading was changed after signing.",
	CodeMeterMismatch:       "The signed reading names another meter than the one it was delivered for.",
	CodeReplay:              "A reading with this sequence number was already accepted for the meter (a repeat or a replay).",
	CodeSeqOutOfRange:       "The sequence number jumps too far ahead of the meter's last accepted reading.",
	CodeImplausibleTime:     "The meter's clock time is too far from the time the transaction was made.",
	CodeClockSkew:           "The submitting client's clock is too far from the endorsing peer's clock.",
	CodeForbidden:           "The submitter's role does not allow this transaction.",
	CodeNotOwner:            "The meter belongs to another NMI, which alone may change it.",
	CodePreEnrolled:         "This meter ID is already pre-enrolled.",
	CodeIdentityMismatch:    "The meter's identity does not match the one pre-enrolled for it.",
	CodePreEnrolmentExpired: "The pre-enrolment has expired and no longer reserves this meter ID.",
	CodeNotMember:           "The submitting NMI is not a member of the consortium as the ledger records it.",
	CodeInternal:            "The ledger could not be read or written at endorsement; nothing was recorded.",
	CodeTypeExists:          "A meter type with this ID is already recorded.",
	CodeTypeNotFound:        "No meter type with this ID is recorded.",
	CodeVersionExists:       "This software version is already listed for the meter type.",
	CodeVersionNotFound:     "This software version is not listed for the meter type.",
	CodeVersionWithdrawn:    "This software version is already withdrawn.",
	CodeSoftwareMismatch:    "The software named differs from the software the ledger says the meter runs at that time.",
	CodeSoftwareNotApproved: "The software is not approved for the meter's type at that time (not yet approved, or withdrawn).",
}

// Plain is the plain-language sentence of a refusal code of the meter-PKI
// contract, "" for a code it does not define (the billing contract's are
// agreement.Plain).
func Plain(c Code) string { return plain[c] }
