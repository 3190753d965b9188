package index

import (
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// An index of an older layout is emptied when opened, so that the chain is
// read again; one of the current layout is kept.
func TestOlderLayoutIsReadAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Reset {
		t.Fatal("a new index was reset")
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bMeta).Put(kCheckpoint, u64(12)); err != nil {
			return err
		}
		return tx.Bucket(bMeters).Put([]byte("PTB-1"), []byte("{}"))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if next, _, _ := s.Checkpoint(); s.Reset || next != 12 {
		t.Fatalf("an index of this layout: reset %v, next block %d", s.Reset, next)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Delete(kLayout) }); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	next, _, err := s.Checkpoint()
	if err != nil || !s.Reset || next != 0 {
		t.Fatalf("an index of an older layout: reset %v, next block %d, %v", s.Reset, next, err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bMeters).Get([]byte("PTB-1")) != nil {
			t.Error("the older index's meters were kept")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
