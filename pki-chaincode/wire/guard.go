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

// GuardWindow is how many of a meter's most recently accepted readings its
// guard remembers by the hash of their signed bytes. A re-delivery of one of
// them is answered as a duplicate; older seqs are refused as replays by the
// chaincode (the registry answers re-deliveries it finds in its own index of
// the blocks before they reach the chaincode).
const GuardWindow = 16

// Hash is the first 8 bytes of the SHA-256 of a reading's signed bytes.
// Telling a re-delivery from a replay needs no more: the signature must
// verify as well, so no one but the meter could make two payloads of one
// seq whose hashes collide.
type Hash [8]byte

// HashOf hashes a reading's signed bytes.
func HashOf(payload []byte) Hash {
	sum := sha256.Sum256(payload)
	return Hash(sum[:8])
}

// Guard is a meter's replay guard: the highest seq accepted and the most
// recently accepted readings, newest first.
type Guard struct {
	Last   uint64
	Recent []Accepted
}

// Accepted is one remembered reading.
type Accepted struct {
	Seq  uint64
	Hash Hash
}

// Find returns the remembered reading of seq, if the window holds it.
func (g *Guard) Find(seq uint64) (Accepted, bool) {
	for _, a := range g.Recent {
		if a.Seq == seq {
			return a, true
		}
	}
	return Accepted{}, false
}

// Accept records a reading above Last.
func (g *Guard) Accept(seq uint64, payload []byte) {
	g.Last = seq
	g.Recent = append([]Accepted{{seq, HashOf(payload)}}, g.Recent...)
	if len(g.Recent) > GuardWindow {
		g.Recent = g.Recent[:GuardWindow]
	}
}

const guardVersion = 1

// Marshal encodes the guard compactly: a version byte, Last, the count,
// then each reading as its distance below Last and its hash.
func (g *Guard) Marshal() []byte {
	b := make([]byte, 0, 2+binary.MaxVarintLen64+len(g.Recent)*(3+len(Hash{})))
	b = append(b, guardVersion)
	b = binary.AppendUvarint(b, g.Last)
	b = binary.AppendUvarint(b, uint64(len(g.Recent)))
	for _, a := range g.Recent {
		b = binary.AppendUvarint(b, g.Last-a.Seq)
		b = append(b, a.Hash[:]...)
	}
	return b
}

// UnmarshalGuard decodes a guard; an empty value is a meter with nothing
// accepted yet.
func UnmarshalGuard(b []byte) (Guard, error) {
	var g Guard
	if len(b) == 0 {
		return g, nil
	}
	if b[0] != guardVersion {
		return g, fmt.Errorf("replay guard version %d", b[0])
	}
	r := bytes.NewReader(b[1:])
	var err error
	if g.Last, err = binary.ReadUvarint(r); err != nil {
		return g, fmt.Errorf("replay guard: %w", err)
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > GuardWindow {
		return g, errors.New("replay guard: bad window")
	}
	g.Recent = make([]Accepted, n)
	for i := range g.Recent {
		d, err := binary.ReadUvarint(r)
		if err != nil || d > g.Last {
			return g, errors.New("replay guard: bad entry")
		}
		g.Recent[i].Seq = g.Last - d
		if _, err := io.ReadFull(r, g.Recent[i].Hash[:]); err != nil {
			return g, errors.New("replay guard: short entry")
		}
	}
	if r.Len() != 0 {
		return g, errors.New("replay guard: trailing bytes")
	}
	return g, nil
}
