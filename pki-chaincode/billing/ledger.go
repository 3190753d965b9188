package billing

import (
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/state"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// writer admits any client that is not read-only: the statements' signatures,
// not the submitter, carry the parties' authority.
func writer(ctx contractapi.TransactionContextInterface, action string) error {
	role, _, err := ctx.GetClientIdentity().GetAttributeValue(wire.RoleAttribute)
	if err != nil {
		return meter.Errorf(meter.CodeForbidden, "cannot read the submitter's role: %v", err)
	}
	if role == wire.RoleAuditor {
		return meter.Errorf(meter.CodeForbidden, "auditors are read-only and may not %s", action)
	}
	return nil
}

// tx carries what a write records of its transaction: its ID and its time,
// the only clock an endorsed transaction may read.
type tx struct {
	id, at string
}

func (b *Billing) newTx(ctx contractapi.TransactionContextInterface) (tx, error) {
	t, err := state.TxTime(ctx, b.clock)
	if err != nil {
		return tx{}, err
	}
	return tx{id: ctx.GetStub().GetTxID(), at: t.Format(time.RFC3339Nano)}, nil
}

// maxRequest bounds a request: statements, a PEM key and signatures.
const maxRequest = 64 << 10

func decodeStrict(s string, v any) error { return state.DecodeRequest(s, v, maxRequest) }

func malformed(format string, args ...any) error {
	return meter.Errorf(meter.CodeMalformed, format, args...)
}
