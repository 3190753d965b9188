package follow

import (
	"errors"

	"github.com/inter-nmi/pki/network/pkg/audit"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// Measurements decodes the measurements a valid transaction of the pki
// chaincode delivered, each with what the chaincode made of it: the
// transaction's arguments and the answer its endorsers signed
// (wire.Decode). A transaction that delivers none has none. One that
// cannot be decoded, written by modified chaincode or by a version this
// code cannot read, has a finding instead, and an index leaves its
// measurements out.
func Measurements(t *chain.Tx) ([]wire.Item, *audit.Finding) {
	items, err := wire.Decode(t.Function, t.Args, t.ResponsePayload)
	switch {
	case errors.Is(err, wire.ErrNotMeasurements):
		return nil, nil
	case err != nil:
		return nil, &audit.Finding{Kind: audit.KindMeasurements,
			Problem: "the measurement transaction cannot be decoded, its measurements are not indexed: " + err.Error()}
	}
	return items, nil
}
