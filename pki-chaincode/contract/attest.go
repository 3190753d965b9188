package contract

import (
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/state"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// attestMark is what an attestation writes: its own ID under att/<id>.
// Two attestations of a meter in one block read and write the same key, so
// the second is invalidated (MVCC): at most one per meter per block.
type attestMark struct {
	TxID string `json:"txId"`
	At   string `json:"at"`
}

// AttestMeter returns the meter's record for an attestation bundle. Any
// client but an auditor may ask; it changes nothing about the meter.
func (r *Registry) AttestMeter(ctx contractapi.TransactionContextInterface, meterID string) (*wire.Attestation, error) {
	if _, err := writer(ctx, "request attestations"); err != nil {
		return nil, err
	}
	if err := meter.ValidateMeterID(meterID); err != nil {
		return nil, err
	}
	m, err := loadMeter(ctx, meterID)
	if err != nil {
		return nil, err
	}
	t, err := r.newTx(ctx)
	if err != nil {
		return nil, err
	}
	// Read before writing, so that a second attestation in the same block
	// conflicts with the first.
	if _, _, err := state.Get[attestMark](ctx, wire.AttestKey(meterID)); err != nil {
		return nil, err
	}
	if err := state.Put(ctx, wire.AttestKey(meterID), attestMark{TxID: t.id, At: t.stamp()}); err != nil {
		return nil, err
	}
	return &wire.Attestation{Type: wire.AttestationType, Meter: m, TxID: t.id, At: t.stamp()}, nil
}
