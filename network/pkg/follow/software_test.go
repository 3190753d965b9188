package follow_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/inter-nmi/pki/network/pkg/audit"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/follow"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

func TestSoftwareUpdate(t *testing.T) {
	key, err := meter.GenerateKey(meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	su, err := meter.SignUpdate(key, meter.UpdateStatement{MeterID: "PTB-0001", Time: "2026-12-07T10:00:00Z", Result: meter.UpdateSuccess,
		From: meter.Software{ID: "1.0.0", Checksum: "sha256:aaaaaaaa"}, To: meter.Software{ID: "1.1.0", Checksum: "sha256:bbbbbbbb"}})
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"PTB-0001", base64.StdEncoding.EncodeToString(su.Statement), base64.StdEncoding.EncodeToString(su.Signature)}
	outcome := func(o meter.UpdateOutcome) []byte {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	refused := outcome(meter.UpdateOutcome{MeterID: "PTB-0001", Outcome: meter.UpdateRefused, Code: meter.CodeSoftwareNotApproved, Reason: "not approved", TxID: "tx"})
	accepted := outcome(meter.UpdateOutcome{MeterID: "PTB-0001", Outcome: meter.UpdateAccepted, Report: &meter.UpdateReport{MeterID: "PTB-0001", Number: 1}, TxID: "tx"})
	for _, tc := range []struct {
		name    string
		tx      chain.Tx
		outcome string
		finding string
	}{
		{"not an update", chain.Tx{Function: wire.TxSubmitMeasurement, Args: args}, "", ""},
		{"refused", chain.Tx{Function: wire.TxSubmitSoftwareUpdate, Args: args, ResponsePayload: refused}, meter.UpdateRefused, ""},
		{"accepted", chain.Tx{Function: wire.TxSubmitSoftwareUpdate, Args: args, ResponsePayload: accepted}, meter.UpdateAccepted, ""},
		{"a statement that is not one, refused", chain.Tx{Function: wire.TxSubmitSoftwareUpdate,
			Args: []string{"PTB-0001", base64.StdEncoding.EncodeToString([]byte("{}")), args[2]}, ResponsePayload: refused}, meter.UpdateRefused, ""},
		{"arguments missing", chain.Tx{Function: wire.TxSubmitSoftwareUpdate, Args: args[:2], ResponsePayload: refused}, "", "with 2 arguments"},
		{"not a meter ID", chain.Tx{Function: wire.TxSubmitSoftwareUpdate, Args: []string{"<meter>", args[1], args[2]}, ResponsePayload: refused}, "", "not a meter ID"},
		{"not base64", chain.Tx{Function: wire.TxSubmitSoftwareUpdate, Args: []string{"PTB-0001", "%%", args[2]}, ResponsePayload: refused}, "", "base64"},
		{"no outcome", chain.Tx{Function: wire.TxSubmitSoftwareUpdate, Args: args, ResponsePayload: []byte("null, and more")}, "", "result"},
		{"the outcome of another meter", chain.Tx{Function: wire.TxSubmitSoftwareUpdate, Args: args,
			ResponsePayload: outcome(meter.UpdateOutcome{MeterID: "PTB-0002", Outcome: meter.UpdateRefused})}, "", `meter "PTB-0002"`},
		{"accepted without its log entry", chain.Tx{Function: wire.TxSubmitSoftwareUpdate, Args: args,
			ResponsePayload: outcome(meter.UpdateOutcome{MeterID: "PTB-0001", Outcome: meter.UpdateAccepted})}, "", "without the log entry"},
		{"an outcome of no kind", chain.Tx{Function: wire.TxSubmitSoftwareUpdate, Args: args,
			ResponsePayload: outcome(meter.UpdateOutcome{MeterID: "PTB-0001", Outcome: "maybe"})}, "", `"maybe"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, f := follow.SoftwareUpdate(&tc.tx)
			switch {
			case tc.finding != "":
				if f == nil || f.Kind != audit.KindStatement || !strings.Contains(f.Problem, tc.finding) || u != nil {
					t.Fatalf("%+v, %+v; want a finding saying %q", u, f, tc.finding)
				}
			case tc.outcome == "":
				if f != nil || u != nil {
					t.Fatalf("%+v, %+v", u, f)
				}
			default:
				if f != nil || u == nil || u.Outcome.Outcome != tc.outcome || u.Signed.MeterID != "PTB-0001" {
					t.Fatalf("%+v, %+v", u, f)
				}
				if wantParsed := tc.name != "a statement that is not one, refused"; u.Parsed != wantParsed ||
					(wantParsed && u.Statement.To.ID != "1.1.0") {
					t.Errorf("statement %+v parsed %v", u.Statement, u.Parsed)
				}
			}
		})
	}
}
