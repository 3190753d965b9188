package idempotency

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Kinds of the time index's entries.
const (
	kindRecord = 'r'
	// kindTx is a transaction recorded before references were counted
	// (migrate.go): it is kept until Retention, as it was then.
	kindTx = 't'
)

// indexKey orders an entry by when it was stored: the time, big-endian,
// then its kind and name.
func indexKey(stored int64, kind byte, name []byte) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 9+len(name)), uint64(stored))
	return append(append(k, kind), name...)
}

func parseIndexKey(k []byte) (stored int64, kind byte, name []byte) {
	if len(k) < 9 {
		return 0, 0, nil
	}
	return int64(binary.BigEndian.Uint64(k)), k[8], k[9:]
}

var liveKey = []byte("live")

// writer changes the database within one bbolt transaction and keeps the
// count of live bytes (keys and values of every bucket but the metadata)
// that the byte bound applies to.
type writer struct {
	records, txs, refs, index, meta *bolt.Bucket
	live, max                       int64
	// expired and evicted count the records deleted past Retention and
	// beyond the byte bound.
	expired, evicted int
}

func (s *Store) writer(tx *bolt.Tx) *writer {
	w := &writer{records: tx.Bucket(bucket), txs: tx.Bucket(txBucket), refs: tx.Bucket(refBucket),
		index: tx.Bucket(timeBucket), meta: tx.Bucket(metaBucket), max: s.maxBytes}
	if v := w.meta.Get(liveKey); len(v) == 8 {
		w.live = int64(binary.BigEndian.Uint64(v))
	}
	return w
}

// close notes the live bytes; the transaction commits them with the rest.
func (w *writer) close() error {
	return w.meta.Put(liveKey, binary.BigEndian.AppendUint64(nil, uint64(w.live)))
}

// get reads a value: the index keeps empty ones, which bbolt's Get does not
// tell from missing ones.
func get(b *bolt.Bucket, k []byte) ([]byte, bool) {
	ck, v := b.Cursor().Seek(k)
	return v, ck != nil && bytes.Equal(ck, k)
}

func (w *writer) put(b *bolt.Bucket, k, v []byte) error {
	if old, ok := get(b, k); ok {
		w.live -= int64(len(k) + len(old))
	}
	w.live += int64(len(k) + len(v))
	return b.Put(k, v)
}

func (w *writer) del(b *bolt.Bucket, k []byte) error {
	old, ok := get(b, k)
	if !ok {
		return nil
	}
	w.live -= int64(len(k) + len(old))
	return b.Delete(k)
}

// record reads key's record; nil if there is none or it cannot be read
// (then it is replaced, and its index entry, if any, goes at its time).
func (w *writer) record(key string) *record {
	v := w.records.Get([]byte(key))
	if v == nil {
		return nil
	}
	r, err := decodeRecord(v)
	if err != nil {
		return nil
	}
	return r
}

// putRecord stores a record (encoded, stored at stored) and indexes it.
// The caller has dropped the index entry of the record it replaces.
func (w *writer) putRecord(key string, stored int64, v []byte) error {
	if err := w.put(w.records, []byte(key), v); err != nil {
		return err
	}
	return w.put(w.index, indexKey(stored, kindRecord, []byte(key)), nil)
}

func (w *writer) unindex(key string, stored int64) error {
	return w.del(w.index, indexKey(stored, kindRecord, []byte(key)))
}

// drop forgets what r, key's record, holds besides its value: its index
// entry and its references to transactions.
func (w *writer) drop(key string, r *record) error {
	if err := w.unindex(key, r.Stored); err != nil {
		return err
	}
	for _, txID := range r.txIDs {
		if err := w.ref(txID, -1); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes key's record r.
func (w *writer) remove(key string, r *record) error {
	if err := w.drop(key, r); err != nil {
		return err
	}
	return w.del(w.records, []byte(key))
}

// ref counts a reference to a transaction more (delta 1) or less (-1);
// the transaction's bytes go with the last.
func (w *writer) ref(txID string, delta int64) error {
	if txID == "" {
		return nil
	}
	k := []byte(txID)
	var n int64
	if v := w.refs.Get(k); v != nil {
		u, _ := binary.Uvarint(v)
		n = int64(u)
	}
	if n += delta; n > 0 {
		return w.put(w.refs, k, binary.AppendUvarint(nil, uint64(n)))
	}
	if err := w.del(w.refs, k); err != nil {
		return err
	}
	return w.del(w.txs, k)
}

// oldest is the index's first entry other than the records of keep.
func (w *writer) oldest(keep ...string) []byte {
	c := w.index.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		_, kind, name := parseIndexKey(k)
		if kind != kindRecord || !contains(keep, name) {
			return bytes.Clone(k)
		}
	}
	return nil
}

func contains(keys []string, name []byte) bool {
	for _, k := range keys {
		if k == string(name) {
			return true
		}
	}
	return false
}

// expire deletes an index entry and what it stands for, and reports
// whether that was a record.
func (w *writer) expire(k []byte) (bool, error) {
	stored, kind, name := parseIndexKey(k)
	switch kind {
	case kindRecord:
		if r := w.record(string(name)); r != nil && r.Stored == stored {
			return true, w.remove(string(name), r)
		}
	case kindTx:
		if w.refs.Get(name) == nil {
			if err := w.del(w.txs, name); err != nil {
				return false, err
			}
		}
	}
	return false, w.del(w.index, k)
}

// trim deletes the oldest records while the live bytes exceed the bound,
// but never those of keep, written by the same transaction.
func (w *writer) trim(keep ...string) error {
	for w.live > w.max {
		k := w.oldest(keep...)
		if k == nil {
			return nil
		}
		removed, err := w.expire(k)
		if err != nil {
			return err
		}
		if removed {
			w.evicted++
		}
	}
	return nil
}

// pruneChunk bounds the deletions of one write transaction of Prune, which
// holds up every other write meanwhile.
const pruneChunk = 1000

// Pruned is what Prune did.
type Pruned struct {
	// Expired and Evicted count the records deleted past Retention and
	// beyond the byte bound.
	Expired, Evicted int
	// Live is the bytes of the records left (keys and values as stored).
	Live int64
	// Before and After are the file's size around a compaction; 0 when
	// there was none.
	Before, After int64
}

// Prune deletes the records older than Retention, then the oldest beyond
// the byte bound (which every write keeps as well), and compacts the file
// when the pages that frees are at least as many as those in use (and at
// least 16 MiB): bbolt reuses freed pages, but never shrinks its file.
func (s *Store) Prune() (Pruned, error) {
	var p Pruned
	now := s.now().Unix()
	for done := false; !done; {
		err := s.update(func(tx *bolt.Tx) error {
			w := s.writer(tx)
			done = false
			for range pruneChunk {
				k := w.oldest()
				if at, _, _ := parseIndexKey(k); k == nil || !s.expired(at, now) {
					done = true
					break
				}
				removed, err := w.expire(k)
				if err != nil {
					return err
				}
				if removed {
					w.expired++
				}
			}
			if done {
				if err := w.trim(); err != nil {
					return err
				}
			}
			if err := w.close(); err != nil {
				return err
			}
			p.Expired += w.expired
			p.Evicted += w.evicted
			p.Live = w.live
			return nil
		})
		if err != nil {
			return p, fmt.Errorf("prune idempotency store: %w", err)
		}
	}
	s.evictions.Add(int64(p.Evicted))
	worth, err := s.worthCompacting()
	if err != nil || !worth {
		return p, err
	}
	p.Before, p.After, err = s.Compact()
	return p, err
}
