// Package meter is what a meter certificate is, in code every part of the
// system shares: the chaincode verifies with it, the registry and the CLIs
// check requests with it before they cost a transaction, the explorer and
// the offline verifier read records with it, and a meter maker's firmware
// team can read it as the specification of what a meter signs.
//
//   - Keys (key.go): a meter's ECDSA public key on P-256 (P-384 and
//     secp256k1 accepted) in PEM or DER, its fingerprint, and ECDSA over
//     SHA-256 with DER signatures, byte-compatible with openssl.
//   - Measurements (measurement.go): the payload a meter signs (the exact
//     JSON bytes it sent), its strict parsing, the limits and the clock
//     plausibility window, Sign, and Open, which checks a delivery against
//     the meter it was submitted for.
//   - Records (record.go): the meter record (the certificate: ID, owner NMI,
//     key, status and RFC 5280 revocation), key versions, registrations with
//     their proof of possession, pre-enrolments, metadata rules.
//   - Refusals (errors.go): Error with a stable Code, the only form in which
//     a refusal crosses the chaincode boundary ("CODE: message"); Codes
//     lists them all.
//
// It imports nothing of Fabric: a program that checks a meter certificate
// offline needs only this package and the attestation verifier
// (network/pkg/proof).
package meter
