#!/usr/bin/env bash
# Makes the test fixtures that several packages share (see README.md here).
# The files are committed, and the tests only read them; run this only to
# replace them.
#
#   testdata/generate.sh          keys/ and measurements/, with the openssl
#                                 command line (seconds, offline)
#   testdata/generate.sh ledger   blocks/ and attestations/, recorded on a
#                                 fresh test consortium (needs `make bin`;
#                                 a few minutes; ports shifted by 15000);
#                                 `blocks` or `attestations` for one of them
#
# Every run makes new keys, so fingerprints, signatures, blocks and bundles
# all change: the tests that pin what a fixture holds (chainLength in
# network/pkg/chain, the meter ID and dates of the bundles) change with them.
#
# The keys part is also the reference for meter makers: the commands below
# are exactly how a meter key is made, how its public key is exported for
# registration, how its fingerprint is computed and how a measurement is
# signed.
#
#   key:          openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out meter.key.pem
#   public key:   openssl pkey -in meter.key.pem -pubout -out meter.pub.pem
#   fingerprint:  openssl pkey -pubin -in meter.pub.pem -outform DER | openssl dgst -sha256 -r
#   payload:      the exact JSON bytes, for example
#                 {"meterId":"PTB-0001","seq":1,"time":"2026-11-21T10:15:00Z","value":1234.5,"unit":"kWh"}
#   signature:    openssl dgst -sha256 -sign meter.key.pem -out payload.sig payload.json   (DER, ECDSA over SHA-256)
#   check:        openssl dgst -sha256 -verify meter.pub.pem -signature payload.sig payload.json
#
# The payload times are fixed; the tests use 2026-11-21T10:20:00Z as the
# transaction time, so they do not depend on the clock.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

keys() {
cd "$here"
keys=keys
msmt=measurements
rm -rf "$keys" "$msmt"
mkdir -p "$keys" "$msmt"

pem_public() { # DER file -> "PUBLIC KEY" PEM on stdout
	echo "-----BEGIN PUBLIC KEY-----"
	openssl base64 -e -in "$1"
	echo "-----END PUBLIC KEY-----"
}

public() { # name: writes name.good.pem, name.der and name.sha256 from name.key.pem
	openssl pkey -in "$keys/$1.key.pem" -pubout -out "$keys/$1.good.pem"
	openssl pkey -pubin -in "$keys/$1.good.pem" -outform DER -out "$keys/$1.der"
	openssl dgst -sha256 -r "$keys/$1.der" | cut -d' ' -f1 >"$keys/$1.sha256"
}

# Good keys. P-256 and P-384 as PKCS#8 ("PRIVATE KEY", genpkey); secp256k1 as
# SEC 1 ("EC PRIVATE KEY", ecparam; -noout leaves out the EC PARAMETERS block).
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$keys/p256.key.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$keys/p384.key.pem"
openssl ecparam -name secp256k1 -genkey -noout -out "$keys/secp256k1.key.pem"
# A second P-256 key: the forger, and a second meter in the contract tests.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$keys/other.key.pem"
for k in p256 p384 secp256k1 other; do public "$k"; done
# The other private key form of each curve family: SEC 1 for P-256, PKCS#8 for secp256k1.
openssl ec -in "$keys/p256.key.pem" -out "$keys/p256.sec1.key.pem" 2>/dev/null
openssl pkey -in "$keys/secp256k1.key.pem" -out "$keys/secp256k1.pkcs8.key.pem"

# Bad keys. Each name.bad.pem has its expected refusal code in key_test.go.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null | openssl pkey -pubout -out "$keys/rsa2048.bad.pem"
openssl genpkey -algorithm ED25519 | openssl pkey -pubout -out "$keys/ed25519.bad.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-224 | openssl pkey -pubout -out "$keys/p224.bad.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:brainpoolP256r1 | openssl pkey -pubout -out "$keys/brainpoolP256r1.bad.pem"
# Point off the curve: flip the last byte of the Y coordinate (the last byte of
# the DER) and re-PEM it. openssl itself must refuse the result.
offcurve() { # name -> name-offcurve.bad.pem
	local hex
	hex=$(xxd -p "$keys/$1.der" | tr -d '\n')
	printf '%s%02x' "${hex:0:${#hex}-2}" $((0x${hex: -2} ^ 0xff)) | xxd -r -p >"$keys/tmp.der"
	pem_public "$keys/tmp.der" >"$keys/$1-offcurve.bad.pem"
	rm "$keys/tmp.der"
	if openssl pkey -pubin -in "$keys/$1-offcurve.bad.pem" -noout 2>/dev/null; then
		echo "openssl accepts $1-offcurve.bad.pem: the point is still on the curve" >&2
		exit 1
	fi
}
offcurve p256
offcurve secp256k1
# Truncated PEM: the END line is missing.
head -n -1 "$keys/p256.good.pem" >"$keys/truncated-pem.bad.pem"
# Truncated DER: a well-formed PEM whose DER lacks its last 10 bytes.
head -c -10 "$keys/p256.der" >"$keys/tmp.der"
pem_public "$keys/tmp.der" >"$keys/truncated-der.bad.pem"
rm "$keys/tmp.der"
# Wrong PEM block types: a certificate and a private key.
openssl req -x509 -new -key "$keys/p256.key.pem" -subj /CN=PTB-0001 -days 3650 -out "$keys/certificate.bad.pem"
cp "$keys/p256.key.pem" "$keys/private-key.bad.pem"
# Curve given by explicit parameters instead of its name.
openssl ec -in "$keys/p256.key.pem" -pubout -param_enc explicit -out "$keys/p256-explicit.bad.pem" 2>/dev/null
# A compressed secp256k1 point is accepted and stored uncompressed.
openssl ec -in "$keys/secp256k1.key.pem" -pubout -conv_form compressed -out "$keys/secp256k1-compressed.pem" 2>/dev/null
# Two public keys in one text.
cat "$keys/p256.good.pem" "$keys/other.good.pem" >"$keys/two-blocks.bad.pem"
printf 'this is not a key\n' >"$keys/garbage.bad.pem"

# Signed measurements, one meter per curve. printf, not echo: the signed bytes
# are exactly the file, without a trailing newline.
payload() { # meterId seq -> JSON on stdout
	printf '{"meterId":"%s","seq":%s,"time":"2026-11-21T10:15:00Z","value":1234.5,"unit":"kWh"}' "$1" "$2"
}
sign() { # key payload sig
	openssl dgst -sha256 -sign "$keys/$1.key.pem" -out "$msmt/$3" "$msmt/$2"
}
payload PTB-0001 1 >"$msmt/p256.good.json"
payload PTB-0002 1 >"$msmt/p384.good.json"
payload PTB-0003 1 >"$msmt/secp256k1.good.json"
for k in p256 p384 secp256k1; do
	sign "$k" "$k.good.json" "$k.sig"
	openssl dgst -sha256 -verify "$keys/$k.good.pem" -signature "$msmt/$k.sig" "$msmt/$k.good.json" >/dev/null
done
head -c -3 "$msmt/p256.sig" >"$msmt/p256-truncated.sig"
sign other p256.good.json p256-otherkey.sig

# More payloads that parse. Field order and spacing are the meter's choice.
printf '{"meterId":"PTB-0001","seq":2,"time":"2026-11-21T10:30:00Z","value":1235,"unit":"kWh","ciphertext":"AAECAwQFBgc="}' >"$msmt/ciphertext.good.json"
# An encrypted reading leaves the plaintext value out; a plain one may not.
printf '{"meterId":"PTB-0001","seq":4,"time":"2026-11-21T10:45:00Z","unit":"Wh","ciphertext":"AAECAwQFBgc="}' >"$msmt/encrypted.good.json"
printf '{"meterId":"PTB-0001","seq":4,"time":"2026-11-21T10:45:00Z","unit":"Wh"}' >"$msmt/no-value.bad.json"
printf '{\n  "unit": "kWh",\n  "value": 0.25,\n  "time": "2026-11-21T11:45:00.5+01:00",\n  "seq": 3,\n  "meterId": "PTB-0001"\n}\n' >"$msmt/reordered.good.json"
printf '{"meterId":"CMI-0001","seq":18446744073709551615,"time":"2026-11-21T10:15:00Z","value":-12.5,"unit":"kvarh"}' >"$msmt/max-seq.good.json"

# Payloads that must be refused. Each has its expected code in measurement_test.go.
good='"time":"2026-11-21T10:15:00Z","value":1234.5,"unit":"kWh"'
printf '{"meterId":"PTB-0001","seq":1,"seq":2,%s}' "$good" >"$msmt/duplicate-field.bad.json"
printf '{"meterId":"PTB-0001","meterid":"CMI-0001","seq":1,%s}' "$good" >"$msmt/duplicate-field-case.bad.json"
printf '{"meterid":"PTB-0001","seq":1,%s}' "$good" >"$msmt/field-case.bad.json"
printf '{"meterId":"PTB-0001","seq":1,%s,"tariff":"T1"}' "$good" >"$msmt/unknown-field.bad.json"
printf '{"meterId":"PTB-0001","seq":1,"time":"2026-11-21T10:15:00Z","value":1234.5}' >"$msmt/missing-field.bad.json"
printf '{"meterId":"PTB-0001","seq":1,"time":"2026-11-21T10:15:00Z","value":1234.5,"unit":null}' >"$msmt/null-field.bad.json"
printf '{"meterId":"PTB 0001","seq":1,%s}' "$good" >"$msmt/meter-id.bad.json"
printf '{"meterId":"PTB-0001","seq":0,%s}' "$good" >"$msmt/seq-zero.bad.json"
printf '{"meterId":"PTB-0001","seq":-1,%s}' "$good" >"$msmt/seq-negative.bad.json"
printf '{"meterId":"PTB-0001","seq":"1",%s}' "$good" >"$msmt/seq-string.bad.json"
printf '{"meterId":"PTB-0001","seq":1e3,%s}' "$good" >"$msmt/seq-exponent.bad.json"
printf '{"meterId":"PTB-0001","seq":18446744073709551616,%s}' "$good" >"$msmt/seq-overflow.bad.json"
printf '{"meterId":"PTB-0001","seq":1,"time":"2026-11-21T10:15:00Z","value":1.2345e3,"unit":"kWh"}' >"$msmt/value-exponent.bad.json"
printf '{"meterId":"PTB-0001","seq":1,"time":"2026-11-21T10:15:00Z","value":"1234.5","unit":"kWh"}' >"$msmt/value-string.bad.json"
printf '{"meterId":"PTB-0001","seq":1,"time":"2026-11-21T10:15:00Z","value":01234.5,"unit":"kWh"}' >"$msmt/value-leading-zero.bad.json"
printf '{"meterId":"PTB-0001","seq":1,"time":"2026-11-21T10:15:00","value":1234.5,"unit":"kWh"}' >"$msmt/time-no-offset.bad.json"
printf '{"meterId":"PTB-0001","seq":1,"time":"21.11.2026 10:15","value":1234.5,"unit":"kWh"}' >"$msmt/time-format.bad.json"
printf '{"meterId":"PTB-0001","seq":1,"time":"2026-11-21T10:15:00Z","value":1234.5,"unit":"kW h"}' >"$msmt/unit.bad.json"
printf '{"meterId":"PTB-0001","seq":1,%s,"ciphertext":"not base64!"}' "$good" >"$msmt/ciphertext.bad.json"
printf '{"meterId":"PTB-0001","seq":1,%s}{}' "$good" >"$msmt/trailing-data.bad.json"
printf '{"meterId":"PTB-0001","seq":1,%s}x' "$good" >"$msmt/trailing-garbage.bad.json"
printf '{"meterId":"PTB-0001","seq":1,%s}}' "$good" >"$msmt/trailing-brace.bad.json"
printf '[{"meterId":"PTB-0001","seq":1,%s}]' "$good" >"$msmt/array.bad.json"
printf '{"meterId":"PTB-0001","seq":1,%s' "$good" >"$msmt/truncated.bad.json"
: >"$msmt/empty.bad.json"
# Over the 16 KiB payload limit, and a ciphertext over its 12 KiB limit in a
# payload under it.
printf '{"meterId":"PTB-0001","seq":1,%s,"ciphertext":"%s"}' "$good" "$(head -c 17000 /dev/zero | tr '\0' A)" >"$msmt/oversized.bad.json"
printf '{"meterId":"PTB-0001","seq":1,%s,"ciphertext":"%s"}' "$good" "$(head -c 12292 /dev/zero | tr '\0' A)" >"$msmt/ciphertext-oversized.bad.json"

# The meter package's own PKCS#8 encoding (meter.PrivateKey.PEM) of the
# keys above, its golden files, must be readable by openssl and yield the
# same public key; the Go test then keeps the encoding from drifting.
(cd "$repo" && go test ./pki-chaincode/meter -run '^TestPrivateKeyPEMGolden$' -count=1 -args -update >/dev/null)
for k in p256 p384 secp256k1; do
	openssl pkey -in "$repo/pki-chaincode/meter/testdata/$k.pkcs8-go.pem" -pubout | cmp - "$keys/$k.good.pem"
done
echo "keys and measurements regenerated in $here"
}

# ledger records blocks/ or attestations/ (what, or both) on a fresh test
# consortium: blocks are the channel after the chaincode's lifecycle and
# the tests TestMeterLifecycle and TestKeyLevelPolicy; the bundles are made
# by TestAttestation after TestConsortiumMembership has changed the
# members and consenters, so that their configuration chain has blocks
# after block 0. The network is taken down and wiped afterwards.
ledger() {
	local what=$1
	cd "$repo"
	local run=.run-fixtures
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
	local e2e="go test -tags e2e -count=1 -p 1 -timeout 15m ./network/e2e/ -run"
	local steps=""
	if [[ $what != attestations ]]; then
		steps+="$e2e '^(TestMeterLifecycle|TestKeyLevelPolicy)\$'
		bin/consortium -run $run ledger -save $out/blocks
		"
	fi
	if [[ $what != blocks ]]; then
		steps+="$e2e '^TestConsortiumMembership\$'
		PKI_FIXTURES=$out $e2e '^TestAttestation\$'
		"
	fi
	bin/consortium -run "$run" -port-offset 15000 exec -- bash -euo pipefail -c "$steps"
	if [[ $what != attestations ]]; then
		rm -rf "$here/blocks"
		mv "$out/blocks" "$here/blocks"
	fi
	if [[ $what != blocks ]]; then
		rm -f "$here/attestations"/*.json "$here/attestations"/genesis.hash "$here/attestations"/meter.id
		mv "$out/attestations"/* "$here/attestations/"
	fi
	echo "$what recorded in $here"
}

case "${1:-keys}" in
keys) keys ;;
ledger) ledger all ;;
blocks | attestations) ledger "$1" ;;
*)
	echo "usage: testdata/generate.sh [keys | ledger | blocks | attestations]" >&2
	exit 2
	;;
esac
