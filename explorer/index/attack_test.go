package index_test

import (
	"testing"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/explorer/index/synth"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// Attacks by two colluding NMIs whose peers endorse what modified chaincode
// answers (docs/security.md). The explorer trusts no endorser: each test
// commits what the colluders can, and shows the auditor a finding.

// forgedBatch is a valid-looking packed batch whose outcome marks every
// item accepted, endorsed by two colluding NMIs.
func forgedBatch(t *testing.T, c *synth.Chain, items []meter.SignedMeasurement, keyVersion int) *chain.Block {
	t.Helper()
	packed, err := wire.Pack(items)
	if err != nil {
		t.Fatal(err)
	}
	out := wire.Outcome{Items: len(items), Accepted: len(items), KeyVersions: map[string]int{}}
	for _, sm := range items {
		out.KeyVersions[sm.MeterID] = keyVersion
	}
	return c.Tx(chain.Tx{Type: "ENDORSER_TRANSACTION", CreatorMSP: "CMIMSP", CreatorRole: wire.RoleIngest, Chaincode: wire.Namespace,
		Function: wire.TxSubmitPacked, Args: []string{string(packed)}, ResponsePayload: synth.Value(out),
		Endorsers: []string{"CMIMSP", "INMETROMSP"},
		Writes:    []chain.Write{{Namespace: wire.Namespace, Key: wire.GuardKey(items[0].MeterID), Value: []byte{1, 0xff}}}})
}

// Two NMIs commit a reading with a garbage signature and the highest seq,
// marked accepted: the explorer shows a finding and does not count the
// reading as accepted. Before, it indexed it as the meter's newest reading
// and the meter's genuine readings, refused as replays from then on,
// showed no reason.
func TestAttackForgedAcceptedReading(t *testing.T) {
	s, _ := open(t)
	c := synth.New(start)
	add(t, s, c.Register("PTBMSP", 2))
	id := c.Meters()[0]
	payload, err := meter.Measurement{MeterID: id, Seq: 1<<64 - 1, Time: "2026-11-01T00:00:00Z", Value: "1", Unit: "kWh"}.Payload()
	if err != nil {
		t.Fatal(err)
	}
	garbage := meter.SignedMeasurement{MeterID: id, Payload: payload, Signature: []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}}
	b := forgedBatch(t, c, []meter.SignedMeasurement{garbage}, 1)
	add(t, s, b)
	wantFinding(t, s, b, index.FindingSignature, wire.GuardKey(id), "marked accepted", "does not verify")
	// Signed by another meter's key, or claimed with a key version not in
	// force: findings too.
	other := c.Meters()[1]
	stolen, err := meter.Sign(c.Key(other), meter.Measurement{MeterID: id, Seq: 7, Time: "2026-11-01T00:00:00Z", Value: "1", Unit: "kWh"})
	if err != nil {
		t.Fatal(err)
	}
	b2 := forgedBatch(t, c, []meter.SignedMeasurement{stolen}, 1)
	add(t, s, b2)
	wantFinding(t, s, b2, index.FindingSignature, wire.GuardKey(id), "does not verify")
	genuine, err := meter.Sign(c.Key(id), meter.Measurement{MeterID: id, Seq: 8, Time: "2026-11-01T00:00:00Z", Value: "1", Unit: "kWh"})
	if err != nil {
		t.Fatal(err)
	}
	b3 := forgedBatch(t, c, []meter.SignedMeasurement{genuine}, 2)
	add(t, s, b3)
	wantFinding(t, s, b3, index.FindingSignature, wire.GuardKey(id), "key version 2", "version 1 is in force")
	if totals, _ := s.Totals(); totals.Accepted != 0 || totals.Findings != 3 {
		t.Errorf("totals %+v, want nothing accepted and three findings", totals)
	}
}

// A valid transaction under a name the chaincode does not answer by (the
// contract's prefix, a lower-case letter) is a finding, not skipped.
func TestAttackOtherFunctionName(t *testing.T) {
	s, _ := open(t)
	c := synth.New(start)
	add(t, s, c.Register("PTBMSP", 1))
	batch := c.Measurements("PTBMSP", c.Meters(), 2, 0)
	add(t, s, batch)
	for _, fn := range []string{"pki:" + wire.TxSubmitPacked, "submitMeasurementsPacked"} {
		tx := batch.Txs[0]
		tx.ID, tx.Function = "", fn
		b := c.Tx(tx)
		add(t, s, b)
		wantFinding(t, s, b, index.FindingFunction, "", "no transaction named", fn)
	}
}
