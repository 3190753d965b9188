package index

import "encoding/binary"

// A meter's readings, accepted and refused, are kept in chunks of readings
// in chain order, each reading a few varints relative to the one before
// (the first relative to block 0, seq 0 and time 0):
//
//	block − previous block
//	transaction index
//	item index << 2 | has time << 1 | refused
//	seq − previous seq (zigzag)
//	meter time − previous meter time, in seconds (zigzag), if it has one
//
// An accepted reading of a batch costs about 7 bytes; what it measured
// (value, unit, key version) stays in its transaction and is read from the
// peer (Evidence). Each chunk begins with where the meter's chunk before
// it is (uvarint: its block + 1, 0 for none).
//
// A meter's newest chunk is its tail (bucket tails, under the meter's
// number), to which its readings are appended. Once it is chunkBytes long,
// the first reading of a later block closes it: it moves to bucket
// readings under that block and the meter's number, keys that only grow,
// so that the closed chunks, nearly all of the readings, fill their pages
// and are never written again, and a block rewrites no more than the
// tails of the meters it has readings of.
const chunkBytes = 256

// spot is one reading as the index keeps it: where its evidence is, and
// what the index answers without the peer.
type spot struct {
	Block   uint64
	Tx      int
	Item    int
	Refused bool
	Seq     uint64
	// Time is the meter's time in Unix seconds, if HasTime.
	Time    int64
	HasTime bool
}

// last is what a chunk's next reading counts from: the block and seq of
// the reading before it and the last meter time before it (0 and 0 and 0
// for a chunk's first).
type last struct {
	block, seq uint64
	time       int64
}

// appendSpot appends s to a chunk whose readings end at l, and moves l on.
// Readings come in chain order: s.Block is not below l.block.
func appendSpot(chunk []byte, l *last, s spot) []byte {
	flags := uint64(s.Item) << 2
	if s.HasTime {
		flags |= 2
	}
	if s.Refused {
		flags |= 1
	}
	chunk = binary.AppendUvarint(chunk, s.Block-l.block)
	chunk = binary.AppendUvarint(chunk, uint64(s.Tx))
	chunk = binary.AppendUvarint(chunk, flags)
	chunk = binary.AppendVarint(chunk, int64(s.Seq-l.seq))
	l.block, l.seq = s.Block, s.Seq
	if s.HasTime {
		chunk = binary.AppendVarint(chunk, s.Time-l.time)
		l.time = s.Time
	}
	return chunk
}

// readChunk decodes a chunk: the block of the meter's chunk before it (ok
// false if none), its readings, and where they end.
func readChunk(chunk []byte) (before uint64, ok bool, spots []spot, end last, err error) {
	d := dec{b: chunk}
	if p := d.uvarint(); p > 0 {
		before, ok = p-1, true
	}
	for len(d.b) > 0 && d.err == nil {
		s := spot{Block: end.block + d.uvarint(), Tx: d.int()}
		flags := d.uvarint()
		if flags>>2 >= 1<<31 {
			d.fail()
		}
		s.Item, s.HasTime, s.Refused = int(flags>>2), flags&2 != 0, flags&1 != 0
		s.Seq = end.seq + uint64(d.varint())
		end.block, end.seq = s.Block, s.Seq
		if s.HasTime {
			s.Time = end.time + d.varint()
			end.time = s.Time
		}
		spots = append(spots, s)
	}
	if err := d.end("readings"); err != nil {
		return 0, false, nil, last{}, err
	}
	return before, ok, spots, end, nil
}

// newChunk starts a chunk after the meter's chunk of block before (ok
// false: the meter's first).
func newChunk(before uint64, ok bool) []byte {
	if !ok {
		return binary.AppendUvarint(nil, 0)
	}
	return binary.AppendUvarint(nil, before+1)
}

// closedKey is the key of a closed chunk: the block that closed it and the
// meter's number.
func closedKey(block uint64, n uint32) []byte { return key(u64(block), u32(n)) }
