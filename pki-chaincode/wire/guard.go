package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// GuardKey is the world-state key of a meter's replay guard.
func GuardKey(meterID string) string { return KindGuard + "/" + meterID }

// ReplayWindow is how far below the highest accepted seq a reading may
// still be accepted, once: readings that arrive out of order (delivered
// through two registries, or a concentrator's batch in any order) are not
// lost. The guard remembers which seqs of the window were accepted, in the
// manner of IPsec's anti-replay window (RFC 4303, section 3.4.3).
const ReplayWindow = 128

// MaxSeqAdvance bounds how far one reading may move a meter's highest seq
// up, and how high the first reading of a sequence space may start: a
// reading with seq 2^64-1, from a stolen key or a firmware bug, would
// otherwise close the meter's sequence space for ever. It leaves room for
// a seq that counts minutes (metersim's) for thousands of years.
const MaxSeqAdvance = 1 << 32

// GuardRecent is how many of a meter's most recently accepted readings its
// guard remembers by the hash of their signed bytes: a re-delivery of one
// of them is answered as a duplicate. Another accepted seq is refused as a
// replay by the chaincode; the registry answers re-deliveries it finds in
// its own index of the blocks before they reach the chaincode.
const GuardRecent = 4

// Hash is the first 16 bytes (128 bits) of the SHA-256 of a reading's
// signed bytes: two payloads of one hash take about 2^64 work even for the
// meter's key holder, who could otherwise have a second reading of a seq
// answered as a duplicate of the first.
type Hash [16]byte

// HashOf hashes a reading's signed bytes.
func HashOf(payload []byte) Hash {
	sum := sha256.Sum256(payload)
	return Hash(sum[:16])
}

// Guard is a meter's replay guard: the sequence space of one key version,
// its highest seq accepted, which seqs of the window below it were
// accepted, and the most recently accepted readings, newest first.
type Guard struct {
	// KeyVersion is the key version the sequence space belongs to: a
	// rotation by the meter's owner starts a new one. LegacyKeyVersion is a
	// guard written before sequence spaces, taken as the current key's.
	KeyVersion int
	Last       uint64
	// window: bit i is set when seq Last-1-i was accepted.
	window [ReplayWindow / 64]uint64
	Recent []Accepted
}

// LegacyKeyVersion marks a guard of the first layout, which named no key
// version: it is the sequence space of the meter's current key.
const LegacyKeyVersion = -1

// Accepted is one remembered reading.
type Accepted struct {
	Seq  uint64
	Hash Hash
	// short: only the first 8 bytes of Hash are known (a guard of the
	// first layout, which kept 64 bits).
	short bool
}

// Matches reports whether the remembered reading has hash h.
func (a Accepted) Matches(h Hash) bool {
	if a.short {
		return bytes.Equal(a.Hash[:8], h[:8])
	}
	return a.Hash == h
}

// Find returns the remembered reading of seq, if the guard holds it.
func (g *Guard) Find(seq uint64) (Accepted, bool) {
	for _, a := range g.Recent {
		if a.Seq == seq {
			return a, true
		}
	}
	return Accepted{}, false
}

// Verdict is what the guard says of a reading's seq.
type Verdict int

// The guard's verdicts.
const (
	// Fresh: never accepted, within the window or above it.
	Fresh Verdict = iota
	// Seen: accepted before.
	Seen
	// TooOld: below the window; whether it was accepted is not known.
	TooOld
	// TooFar: more than MaxSeqAdvance above the highest seq.
	TooFar
)

// Check judges seq against the guard.
func (g *Guard) Check(seq uint64) Verdict {
	switch {
	case seq > g.Last:
		if seq-g.Last > MaxSeqAdvance {
			return TooFar
		}
		return Fresh
	case seq == g.Last && g.Last != 0:
		return Seen
	case g.Last-seq > ReplayWindow:
		return TooOld
	case seq == 0:
		return TooOld
	}
	i := g.Last - 1 - seq
	if g.window[i/64]&(1<<(i%64)) != 0 {
		return Seen
	}
	return Fresh
}

// Accept records a reading whose seq Check found Fresh.
func (g *Guard) Accept(seq uint64, payload []byte) {
	if seq > g.Last {
		g.shift(seq - g.Last)
		g.Last = seq
	} else {
		i := g.Last - 1 - seq
		g.window[i/64] |= 1 << (i % 64)
	}
	g.Recent = append([]Accepted{{Seq: seq, Hash: HashOf(payload)}}, g.Recent...)
	if len(g.Recent) > GuardRecent {
		g.Recent = g.Recent[:GuardRecent]
	}
}

// shift moves the window up by d seqs: the old Last becomes bit d-1.
func (g *Guard) shift(d uint64) {
	if g.Last == 0 {
		return
	}
	var w [ReplayWindow / 64]uint64
	if d <= ReplayWindow {
		// Bits move up by d; the old Last takes bit d-1.
		for i := uint64(0); i < ReplayWindow; i++ {
			if g.window[i/64]&(1<<(i%64)) != 0 && i+d < ReplayWindow {
				j := i + d
				w[j/64] |= 1 << (j % 64)
			}
		}
		j := d - 1
		w[j/64] |= 1 << (j % 64)
	}
	g.window = w
}

// Reset starts the sequence space of key version v: nothing accepted yet.
func (g *Guard) Reset(v int) { *g = Guard{KeyVersion: v} }

const (
	guardV1 = 1 // Last, then up to 16 readings with 8-byte hashes
	guardV2 = 2 // key version, Last, window, then up to GuardRecent readings with 16-byte hashes
)

// Marshal encodes the guard compactly: a version byte, the key version,
// Last, the window's bits, the count, then each reading as its distance
// below Last and its hash.
func (g *Guard) Marshal() []byte {
	b := make([]byte, 0, 3+2*binary.MaxVarintLen64+ReplayWindow/8+len(g.Recent)*(3+len(Hash{})))
	b = append(b, guardV2)
	b = binary.AppendUvarint(b, uint64(max(g.KeyVersion, 0)))
	b = binary.AppendUvarint(b, g.Last)
	for _, w := range g.window {
		b = binary.BigEndian.AppendUint64(b, w)
	}
	b = binary.AppendUvarint(b, uint64(len(g.Recent)))
	for _, a := range g.Recent {
		b = binary.AppendUvarint(b, g.Last-a.Seq)
		b = append(b, a.Hash[:]...)
	}
	return b
}

// UnmarshalGuard decodes a guard; an empty value is a meter with nothing
// accepted yet. A guard of the first layout keeps its meaning: it belongs
// to the current key (LegacyKeyVersion), every seq of the window below its
// Last counts as accepted, since it did not record which were, and its
// 8-byte hashes are compared as such.
func UnmarshalGuard(b []byte) (Guard, error) {
	var g Guard
	if len(b) == 0 {
		return g, nil
	}
	r := bytes.NewReader(b[1:])
	var err error
	hashLen, maxRecent := len(Hash{}), uint64(GuardRecent)
	switch b[0] {
	case guardV1:
		g.KeyVersion, hashLen, maxRecent = LegacyKeyVersion, 8, 16
		if g.Last, err = binary.ReadUvarint(r); err != nil {
			return g, fmt.Errorf("replay guard: %w", err)
		}
		for i := uint64(0); i < min(g.Last, ReplayWindow); i++ {
			g.window[i/64] |= 1 << (i % 64)
		}
	case guardV2:
		v, err := binary.ReadUvarint(r)
		if err != nil || v > 1<<31 {
			return g, errors.New("replay guard: bad key version")
		}
		g.KeyVersion = int(v)
		if g.Last, err = binary.ReadUvarint(r); err != nil {
			return g, fmt.Errorf("replay guard: %w", err)
		}
		for i := range g.window {
			var w [8]byte
			if _, err := io.ReadFull(r, w[:]); err != nil {
				return g, errors.New("replay guard: short window")
			}
			g.window[i] = binary.BigEndian.Uint64(w[:])
		}
		if g.Last <= ReplayWindow && g.windowBelow(g.Last) {
			return g, errors.New("replay guard: window below seq 1")
		}
	default:
		return g, fmt.Errorf("replay guard version %d", b[0])
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > maxRecent {
		return g, errors.New("replay guard: bad list of recent readings")
	}
	g.Recent = make([]Accepted, n)
	for i := range g.Recent {
		d, err := binary.ReadUvarint(r)
		if err != nil || d > g.Last {
			return g, errors.New("replay guard: bad entry")
		}
		g.Recent[i].Seq = g.Last - d
		g.Recent[i].short = hashLen < len(Hash{})
		if _, err := io.ReadFull(r, g.Recent[i].Hash[:hashLen]); err != nil {
			return g, errors.New("replay guard: short entry")
		}
	}
	if r.Len() != 0 {
		return g, errors.New("replay guard: trailing bytes")
	}
	return g, nil
}

// windowBelow reports whether a bit of the window stands for a seq below 1
// when the highest seq is last.
func (g *Guard) windowBelow(last uint64) bool {
	for i := last; i < ReplayWindow; i++ {
		if g.window[i/64]&(1<<(i%64)) != 0 {
			return true
		}
	}
	return false
}
