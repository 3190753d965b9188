package follow

import (
	"encoding/json"
	"fmt"

	"github.com/inter-nmi/pki/network/pkg/audit"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// Update is a software update statement a valid SubmitSoftwareUpdate
// transaction delivered, with what the chaincode made of it.
type Update struct {
	// Signed is the statement as delivered: the meter it was delivered
	// for, the signed bytes and the signature.
	Signed meter.SignedUpdate
	// Statement is the signed bytes parsed; zero (Parsed false) when they
	// do not parse, which the refusal then says.
	Statement meter.UpdateStatement
	Parsed    bool
	// Outcome is the chaincode's answer as its endorsers signed it.
	Outcome meter.UpdateOutcome
}

// SoftwareUpdate decodes the statement a valid transaction of the pki
// chaincode delivered, with the outcome its endorsers signed: its
// arguments (meter ID, statement and signature in base64) and its answer
// (meter.UpdateOutcome). A transaction that delivers none has none (nil
// and no finding). One that cannot be decoded, written by modified
// chaincode or by a version this code cannot read, has a finding instead,
// and an index leaves its statement out. The outcome is the endorsers'
// word: an accepted statement is believed only with its log entry
// (audit.SoftwareLog and audit.Statement).
func SoftwareUpdate(t *chain.Tx) (*Update, *audit.Finding) {
	if t.Function != wire.TxSubmitSoftwareUpdate {
		return nil, nil
	}
	u, err := decodeUpdate(t.Args, t.ResponsePayload)
	if err != nil {
		return nil, &audit.Finding{Kind: audit.KindStatement,
			Problem: "the software update transaction cannot be decoded, its statement is not indexed: " + err.Error()}
	}
	return u, nil
}

func decodeUpdate(args []string, result []byte) (*Update, error) {
	if len(args) != 3 {
		return nil, fmt.Errorf("%s with %d arguments", wire.TxSubmitSoftwareUpdate, len(args))
	}
	if meter.ValidateMeterID(args[0]) != nil {
		return nil, fmt.Errorf("%q is not a meter ID", cutText(args[0]))
	}
	su, err := meter.SignedUpdateFromBase64(args[0], args[1], args[2])
	if err != nil {
		return nil, err
	}
	u := &Update{Signed: su}
	if err := json.Unmarshal(result, &u.Outcome); err != nil {
		return nil, fmt.Errorf("%s result: %w", wire.TxSubmitSoftwareUpdate, err)
	}
	switch o := u.Outcome; {
	case o.MeterID != su.MeterID:
		return nil, fmt.Errorf("the outcome is of meter %q, the statement was delivered for meter %q", cutText(o.MeterID), cutText(su.MeterID))
	case o.Outcome == meter.UpdateAccepted && o.Report == nil:
		return nil, fmt.Errorf("the statement is marked accepted without the log entry it made")
	case o.Outcome != meter.UpdateAccepted && o.Outcome != meter.UpdateRefused && o.Outcome != meter.UpdateDuplicate:
		return nil, fmt.Errorf("the outcome %q is none of accepted, refused or duplicate", cutText(o.Outcome))
	}
	if st, err := meter.ParseStatement(su.Statement); err == nil {
		u.Statement, u.Parsed = st, true
	}
	return u, nil
}

// cutText bounds what a finding quotes of a forger's text.
func cutText(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
