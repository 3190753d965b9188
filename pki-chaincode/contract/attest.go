package contract

import (
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/state"
)

// AttestationType marks an Attestation, so that no other signed response
// can be taken for one.
const AttestationType = "meterAttestation"

// Attestation is what AttestMeter returns: the meter's record as the
// endorsing peers read it. Their endorsements sign it together with the
// read of meter/<id> at its version, and the ordering puts it in a block:
// carried with that block and the channel's configuration chain, it is a
// certificate of the key binding anyone can check offline.
type Attestation struct {
	Type  string       `json:"type"`
	Meter *meter.Meter `json:"meter"`
	// TxID and At are the attestation transaction's ID and time (the
	// proposal's timestamp, within 5 minutes of each endorser's clock).
	TxID string `json:"txId"`
	At   string `json:"at"`
}

// attestMark is what an attestation writes: its own ID under att/<id>.
// Two attestations of a meter in one block read and write the same key, so
// the second is invalidated (MVCC): at most one per meter per block.
type attestMark struct {
	TxID string `json:"txId"`
	At   string `json:"at"`
}

func attestKey(id string) string { return "att/" + id }

// AttestMeter returns the meter's record for an attestation bundle. Any
// client but an auditor may ask; it changes nothing about the meter.
func (r *Registry) AttestMeter(ctx contractapi.TransactionContextInterface, meterID string) (*Attestation, error) {
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
	if _, _, err := state.Get[attestMark](ctx, attestKey(meterID)); err != nil {
		return nil, err
	}
	if err := state.Put(ctx, attestKey(meterID), attestMark{TxID: t.id, At: t.stamp()}); err != nil {
		return nil, err
	}
	return &Attestation{Type: AttestationType, Meter: m, TxID: t.id, At: t.stamp()}, nil
}
