package readings

import (
	"encoding/binary"
	"errors"
	"slices"
	"time"
)

// A meter's readings are kept in chunks, one database entry each, so that
// a reading costs its own bytes and not a key and an entry header of its
// own (and the half-empty pages of keys inserted at 2.7 million places):
//
//   - a time chunk holds the readings of one meter and one hour of meter
//     time, in time order: for each, the nanoseconds into the hour, the seq
//     and the key version, as varints (about 9 bytes);
//   - a seq chunk holds the accepted seqs of one meter from 64·n to
//     64·n+63, in every key version: for each, the key version, the seq's
//     low 6 bits, a hash of the payload (16 bytes), a hash of payload and
//     signature (8 bytes) and where the evidence is: block, transaction,
//     item (varints; about 31 bytes).

// seqsPerChunk is how many consecutive seqs a seq chunk holds.
const seqsPerChunk = 64

// timeEntry is one reading in a time chunk.
type timeEntry struct {
	Nanos   uint64 // into the chunk's hour
	Seq     uint64
	Version uint32
}

// hourOf is the chunk of a meter time: hours since 1970, biased so that
// earlier times sort first.
func hourOf(t time.Time) uint32 {
	h := t.Unix() / 3600
	if t.Unix()%3600 < 0 {
		h-- // floor, for times before 1970
	}
	return uint32(h + 1<<31)
}

func hourStart(h uint32) time.Time {
	return time.Unix((int64(h)-1<<31)*3600, 0).UTC()
}

func splitTime(t time.Time) (uint32, uint64) {
	h := hourOf(t)
	return h, uint64(t.Sub(hourStart(h)))
}

func decodeTimeChunk(b []byte) ([]timeEntry, error) {
	var out []timeEntry
	for len(b) > 0 {
		var v [3]uint64
		for i := range v {
			n := 0
			if v[i], n = binary.Uvarint(b); n <= 0 {
				return nil, errors.New("corrupt time chunk")
			}
			b = b[n:]
		}
		out = append(out, timeEntry{Nanos: v[0], Seq: v[1], Version: uint32(v[2])})
	}
	return out, nil
}

func encodeTimeChunk(entries []timeEntry) []byte {
	var b []byte
	for _, e := range entries {
		b = binary.AppendUvarint(b, e.Nanos)
		b = binary.AppendUvarint(b, e.Seq)
		b = binary.AppendUvarint(b, uint64(e.Version))
	}
	return b
}

// insertTime puts a reading in its place in a time chunk; one at the same
// time with the same seq is replaced.
func insertTime(entries []timeEntry, e timeEntry) []timeEntry {
	i, found := slices.BinarySearchFunc(entries, e, func(a, b timeEntry) int {
		if a.Nanos != b.Nanos {
			return cmpU64(a.Nanos, b.Nanos)
		}
		return cmpU64(a.Seq, b.Seq)
	})
	if found {
		entries[i] = e
		return entries
	}
	return slices.Insert(entries, i, e)
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// seqEntry is one accepted seq in a seq chunk.
type seqEntry struct {
	Version  uint32
	Low      uint8 // seq % seqsPerChunk
	Payload  [16]byte
	Evidence [8]byte
	Block    uint64
	Tx, Item uint32
}

func (e seqEntry) append(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(e.Version))
	b = append(b, e.Low)
	b = append(b, e.Payload[:]...)
	b = append(b, e.Evidence[:]...)
	b = binary.AppendUvarint(b, e.Block)
	b = binary.AppendUvarint(b, uint64(e.Tx))
	return binary.AppendUvarint(b, uint64(e.Item))
}

func decodeSeqChunk(b []byte) ([]seqEntry, error) {
	var out []seqEntry
	bad := errors.New("corrupt seq chunk")
	for len(b) > 0 {
		var e seqEntry
		v, n := binary.Uvarint(b)
		if n <= 0 || len(b) < n+1+24 {
			return nil, bad
		}
		e.Version = uint32(v)
		b = b[n:]
		e.Low = b[0]
		copy(e.Payload[:], b[1:17])
		copy(e.Evidence[:], b[17:25])
		b = b[25:]
		var w [3]uint64
		for i := range w {
			if w[i], n = binary.Uvarint(b); n <= 0 {
				return nil, bad
			}
			b = b[n:]
		}
		e.Block, e.Tx, e.Item = w[0], uint32(w[1]), uint32(w[2])
		out = append(out, e)
	}
	return out, nil
}
