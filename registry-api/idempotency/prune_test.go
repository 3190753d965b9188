package idempotency

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// checkLive compares the store's count of live bytes with what its buckets
// hold.
func checkLive(t *testing.T, s *Store) int64 {
	t.Helper()
	var counted, held int64
	err := s.view(func(tx *bolt.Tx) error {
		counted = int64(binary.BigEndian.Uint64(tx.Bucket(metaBucket).Get(liveKey)))
		for _, name := range [][]byte{bucket, txBucket, refBucket, timeBucket} {
			tx.Bucket(name).ForEach(func(k, v []byte) error {
				held += int64(len(k) + len(v))
				return nil
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if counted != held {
		t.Errorf("the store counts %d live bytes; its buckets hold %d", counted, held)
	}
	return held
}

func recordTx(t *testing.T, s *Store, txID string, txBytes []byte, entries ...Entry) {
	t.Helper()
	if err := s.Record(entries, txID, txBytes); err != nil {
		t.Fatal(err)
	}
}

// hasTx reports whether the bytes of txID are kept.
func hasTx(t *testing.T, s *Store, txID string) bool {
	t.Helper()
	_, err := s.Transaction(txID)
	return err == nil
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestTransactionKeptWhileARequestWaitsForIt(t *testing.T) {
	s, _ := newStore(t)
	begin(t, s, "k", "fp")
	tx := random(5000)
	recordTx(t, s, "tx1", tx, Entry{Key: "k", Fingerprint: "fp", Ref: []byte(`{"txId":"tx1"}`)})
	// The request failed (a timeout after sending): its retry needs the
	// transaction.
	s.Abandon("k")
	r := begin(t, s, "k", "fp")
	if r == nil || r.Final() || string(r.Pending[0]) != `{"txId":"tx1"}` {
		t.Fatalf("the retry found %+v", r)
	}
	if got, err := s.Transaction("tx1"); err != nil || string(got) != string(tx) {
		t.Fatalf("the retry cannot read its transaction: %v", err)
	}
	finish(t, s, "k", answer("fp"))
	if hasTx(t, s, "tx1") {
		t.Error("the transaction's bytes are kept after the request's final answer")
	}
	checkLive(t, s)
}

func TestGroupedTransactionKeptUntilEveryAnswer(t *testing.T) {
	s, _ := newStore(t)
	begin(t, s, "a", "fpA")
	begin(t, s, "b", "fpB")
	recordTx(t, s, "group", random(300),
		Entry{Key: "a", Fingerprint: "fpA", Ref: []byte("item 0")},
		Entry{Key: "b", Fingerprint: "fpB", Ref: []byte("item 1")})
	finish(t, s, "a", answer("fpA"))
	if !hasTx(t, s, "group") {
		t.Fatal("the group's transaction went with the first answer; b still waits for it")
	}
	finish(t, s, "b", answer("fpB"))
	if hasTx(t, s, "group") {
		t.Error("the group's transaction is kept after every answer")
	}
	checkLive(t, s)
}

func TestRecordingAnotherTransactionReleasesTheFormer(t *testing.T) {
	s, _ := newStore(t)
	begin(t, s, "k", "fp")
	recordTx(t, s, "tx1", random(100), Entry{Key: "k", Fingerprint: "fp", Part: 0, Ref: []byte("1")})
	// Committed as invalid, part 0 is sent anew; part 1 is sent for the
	// first time.
	recordTx(t, s, "tx2", random(100), Entry{Key: "k", Fingerprint: "fp", Part: 0, Ref: []byte("2")})
	recordTx(t, s, "tx3", random(100), Entry{Key: "k", Fingerprint: "fp", Part: 1, Ref: []byte("3")})
	if hasTx(t, s, "tx1") || !hasTx(t, s, "tx2") || !hasTx(t, s, "tx3") {
		t.Errorf("kept tx1 %v, tx2 %v, tx3 %v; want only tx2 and tx3", hasTx(t, s, "tx1"), hasTx(t, s, "tx2"), hasTx(t, s, "tx3"))
	}
	s.Abandon("k")
	if r := begin(t, s, "k", "fp"); r == nil || string(r.Pending[0]) != "2" || string(r.Pending[1]) != "3" {
		t.Errorf("the retry found %+v", r)
	}
	checkLive(t, s)
}

func TestExpiredRequestReleasesItsTransaction(t *testing.T) {
	s, c := newStore(t)
	begin(t, s, "k", "fp1")
	recordTx(t, s, "tx1", random(100), Entry{Key: "k", Fingerprint: "fp1", Ref: []byte("1")})
	s.Abandon("k")
	c.t = c.t.Add(Retention)
	// Past Retention the key is new, for another request too: its record
	// replaces the old one, whose transaction goes.
	if r := begin(t, s, "k", "fp2"); r != nil {
		t.Fatalf("an expired record: %+v", r)
	}
	recordTx(t, s, "tx2", random(100), Entry{Key: "k", Fingerprint: "fp2", Ref: []byte("2")})
	if hasTx(t, s, "tx1") || !hasTx(t, s, "tx2") {
		t.Errorf("kept tx1 %v, tx2 %v; want tx2 only", hasTx(t, s, "tx1"), hasTx(t, s, "tx2"))
	}
	s.Abandon("k")
	c.t = c.t.Add(Retention)
	if p, err := s.Prune(); err != nil || p.Expired != 1 || p.Live != 0 {
		t.Errorf("Prune = %+v, %v; want 1 expired, nothing left", p, err)
	}
	if hasTx(t, s, "tx2") {
		t.Error("an expired request's transaction is kept")
	}
	checkLive(t, s)
}

func TestMaxBytesPrunesOldestFirst(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	const max = 64 << 10
	s := openAt(t, filepath.Join(t.TempDir(), "idempotency.db"), c, WithMaxBytes(max))
	const n = 200
	key := func(i int) string { return fmt.Sprintf("key-%03d", i) }
	for i := range n {
		c.t = c.t.Add(time.Second)
		begin(t, s, key(i), "fp")
		if i%10 == 0 {
			// Some requests wait for their transaction: those bytes count.
			recordTx(t, s, fmt.Sprintf("tx-%d", i), random(3000), Entry{Key: key(i), Fingerprint: "fp"})
			s.Abandon(key(i))
			continue
		}
		r := answer("fp")
		r.Body = random(1000) // incompressible
		finish(t, s, key(i), r)
		if live := checkLive(t, s); live > max {
			t.Fatalf("after %d answers the store holds %d bytes, more than its bound %d", i+1, live, max)
		}
	}
	// The records kept are the youngest: every key from some point on.
	kept := 0
	for i := n - 1; i >= 0; i-- {
		r, err := s.Begin(key(i), "fp")
		if err != nil {
			t.Fatal(err)
		}
		if r == nil {
			s.Abandon(key(i))
			for j := range i {
				if r, _ := s.Begin(key(j), "fp"); r != nil {
					t.Errorf("%s, older than the pruned %s, is kept", key(j), key(i))
				}
				s.Abandon(key(j))
			}
			break
		}
		if !r.Final() {
			s.Abandon(key(i))
		}
		kept++
	}
	if kept < 40 || kept == n {
		t.Errorf("%d of %d records kept within %d bytes", kept, n, max)
	}
	if got := s.Evictions(); got != int64(n-kept) {
		t.Errorf("Evictions() = %d, want the %d records pruned", got, n-kept)
	}
	for i := 0; i < n-kept; i += 10 {
		if hasTx(t, s, fmt.Sprintf("tx-%d", i)) {
			t.Errorf("the transaction of the pruned %s is kept", key(i))
		}
	}
}

func TestMaxBytesKeepsTheRecordBeingWritten(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	s := openAt(t, filepath.Join(t.TempDir(), "idempotency.db"), c, WithMaxBytes(1000))
	begin(t, s, "old", "fp")
	finish(t, s, "old", answer("fp"))
	begin(t, s, "k", "fp")
	// A transaction larger than the bound is still noted before it is sent.
	recordTx(t, s, "tx", random(5000), Entry{Key: "k", Fingerprint: "fp", Ref: []byte("1")})
	if !hasTx(t, s, "tx") {
		t.Fatal("the bound pruned the transaction just recorded")
	}
	if r, err := s.Begin("old", "fp"); err != nil || r != nil {
		t.Errorf("the older answer is kept beyond the bound: %+v, %v", r, err)
	}
	checkLive(t, s)
}

func TestCrashAfterRecordThenRetry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idempotency.db")
	c := &clock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	s := openAt(t, path, c)
	begin(t, s, "k", "fp")
	tx := random(20000)
	recordTx(t, s, "tx1", tx, Entry{Key: "k", Fingerprint: "fp", Ref: []byte(`{"txId":"tx1"}`)})
	// The process dies after sending, before the answer.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Hour)
	s = openAt(t, path, c)
	if _, err := s.Begin("k", "another request"); !errors.Is(err, ErrReused) {
		t.Errorf("another request with the key: %v, want ErrReused", err)
	}
	r := begin(t, s, "k", "fp")
	if r == nil || r.Final() || string(r.Pending[0]) != `{"txId":"tx1"}` {
		t.Fatalf("the retry found %+v, want the recorded transaction", r)
	}
	if got, err := s.Transaction("tx1"); err != nil || string(got) != string(tx) {
		t.Fatalf("the retry cannot re-send the same transaction: %v", err)
	}
	if _, err := s.Begin("k", "fp"); !errors.Is(err, ErrInFlight) {
		t.Errorf("a second retry while the first settles: %v, want ErrInFlight", err)
	}
	finish(t, s, "k", answer("fp"))
	if r := begin(t, s, "k", "fp"); r == nil || !r.Final() || string(r.Body) != `{"meterId":"PTB-0001"}` {
		t.Errorf("after the retry's answer: %+v", r)
	}
	checkLive(t, s)
}
