package web

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/explorer/index/synth"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/proof"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// The meter page offers the latest attestation's bundle, which the explorer
// assembles from its peer's blocks: it verifies offline. The peer here
// serves the real blocks of a bundle made on a test consortium.
func TestAttestationBundle(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "attestations", "fresh.json"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := proof.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	peerBlocks := map[uint64]*common.Block{}
	for _, raw := range append(append([][]byte{src.Genesis}, src.Config...), src.Block) {
		var b common.Block
		if err := proto.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		peerBlocks[b.Header.Number] = &b
	}
	attested := uint64(0)
	for n := range peerBlocks {
		attested = max(attested, n)
	}

	// An index of as many blocks: the meter registered in block 1, the
	// configuration blocks where the real ones are, the attestation in the
	// real one's block.
	c := synth.New(start)
	var blocks []*chain.Block
	for n := uint64(0); n <= attested; n++ {
		var b *chain.Block
		switch _, config := peerBlocks[n]; {
		case n == 1:
			b = c.Tx(chain.Tx{Type: "ENDORSER_TRANSACTION", CreatorMSP: "PTBMSP", CreatorRole: "registrar", Chaincode: "pki", Function: "RegisterMeter",
				Writes: []chain.Write{{Namespace: "pki", Key: "meter/" + src.MeterID, Value: synth.Value(meter.Meter{ID: src.MeterID, NMI: "PTBMSP",
					Curve: meter.P256, Fingerprint: strings.Repeat("ab", 32), KeyVersion: 1, Status: meter.StatusActive})}}})
		case n == attested:
			b = c.Tx(chain.Tx{ID: src.TxID, Type: "ENDORSER_TRANSACTION", CreatorMSP: "CMIMSP", CreatorRole: "registrar", Chaincode: "pki",
				Function: wire.TxAttestMeter, Args: []string{src.MeterID}})
		case config:
			b = c.Tx(chain.Tx{Type: "CONFIG"})
			b.Config = true
		default:
			b = c.Tx(chain.Tx{Type: "ENDORSER_TRANSACTION", Chaincode: "other"})
		}
		blocks = append(blocks, b)
	}
	reads := 0
	f := newFixtureWith(t, nil, blocks, func(_ context.Context, n uint64) (*common.Block, error) {
		reads++
		if b := peerBlocks[n]; b != nil {
			return b, nil
		}
		return nil, errors.New("the peer has no such block")
	})
	cookie := f.session(t)

	_, page := f.get(t, "/meters/"+src.MeterID, cookie)
	for _, want := range []string{`id="certificate"`, fmt.Sprintf(`href="/blocks/%d"`, attested), `href="/meters/` + src.MeterID + `/attestation.json" download`,
		fmt.Sprintf(`pki verify-proof %s-block-%d.attestation.json --genesis-hash %s`, src.MeterID, attested, genesisHash(t))} {
		if !strings.Contains(page, want) {
			t.Errorf("meter page lacks %q", want)
		}
	}

	res, body := f.get(t, "/meters/"+src.MeterID+"/attestation.json", cookie)
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Disposition"), fmt.Sprintf("%s-block-%d.attestation.json", src.MeterID, attested)) {
		t.Fatalf("bundle: %d %v\n%.300s", res.StatusCode, res.Header, body)
	}
	b, err := proof.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := hex.DecodeString(f.srv.genesis)
	st, err := proof.Verify(b, proof.Options{GenesisHash: hash, Now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), MaxAge: time.Hour, MeterID: src.MeterID})
	if err != nil {
		t.Fatal(err)
	}
	if st.TxID != src.TxID || len(b.Config) != len(src.Config) {
		t.Errorf("statement %s; %d configuration blocks, want %d", st, len(b.Config), len(src.Config))
	}
	_, bare := f.get(t, "/meters/"+src.MeterID+"/attestation.json?chain=false", cookie)
	if nb, err := proof.Parse([]byte(bare)); err != nil || nb.Genesis != nil || nb.Config != nil {
		t.Errorf("chain=false: %v", err)
	}

	// Signed out: refused. Never attested, or a bad ID: a clear answer.
	if res, _ := f.get(t, "/meters/"+src.MeterID+"/attestation.json", nil); res.StatusCode != 401 {
		t.Errorf("signed out: %d", res.StatusCode)
	}
	if res, body := f.get(t, "/meters/SYN-0000099/attestation.json", cookie); res.StatusCode != 404 || !strings.Contains(body, "no attestation on the ledger yet") {
		t.Errorf("never attested: %d %.200s", res.StatusCode, body)
	}
	if res, _ := f.get(t, "/meters/"+src.MeterID+"/attestation.json?chain=maybe", cookie); res.StatusCode != 400 {
		t.Errorf("chain=maybe: %d", res.StatusCode)
	}
}
