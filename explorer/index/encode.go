package index

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The index's values are a small binary encoding rather than JSON: numbers
// as varints, hashes and transaction IDs as their bytes, and the few
// strings every block repeats (NMIs, validation codes, function names,
// orderers' subjects) as numbers of a dictionary (bucket strs).

// errCorrupt means a stored value does not decode: the index file was
// damaged or written by another layout.
var errCorrupt = errors.New("index value does not decode")

// enc appends values.
type enc []byte

func (e enc) uvarint(v uint64) enc { return binary.AppendUvarint(e, v) }
func (e enc) varint(v int64) enc   { return binary.AppendVarint(e, v) }

func (e enc) bytes(b []byte) enc { return append(e.uvarint(uint64(len(b))), b...) }
func (e enc) str(s string) enc   { return append(e.uvarint(uint64(len(s))), s...) }

// time keeps a time to the nanosecond; the zero time stays zero.
func (e enc) time(t time.Time) enc {
	return e.varint(t.Unix()).uvarint(uint64(t.Nanosecond()))
}

// txIDLen is the length of a Fabric transaction ID: a SHA-256 in hex.
const txIDLen = 64

// txID keeps a transaction ID of lowercase hex, as Fabric makes them, as
// its 32 bytes; any other (a configuration transaction's, or one a client
// made up for a transaction the peers refused) as it is.
func (e enc) txID(id string) enc {
	if raw, ok := hexID(id); ok {
		return append(e.uvarint(uint64(len(raw))<<1|1), raw...)
	}
	return append(e.uvarint(uint64(len(id))<<1), id...)
}

// hexID decodes a transaction ID of 64 lowercase hex digits.
func hexID(id string) ([]byte, bool) {
	if len(id) != txIDLen {
		return nil, false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return nil, false
		}
	}
	raw, err := hex.DecodeString(id)
	return raw, err == nil
}

// dec reads what enc appended; the first failure sticks.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *dec) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int reads a count or position, which must fit 31 bits.
func (d *dec) int() int {
	v := d.uvarint()
	if v >= 1<<31 {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *dec) next(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *dec) bytes() []byte { return append([]byte(nil), d.next(d.uvarint())...) }
func (d *dec) str() string   { return string(d.next(d.uvarint())) }

func (d *dec) time() time.Time {
	sec, nsec := d.varint(), d.uvarint()
	if nsec >= 1e9 {
		d.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *dec) txID() string {
	n := d.uvarint()
	raw := d.next(n >> 1)
	if n&1 == 1 {
		return hex.EncodeToString(raw)
	}
	return string(raw)
}

func (d *dec) byte() byte {
	b := d.next(1)
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// end fails unless everything was read.
func (d *dec) end(what string) error {
	if d.err == nil && len(d.b) > 0 {
		d.err = errCorrupt
	}
	if d.err != nil {
		return fmt.Errorf("%s: %w", what, d.err)
	}
	return nil
}

// maxDictLen is the longest string the dictionary holds: longer ones are
// what a client put into a transaction the peers refused, say, and are
// kept in place rather than filling the dictionary.
const maxDictLen = 64

// strs is the dictionary of strings in one bbolt transaction: a string ↔
// its number (bucket strs: "s" and the string → number, "n" and the number
// → string). Numbers are never reused, so a value that names one stays
// readable. It remembers what it looked up, for the values of one block
// or one page.
type strs struct {
	b     *bolt.Bucket
	num   map[string]uint64
	names map[uint64]string
}

func newStrs(tx *bolt.Tx) *strs {
	return &strs{b: tx.Bucket(bStrs), num: map[string]uint64{}, names: map[uint64]string{}}
}

// put appends s: 0 for the empty string, n<<1 for the dictionary's n,
// and len<<1|1 and the bytes for a string kept in place.
func (d *strs) put(e enc, s string) (enc, error) {
	if s == "" {
		return e.uvarint(0), nil
	}
	if len(s) > maxDictLen {
		return append(e.uvarint(uint64(len(s))<<1|1), s...), nil
	}
	n, ok := d.num[s]
	if !ok {
		key := append([]byte("s"), s...)
		if v := d.b.Get(key); v != nil {
			n, _ = binary.Uvarint(v)
		} else {
			seq, err := d.b.NextSequence()
			if err != nil {
				return nil, err
			}
			n = seq
			if err := d.b.Put(key, binary.AppendUvarint(nil, n)); err != nil {
				return nil, err
			}
			if err := d.b.Put(binary.BigEndian.AppendUint64([]byte("n"), n), []byte(s)); err != nil {
				return nil, err
			}
		}
		d.num[s] = n
	}
	return e.uvarint(n << 1), nil
}

// get reads what put appended.
func (d *strs) get(r *dec) string {
	v := r.uvarint()
	switch {
	case v == 0:
		return ""
	case v&1 == 1:
		return string(r.next(v >> 1))
	}
	n := v >> 1
	if s, ok := d.names[n]; ok {
		return s
	}
	raw := d.b.Get(binary.BigEndian.AppendUint64([]byte("n"), n))
	if raw == nil {
		r.fail()
		return ""
	}
	s := string(raw)
	d.names[n] = s
	return s
}
