package readings_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/inter-nmi/pki/network/pkg/audit"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/readings"
)

// Attacks by two colluding NMIs whose peers endorse what modified chaincode
// answers (docs/security.md): the registry's index believes no endorser.

// A reading with a garbage signature and the highest seq, marked accepted:
// a finding, not a reading the registry answers with, and not a
// re-delivery it would answer as a duplicate of what the ledger holds.
func TestAttackForgedAcceptedReading(t *testing.T) {
	x := open(t)
	at := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	genuine := reading(t, "PTB-0001", 1, at)
	if err := x.Add(block(t, 0, "tx0", []meter.SignedMeasurement{genuine})); err != nil {
		t.Fatal(err)
	}
	forged := reading(t, "PTB-0001", 1<<64-1, at)
	forged.Signature = []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}
	packed, err := wire.Pack([]meter.SignedMeasurement{forged})
	if err != nil {
		t.Fatal(err)
	}
	result, _ := json.Marshal(wire.Outcome{Items: 1, Accepted: 1, KeyVersions: map[string]int{"PTB-0001": 1}})
	b := &chain.Block{Number: 1, Txs: []chain.Tx{{ID: "forged", Code: "VALID", Chaincode: "pki", Function: wire.TxSubmitPacked,
		Args: []string{string(packed)}, ResponsePayload: result, CreatorMSP: "CMIMSP", Endorsers: []string{"CMIMSP", "INMETROMSP"}}}}
	if err := x.Add(b); err != nil {
		t.Fatal(err)
	}
	if _, _, found, _ := x.Accepted(forged, 1<<64-1); found {
		t.Error("the forged reading is indexed as accepted")
	}
	all, _, err := x.Findings(10, nil)
	if err != nil || len(all) != 1 || all[0].Kind != audit.KindSignature || all[0].TxID != "forged" || all[0].Block != 1 {
		t.Fatalf("findings %+v %v, want one signature finding about tx forged", all, err)
	}
	recs, _, _ := x.Measurements(context.Background(), readings.Query{MeterID: "PTB-0001"})
	if len(recs) != 1 || recs[0].Seq != 1 {
		t.Errorf("the meter's readings %+v, want its genuine one only", recs)
	}
}

// A valid transaction under another name than the chaincode's is a
// finding; its readings are not indexed (and not silently skipped).
func TestAttackOtherFunctionName(t *testing.T) {
	x := open(t)
	b := block(t, 0, "tx0", []meter.SignedMeasurement{reading(t, "PTB-0001", 1, time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))})
	b.Txs[1].Function = "pki:" + wire.TxSubmitPacked
	if err := x.Add(b); err != nil {
		t.Fatal(err)
	}
	all, _, err := x.Findings(10, nil)
	if err != nil || len(all) != 1 || all[0].Kind != audit.KindFunction || all[0].TxID != "tx0" {
		t.Fatalf("findings %+v %v, want one function finding", all, err)
	}
}
