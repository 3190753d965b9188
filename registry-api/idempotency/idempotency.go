// Package idempotency remembers the answers to writes that carried an
// Idempotency-Key, so a client that retries (after a timeout, a dropped
// connection, a crash) gets the first answer again instead of a second write.
// Answers are kept in an embedded database (bbolt) and survive restarts. The
// records are bounded in time (Retention) and in bytes (WithMaxBytes, oldest
// first), and the file is compacted once expired records leave most of it
// free: bbolt reuses freed pages but never gives them back.
package idempotency

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention is how long an answer is kept.
const Retention = 24 * time.Hour

// DefaultMaxBytes bounds a store's live records unless WithMaxBytes says
// otherwise: at 10.8 live bytes per reading delivered in batches of 1,000
// (BenchmarkBatchAnswers), some 99 million readings, a day at 1,150 a
// second.
const DefaultMaxBytes = 1 << 30

var (
	bucket   = []byte("responses")    // key → record (record.go)
	txBucket = []byte("transactions") // tx ID → recorded time, bytes
	// refBucket counts the pending parts that refer to a transaction: its
	// bytes are kept while one does.
	refBucket = []byte("references") // tx ID → uvarint
	// timeBucket orders records (and transactions recorded before the
	// references were counted) by when they were stored, for Prune.
	timeBucket = []byte("byTime")   // stored time, kind, name → nothing
	metaBucket = []byte("metadata") // layout, live bytes
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
	// dbMu is held shared by every use of db and exclusively while
	// Compact puts a new file in its place.
	dbMu sync.RWMutex
	// writing is held shared by every write, before dbMu, and exclusively
	// while Compact copies the database: a write then would be lost with
	// the old file.
	writing sync.RWMutex
	db      *bolt.DB
	// closed is why db is nil.
	closed error
	path   string

	maxBytes int64
	// compactMin is the least free space in the file worth a compaction.
	compactMin int64

	mu       sync.Mutex
	inFlight map[string]bool
	now      func() time.Time
	full     atomic.Int64
	// evictions counts the records pruned beyond the byte bound.
	evictions atomic.Int64
}

// Option configures a Store.
type Option func(*Store)

// WithMaxBytes bounds the store's live records (keys and values as stored)
// to n bytes: beyond it the oldest are pruned first, final answers and
// records of requests still waiting for their transaction's outcome (with
// that transaction) alike. The file holds somewhat more: bbolt's pages are
// not all full. Default (and for n <= 0) DefaultMaxBytes.
func WithMaxBytes(n int64) Option {
	return func(s *Store) {
		if n > 0 {
			s.maxBytes = n
		}
	}
}

// Open opens (or creates) the database at path. A database of the first
// layout (answers as JSON) is converted first (migrate.go).
func Open(path string, opts ...Option) (*Store, error) {
	s := &Store{path: path, maxBytes: DefaultMaxBytes, compactMin: 16 << 20, inFlight: map[string]bool{}, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	// A compaction cut short by a crash leaves its copy; the database is
	// whole.
	if err := os.Remove(path + compactSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open idempotency store %s: %w", path, err)
	}
	db, err := openDB(path)
	if err != nil {
		return nil, err
	}
	if err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open idempotency store %s: %w", path, err)
	}
	s.db = db
	return s, nil
}

func openDB(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open idempotency store %s: %w", path, err)
	}
	return db, nil
}

// ErrClosed is the error of a store used after Close.
var ErrClosed = errors.New("the idempotency store is closed")

// Close closes the database.
func (s *Store) Close() error {
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db, s.closed = nil, ErrClosed
	return err
}

// view, update and batch use the database as bbolt's View, Update and
// Batch do, never while Compact swaps its file, and never a write while
// it copies it.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	return s.use(func(db *bolt.DB) error { return db.View(fn) })
}

func (s *Store) update(fn func(*bolt.Tx) error) error {
	s.writing.RLock()
	defer s.writing.RUnlock()
	return s.use(func(db *bolt.DB) error { return db.Update(fn) })
}

func (s *Store) batch(fn func(*bolt.Tx) error) error {
	s.writing.RLock()
	defer s.writing.RUnlock()
	return s.use(func(db *bolt.DB) error { return db.Batch(fn) })
}

func (s *Store) use(fn func(*bolt.DB) error) error {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.db == nil {
		return s.closed
	}
	return fn(s.db)
}

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
	stored, err := s.claim(key, fingerprint)
	if err != nil || stored == nil {
		return nil, err
	}
	// Only a final answer has a body; a pending record stays claimed.
	if stored.Final() {
		if err := stored.inflate(); err != nil {
			return nil, fmt.Errorf("idempotency record of a request: %w", err)
		}
	}
	return &stored.Response, nil
}

func (s *Store) claim(key, fingerprint string) (*record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inFlight[key] {
		return nil, ErrInFlight
	}
	var stored *record
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucket).Get([]byte(key))
		if v == nil {
			return nil
		}
		var err error
		stored, err = decodeRecord(v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("idempotency record of a request: %w", err)
	}
	if stored != nil && !s.expired(stored.Stored, s.now().Unix()) {
		if stored.Fingerprint != fingerprint {
			return nil, ErrReused
		}
		if !stored.Final() {
			s.inFlight[key] = true
		}
		return stored, nil
	}
	s.inFlight[key] = true
	return nil, nil
}

// expired reports whether a record stored at stored is past Retention at
// now (Unix seconds).
func (s *Store) expired(stored, now int64) bool {
	return time.Unix(now, 0).Sub(time.Unix(stored, 0)) >= Retention
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
// share a transaction: the registry groups single deliveries. The
// transaction's bytes are kept while a pending part refers to it: until
// every request it carries has its final answer (Finish), is recorded again
// with another transaction, or is pruned.
func (s *Store) Record(entries []Entry, txID string, txBytes []byte) error {
	if len(entries) == 0 {
		return nil
	}
	now := s.now().Unix()
	keep := make([]string, len(entries))
	for i, e := range entries {
		keep[i] = e.Key
	}
	return s.change(s.update, func(w *writer) error {
		if w.txs.Get([]byte(txID)) == nil {
			if err := w.put(w.txs, []byte(txID), storedTx(now, txBytes)); err != nil {
				return err
			}
		}
		for _, e := range entries {
			r := w.record(e.Key)
			if r != nil && (r.Final() || r.Fingerprint != e.Fingerprint || s.expired(r.Stored, now)) {
				if err := w.drop(e.Key, r); err != nil {
					return err
				}
				r = nil
			}
			if r == nil {
				r = &record{Response: Response{Fingerprint: e.Fingerprint}}
			} else if err := w.unindex(e.Key, r.Stored); err != nil {
				return err
			}
			if r.Pending == nil {
				r.Pending, r.txIDs = map[int][]byte{}, map[int]string{}
			}
			if old := r.txIDs[e.Part]; old != txID {
				if err := w.ref(old, -1); err != nil {
					return err
				}
				if err := w.ref(txID, 1); err != nil {
					return err
				}
			}
			r.Pending[e.Part], r.txIDs[e.Part] = e.Ref, txID
			r.Stored = now
			if err := w.putRecord(e.Key, r.Stored, r.encode()); err != nil {
				return err
			}
		}
		return w.trim(keep...)
	})
}

// Transaction returns the bytes of a recorded transaction.
func (s *Store) Transaction(txID string) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(txBucket).Get([]byte(txID))
		if len(v) < 8 {
			return fmt.Errorf("transaction %s is not recorded", txID)
		}
		out = bytes.Clone(v[8:])
		return nil
	})
	return out, err
}

// storedTx prefixes a transaction's bytes with when it was recorded.
func storedTx(at int64, b []byte) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(b)), uint64(at)), b...)
}

// Finish stores the answer of a claimed key. The transactions its request
// recorded are no longer needed for it: a retry gets this answer.
func (s *Store) Finish(key string, r Response) error {
	defer s.release(key)
	r.Stored = s.now().Unix()
	r.Pending = nil
	// Compressed before the database is locked for writing.
	v := (&record{Response: r}).encode()
	// Batch: the answers of concurrent requests (a group of single
	// deliveries finishes at once) share one commit and its fsync.
	return s.change(s.batch, func(w *writer) error {
		if old := w.record(key); old != nil {
			if err := w.drop(key, old); err != nil {
				return err
			}
		}
		if err := w.putRecord(key, r.Stored, v); err != nil {
			return err
		}
		return w.trim(key)
	})
}

// change runs fn with a writer in a write transaction of run (update or
// batch).
func (s *Store) change(run func(func(*bolt.Tx) error) error, fn func(*writer) error) error {
	var w *writer
	err := run(func(tx *bolt.Tx) error {
		// Batch may run this more than once: the last run commits.
		w = s.writer(tx)
		if err := fn(w); err != nil {
			return err
		}
		return w.close()
	})
	if err == nil {
		s.evictions.Add(int64(w.evicted))
	}
	return s.noteFull(err)
}

// Evictions counts the records pruned beyond the byte bound since Open:
// while it grows, the bound, not Retention, decides how long answers are
// kept.
func (s *Store) Evictions() int64 { return s.evictions.Load() }

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
