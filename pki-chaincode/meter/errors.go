package meter

import (
	"errors"
	"fmt"
	"strings"
)

// Code is a stable, machine-readable reason for a refusal. Codes travel inside
// chaincode error messages as "CODE: message", so every client (registry API,
// CLI, explorer) can tell refusals apart without parsing prose.
type Code string

// The refusal codes of the meter-PKI contract; the billing contract uses
// those that mean the same and adds its own (agreement.Codes). Their spelling is part of the public interface: never
// rename one, only add.
const (
	CodeMalformed           Code = "MALFORMED"             // request cannot be parsed or a field is invalid
	CodeTooLarge            Code = "TOO_LARGE"             // a field, payload or batch exceeds its limit
	CodeUnsupportedKey      Code = "UNSUPPORTED_KEY"       // key is not ECDSA on P-256, P-384 or secp256k1
	CodeInvalidKey          Code = "INVALID_KEY"           // key cannot be parsed or its point is not on the curve
	CodeKeyInUse            Code = "KEY_IN_USE"            // the key is already bound to a meter
	CodeMeterExists         Code = "METER_EXISTS"          // meter ID already registered
	CodeMeterNotFound       Code = "METER_NOT_FOUND"       // meter ID not registered
	CodeMeterRevoked        Code = "METER_REVOKED"         // meter's key is revoked
	CodeNotOnHold           Code = "NOT_ON_HOLD"           // reinstatement asked for a meter that is not on certificateHold
	CodeBadSignature        Code = "BAD_SIGNATURE"         // signature does not verify against the meter's key
	CodeMeterMismatch       Code = "METER_MISMATCH"        // payload names another meter than the one submitted for
	CodeReplay              Code = "REPLAY"                // sequence number accepted before, or too far below the highest accepted one
	CodeSeqOutOfRange       Code = "SEQ_OUT_OF_RANGE"      // sequence number too far above the highest accepted one
	CodeImplausibleTime     Code = "IMPLAUSIBLE_TIME"      // meter time too far from the transaction time
	CodeClockSkew           Code = "CLOCK_SKEW"            // the proposal's timestamp is too far from the endorsing peer's clock
	CodeForbidden           Code = "FORBIDDEN"             // caller's role may not perform the transaction
	CodeNotOwner            Code = "NOT_OWNER"             // meter belongs to another NMI
	CodePreEnrolled         Code = "PRE_ENROLLED"          // meter ID already pre-enrolled
	CodeIdentityMismatch    Code = "IDENTITY_MISMATCH"     // presented identity does not hash to the pre-enrolled value
	CodePreEnrolmentExpired Code = "PRE_ENROLMENT_EXPIRED" // the pre-enrolment expired and reserves the meter ID no more
	CodeNotMember           Code = "NOT_MEMBER"            // the caller's NMI is not a member of the consortium (as recorded on the ledger)
	CodeInternal            Code = "INTERNAL"              // ledger access failed; nothing was written
	CodeTypeExists          Code = "TYPE_EXISTS"           // meter type ID already recorded
	CodeTypeNotFound        Code = "TYPE_NOT_FOUND"        // meter type ID not recorded
	CodeVersionExists       Code = "VERSION_EXISTS"        // the software version is listed for the type already
	CodeVersionNotFound     Code = "VERSION_NOT_FOUND"     // the software version is not listed for the type
	CodeVersionWithdrawn    Code = "VERSION_WITHDRAWN"     // the software version is withdrawn already
	CodeSoftwareMismatch    Code = "SOFTWARE_MISMATCH"     // names other software than the meter runs (at the reading's or statement's time)
	CodeSoftwareNotApproved Code = "SOFTWARE_NOT_APPROVED" // the software is not approved for the meter's type at that time

)

// Error is a refusal with a stable code and a message a person can act on.
type Error struct {
	Code    Code
	Message string
}

// Error renders the refusal as "CODE: message", the form that crosses the
// chaincode boundary.
func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Is makes errors.Is(err, &Error{Code: c}) match any refusal with code c.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

// Errorf builds a refusal with the given code.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of the first refusal in err's chain, or "" if there
// is none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// ParseError recovers a refusal of the meter-PKI contract from a message that
// crossed the chaincode boundary, where it may have been wrapped by Fabric
// ("chaincode response 500, CODE: message"). It reports false when the
// message carries none of Codes.
func ParseError(msg string) (*Error, bool) { return ParseErrorIn(msg, Codes) }

// ParseErrorIn is ParseError over another list of codes: a client of both
// contracts passes the billing contract's codes beside these.
func ParseErrorIn(msg string, codes []Code) (*Error, bool) {
	// The first code in the message is the refusal's; a later one is part of
	// its text (a quoted PEM type, say).
	var found *Error
	at := len(msg)
	for _, code := range codes {
		prefix := string(code) + ": "
		for from := 0; from < at; {
			i := strings.Index(msg[from:], prefix)
			if i < 0 {
				break
			}
			i += from
			if i < at && (i == 0 || !isCodeChar(msg[i-1])) {
				found, at = &Error{Code: code, Message: msg[i+len(prefix):]}, i
				break
			}
			from = i + 1
		}
	}
	return found, found != nil
}

func isCodeChar(c byte) bool { return c == '_' || (c >= 'A' && c <= 'Z') }

// Codes lists every refusal code of the meter-PKI contract, in the order
// they are declared. Clients (the registry's problem mapping, its OpenAPI
// document) check against it that they know every code. The billing
// contract's codes are its own (agreement.Codes).
var Codes = []Code{
	CodeMalformed, CodeTooLarge, CodeUnsupportedKey, CodeInvalidKey, CodeKeyInUse,
	CodeMeterExists, CodeMeterNotFound, CodeMeterRevoked, CodeNotOnHold, CodeBadSignature,
	CodeMeterMismatch, CodeReplay, CodeSeqOutOfRange, CodeImplausibleTime, CodeClockSkew, CodeForbidden, CodeNotOwner,
	CodePreEnrolled, CodeIdentityMismatch, CodePreEnrolmentExpired, CodeNotMember, CodeInternal,
	CodeTypeExists, CodeTypeNotFound, CodeVersionExists, CodeVersionNotFound, CodeVersionWithdrawn,
	CodeSoftwareMismatch, CodeSoftwareNotApproved,
}
