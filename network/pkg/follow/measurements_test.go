package follow_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inter-nmi/pki/network/pkg/audit"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/follow"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// realBlock parses one of the real blocks 0-12 (testdata/blocks at the
// repository root).
func realBlock(t *testing.T, n int) *chain.Block {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "blocks", fmt.Sprintf("%04d.block", n)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := chain.ParseBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMeasurementsOfRealChain(t *testing.T) {
	// Block 6 delivers one reading, which the chaincode accepted.
	items, f := follow.Measurements(&realBlock(t, 6).Txs[0])
	if f != nil || len(items) != 1 || items[0].Result.Outcome != meter.OutcomeAccepted || items[0].Measurement.MeterID == "" {
		t.Fatalf("block 6: %+v, %+v", items, f)
	}
	// Block 7's concentrator batch was written by an earlier chaincode
	// version, whose result package wire no longer reads.
	if items, f := follow.Measurements(&realBlock(t, 7).Txs[0]); f == nil || f.Kind != audit.KindMeasurements || items != nil {
		t.Fatalf("block 7: %+v, %+v", items, f)
	}
	// A registration delivers none.
	if items, f := follow.Measurements(&realBlock(t, 5).Txs[0]); f != nil || items != nil {
		t.Fatalf("block 5: %+v, %+v", items, f)
	}
}

func TestMeasurements(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tx      chain.Tx
		finding string
	}{
		{"not a measurement transaction", chain.Tx{Function: wire.TxRegisterMeter, Args: []string{"{}"}}, ""},
		{"a lifecycle transaction", chain.Tx{Chaincode: "_lifecycle", Function: "CommitChaincodeDefinition"}, ""},
		{"arguments missing", chain.Tx{Function: wire.TxSubmitMeasurement}, "with 0 arguments"},
		{"a batch that is not one", chain.Tx{Function: wire.TxSubmitMeasurements, Args: []string{"[{"}, ResponsePayload: []byte("{}")}, "batch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items, f := follow.Measurements(&tc.tx)
			if tc.finding == "" {
				if f != nil || items != nil {
					t.Fatalf("%+v, %+v", items, f)
				}
				return
			}
			if f == nil || f.Kind != audit.KindMeasurements || !strings.Contains(f.Problem, tc.finding) || items != nil {
				t.Fatalf("%+v, %+v; want a finding saying %q", items, f, tc.finding)
			}
		})
	}
}
