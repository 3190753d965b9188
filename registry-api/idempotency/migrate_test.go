package idempotency

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// firstLayout writes a database as the store did before records were
// binary: each record as JSON, each transaction with the time it was
// recorded.
func firstLayout(t *testing.T, path string, records map[string]any, txs map[string][]byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		rb, err := tx.CreateBucket(bucket)
		if err != nil {
			return err
		}
		tb, err := tx.CreateBucket(txBucket)
		if err != nil {
			return err
		}
		for k, r := range records {
			v, ok := r.([]byte)
			if !ok {
				if v, err = json.Marshal(r); err != nil {
					return err
				}
			}
			if err := rb.Put([]byte(k), v); err != nil {
				return err
			}
		}
		for k, v := range txs {
			if err := tb.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenConvertsTheFirstLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	c := &clock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	stored := c.t.Add(-time.Hour).Unix()
	final := answer("fp1")
	final.Stored = stored
	pending := Response{Fingerprint: "fp2", Stored: stored, Pending: map[int][]byte{0: []byte(`{"role":"ingest","txId":"tx1","item":-1}`)}}
	tx := random(3000)
	many := map[string]any{"final": final, "pending": pending, "unreadable": []byte("not JSON")}
	for i := range 2*migrateChunk + 1 {
		r := answer("fp")
		r.Stored = stored
		many[fmt.Sprintf("more-%d", i)] = r
	}
	firstLayout(t, path, many, map[string][]byte{"tx1": storedTx(stored, tx), "damaged": {1, 2}})

	s := openAt(t, path, c)
	got := begin(t, s, "final", "fp1")
	if got == nil || !reflect.DeepEqual(*got, final) {
		t.Errorf("a final answer of the first layout reads %+v, want %+v", got, final)
	}
	if _, err := s.Begin("final", "fp2"); err == nil {
		t.Error("a key of the first layout answered another request")
	}
	got = begin(t, s, "pending", "fp2")
	if got == nil || got.Final() || !reflect.DeepEqual(got.Pending, pending.Pending) {
		t.Fatalf("a pending record of the first layout reads %+v, want %+v", got, pending)
	}
	if b, err := s.Transaction("tx1"); err != nil || string(b) != string(tx) {
		t.Fatalf("its transaction: %v", err)
	}
	// The first layout never said which transaction a part refers to: its
	// bytes stay until Retention, as they did then.
	finish(t, s, "pending", answer("fp2"))
	if !hasTx(t, s, "tx1") {
		t.Error("a transaction of the first layout went before Retention")
	}
	if r := begin(t, s, "more-2000", "fp"); r == nil {
		t.Error("a record of the third chunk was not converted")
	}
	checkLive(t, s)
	var records int
	s.view(func(tx *bolt.Tx) error {
		records = tx.Bucket(bucket).Stats().KeyN
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			if _, err := decodeRecord(v); err != nil {
				t.Errorf("record %q is not converted: %v", k, err)
			}
			return nil
		})
	})
	if want := len(many) - 1; records != want {
		t.Errorf("%d records after conversion, want %d (the unreadable one deleted)", records, want)
	}
	if hasTx(t, s, "damaged") {
		t.Error("a transaction without its time is kept")
	}

	// Opened again, nothing is converted twice.
	s.Close()
	s = openAt(t, path, c)
	if r := begin(t, s, "final", "fp1"); r == nil || !reflect.DeepEqual(*r, final) {
		t.Errorf("after reopening: %+v", r)
	}
	c.t = c.t.Add(Retention - time.Minute)
	p, err := s.Prune()
	if err != nil || p.Expired != len(many)-2 || p.Live != checkLive(t, s) {
		t.Errorf("Prune = %+v, %v; want all %d records of the first layout expired, only pending's answer left", p, err, len(many)-2)
	}
	if hasTx(t, s, "tx1") {
		t.Error("a transaction of the first layout is kept after Retention")
	}
}

func TestOpenRefusesANewerLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.update(func(tx *bolt.Tx) error { return tx.Bucket(metaBucket).Put(layoutKey, []byte{layout + 1}) })
	s.Close()
	if s, err := Open(path); err == nil {
		s.Close()
		t.Error("a database of a newer layout was opened")
	}
}
