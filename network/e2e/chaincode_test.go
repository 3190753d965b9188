//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"

	"github.com/inter-nmi/pki/network/internal/consortium"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
	regclient "github.com/inter-nmi/pki/registry-api/client"
)

// meterRegistration is a registration of id with the public key, without
// the meter's proof.
func meterRegistration(id, pubPEM string) meter.Registration {
	return meter.Registration{
		MeterID: id, PublicKey: pubPEM,
		Metadata: meter.Metadata{
			Manufacturer: "Example Metering GmbH", Model: "EM-3000", SerialNumber: "SN-" + id,
			SoftwareID: "EM-FW 4.2.1", SoftwareChecksum: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		},
	}
}

// registration is the RegisterMeter argument registering id with key's
// public half, proved by the meter for the NMI nmi (its MSP ID).
func registration(t *testing.T, nmi, id string, key *meter.PrivateKey) string {
	t.Helper()
	return mustJSON(t, proved(t, nmi, key, meterRegistration(id, key.Public().PEM())))
}

// proved is reg with the proof of possession its meter (key) made for the
// NMI nmi (MSP ID), as at manufacture for the NMI it is delivered to.
func proved(t *testing.T, nmi string, key *meter.PrivateKey, reg meter.Registration) meter.Registration {
	t.Helper()
	if err := reg.Prove(key, nmi); err != nil {
		t.Fatal(err)
	}
	return reg
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// reading is a measurement payload as a meter would write it, its meter time
// a few seconds before now so it is plausible against the transaction time.
func reading(id string, seq uint64, value string) []byte {
	at := time.Now().UTC().Add(-time.Duration(100-int(seq%100)) * time.Second).Format(time.RFC3339)
	return fmt.Appendf(nil, `{"meterId":%q,"seq":%d,"time":%q,"value":%s,"unit":"kWh"}`, id, seq, at, value)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestMeterLifecycle is the thin slice through every layer: PTB registers a
// meter whose key and signatures come from the openssl command line, the
// meter's measurements are verified by the chaincode on the real network,
// and every kind of bad measurement is refused.
func TestMeterLifecycle(t *testing.T) {
	top := t // owns files that outlive a subtest
	ptb := connect(t, "PTB", consortium.UserRegistrar)
	cmi := connect(t, "CMI", consortium.UserRegistrar)
	cmiAuditor := connect(t, "CMI", consortium.UserAuditor)
	ingest := connect(t, "INMETRO", consortium.UserIngest)

	priv, pub := opensslKey(t, "P-256")
	id := uniqueID("PTB-E2E")
	pubKey, err := meter.ParsePublicKeyPEM(readFile(t, pub))
	if err != nil {
		t.Fatal(err)
	}
	// The meter's proof of possession for PTB, made with openssl as a
	// production line would.
	request := meterRegistration(id, readFile(t, pub))
	request.Proof = b64(opensslSign(t, priv, meter.RegistrationStatement(id, "PTBMSP", pubKey)))
	reg := ptb.submit(t, "RegisterMeter", mustJSON(t, request))
	registered := decode[meter.Meter](t, reg.result)
	if registered.NMI != "PTBMSP" || registered.Status != meter.StatusActive || registered.KeyVersion != 1 {
		t.Fatalf("registered meter: %+v", registered)
	}
	t.Logf("meter %s registered in block %d (tx %s), fingerprint %s", id, reg.block, reg.txID, registered.Fingerprint)

	t.Run("another NMI sees the meter", func(t *testing.T) {
		got := decode[meter.Meter](t, cmiAuditor.evaluate(t, "GetMeter", id))
		if got.Fingerprint != registered.Fingerprint || got.NMI != "PTBMSP" {
			t.Fatalf("CMI reads %+v", got)
		}
	})

	payload := reading(id, 1, "1234.5")
	sig := opensslSign(t, priv, payload)
	t.Run("openssl-signed measurement accepted", func(t *testing.T) {
		r := ingest.submit(t, "SubmitMeasurement", id, b64(payload), b64(sig))
		res := decode[meter.ItemResult](t, r.result)
		if res.Outcome != meter.OutcomeAccepted || res.Seq != 1 || res.KeyVersion != 1 {
			t.Fatalf("result %+v", res)
		}
		// The evidence is the transaction in its block: CMI's registry reads
		// it from its own index of its peer's blocks.
		page, err := registry(t, "CMI", api.RoleAuditor).Measurements(context.Background(), id,
			regclient.MeasurementQuery{Read: regclient.Read{MinBlock: r.block}})
		if err != nil || len(page.Measurements) != 1 || page.Measurements[0].Payload != b64(payload) || page.Measurements[0].TxID != r.txID {
			t.Fatalf("CMI sees measurements %+v (%v)", page, err)
		}
	})

	t.Run("forged measurement refused", func(t *testing.T) {
		otherPriv, _ := opensslKey(t, "P-256")
		forged := reading(id, 2, "1.0")
		ingest.refused(t, meter.CodeBadSignature, "SubmitMeasurement", id, b64(forged), b64(opensslSign(t, otherPriv, forged)))
	})

	t.Run("a re-delivery is a duplicate, other bytes for its seq a replay", func(t *testing.T) {
		dup := decode[meter.ItemResult](t, ingest.evaluate(t, "SubmitMeasurement", id, b64(payload), b64(sig)))
		if dup.Outcome != meter.OutcomeDuplicate || dup.Seq != 1 {
			t.Fatalf("re-delivery answered %+v", dup)
		}
		other := reading(id, 1, "1234.6")
		ingest.refused(t, meter.CodeReplay, "SubmitMeasurement", id, b64(other), b64(opensslSign(t, priv, other)))
	})

	t.Run("tampered payload refused", func(t *testing.T) {
		tampered := []byte(string(payload[:len(payload)-1]) + ` }`)
		ingest.refused(t, meter.CodeBadSignature, "SubmitMeasurement", id, b64(tampered), b64(sig))
	})

	t.Run("another NMI cannot revoke the meter", func(t *testing.T) {
		cmi.refused(t, meter.CodeNotOwner, "RevokeMeter", id, "keyCompromise", "")
	})

	t.Run("auditor cannot write", func(t *testing.T) {
		next := reading(id, 5, "2.0")
		cmiAuditor.refused(t, meter.CodeForbidden, "SubmitMeasurement", id, b64(next), b64(opensslSign(t, priv, next)))
	})

	t.Run("batch judges each item", func(t *testing.T) {
		good := reading(id, 10, "1240.0")
		bad := reading(id, 11, "9999.0")
		batch, _ := json.Marshal([]meter.SignedMeasurement{
			{MeterID: id, Payload: good, Signature: opensslSign(t, priv, good)},
			{MeterID: id, Payload: bad, Signature: sig}, // signature of another payload
			{MeterID: id, Payload: payload, Signature: sig},
		})
		r := ingest.submit(t, "SubmitMeasurements", string(batch))
		res := decode[wire.Outcome](t, r.result)
		want := []string{meter.OutcomeAccepted, meter.OutcomeRejected, meter.OutcomeDuplicate}
		if res.Accepted != 1 || res.Rejected != 1 || res.Duplicates != 1 || res.Items != 3 {
			t.Fatalf("batch result %+v", res)
		}
		var items []meter.SignedMeasurement
		if err := json.Unmarshal(batch, &items); err != nil {
			t.Fatal(err)
		}
		results, err := res.Expand(items)
		if err != nil {
			t.Fatal(err)
		}
		for i, item := range results {
			if item.Outcome != want[i] {
				t.Errorf("item %d: %s (%s %s), want %s", i, item.Outcome, item.Code, item.Reason, want[i])
			}
		}
		// The refused item is evidence on the ledger; the duplicate is not a refusal.
		rejections, err := registry(t, "CMI", api.RoleAuditor).Rejections(context.Background(), id, regclient.Read{MinBlock: r.block}, 10, "")
		if err != nil || len(rejections.Rejections) != 1 || rejections.Rejections[0].TxID != r.txID || rejections.Rejections[0].Code != meter.CodeBadSignature {
			t.Fatalf("rejections on the ledger: %+v", rejections.Rejections)
		}
	})

	t.Run("key rotation with openssl proof of possession", func(t *testing.T) {
		newPriv, newPub := opensslKey(top, "P-256")
		newKey, err := meter.ParsePublicKeyPEM(readFile(t, newPub))
		if err != nil {
			t.Fatal(err)
		}
		proof := opensslSign(t, priv, meter.RotationStatement(id, 2, newKey))
		rotated := decode[meter.Meter](t, ptb.submit(t, "RotateKey", id, readFile(t, newPub), b64(proof)).result)
		if rotated.KeyVersion != 2 || rotated.Fingerprint != newKey.Fingerprint() {
			t.Fatalf("rotated meter %+v", rotated)
		}
		old := reading(id, 20, "1250.0")
		ingest.refused(t, meter.CodeBadSignature, "SubmitMeasurement", id, b64(old), b64(opensslSign(t, priv, old)))
		fresh := reading(id, 21, "1251.0")
		res := decode[meter.ItemResult](t, ingest.submit(t, "SubmitMeasurement", id, b64(fresh), b64(opensslSign(t, newPriv, fresh))).result)
		if res.KeyVersion != 2 {
			t.Fatalf("accepted with key version %d, want 2", res.KeyVersion)
		}
		priv = newPriv
	})

	t.Run("revoked meter's measurements refused", func(t *testing.T) {
		revoked := decode[meter.Meter](t, ptb.submit(t, "RevokeMeter", id, "keyCompromise", "").result)
		if revoked.Status != meter.StatusRevoked || revoked.Revocation.Reason != meter.ReasonKeyCompromise {
			t.Fatalf("revoked meter %+v", revoked)
		}
		late := reading(id, 30, "1300.0")
		ingest.refused(t, meter.CodeMeterRevoked, "SubmitMeasurement", id, b64(late), b64(opensslSign(t, priv, late)))
		history := decode[[]wire.MeterVersion](t, cmiAuditor.evaluate(t, "GetMeterHistory", id))
		if len(history) != 3 || history[0].TxID != reg.txID || history[2].Meter.Status != meter.StatusRevoked {
			t.Fatalf("history has %d versions: %+v", len(history), history)
		}
	})
}

// TestOrdererDown crashes the BFT leader, the hardest single failure, and
// checks the consortium still commits; then brings it back and checks again.
func TestOrdererDown(t *testing.T) {
	ptb := connect(t, "PTB", consortium.UserRegistrar)
	ctx := context.Background()
	register := func(what string) {
		t.Helper()
		key, err := meter.GenerateKey(meter.P256)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		r := ptb.submit(t, "RegisterMeter", registration(t, "PTBMSP", uniqueID("PTB-BFT"), key))
		t.Logf("%s: registration committed in block %d after %s", what, r.block, time.Since(start).Round(time.Millisecond))
	}
	leader, err := network.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := network.StopOrderer(ctx, leader); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			if err := network.StartOrderer(ctx, leader); err != nil {
				t.Errorf("restart %s orderer: %v", leader, err)
			}
		}
	})
	register(fmt.Sprintf("leader %s's orderer down, first", leader))
	register(fmt.Sprintf("leader %s's orderer down, second", leader))
	next, err := network.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if next == leader {
		t.Fatalf("the stopped orderer %s is still reported as leader", leader)
	}
	if err := network.StartOrderer(ctx, leader); err != nil {
		t.Fatal(err)
	}
	restarted = true
	register(fmt.Sprintf("%s's orderer back, new leader %s", leader, next))
}

// TestKeyLevelPolicy shows the meter record's key-level endorsement policy at
// work in validation, not only in chaincode logic: a revocation endorsed by
// two other NMIs' peers satisfies the chaincode's 2-of-5 policy but not the
// meter's own, so every peer marks it invalid and the meter stays active.
func TestKeyLevelPolicy(t *testing.T) {
	ptb := connect(t, "PTB", consortium.UserRegistrar)
	key, err := meter.GenerateKey(meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	id := uniqueID("PTB-SBE")
	ptb.submit(t, "RegisterMeter", registration(t, "PTBMSP", id, key))

	proposal, err := ptb.contract.NewProposal("RevokeMeter",
		client.WithArguments(id, "keyCompromise", ""),
		client.WithEndorsingOrganizations("CMIMSP", "INMETROMSP"))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := proposal.Endorse()
	if err != nil {
		t.Fatalf("endorse by CMI and INMETRO: %v", err)
	}
	status, err := ptb.hand(tx)
	if err != nil {
		t.Fatal(err)
	}
	if status.Code != peer.TxValidationCode_ENDORSEMENT_POLICY_FAILURE {
		t.Fatalf("revocation endorsed without PTB committed with %s, want ENDORSEMENT_POLICY_FAILURE", status.Code)
	}
	settle(t, status.BlockNumber)
	got := decode[meter.Meter](t, ptb.evaluate(t, "GetMeter", id))
	if got.Status != meter.StatusActive {
		t.Fatalf("meter status %s after an invalid revocation", got.Status)
	}
	t.Logf("revocation without the owner's endorsement: block %d, %s; meter still %s", status.BlockNumber, status.Code, got.Status)
}
