package follow_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/follow"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

var attestations = follow.Attestations{Chaincode: wire.Namespace, Meters: []byte("attests"), Configs: []byte("configs")}

func openDB(t *testing.T, buckets ...[]byte) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "index.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

var at = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func attest(id, meterID, code string) chain.Tx {
	return chain.Tx{ID: id, Type: "ENDORSER_TRANSACTION", Time: at, Chaincode: wire.Namespace, Function: wire.TxAttestMeter,
		Args: []string{meterID}, Code: code}
}

// The latest valid attestation of each meter is kept, and the numbers of
// the configuration blocks; invalid transactions, other chaincodes and
// malformed meter IDs count for nothing.
func TestAttestations(t *testing.T) {
	db := openDB(t, attestations.Meters, attestations.Configs)
	other := attest("o", "PTB-0001", "VALID")
	other.Chaincode = "other"
	twoArgs := attest("x", "PTB-0001", "VALID")
	twoArgs.Args = append(twoArgs.Args, "more")
	chainBlocks := []*chain.Block{
		{Number: 0, Config: true, Txs: []chain.Tx{{Type: "CONFIG", Code: "VALID"}}},
		{Number: 1, Txs: []chain.Tx{attest("a1", "PTB-0001", "VALID"), attest("b1", "PTB-0002", "VALID")}},
		{Number: 2, Txs: []chain.Tx{attest("a2", "PTB-0001", "VALID"), attest("a3", "PTB-0001", "VALID")}},
		{Number: 3, Config: true, Txs: []chain.Tx{{Type: "CONFIG", Code: "VALID"}}},
		{Number: 4, Txs: []chain.Tx{attest("a4", "PTB-0001", "MVCC_READ_CONFLICT"), other, twoArgs, attest("bad", "bad id", "VALID")}},
		{Number: 5, Config: true, Txs: []chain.Tx{{Type: "CONFIG", Code: "VALID"}}},
	}
	for _, b := range chainBlocks {
		if err := db.Update(func(tx *bolt.Tx) error { return attestations.Add(tx, b) }); err != nil {
			t.Fatalf("block %d: %v", b.Number, err)
		}
	}
	err := db.View(func(tx *bolt.Tx) error {
		for meterID, want := range map[string]follow.Attested{
			"PTB-0001": {Block: 2, TxID: "a3", Time: at},
			"PTB-0002": {Block: 1, TxID: "b1", Time: at},
		} {
			got, found, err := attestations.Latest(tx, meterID)
			if err != nil || !found || got != want {
				t.Errorf("latest attestation of %s: %+v, %v, %v; want %+v", meterID, got, found, err, want)
			}
		}
		for _, meterID := range []string{"PTB-0003", "bad id"} {
			if got, found, err := attestations.Latest(tx, meterID); err != nil || found {
				t.Errorf("%s was never attested: %+v, %v, %v", meterID, got, found, err)
			}
		}
		for upTo, want := range map[uint64][]uint64{0: {0}, 2: {0}, 3: {0, 3}, 4: {0, 3}, 1 << 40: {0, 3, 5}} {
			got, err := attestations.ConfigBlocks(tx, upTo)
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("configuration blocks up to %d: %v, %v; want %v", upTo, got, err, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// An attestation stored without a time (the registry's index before the
// time was kept) reads as one with the zero time, and one of the zero time
// is stored without it.
func TestAttestedFormat(t *testing.T) {
	db := openDB(t, attestations.Meters, attestations.Configs)
	err := db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(attestations.Meters).Put([]byte("PTB-0001"), []byte(`{"block":3,"txId":"a2"}`)); err != nil {
			return err
		}
		untimed := attest("b", "PTB-0002", "VALID")
		untimed.Time = time.Time{}
		return attestations.Add(tx, &chain.Block{Number: 4, Txs: []chain.Tx{untimed}})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		if got, found, err := attestations.Latest(tx, "PTB-0001"); err != nil || !found || got != (follow.Attested{Block: 3, TxID: "a2"}) {
			t.Errorf("an attestation without time: %+v, %v, %v", got, found, err)
		}
		if v := tx.Bucket(attestations.Meters).Get([]byte("PTB-0002")); string(v) != `{"block":4,"txId":"b"}` {
			t.Errorf("stored %s", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAttestationsWithoutBuckets(t *testing.T) {
	db := openDB(t, attestations.Meters)
	err := db.Update(func(tx *bolt.Tx) error { return attestations.Add(tx, &chain.Block{Number: 0, Config: true}) })
	if err == nil {
		t.Fatal("stored without a bucket of configuration blocks")
	}
	err = db.View(func(tx *bolt.Tx) error {
		_, err := attestations.ConfigBlocks(tx, 0)
		return err
	})
	if err == nil {
		t.Fatal("read without a bucket of configuration blocks")
	}
}
