// Package idempotency remembers the answers to writes that carried an
// Idempotency-Key, so a client that retries (after a timeout, a dropped
// connection, a crash) gets the first answer again instead of a second write.
// Answers are kept in an embedded database (bbolt) and survive restarts.
package idempotency

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention is how long an answer is kept.
const Retention = 24 * time.Hour

var (
	bucket   = []byte("responses")
	txBucket = []byte("transactions") // tx ID → recorded time, bytes
)

// Response is a stored answer, or, while Status is 0, the transactions a
// request handed to the ledger before its answer was known.
type Response struct {
	// Fingerprint identifies the request (method, path, body): a key reused
	// for another request is refused.
	Fingerprint string `json:"fingerprint"`
	Status      int    `json:"status"`
	ContentType string `json:"contentType"`
	Body        []byte `json:"body"`
	Location    string `json:"location,omitempty"`
	Stored      int64  `json:"stored"`
	// Pending are the request's transactions (opaque to the store), by
	// part, recorded before they were sent. A retry of the request learns
	// their outcome instead of sending new ones.
	Pending map[int][]byte `json:"pending,omitempty"`
}

// Final reports whether r is an answer to replay (not only pending
// transactions).
func (r *Response) Final() bool { return r.Status != 0 }

// Store is the database of answers plus the keys of requests in flight.
type Store struct {
	db       *bolt.DB
	mu       sync.Mutex
	inFlight map[string]bool
	now      func() time.Time
	full     atomic.Int64
}

// Open opens (or creates) the database at path.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open idempotency store %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucket); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(txBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, inFlight: map[string]bool{}, now: time.Now}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Errors of Begin.
var (
	ErrInFlight = errors.New("a request with this Idempotency-Key is still being processed")
	ErrReused   = errors.New("this Idempotency-Key was used for a different request")
)

// Begin claims key for a request. It returns the stored record if the key has
// one for the same request: a final answer to replay, or the transactions a
// previous attempt sent (then the key is claimed, as below); ErrReused if it
// answered another request, ErrInFlight if the same key is being processed
// now. A claimed key must be released by Finish or Abandon.
func (s *Store) Begin(key, fingerprint string) (*Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inFlight[key] {
		return nil, ErrInFlight
	}
	var stored *Response
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket).Get([]byte(key))
		if b == nil {
			return nil
		}
		stored = new(Response)
		return json.Unmarshal(b, stored)
	})
	if err != nil {
		return nil, err
	}
	if stored != nil && s.now().Sub(time.Unix(stored.Stored, 0)) < Retention {
		if stored.Fingerprint != fingerprint {
			return nil, ErrReused
		}
		if stored.Final() {
			return stored, nil
		}
		s.inFlight[key] = true
		return stored, nil
	}
	s.inFlight[key] = true
	return nil, nil
}

// Entry notes one request's part: which transaction it was sent in (Ref,
// opaque to the store).
type Entry struct {
	Key, Fingerprint string
	Part             int
	Ref              []byte
}

// Record durably notes, before it is sent, a transaction (its ID and bytes)
// and the parts of the requests (entries) it carries, in one database
// transaction, so that a retry of any of those requests (after a lost answer
// or a crash) asks about it instead of sending another. Several requests may
// share a transaction: the registry groups single deliveries.
func (s *Store) Record(entries []Entry, txID string, txBytes []byte) error {
	now := s.now().Unix()
	return s.noteFull(s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(txBucket).Put([]byte(txID), storedTx(now, txBytes)); err != nil {
			return err
		}
		b := tx.Bucket(bucket)
		for _, e := range entries {
			r := Response{Fingerprint: e.Fingerprint}
			if old := b.Get([]byte(e.Key)); old != nil {
				if err := json.Unmarshal(old, &r); err != nil || r.Final() || r.Fingerprint != e.Fingerprint {
					r = Response{Fingerprint: e.Fingerprint}
				}
			}
			if r.Pending == nil {
				r.Pending = map[int][]byte{}
			}
			r.Pending[e.Part] = e.Ref
			r.Stored = now
			v, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(e.Key), v); err != nil {
				return err
			}
		}
		return nil
	}))
}

// Transaction returns the bytes of a recorded transaction.
func (s *Store) Transaction(txID string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(txBucket).Get([]byte(txID))
		if len(v) < 8 {
			return fmt.Errorf("transaction %s is not recorded", txID)
		}
		out = bytes.Clone(v[8:])
		return nil
	})
	return out, err
}

// storedTx prefixes a transaction's bytes with when it was recorded, for
// Prune.
func storedTx(at int64, b []byte) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(at)), b...)
}

// Finish stores the answer of a claimed key.
func (s *Store) Finish(key string, r Response) error {
	defer s.release(key)
	r.Stored = s.now().Unix()
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	// Batch: the answers of concurrent requests (a group of single
	// deliveries finishes at once) share one commit and its fsync.
	return s.noteFull(s.db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(key), b) }))
}

// FullWrites counts the writes refused for lack of space since Open.
func (s *Store) FullWrites() int64 { return s.full.Load() }

func (s *Store) noteFull(err error) error {
	if IsFull(err) {
		s.full.Add(1)
	}
	return err
}

// IsFull reports whether err is a file system's refusal for lack of space
// (or of quota).
func IsFull(err error) bool { return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) }

// Abandon releases a claimed key without a final answer (the request failed
// in a way worth retrying). Recorded transactions stay: their outcome is
// still to be learnt.
func (s *Store) Abandon(key string) { s.release(key) }

func (s *Store) release(key string) {
	s.mu.Lock()
	delete(s.inFlight, key)
	s.mu.Unlock()
}

// Prune deletes answers older than Retention and reports how many.
func (s *Store) Prune() (int, error) {
	cutoff := s.now().Add(-Retention).Unix()
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var r Response
			if json.Unmarshal(v, &r) != nil || r.Stored < cutoff {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
		}
		tc := tx.Bucket(txBucket).Cursor()
		for k, v := tc.First(); k != nil; k, v = tc.Next() {
			if len(v) < 8 || int64(binary.BigEndian.Uint64(v)) < cutoff {
				if err := tc.Delete(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return n, err
}
