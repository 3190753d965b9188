//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/proof"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/client"
)

// envFixtures names a directory where TestAttestation also writes the
// bundles it made, for testdata/generate.sh; the tests never write to the
// repository's testdata themselves.
const envFixtures = "PKI_FIXTURES"

// genesisHash is the pinned hash of the test consortium's block 0.
func genesisHash(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile(network.GenesisBlock(profile.Channel))
	if err != nil {
		t.Fatal(err)
	}
	var b common.Block
	if err := proto.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	h, err := chain.GenesisHash(&b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestAttestation has the consortium attest a meter through a registry, then
// after a key rotation and after a revocation.
func TestAttestation(t *testing.T) {
	ctx := context.Background()
	operator := registry(t, "PTB", api.RoleOperator)
	relying := registry(t, "CMI", api.RoleAuditor)
	key, _ := meter.GenerateKey(meter.P256)
	id := uniqueID("PTB-ATT")
	if _, err := operator.RegisterMeter(ctx, proved(t, "PTBMSP", key, meterRegistration(id, key.Public().PEM()))); err != nil {
		t.Fatal(err)
	}
	bundles := map[string][]byte{}
	pinned := genesisHash(t)
	// verify checks a bundle offline, as a relying party does: nothing but
	// the pinned genesis hash, no network.
	verify := func(name string, b []byte) *proof.Statement {
		t.Helper()
		start := time.Now()
		parsed, err := proof.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		st, err := proof.Verify(parsed, proof.Options{GenesisHash: pinned, MaxAge: time.Hour, MeterID: id})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: verified offline in %s: %s", name, time.Since(start).Round(time.Microsecond), st)
		return st
	}
	attest := func(name string) []byte {
		t.Helper()
		start := time.Now()
		b, err := relying.Attest(ctx, id, true)
		if err != nil {
			t.Fatalf("attest (%s): %v", name, err)
		}
		t.Logf("%s: attested through CMI's registry in %s, bundle %d bytes", name, time.Since(start).Round(time.Millisecond), len(b))
		parsed, err := proof.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		for other, ob := range bundles {
			if op, _ := proof.Parse(ob); op != nil && op.TxID == parsed.TxID {
				t.Fatalf("the %s bundle is the %s one again (transaction %s)", name, other, parsed.TxID)
			}
		}
		bundles[name] = b
		return b
	}
	fresh := verify("fresh", attest("fresh"))
	if fresh.Status != "active" || fresh.KeyVersion != 1 || fresh.Fingerprint != key.Public().Fingerprint() || fresh.Owner != "PTBMSP" || len(fresh.AttestedBy) < 2 {
		t.Fatalf("fresh: %+v", fresh)
	}
	bare, err := relying.LatestAttestation(ctx, id, false, client.Read{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fresh without its configuration chain: %d bytes", len(bare))
	bundles["fresh-nochain"] = bare

	next, _ := meter.GenerateKey(meter.P256)
	sig, err := key.Sign(meter.RotationStatement(id, 2, next.Public()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := operator.RotateKey(ctx, id, api.RotateRequest{PublicKey: next.Public().PEM(), Proof: base64.StdEncoding.EncodeToString(sig)}); err != nil {
		t.Fatal(err)
	}
	rotated := verify("rotated", attest("rotated"))
	if rotated.KeyVersion != 2 || rotated.Fingerprint != next.Public().Fingerprint() || rotated.Status != "active" || rotated.Block <= fresh.Block {
		t.Fatalf("rotated: %+v", rotated)
	}
	// The first bundle still verifies, as of its own block.
	if again := verify("fresh, after the rotation", bundles["fresh"]); again.Fingerprint != key.Public().Fingerprint() || again.Block != fresh.Block {
		t.Fatalf("fresh after the rotation: %+v", again)
	}
	if _, err := operator.RevokeMeter(ctx, id, api.RevokeRequest{Reason: meter.ReasonKeyCompromise}); err != nil {
		t.Fatal(err)
	}
	revoked := verify("revoked", attest("revoked"))
	if revoked.Status != "revoked" || revoked.Revocation == nil || revoked.Revocation.Reason != string(meter.ReasonKeyCompromise) {
		t.Fatalf("revoked: %+v", revoked)
	}

	// The explorer's meter page offers the same bundle.
	explorerPageWhen(t, "/meters/"+id, fmt.Sprintf("%s-block-%d.attestation.json", id, revoked.Block))
	hc, base := explorerSession(t)
	resp, err := hc.Get(base + "/meters/" + id + "/attestation.json")
	if err != nil {
		t.Fatal(err)
	}
	fromExplorer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("explorer bundle: %d %v", resp.StatusCode, err)
	}
	if st := verify("revoked, from the explorer", fromExplorer); st.TxID != revoked.TxID {
		t.Fatalf("the explorer offers attestation %s, the latest is %s", st.TxID, revoked.TxID)
	}

	if out := os.Getenv(envFixtures); out != "" {
		dir := filepath.Join(out, "attestations")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range bundles {
			if err := os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "genesis.hash"), []byte(hex.EncodeToString(genesisHash(t))+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "meter.id"), []byte(id+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("bundles written to %s", dir)
	}
}
