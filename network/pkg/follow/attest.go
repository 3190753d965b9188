package follow

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// Attested is a meter's latest valid attestation transaction, whose
// bundle proves the meter's record (package proof).
type Attested struct {
	Block uint64 `json:"block"`
	TxID  string `json:"txId"`
	// Time is the transaction's time, by its submitter's clock.
	Time time.Time `json:"time,omitzero"`
}

// Attestations keeps what an attestation bundle needs, in two buckets of
// an index's own database: each meter's latest valid attestation, and the
// numbers of the configuration blocks, whose chain the bundle carries from
// block 0 to the attestation. The index creates the buckets.
type Attestations struct {
	// Chaincode is the name the pki chaincode runs under (wire.Namespace).
	Chaincode string
	// Meters is the bucket of meter ID → Attested (JSON).
	Meters []byte
	// Configs is the bucket of block number (Uint64) → empty value, one
	// for each configuration block.
	Configs []byte
}

// Add records what a block holds of them, in the index's transaction tx
// that stores the block.
func (a Attestations) Add(tx *bolt.Tx, b *chain.Block) error {
	meters, configs, err := a.buckets(tx)
	if err != nil {
		return err
	}
	if b.Config {
		if err := configs.Put(Uint64(b.Number), nil); err != nil {
			return err
		}
	}
	for i := range b.Txs {
		t := &b.Txs[i]
		if !t.Valid() || t.Chaincode != a.Chaincode || t.Function != wire.TxAttestMeter ||
			len(t.Args) != 1 || meter.ValidateMeterID(t.Args[0]) != nil {
			continue
		}
		v, err := json.Marshal(Attested{Block: b.Number, TxID: t.ID, Time: t.Time})
		if err != nil {
			return err
		}
		if err := meters.Put([]byte(t.Args[0]), v); err != nil {
			return err
		}
	}
	return nil
}

// Latest returns the meter's latest valid attestation; found is false if
// it has none.
func (a Attestations) Latest(tx *bolt.Tx, meterID string) (at Attested, found bool, err error) {
	meters, _, err := a.buckets(tx)
	if err != nil {
		return at, false, err
	}
	v := meters.Get([]byte(meterID))
	if v == nil {
		return at, false, nil
	}
	if err := json.Unmarshal(v, &at); err != nil {
		return at, false, fmt.Errorf("attestation of %s: %w", meterID, err)
	}
	return at, true, nil
}

// ConfigBlocks returns the numbers of the configuration blocks up to and
// including block, ascending, block 0 first.
func (a Attestations) ConfigBlocks(tx *bolt.Tx, block uint64) ([]uint64, error) {
	_, configs, err := a.buckets(tx)
	if err != nil {
		return nil, err
	}
	var out []uint64
	c := configs.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n := ReadUint64(k)
		if n > block {
			break
		}
		out = append(out, n)
	}
	return out, nil
}

func (a Attestations) buckets(tx *bolt.Tx) (meters, configs *bolt.Bucket, err error) {
	meters, configs = tx.Bucket(a.Meters), tx.Bucket(a.Configs)
	if meters == nil || configs == nil {
		return nil, nil, fmt.Errorf("the index has no bucket %q or %q", a.Meters, a.Configs)
	}
	return meters, configs, nil
}
