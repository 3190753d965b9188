package contract_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/stubtest"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

var curveFixtures = []struct {
	key, meterID string
	curve        meter.Curve
}{
	{"p256", "PTB-0001", meter.P256},
	{"p384", "PTB-0002", meter.P384},
	{"secp256k1", "PTB-0003", meter.Secp256k1},
}

func TestRegisterMeterEachCurve(t *testing.T) {
	for _, tc := range curveFixtures {
		t.Run(tc.key, func(t *testing.T) {
			w := newWorld(t)
			req := mustJSON(t, registration(tc.meterID, pubPEM(t, tc.key)))
			m, stub := ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
				return w.cc.RegisterMeter(ctx, req)
			})
			fp := strings.TrimSpace(string(readFile(t, filepath.Join(keysDir, tc.key+".sha256"))))
			stamp := txTime.Format(time.RFC3339Nano)
			want := meter.Meter{ID: tc.meterID, NMI: "PTBMSP", PublicKey: pubPEM(t, tc.key), Curve: tc.curve,
				Fingerprint: fp, KeyVersion: 1, Status: meter.StatusActive, Metadata: metadata(),
				RegisteredTx: stub.GetTxID(), RegisteredAt: stamp, UpdatedTx: stub.GetTxID(), UpdatedAt: stamp}
			if mustJSON(t, m) != mustJSON(t, want) {
				t.Fatalf("registered\n%s\nwant\n%s", mustJSON(t, m), mustJSON(t, want))
			}
			got := readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
				return w.cc.GetMeter(ctx, tc.meterID)
			})
			if mustJSON(t, got) != mustJSON(t, want) {
				t.Fatalf("GetMeter\n%s\nwant\n%s", mustJSON(t, got), mustJSON(t, want))
			}
			if string(w.state("fp/"+fp)) != `"`+tc.meterID+`"` {
				t.Errorf("fingerprint binding %q", w.state("fp/"+fp))
			}
			for _, k := range []string{"keyver/" + tc.meterID + "/000001", "ix/nmi/PTBMSP/active/" + tc.meterID, "ix/status/active/" + tc.meterID} {
				if w.state(k) == nil {
					t.Errorf("%s not written", k)
				}
			}
			e := event[wire.Enrolment](t, stub, wire.EventMeterRegistered)
			if e.NMI != "PTBMSP" || len(e.MeterIDs) != 1 || e.MeterIDs[0] != tc.meterID {
				t.Errorf("event %+v", e)
			}
		})
	}
}

// The owning NMI is the submitter's MSP; a request cannot name one.
func TestRegisterOwnerIsTheSubmittersMSP(t *testing.T) {
	w := newWorld(t)
	m := w.register(w.cmi, "CMI-0001", pubPEM(t, "p256"))
	if m.NMI != "CMIMSP" {
		t.Fatalf("owner %s", m.NMI)
	}
	var req map[string]any
	if err := json.Unmarshal([]byte(mustJSON(t, registration("PTB-0001", pubPEM(t, "p384")))), &req); err != nil {
		t.Fatal(err)
	}
	req["nmi"] = "CMIMSP"
	withNMI := mustJSON(t, req)
	refused(w, w.ptb, meter.CodeMalformed, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.RegisterMeter(ctx, withNMI)
	})
}

// A registration repeated by the same NMI with the same key and metadata
// (a client that lost the first answer) is answered with the record and
// writes nothing; anything else about an existing meter is a conflict.
func TestRegisterMeterRepeated(t *testing.T) {
	w := newWorld(t)
	first := w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	same := mustJSON(t, registration("PTB-0001", pubPEM(t, "p256")))
	again := readOnly(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.RegisterMeter(ctx, same)
	})
	if !reflect.DeepEqual(again, first) || again.RegisteredTx != first.RegisteredTx {
		t.Fatalf("repeated registration answered %+v, first %+v", again, first)
	}
	bulk := readOnly(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*wire.Enrolment, error) {
		return w.cc.RegisterMeters(ctx, "["+same+"]")
	})
	if len(bulk.MeterIDs) != 0 || len(bulk.Existing) != 1 || bulk.Existing[0] != "PTB-0001" {
		t.Fatalf("repeated bulk registration: %+v", bulk)
	}
	otherMetadata := registration("PTB-0001", pubPEM(t, "p256"))
	otherMetadata.SerialNumber = "SN-OTHER"
	for name, tc := range map[string]struct {
		who *stubtest.Identity
		req string
	}{
		"by another NMI":     {w.cmi, mustJSON(t, registrationFor("CMIMSP", "PTB-0001", pubPEM(t, "p256")))},
		"with another key":   {w.ptb, mustJSON(t, registration("PTB-0001", pubPEM(t, "p384")))},
		"with other details": {w.ptb, mustJSON(t, otherMetadata)},
	} {
		t.Run(name, func(t *testing.T) {
			err := refused(w.in(t), tc.who, meter.CodeMeterExists, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
				return w.cc.RegisterMeter(ctx, tc.req)
			})
			if !strings.Contains(err.Error(), "already registered by PTBMSP") {
				t.Errorf("the refusal does not name the owner: %v", err)
			}
		})
	}
}

func TestRegisterMeterRefused(t *testing.T) {
	w := newWorld(t)
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	bad := func(name string) string { return string(readFile(t, filepath.Join(keysDir, name))) }
	withIdentity := registration("PTB-0009", pubPEM(t, "p384"))
	withIdentity.Identity = "urn:meter:PTB-0009"
	noChecksum := registration("PTB-0009", pubPEM(t, "p384"))
	noChecksum.SoftwareChecksum = ""
	cases := []struct {
		name    string
		who     *stubtest.Identity
		request string
		code    meter.Code
	}{
		{"RSA key", w.ptb, mustJSON(t, registration("PTB-0009", bad("rsa2048.bad.pem"))), meter.CodeUnsupportedKey},
		{"brainpool key", w.ptb, mustJSON(t, registration("PTB-0009", bad("brainpoolP256r1.bad.pem"))), meter.CodeUnsupportedKey},
		{"off-curve key", w.ptb, mustJSON(t, registration("PTB-0009", bad("p256-offcurve.bad.pem"))), meter.CodeInvalidKey},
		{"certificate instead of key", w.ptb, mustJSON(t, registration("PTB-0009", bad("certificate.bad.pem"))), meter.CodeInvalidKey},
		{"duplicate meter", w.ptb, mustJSON(t, registration("PTB-0001", pubPEM(t, "p384"))), meter.CodeMeterExists},
		{"duplicate meter of another NMI", w.cmi, mustJSON(t, registrationFor("CMIMSP", "PTB-0001", pubPEM(t, "p384"))), meter.CodeMeterExists},
		{"key of another meter", w.ptb, mustJSON(t, registration("PTB-0009", pubPEM(t, "p256"))), meter.CodeKeyInUse},
		{"key of another NMI's meter", w.cmi, mustJSON(t, registrationFor("CMIMSP", "CMI-0001", pubPEM(t, "p256"))), meter.CodeKeyInUse},
		{"identity without pre-enrolment", w.ptb, mustJSON(t, withIdentity), meter.CodeMalformed},
		{"no checksum", w.ptb, mustJSON(t, noChecksum), meter.CodeMalformed},
		{"bad meter ID", w.ptb, mustJSON(t, registration("PTB/0009", pubPEM(t, "p384"))), meter.CodeMalformed},
		{"not JSON", w.ptb, "meter PTB-0009", meter.CodeMalformed},
		{"trailing data", w.ptb, mustJSON(t, registration("PTB-0009", pubPEM(t, "p384"))) + "{}", meter.CodeMalformed},
		{"trailing brace", w.ptb, mustJSON(t, registration("PTB-0009", pubPEM(t, "p384"))) + "}", meter.CodeMalformed},
		{"auditor", w.auditor, mustJSON(t, registration("PTB-0009", pubPEM(t, "p384"))), meter.CodeForbidden},
		{"ingest", w.ingest, mustJSON(t, registration("PTB-0009", pubPEM(t, "p384"))), meter.CodeForbidden},
		{"no role", stubtest.Client(t, "PTBMSP", ""), mustJSON(t, registration("PTB-0009", pubPEM(t, "p384"))), meter.CodeForbidden},
		{"unknown role", stubtest.Client(t, "PTBMSP", "admin"), mustJSON(t, registration("PTB-0009", pubPEM(t, "p384"))), meter.CodeForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := w.in(t)
			refused(w, tc.who, tc.code, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
				return w.cc.RegisterMeter(ctx, tc.request)
			})
		})
	}
}

func TestRegisterMeters(t *testing.T) {
	w := newWorld(t)
	var regs []meter.Registration
	for _, tc := range curveFixtures {
		regs = append(regs, registration(tc.meterID, pubPEM(t, tc.key)))
	}
	req := mustJSON(t, regs)
	out, stub := ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*wire.Enrolment, error) {
		return w.cc.RegisterMeters(ctx, req)
	})
	if out.NMI != "PTBMSP" || strings.Join(out.MeterIDs, ",") != "PTB-0001,PTB-0002,PTB-0003" {
		t.Fatalf("enrolment %+v", out)
	}
	if e := event[wire.Enrolment](t, stub, wire.EventMeterRegistered); mustJSON(t, e) != mustJSON(t, out) {
		t.Errorf("event %+v", e)
	}
	for _, tc := range curveFixtures {
		m := readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
			return w.cc.GetMeter(ctx, tc.meterID)
		})
		if m.Curve != tc.curve || m.NMI != "PTBMSP" || m.RegisteredTx != stub.GetTxID() {
			t.Errorf("%s: %+v", tc.meterID, m)
		}
	}
}

// A bulk enrolment is all or nothing.
func TestRegisterMetersRefused(t *testing.T) {
	w := newWorld(t)
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	good := []meter.Registration{registration("PTB-0002", pubPEM(t, "p384")), registration("PTB-0003", pubPEM(t, "secp256k1"))}
	with := func(extra meter.Registration, at int) string {
		regs := append([]meter.Registration(nil), good...)
		regs = append(regs[:at], append([]meter.Registration{extra}, regs[at:]...)...)
		return mustJSON(t, regs)
	}
	many := make([]meter.Registration, wire.MaxBulkRegistration+1)
	for i := range many {
		many[i] = registration(fmt.Sprintf("PTB-%05d", i), pubPEM(t, "other"))
	}
	cases := []struct {
		name, request string
		code          meter.Code
		entry         string
	}{
		{"bad key in the middle", with(registration("PTB-0009", string(readFile(t, filepath.Join(keysDir, "ed25519.bad.pem")))), 1), meter.CodeUnsupportedKey, "entry 1"},
		{"meter already registered", with(registration("PTB-0001", pubPEM(t, "other")), 2), meter.CodeMeterExists, "entry 2"},
		{"same meter twice", with(registration("PTB-0002", pubPEM(t, "other")), 2), meter.CodeMeterExists, "entry 2"},
		{"same key twice", with(registration("PTB-0009", pubPEM(t, "p384")), 2), meter.CodeKeyInUse, "entry 2"},
		{"key already bound", with(registration("PTB-0009", pubPEM(t, "p256")), 0), meter.CodeKeyInUse, "entry 0"},
		{"empty", "[]", meter.CodeMalformed, ""},
		{"not an array", mustJSON(t, good[0]), meter.CodeMalformed, ""},
		{"too many", mustJSON(t, many), meter.CodeTooLarge, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := w.in(t)
			err := refused(w, w.ptb, tc.code, func(ctx contractapi.TransactionContextInterface) (*wire.Enrolment, error) {
				return w.cc.RegisterMeters(ctx, tc.request)
			})
			if !strings.Contains(err.Error(), tc.entry) {
				t.Errorf("%q does not name %q", err, tc.entry)
			}
		})
	}
	t.Run("auditor", func(t *testing.T) {
		w := w.in(t)
		refused(w, w.auditor, meter.CodeForbidden, func(ctx contractapi.TransactionContextInterface) (*wire.Enrolment, error) {
			return w.cc.RegisterMeters(ctx, mustJSON(t, good))
		})
	})
}

// Each record that belongs to an NMI carries a key-level endorsement policy
// naming only a peer of that NMI.
func TestKeyLevelEndorsementPolicy(t *testing.T) {
	w := newWorld(t)
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	w.register(w.cmi, "CMI-0001", pubPEM(t, "other"))
	hash := meter.IdentityHash("urn:meter:CMI-0002")
	ok(w, w.cmi, func(ctx contractapi.TransactionContextInterface) (*meter.PreEnrolment, error) {
		return w.cc.PreEnrollMeter(ctx, "CMI-0002", hash)
	})
	cases := []struct{ key, owner string }{
		{"meter/PTB-0001", "PTBMSP"},
		{"keyver/PTB-0001/000001", "PTBMSP"},
		{"meter/CMI-0001", "CMIMSP"},
		{"keyver/CMI-0001/000001", "CMIMSP"},
		{"pre/CMI-0002", "CMIMSP"},
	}
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			stub := w.stub(w.auditor)
			ep, err := stub.GetStateValidationParameter(tc.key)
			if err != nil || ep == nil {
				t.Fatalf("no policy: %v", err)
			}
			if got := policyOrgs(t, ep); got != tc.owner {
				t.Fatalf("policy requires %s, want a peer of %s only", got, tc.owner)
			}
		})
	}
}

// policyOrgs decodes a key-level policy that must be "one signature of a
// peer of exactly one MSP" and returns that MSP.
func policyOrgs(t *testing.T, ep []byte) string {
	t.Helper()
	var env common.SignaturePolicyEnvelope
	if err := proto.Unmarshal(ep, &env); err != nil {
		t.Fatal(err)
	}
	if len(env.Identities) != 1 {
		t.Fatalf("policy names %d principals", len(env.Identities))
	}
	p := env.Identities[0]
	if p.PrincipalClassification != msp.MSPPrincipal_ROLE {
		t.Fatalf("principal is %v, not a role", p.PrincipalClassification)
	}
	var role msp.MSPRole
	if err := proto.Unmarshal(p.Principal, &role); err != nil {
		t.Fatal(err)
	}
	if role.Role != msp.MSPRole_PEER {
		t.Fatalf("role %v, want PEER", role.Role)
	}
	n := env.Rule.GetNOutOf()
	if n == nil || n.N != 1 || len(n.Rules) != 1 || n.Rules[0].GetSignedBy() != 0 || n.Rules[0].GetNOutOf() != nil {
		t.Fatalf("rule is %v, want 1 of [signed by principal 0]", env.Rule)
	}
	return role.MspIdentifier
}

func TestRotateKey(t *testing.T) {
	w := newWorld(t)
	old := privateKey(t, "p256")
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	ok(w, w.ingest, w.submit(reading(t, old, "PTB-0001", 1, readingTime)))

	next, err := generateKey(meter.P384)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := old.Sign(meter.RotationStatement("PTB-0001", 2, next.Public()))
	if err != nil {
		t.Fatal(err)
	}
	w.now = txTime.Add(time.Minute)
	m, stub := ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.RotateKey(ctx, "PTB-0001", next.Public().PEM(), b64(proof))
	})
	if m.KeyVersion != 2 || m.Curve != meter.P384 || m.Fingerprint != next.Public().Fingerprint() || m.UpdatedTx != stub.GetTxID() || m.RegisteredTx == stub.GetTxID() {
		t.Fatalf("rotated %+v", m)
	}
	if e := event[wire.MeterEvent](t, stub, wire.EventKeyRotated); e != (wire.MeterEvent{NMI: "PTBMSP", MeterID: "PTB-0001", KeyVersion: 2}) {
		t.Errorf("event %+v", e)
	}
	keys := readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) ([]*meter.KeyVersion, error) {
		return w.cc.GetMeterKeys(ctx, "PTB-0001")
	})
	if len(keys) != 2 || keys[0].Version != 1 || keys[1].Version != 2 || keys[0].PublicKey != pubPEM(t, "p256") ||
		keys[1].Fingerprint != next.Public().Fingerprint() || keys[1].ProofSignature != b64(proof) || keys[0].ProofSignature != "" ||
		keys[1].ValidFrom != w.now.Format(time.RFC3339Nano) {
		t.Fatalf("key versions %s", mustJSON(t, keys))
	}
	// Both keys stay bound to the meter: neither can be registered again.
	for _, fp := range []string{keys[0].Fingerprint, keys[1].Fingerprint} {
		if string(w.state("fp/"+fp)) != `"PTB-0001"` {
			t.Errorf("fp/%s = %q", fp, w.state("fp/"+fp))
		}
	}
	if got := policyOrgs(t, w.ledger.Params["keyver/PTB-0001/000002"]); got != "PTBMSP" {
		t.Errorf("new key version's policy names %s", got)
	}

	// The old key no longer verifies new measurements; the new one does.
	refused(w, w.ingest, meter.CodeBadSignature, w.submit(reading(t, old, "PTB-0001", 2, readingTime)))
	res, _ := ok(w, w.ingest, w.submit(reading(t, next, "PTB-0001", 2, readingTime)))
	if res.KeyVersion != 2 {
		t.Errorf("accepted with key version %d", res.KeyVersion)
	}
}

func TestRotateKeyRefused(t *testing.T) {
	w := newWorld(t)
	old := privateKey(t, "p256")
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	w.register(w.ptb, "PTB-0002", pubPEM(t, "p384"))
	w.register(w.ptb, "PTB-0004", pubPEM(t, "secp256k1"))
	ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.RevokeMeter(ctx, "PTB-0004", string(meter.ReasonKeyCompromise), "")
	})
	next, err := generateKey(meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	prove := func(key *meter.PrivateKey, id string, version int, newKey *meter.PublicKey) string {
		sig, err := key.Sign(meter.RotationStatement(id, version, newKey))
		if err != nil {
			t.Fatal(err)
		}
		return b64(sig)
	}
	p384 := privateKey(t, "p384").Public()
	cases := []struct {
		name, meterID, newKey, proof string
		who                          *stubtest.Identity
		code                         meter.Code
	}{
		{"proof by another key", "PTB-0001", next.Public().PEM(), prove(privateKey(t, "other"), "PTB-0001", 2, next.Public()), w.ptb, meter.CodeBadSignature},
		{"proof by the new key", "PTB-0001", next.Public().PEM(), prove(next, "PTB-0001", 2, next.Public()), w.ptb, meter.CodeBadSignature},
		{"proof for another version", "PTB-0001", next.Public().PEM(), prove(old, "PTB-0001", 3, next.Public()), w.ptb, meter.CodeBadSignature},
		{"proof for another meter", "PTB-0001", next.Public().PEM(), prove(old, "PTB-0002", 2, next.Public()), w.ptb, meter.CodeBadSignature},
		{"proof for another key", "PTB-0001", next.Public().PEM(), prove(old, "PTB-0001", 2, privateKey(t, "other").Public()), w.ptb, meter.CodeBadSignature},
		{"proof not base64", "PTB-0001", next.Public().PEM(), "%%%", w.ptb, meter.CodeMalformed},
		{"new key in use", "PTB-0001", p384.PEM(), prove(old, "PTB-0001", 2, p384), w.ptb, meter.CodeKeyInUse},
		{"same key", "PTB-0001", old.Public().PEM(), prove(old, "PTB-0001", 2, old.Public()), w.ptb, meter.CodeKeyInUse},
		{"unsupported new key", "PTB-0001", string(readFile(t, filepath.Join(keysDir, "p224.bad.pem"))), prove(old, "PTB-0001", 2, next.Public()), w.ptb, meter.CodeUnsupportedKey},
		{"revoked meter", "PTB-0004", next.Public().PEM(), prove(privateKey(t, "secp256k1"), "PTB-0004", 2, next.Public()), w.ptb, meter.CodeMeterRevoked},
		{"unknown meter", "PTB-0404", next.Public().PEM(), prove(old, "PTB-0404", 2, next.Public()), w.ptb, meter.CodeMeterNotFound},
		{"another NMI", "PTB-0001", next.Public().PEM(), prove(old, "PTB-0001", 2, next.Public()), w.cmi, meter.CodeNotOwner},
		{"ingest", "PTB-0001", next.Public().PEM(), prove(old, "PTB-0001", 2, next.Public()), w.ingest, meter.CodeForbidden},
		{"auditor", "PTB-0001", next.Public().PEM(), prove(old, "PTB-0001", 2, next.Public()), w.auditor, meter.CodeForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := w.in(t)
			refused(w, tc.who, tc.code, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
				return w.cc.RotateKey(ctx, tc.meterID, tc.newKey, tc.proof)
			})
		})
	}
}

func TestRevokeHoldAndReinstate(t *testing.T) {
	w := newWorld(t)
	key := privateKey(t, "p256")
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	ok(w, w.ingest, w.submit(reading(t, key, "PTB-0001", 1, readingTime)))

	w.now = txTime.Add(time.Minute)
	m, stub := ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.RevokeMeter(ctx, "PTB-0001", string(meter.ReasonCertificateHold), "2026-11-21T11:00:00+01:00")
	})
	wantRev := meter.Revocation{Reason: meter.ReasonCertificateHold, RevokedAt: w.now.Format(time.RFC3339Nano),
		InvalidityDate: "2026-11-21T10:00:00Z", TxID: stub.GetTxID()}
	if m.Status != meter.StatusRevoked || m.Revocation == nil || !reflect.DeepEqual(*m.Revocation, wantRev) {
		t.Fatalf("revoked %s", mustJSON(t, m))
	}
	if e := event[wire.MeterEvent](t, stub, wire.EventMeterRevoked); e != (wire.MeterEvent{NMI: "PTBMSP", MeterID: "PTB-0001", KeyVersion: 1, Reason: "certificateHold"}) {
		t.Errorf("event %+v", e)
	}
	if w.state("ix/status/active/PTB-0001") != nil || w.state("ix/nmi/PTBMSP/active/PTB-0001") != nil ||
		w.state("ix/status/revoked/PTB-0001") == nil || w.state("ix/nmi/PTBMSP/revoked/PTB-0001") == nil {
		t.Error("listing indexes do not follow the status")
	}
	refused(w, w.ingest, meter.CodeMeterRevoked, w.submit(reading(t, key, "PTB-0001", 2, readingTime)))
	refused(w, w.ptb, meter.CodeMeterRevoked, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.RevokeMeter(ctx, "PTB-0001", string(meter.ReasonKeyCompromise), "")
	})
	refused(w, w.cmi, meter.CodeNotOwner, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.ReinstateMeter(ctx, "PTB-0001")
	})
	refused(w, w.auditor, meter.CodeForbidden, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.ReinstateMeter(ctx, "PTB-0001")
	})
	// The measurement accepted before the hold stays accepted: its guard
	// is untouched.
	if g, err := wire.UnmarshalGuard(w.state("last/PTB-0001")); err != nil || g.Last != 1 {
		t.Fatalf("replay guard after revocation: %+v %v", g, err)
	}

	w.now = txTime.Add(2 * time.Minute)
	m, stub = ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.ReinstateMeter(ctx, "PTB-0001")
	})
	if m.Status != meter.StatusActive || m.Revocation != nil || m.UpdatedTx != stub.GetTxID() {
		t.Fatalf("reinstated %s", mustJSON(t, m))
	}
	if e := event[wire.MeterEvent](t, stub, wire.EventMeterReinstated); e != (wire.MeterEvent{NMI: "PTBMSP", MeterID: "PTB-0001", KeyVersion: 1}) {
		t.Errorf("event %+v", e)
	}
	if w.state("ix/status/revoked/PTB-0001") != nil || w.state("ix/status/active/PTB-0001") == nil {
		t.Error("listing indexes do not follow the reinstatement")
	}
	ok(w, w.ingest, w.submit(reading(t, key, "PTB-0001", 2, readingTime)))
	refused(w, w.ptb, meter.CodeNotOnHold, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.ReinstateMeter(ctx, "PTB-0001")
	})
}

// Every revocation but a hold is final.
func TestRevokeFinal(t *testing.T) {
	for i, reason := range meter.Reasons {
		if reason == meter.ReasonCertificateHold {
			continue
		}
		t.Run(string(reason), func(t *testing.T) {
			w := newWorld(t)
			id := fmt.Sprintf("PTB-%04d", i)
			w.register(w.ptb, id, pubPEM(t, "p256"))
			m, _ := ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
				return w.cc.RevokeMeter(ctx, id, string(reason), "")
			})
			if m.Revocation.Reason != reason || m.Revocation.InvalidityDate != "" {
				t.Fatalf("revocation %+v", m.Revocation)
			}
			refused(w, w.ptb, meter.CodeNotOnHold, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
				return w.cc.ReinstateMeter(ctx, id)
			})
			refused(w, w.ingest, meter.CodeMeterRevoked, w.submit(reading(t, privateKey(t, "p256"), id, 1, readingTime)))
		})
	}
}

func TestRevokeRefused(t *testing.T) {
	w := newWorld(t)
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	cases := []struct {
		name, meterID, reason, invalidity string
		who                               *stubtest.Identity
		code                              meter.Code
	}{
		{"unknown reason", "PTB-0001", "removeFromCRL", "", w.ptb, meter.CodeMalformed},
		{"invalidity date after the revocation", "PTB-0001", "keyCompromise", "2026-11-21T10:20:00.000000001Z", w.ptb, meter.CodeMalformed},
		{"invalidity date malformed", "PTB-0001", "keyCompromise", "yesterday", w.ptb, meter.CodeMalformed},
		{"unknown meter", "PTB-0404", "keyCompromise", "", w.ptb, meter.CodeMeterNotFound},
		{"malformed meter ID", "PTB/0001", "keyCompromise", "", w.ptb, meter.CodeMalformed},
		{"another NMI", "PTB-0001", "keyCompromise", "", w.cmi, meter.CodeNotOwner},
		{"ingest", "PTB-0001", "keyCompromise", "", w.ingest, meter.CodeForbidden},
		{"auditor", "PTB-0001", "keyCompromise", "", w.auditor, meter.CodeForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := w.in(t)
			refused(w, tc.who, tc.code, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
				return w.cc.RevokeMeter(ctx, tc.meterID, tc.reason, tc.invalidity)
			})
		})
	}
	refused(w, w.ptb, meter.CodeNotOnHold, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.ReinstateMeter(ctx, "PTB-0001")
	})
}

func TestPreEnrolment(t *testing.T) {
	w := newWorld(t)
	const ident = "urn:meter:PTB-0001:serial:SN-0001"
	hash := meter.IdentityHash(ident)
	pre, stub := ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.PreEnrolment, error) {
		return w.cc.PreEnrollMeter(ctx, "PTB-0001", hash)
	})
	if *pre != (meter.PreEnrolment{MeterID: "PTB-0001", NMI: "PTBMSP", IdentityHash: hash, TxID: stub.GetTxID(), At: txTime.Format(time.RFC3339Nano),
		ExpiresAt: txTime.Add(meter.PreEnrolmentValidity).Format(time.RFC3339Nano)}) {
		t.Fatalf("pre-enrolment %+v", pre)
	}
	if e := event[wire.MeterEvent](t, stub, wire.EventMeterPreEnrolled); e != (wire.MeterEvent{NMI: "PTBMSP", MeterID: "PTB-0001"}) {
		t.Errorf("event %+v", e)
	}
	got := readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) (*meter.PreEnrolment, error) {
		return w.cc.GetPreEnrolment(ctx, "PTB-0001")
	})
	if *got != *pre {
		t.Errorf("GetPreEnrolment %+v", got)
	}

	preRefused := func(who *stubtest.Identity, id, h string, code meter.Code) {
		t.Helper()
		refused(w, who, code, func(ctx contractapi.TransactionContextInterface) (*meter.PreEnrolment, error) {
			return w.cc.PreEnrollMeter(ctx, id, h)
		})
	}
	preRefused(w.ptb, "PTB-0001", hash, meter.CodePreEnrolled)
	preRefused(w.cmi, "PTB-0001", hash, meter.CodeNotOwner)
	preRefused(w.cmi, "CMI-", hash, meter.CodeNotOwner)
	preRefused(w.ptb, "PTB-0002", strings.ToUpper(hash), meter.CodeMalformed)
	preRefused(w.ptb, "PTB 0002", hash, meter.CodeMalformed)
	preRefused(w.ingest, "PTB-0002", hash, meter.CodeForbidden)
	preRefused(w.auditor, "PTB-0002", hash, meter.CodeForbidden)

	registerRefused := func(who *stubtest.Identity, presented string, code meter.Code) {
		t.Helper()
		reg := registrationFor(who.MSP, "PTB-0001", pubPEM(t, "p256"))
		reg.Identity = presented
		req := mustJSON(t, reg)
		refused(w, who, code, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
			return w.cc.RegisterMeter(ctx, req)
		})
	}
	registerRefused(w.ptb, "", meter.CodeIdentityMismatch)
	registerRefused(w.ptb, ident+" ", meter.CodeIdentityMismatch)
	registerRefused(w.ptb, hash, meter.CodeIdentityMismatch)
	registerRefused(w.cmi, ident, meter.CodeNotOwner)

	reg := registration("PTB-0001", pubPEM(t, "p256"))
	reg.Identity = ident
	req := mustJSON(t, reg)
	m, _ := ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.RegisterMeter(ctx, req)
	})
	if m.IdentityHash != hash {
		t.Errorf("identity hash %q", m.IdentityHash)
	}
	if w.state("pre/PTB-0001") != nil {
		t.Error("the pre-enrolment is not consumed")
	}
	refused(w, w.auditor, meter.CodeMeterNotFound, func(ctx contractapi.TransactionContextInterface) (*meter.PreEnrolment, error) {
		return w.cc.GetPreEnrolment(ctx, "PTB-0001")
	})
	preRefused(w.ptb, "PTB-0001", hash, meter.CodeMeterExists)
}

// A bulk enrolment consumes pre-enrolments too, and refuses as a whole when
// one identity is wrong.
func TestPreEnrolmentBulk(t *testing.T) {
	w := newWorld(t)
	for _, id := range []string{"PTB-0001", "PTB-0002"} {
		h := meter.IdentityHash("urn:" + id)
		ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.PreEnrolment, error) {
			return w.cc.PreEnrollMeter(ctx, id, h)
		})
	}
	a, b := registration("PTB-0001", pubPEM(t, "p256")), registration("PTB-0002", pubPEM(t, "p384"))
	a.Identity, b.Identity = "urn:PTB-0001", "urn:PTB-0003"
	wrong := mustJSON(t, []meter.Registration{a, b})
	refused(w, w.ptb, meter.CodeIdentityMismatch, func(ctx contractapi.TransactionContextInterface) (*wire.Enrolment, error) {
		return w.cc.RegisterMeters(ctx, wrong)
	})
	b.Identity = "urn:PTB-0002"
	right := mustJSON(t, []meter.Registration{a, b})
	ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*wire.Enrolment, error) {
		return w.cc.RegisterMeters(ctx, right)
	})
	if w.state("pre/PTB-0001") != nil || w.state("pre/PTB-0002") != nil {
		t.Error("pre-enrolments not consumed")
	}
}

func TestListMeters(t *testing.T) {
	w := newWorld(t)
	var all []string
	for i := 1; i <= 5; i++ {
		id := fmt.Sprintf("PTB-%04d", i)
		k, err := generateKey(meter.P256)
		if err != nil {
			t.Fatal(err)
		}
		w.register(w.ptb, id, k.Public().PEM())
		all = append(all, id)
	}
	for i := 1; i <= 2; i++ {
		id := fmt.Sprintf("CMI-%04d", i)
		k, err := generateKey(meter.P256)
		if err != nil {
			t.Fatal(err)
		}
		w.register(w.cmi, id, k.Public().PEM())
		all = append(all, id)
	}
	slices.Sort(all)
	for _, id := range []string{"PTB-0002", "PTB-0004"} {
		ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
			return w.cc.RevokeMeter(ctx, id, string(meter.ReasonCessationOfOperation), "")
		})
	}
	list := func(w *world, nmi, status string, size int32, bookmark string) *wire.MeterPage {
		w.t.Helper()
		return readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) (*wire.MeterPage, error) {
			return w.cc.ListMeters(ctx, nmi, status, size, bookmark)
		})
	}
	ids := func(p *wire.MeterPage) string {
		var out []string
		for _, m := range p.Meters {
			out = append(out, m.ID)
		}
		return strings.Join(out, ",")
	}
	cases := []struct {
		nmi, status, want string
	}{
		{"", "", strings.Join(all, ",")},
		{"PTBMSP", "", "PTB-0001,PTB-0002,PTB-0003,PTB-0004,PTB-0005"},
		{"PTBMSP", "active", "PTB-0001,PTB-0003,PTB-0005"},
		{"PTBMSP", "revoked", "PTB-0002,PTB-0004"},
		{"CMIMSP", "revoked", ""},
		{"", "active", "CMI-0001,CMI-0002,PTB-0001,PTB-0003,PTB-0005"},
		{"", "revoked", "PTB-0002,PTB-0004"},
		{"BIPMMSP", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.nmi+"/"+tc.status, func(t *testing.T) {
			w := w.in(t)
			p := list(w, tc.nmi, tc.status, 0, "")
			got := ids(p)
			if tc.nmi != "" && tc.status == "" {
				// One NMI's listing walks its active index, then its revoked
				// one: not meter-ID order as documented, so only the set is
				// checked.
				sorted := strings.Split(got, ",")
				slices.Sort(sorted)
				got = strings.Join(sorted, ",")
			}
			if got != tc.want || p.Bookmark != "" {
				t.Fatalf("listed %s (bookmark %q), want %s", got, p.Bookmark, tc.want)
			}
			for _, m := range p.Meters {
				if (tc.nmi != "" && m.NMI != tc.nmi) || (tc.status != "" && string(m.Status) != tc.status) {
					t.Errorf("listed %s of %s, %s", m.ID, m.NMI, m.Status)
				}
			}
		})
	}
	t.Run("pages", func(t *testing.T) {
		w := w.in(t)
		for _, filter := range [][2]string{{"", ""}, {"", "active"}, {"PTBMSP", ""}} {
			var got []string
			bookmark, pages := "", 0
			for {
				p := list(w, filter[0], filter[1], 2, bookmark)
				pages++
				if len(p.Meters) > 2 || pages > 10 {
					t.Fatalf("page of %d meters, page %d", len(p.Meters), pages)
				}
				if s := ids(p); s != "" {
					got = append(got, s)
				}
				if bookmark = p.Bookmark; bookmark == "" {
					break
				}
			}
			if want := ids(list(w, filter[0], filter[1], 0, "")); strings.Join(got, ",") != want {
				t.Errorf("%v paged: %s, want %s", filter, strings.Join(got, ","), want)
			}
		}
		// A full last page ends the listing too.
		if p := list(w, "PTBMSP", "revoked", 2, ""); p.Bookmark != "" || len(p.Meters) != 2 {
			t.Errorf("exact page: %d meters, bookmark %q", len(p.Meters), p.Bookmark)
		}
	})
	for _, tc := range []struct {
		name, nmi, status string
		size              int32
		bookmark          string
	}{
		{"status", "", "hold", 0, ""},
		{"nmi", "PTB/MSP", "", 0, ""},
		{"negative page", "", "", -1, ""},
		{"page too large", "", "", 1001, ""},
		// The peer starts a paginated range at the bookmark whatever it is,
		// so a bookmark of another listing must not leak that listing.
		{"bookmark of another status", "", "active", 0, "ix/status/revoked/PTB-0002"},
		{"bookmark of another NMI", "PTBMSP", "", 0, "ix/nmi/CMIMSP/active/CMI-0001"},
		{"bookmark before the range", "", "", 0, "fp/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := w.in(t)
			refused(w, w.auditor, meter.CodeMalformed, func(ctx contractapi.TransactionContextInterface) (*wire.MeterPage, error) {
				return w.cc.ListMeters(ctx, tc.nmi, tc.status, tc.size, tc.bookmark)
			})
		})
	}
}

func TestGetMeterHistory(t *testing.T) {
	w := newWorld(t)
	old := privateKey(t, "p256")
	w.register(w.ptb, "PTB-0001", pubPEM(t, "p256"))
	w.register(w.ptb, "PTB-0002", pubPEM(t, "p384"))
	next, err := generateKey(meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := old.Sign(meter.RotationStatement("PTB-0001", 2, next.Public()))
	if err != nil {
		t.Fatal(err)
	}
	steps := []func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error){
		func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
			return w.cc.RotateKey(ctx, "PTB-0001", next.Public().PEM(), b64(proof))
		},
		func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
			return w.cc.RevokeMeter(ctx, "PTB-0001", string(meter.ReasonCertificateHold), "")
		},
		func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
			return w.cc.ReinstateMeter(ctx, "PTB-0001")
		},
	}
	for i, step := range steps {
		w.now = txTime.Add(time.Duration(i+1) * time.Hour)
		ok(w, w.ptb, step)
	}
	hist := readOnly(w, w.auditor, func(ctx contractapi.TransactionContextInterface) ([]*wire.MeterVersion, error) {
		return w.cc.GetMeterHistory(ctx, "PTB-0001")
	})
	want := []struct {
		version int
		status  meter.Status
	}{{1, meter.StatusActive}, {2, meter.StatusActive}, {2, meter.StatusRevoked}, {2, meter.StatusActive}}
	if len(hist) != len(want) {
		t.Fatalf("%d versions, want %d", len(hist), len(want))
	}
	for i, v := range hist {
		at := txTime.Add(time.Duration(i) * time.Hour).Format(time.RFC3339Nano)
		if v.Time != at || v.Meter == nil || v.Meter.KeyVersion != want[i].version || v.Meter.Status != want[i].status || v.Meter.UpdatedTx != v.TxID {
			t.Errorf("version %d: %s, want key %d %s at %s", i, mustJSON(t, v), want[i].version, want[i].status, at)
		}
	}
	refused(w, w.auditor, meter.CodeMeterNotFound, func(ctx contractapi.TransactionContextInterface) ([]*wire.MeterVersion, error) {
		return w.cc.GetMeterHistory(ctx, "PTB-0404")
	})
	refused(w, w.auditor, meter.CodeMeterNotFound, func(ctx contractapi.TransactionContextInterface) ([]*meter.KeyVersion, error) {
		return w.cc.GetMeterKeys(ctx, "PTB-0404")
	})
	refused(w, w.auditor, meter.CodeMeterNotFound, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
		return w.cc.GetMeter(ctx, "PTB-0404")
	})
}

// A registrar who learns another NMI's delivery list (meter IDs, public
// keys, even the meters' proofs) cannot bind those keys: the proof names
// the NMI the meter is meant for, and without the meter's private key no
// registrar can make one for itself.
func TestRegistrationNeedsProofOfPossession(t *testing.T) {
	w := newWorld(t)
	listed := registration("PTB-0009", pubPEM(t, "p384")) // PTB's entry, proved for PTBMSP
	noProof := listed
	noProof.Proof = ""
	otherMeter := registration("PTB-0008", pubPEM(t, "p384")) // a proof for another meter ID
	otherMeter.MeterID = "PTB-0009"
	for name, tc := range map[string]struct {
		who *stubtest.Identity
		reg meter.Registration
	}{
		"CMI replays PTB's entry":           {w.cmi, listed},
		"CMI without a proof":               {w.cmi, noProof},
		"PTB without a proof":               {w.ptb, noProof},
		"a proof made for another meter ID": {w.ptb, otherMeter},
	} {
		t.Run(name, func(t *testing.T) {
			req := mustJSON(t, tc.reg)
			refused(w.in(t), tc.who, meter.CodeBadSignature, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
				return w.cc.RegisterMeter(ctx, req)
			})
			refused(w.in(t), w.auditor, meter.CodeMeterNotFound, func(ctx contractapi.TransactionContextInterface) (*meter.Meter, error) {
				return w.cc.GetMeter(ctx, "PTB-0009")
			})
		})
	}
	if m := w.register(w.ptb, "PTB-0009", pubPEM(t, "p384")); m.NMI != "PTBMSP" {
		t.Fatalf("PTB registered its own meter as %+v", m)
	}
}
