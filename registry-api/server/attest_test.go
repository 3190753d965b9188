package server

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/proof"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

func emptyBlocks(from, to uint64) []*chain.Block {
	var out []*chain.Block
	for n := from; n <= to; n++ {
		out = append(out, &chain.Block{Number: n, Config: n == 0})
	}
	return out
}

func bundleOf(t *testing.T, body []byte) *proof.Bundle {
	t.Helper()
	b, err := proof.Parse(body)
	if err != nil {
		t.Fatalf("the answer is no bundle: %v\n%s", err, body)
	}
	return b
}

// The registry assembles bundles from its peer's blocks: the attestation's
// block, block 0 and the configuration blocks its index knows; at most one
// attestation per meter per block.
func TestAttestations(t *testing.T) {
	f := newFixture(t)
	problemOf(t, f.do(get("/api/v1/meters/PTB-0001/attestations/latest", auditor)), http.StatusNotFound, "METER_NOT_FOUND")

	attest := chain.Tx{ID: "tx-att", Code: "VALID", Chaincode: "pki", Function: wire.TxAttestMeter, Args: []string{"PTB-0001"}}
	f.index(t, emptyBlocks(0, 4)...)
	f.index(t, &chain.Block{Number: 5, Txs: []chain.Tx{attest}})

	rec := f.do(get("/api/v1/meters/PTB-0001/attestations/latest", customer))
	if rec.Code != http.StatusOK {
		t.Fatalf("latest: %d %s", rec.Code, rec.Body)
	}
	b := bundleOf(t, rec.Body.Bytes())
	// The bundle carries the peer's genesis block, its signed parts.
	raw, err := os.ReadFile(filepath.Join(testdata, "blocks", "0000.block"))
	if err != nil {
		t.Fatal(err)
	}
	var want, got common.Block
	if err := proto.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(b.Genesis, &got); err != nil {
		t.Fatal(err)
	}
	sameGenesis := proto.Equal(got.Header, want.Header) && proto.Equal(got.Data, want.Data)
	if b.MeterID != "PTB-0001" || b.TxID != "tx-att" || b.Channel != "metrology" || !sameGenesis || len(b.Config) != 0 || len(b.Block) == 0 {
		t.Fatalf("bundle %s %s %s genesis=%v config=%d block=%d bytes", b.MeterID, b.TxID, b.Channel, sameGenesis, len(b.Config), len(b.Block))
	}
	bare := bundleOf(t, f.do(get("/api/v1/meters/PTB-0001/attestations/latest?chain=false", customer)).Body.Bytes())
	if bare.Genesis != nil || bare.Config != nil || !bytes.Equal(bare.Block, b.Block) {
		t.Fatal("chain=false still carries the configuration chain")
	}
	problemOf(t, f.do(get("/api/v1/meters/PTB-0001/attestations/latest?chain=maybe", customer)), http.StatusBadRequest, "MALFORMED")

	// A new attestation is made even though the meter was attested in the
	// newest block the registry has read: the meter may have changed in a
	// block it has not (the fake commits the new one in block 101).
	f.index(t, emptyBlocks(6, 101)...)
	rec = f.do(post("/api/v1/meters/PTB-0001/attestations", utility, nil))
	if rec.Code != http.StatusCreated {
		t.Fatalf("attest: %d %s", rec.Code, rec.Body)
	}
	fresh := bundleOf(t, rec.Body.Bytes())
	calls := f.ledger.named(wire.TxAttestMeter)
	if len(calls) != 1 || calls[0].Tx != wire.TxAttestMeter || calls[0].Args[0] != "PTB-0001" || fresh.TxID != "tx001" {
		t.Fatalf("calls %+v, bundle of %s", calls, fresh.TxID)
	}
	if rec.Header().Get("Location") != "/api/v1/meters/PTB-0001/attestations/latest" {
		t.Errorf("Location %q", rec.Header().Get("Location"))
	}
	problemOf(t, f.do(post("/api/v1/meters/PTB%200001/attestations", utility, nil)), http.StatusBadRequest, "MALFORMED")
}
