package index

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func allocated(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return fi.Size()
}

// An index of an older layout is deleted when opened and a new file made,
// so that the chain is read again and the old file's pages are gone; one
// of the current layout is kept.
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
		return tx.Bucket(bMeterNums).Put([]byte("PTB-1"), u32(1))
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
	// An older layout's index, grown large.
	err = s.db.Update(func(tx *bolt.Tx) error {
		old, err := tx.CreateBucket([]byte("txs"))
		if err != nil {
			return err
		}
		for i := range 4000 {
			if err := old.Put(u64(uint64(i)), bytes.Repeat([]byte{'x'}, 1000)); err != nil {
				return err
			}
		}
		return tx.Bucket(bMeta).Put(kLayout, u64(layout-1))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	before := allocated(t, path)

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
		if tx.Bucket(bMeterNums).Get([]byte("PTB-1")) != nil || tx.Bucket([]byte("txs")) != nil {
			t.Error("the older index's contents were kept")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if after := allocated(t, path); after > before/10 {
		t.Errorf("the new index takes %d bytes, the older one took %d: its pages were kept", after, before)
	}
}
