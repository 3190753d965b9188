package idempotency

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// layout is the version of the database's layout, kept in metaBucket. The
// first (which kept no version) stored each record as JSON, its body in
// base64, and every transaction's bytes until Retention, whatever became of
// its request. This one keeps record.go's binary records, counts the
// references to transactions and orders records by time.
const layout = 2

var layoutKey = []byte("layout")

// migrateChunk bounds the records one transaction of the migration converts.
const migrateChunk = 1000

// migrate makes the buckets of a new database, or converts one of the
// first layout in place: every record to the binary form and into the time
// index, every transaction into the time index as one kept until
// Retention (which part of which record refers to it was opaque to that
// layout). It converts in chunks, each a transaction of its own, and picks
// up after a crash where it stopped: a record's first byte tells its
// layout ('{' the first).
func migrate(db *bolt.DB) error {
	var current byte
	err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucket, txBucket, refBucket, timeBucket, metaBucket} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if v := tx.Bucket(metaBucket).Get(layoutKey); len(v) == 1 {
			current = v[0]
		}
		return nil
	})
	switch {
	case err != nil:
		return err
	case current == layout:
		return nil
	case current > layout:
		return fmt.Errorf("its layout %d is newer than this registry's (%d)", current, layout)
	}
	if err := convert(db, bucket, convertRecord); err != nil {
		return fmt.Errorf("convert the records: %w", err)
	}
	if err := convert(db, txBucket, indexTransaction); err != nil {
		return fmt.Errorf("index the transactions: %w", err)
	}
	return db.Update(func(tx *bolt.Tx) error {
		var live int64
		for _, name := range [][]byte{bucket, txBucket, refBucket, timeBucket} {
			if err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				live += int64(len(k) + len(v))
				return nil
			}); err != nil {
				return err
			}
		}
		meta := tx.Bucket(metaBucket)
		if err := meta.Put(liveKey, binary.BigEndian.AppendUint64(nil, uint64(live))); err != nil {
			return err
		}
		return meta.Put(layoutKey, []byte{layout})
	})
}

// A change is what converting one entry takes: delete it, or give it a
// new value (nil: keep its own) and an index entry (nil: none).
type change struct {
	key, value, index []byte
	remove            bool
}

// convert walks a bucket in chunks and applies what fn makes of each
// entry; fn returns false for an entry that needs no change.
func convert(db *bolt.DB, name []byte, fn func(k, v []byte) (change, bool)) error {
	var after []byte
	for done := false; !done; {
		err := db.Update(func(tx *bolt.Tx) error {
			b, index := tx.Bucket(name), tx.Bucket(timeBucket)
			var changes []change
			c := b.Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(changes) < migrateChunk; k, v = c.Next() {
				after = bytes.Clone(k)
				if ch, ok := fn(k, v); ok {
					ch.key = after
					changes = append(changes, ch)
				}
			}
			done = k == nil
			// Applied after the walk: bbolt's cursors do not survive
			// changes to their bucket.
			for _, ch := range changes {
				var err error
				switch {
				case ch.remove:
					err = b.Delete(ch.key)
				case ch.value != nil:
					err = b.Put(ch.key, ch.value)
				}
				if err == nil && ch.index != nil {
					err = index.Put(ch.index, nil)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// convertRecord makes a binary record of a JSON one; one that cannot be
// read is deleted, as the first layout's Prune did.
func convertRecord(k, v []byte) (change, bool) {
	if len(v) > 0 && v[0] == recordVersion {
		return change{}, false
	}
	var r record
	if err := json.Unmarshal(v, &r.Response); err != nil {
		return change{remove: true}, true
	}
	if len(r.Pending) > 0 {
		r.txIDs = make(map[int]string, len(r.Pending))
		for p := range r.Pending {
			r.txIDs[p] = ""
		}
	}
	return change{value: r.encode(), index: indexKey(r.Stored, kindRecord, k)}, true
}

// indexTransaction puts a transaction of the first layout in the time
// index (at the time it was recorded), its bytes untouched; one without
// that time is deleted. Indexing one twice (after a crash) changes nothing.
func indexTransaction(k, v []byte) (change, bool) {
	if len(v) < 8 {
		return change{remove: true}, true
	}
	return change{index: indexKey(int64(binary.BigEndian.Uint64(v)), kindTx, k)}, true
}
