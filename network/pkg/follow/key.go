package follow

import "encoding/binary"

// Key builds a composite key of an index's bucket: its parts separated by a
// zero byte, which no meter ID, transaction ID or time holds. Parts of fixed
// width (Uint64, Uint32) sort numerically.
func Key(parts ...[]byte) []byte {
	var out []byte
	for i, p := range parts {
		if i > 0 {
			out = append(out, 0)
		}
		out = append(out, p...)
	}
	return out
}

// Uint64 encodes a number as a key part or counter: big-endian, 8 bytes.
func Uint64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// Uint32 encodes a number as a key part: big-endian, 4 bytes.
func Uint32(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

// ReadUint64 reads what Uint64 wrote; anything else, an absent value
// included, is 0.
func ReadUint64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
