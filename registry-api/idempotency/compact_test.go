package idempotency

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func size(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// fill finishes n requests with incompressible answers of bodySize bytes.
func fill(t *testing.T, s *Store, prefix string, n, bodySize int) {
	t.Helper()
	for i := range n {
		key := fmt.Sprintf("%s-%d", prefix, i)
		begin(t, s, key, "fp")
		r := answer("fp")
		r.Body = random(bodySize)
		finish(t, s, key, r)
	}
}

func TestPruneShrinksTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idempotency.db")
	c := &clock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	s := openAt(t, path, c)
	s.compactMin = 1 << 20
	fill(t, s, "old", 100, 40_000)
	c.t = c.t.Add(time.Hour)
	fill(t, s, "young", 5, 40_000)
	full := size(t, path)
	if full < 4<<20 {
		t.Fatalf("the file holds %d bytes after 4 MB of answers", full)
	}

	c.t = c.t.Add(Retention - time.Minute)
	p, err := s.Prune()
	if err != nil {
		t.Fatal(err)
	}
	shrunk := size(t, path)
	t.Logf("file %d bytes before, %d after (Prune: %+v)", full, shrunk, p)
	if p.Expired != 100 || p.Before != full || p.After != shrunk {
		t.Errorf("Prune = %+v; want 100 expired and the file's sizes %d and %d", p, full, shrunk)
	}
	if shrunk > full/8 {
		t.Errorf("the file shrank from %d to %d bytes only, for 5 of 105 answers left", full, shrunk)
	}
	// The store is whole and in use after the swap.
	if r := begin(t, s, "young-4", "fp"); r == nil || len(r.Body) != 40_000 {
		t.Errorf("a young answer after compaction: %+v", r)
	}
	if r := begin(t, s, "old-0", "fp"); r != nil {
		t.Errorf("an expired answer after compaction: %+v", r)
	}
	finish(t, s, "old-0", answer("fp"))
	checkLive(t, s)

	// Nothing more to free: the next Prune leaves the file alone.
	if p, err := s.Prune(); err != nil || p.Before != 0 {
		t.Errorf("a second Prune = %+v, %v; want no compaction", p, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path, c)
	if r := begin(t, s, "young-0", "fp"); r == nil {
		t.Error("an answer was lost in the compacted file")
	}
}

func TestPruneLeavesAFullFileAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idempotency.db")
	c := &clock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	s := openAt(t, path, c)
	s.compactMin = 1 << 20
	fill(t, s, "old", 20, 40_000)
	c.t = c.t.Add(time.Hour)
	fill(t, s, "young", 80, 40_000)
	c.t = c.t.Add(Retention - time.Minute)
	// A fifth freed is reused by the next writes: not worth a copy.
	if p, err := s.Prune(); err != nil || p.Expired != 20 || p.Before != 0 {
		t.Errorf("Prune = %+v, %v; want 20 expired and no compaction", p, err)
	}
}

// TestCompactWhileInUse compacts repeatedly while requests come and go:
// every one is answered, retried and settled as without compaction.
func TestCompactWhileInUse(t *testing.T) {
	s, _ := newStore(t)
	const workers, requests = 4, 30
	var wg sync.WaitGroup
	errs := make(chan error, workers*requests)
	for w := range workers {
		wg.Go(func() {
			for i := range requests {
				key, fp := fmt.Sprintf("w%d-%d", w, i), fmt.Sprintf("fp%d", i)
				txID := "tx-" + key
				if _, err := s.Begin(key, fp); err != nil {
					errs <- err
					return
				}
				if err := s.Record([]Entry{{Key: key, Fingerprint: fp, Ref: []byte(txID)}}, txID, random(2000)); err != nil {
					errs <- err
					return
				}
				if i%3 == 0 {
					// A lost answer: the retry finds the transaction.
					s.Abandon(key)
					r, err := s.Begin(key, fp)
					if err != nil || r == nil || string(r.Pending[0]) != txID {
						errs <- fmt.Errorf("retry of %s: %+v, %v", key, r, err)
						return
					}
					if _, err := s.Transaction(txID); err != nil {
						errs <- err
						return
					}
				}
				if err := s.Finish(key, Response{Fingerprint: fp, Status: 200, Body: []byte(key)}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	compactions := 0
	for running := true; running; compactions++ {
		select {
		case <-done:
			running = false
		default:
		}
		if _, _, err := s.Compact(); err != nil {
			t.Fatal(err)
		}
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d compactions", compactions)
	for w := range workers {
		for i := range requests {
			key := fmt.Sprintf("w%d-%d", w, i)
			if r := begin(t, s, key, fmt.Sprintf("fp%d", i)); r == nil || string(r.Body) != key {
				t.Errorf("%s: %+v", key, r)
			}
			if hasTx(t, s, "tx-"+key) {
				t.Errorf("the transaction of the answered %s is kept", key)
			}
		}
	}
	checkLive(t, s)
}

func TestOpenRemovesACompactionCutShort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idempotency.db")
	c := &clock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	s := openAt(t, path, c)
	begin(t, s, "k", "fp")
	finish(t, s, "k", answer("fp"))
	s.Close()
	if err := os.WriteFile(path+compactSuffix, []byte("half a copy"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path, c)
	if _, err := os.Stat(path + compactSuffix); !os.IsNotExist(err) {
		t.Errorf("the copy of a compaction cut short is left: %v", err)
	}
	if r := begin(t, s, "k", "fp"); r == nil {
		t.Error("the answer is lost")
	}
}

func TestClosedStore(t *testing.T) {
	s, _ := newStore(t)
	s.Close()
	if _, err := s.Begin("k", "fp"); err == nil {
		t.Error("Begin on a closed store succeeded")
	}
	if _, _, err := s.Compact(); err == nil {
		t.Error("Compact on a closed store succeeded")
	}
}
