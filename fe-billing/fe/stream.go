package fe

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
)

// Stream is a meter's encryption of one period, reading by reading: the
// period's randomness r is drawn once, the header (g^r, h^r) published
// first, and each reading x_i becomes h_i^r · g^x_i when it is taken.
// Close erases r; nothing encrypted for the period can be added afterwards.
type Stream struct {
	pk     *PublicKey
	g, p   *big.Int
	r      *big.Int
	header Header
	done   []bool
}

// Header is the period's ciphertext header: C = g^r, D = h^r.
type Header struct {
	C, D *big.Int
}

// NewStream starts a period's encryption.
func NewStream(pk *PublicKey) (*Stream, error) {
	d, err := pk.Params.scheme()
	if err != nil {
		return nil, err
	}
	if len(pk.H) != pk.Params.Period.Slots {
		return nil, fmt.Errorf("public key has %d elements for %d slots", len(pk.H), pk.Params.Period.Slots)
	}
	// r uniform in [2, q), as gofe's Encrypt draws it.
	r, err := rand.Int(rand.Reader, new(big.Int).Sub(d.Params.Q, big.NewInt(2)))
	if err != nil {
		return nil, err
	}
	r.Add(r, big.NewInt(2))
	s := &Stream{pk: pk, g: d.Params.G, p: d.Params.P, r: r, done: make([]bool, pk.Params.Period.Slots)}
	s.header = Header{C: new(big.Int).Exp(d.Params.G, r, d.Params.P), D: new(big.Int).Exp(d.Params.H, r, d.Params.P)}
	return s, nil
}

// Header returns the period's header.
func (s *Stream) Header() Header { return s.header }

// Errors of Encrypt.
var (
	ErrClosed     = errors.New("the period's encryption is closed")
	ErrOutOfBound = errors.New("the reading exceeds the period's bound")
)

// Encrypt encrypts slot i's reading. A reading above MaxReading is refused
// (the bill could not be decrypted), and so is a second reading of a slot.
func (s *Stream) Encrypt(slot int, x uint64) (*big.Int, error) {
	if s.r == nil {
		return nil, ErrClosed
	}
	if slot < 0 || slot >= len(s.done) {
		return nil, fmt.Errorf("slot %d is outside the period's %d slots", slot, len(s.done))
	}
	if x > s.pk.Params.MaxReading {
		return nil, fmt.Errorf("%w: slot %d reads %d, at most %d", ErrOutOfBound, slot, x, s.pk.Params.MaxReading)
	}
	if s.done[slot] {
		return nil, fmt.Errorf("slot %d was already encrypted", slot)
	}
	c := new(big.Int).Exp(s.pk.H[slot], s.r, s.p)
	c.Mul(c, new(big.Int).Exp(s.g, new(big.Int).SetUint64(x), s.p)).Mod(c, s.p)
	s.done[slot] = true
	return c, nil
}

// Close erases the period's randomness.
func (s *Stream) Close() {
	if s.r != nil {
		s.r.SetInt64(0)
		s.r = nil
	}
}

// Envelope is how a header or a reading travels in a signed measurement's
// ciphertext field: base64 of
//
//	"FE1" | kind (1 byte: 1 header, 2 reading) | period ID length (1) | period ID |
//	slot (4, big-endian) | count (1) | count × (length (2, big-endian) | value)
//
// A header carries C and D; a reading its one group element.
type Envelope struct {
	Kind   byte
	Period string
	Slot   int
	Values []*big.Int
}

// Envelope kinds.
const (
	KindHeader  byte = 1
	KindReading byte = 2
)

var magic = []byte("FE1")

// HeaderEnvelope wraps a period's header.
func HeaderEnvelope(period string, h Header) Envelope {
	return Envelope{Kind: KindHeader, Period: period, Values: []*big.Int{h.C, h.D}}
}

// ReadingEnvelope wraps slot's encrypted reading.
func ReadingEnvelope(period string, slot int, c *big.Int) Envelope {
	return Envelope{Kind: KindReading, Period: period, Slot: slot, Values: []*big.Int{c}}
}

// Encode renders the envelope as the base64 text of a ciphertext field.
func (e Envelope) Encode() string {
	b := append([]byte(nil), magic...)
	b = append(b, e.Kind, byte(len(e.Period)))
	b = append(b, e.Period...)
	b = binary.BigEndian.AppendUint32(b, uint32(e.Slot))
	b = append(b, byte(len(e.Values)))
	for _, v := range e.Values {
		vb := v.Bytes()
		b = binary.BigEndian.AppendUint16(b, uint16(len(vb)))
		b = append(b, vb...)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// ErrNotFE means a ciphertext field is not a billing envelope.
var ErrNotFE = errors.New("not a billing envelope")

// DecodeEnvelope parses a ciphertext field.
func DecodeEnvelope(s string) (Envelope, error) {
	var e Envelope
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) < len(magic)+2 || string(b[:3]) != string(magic) {
		return e, ErrNotFE
	}
	b = b[3:]
	e.Kind, b = b[0], b[1:]
	n := int(b[0])
	b = b[1:]
	if len(b) < n+5 {
		return e, fmt.Errorf("%w: truncated", ErrNotFE)
	}
	e.Period, b = string(b[:n]), b[n:]
	e.Slot, b = int(binary.BigEndian.Uint32(b)), b[4:]
	count := int(b[0])
	b = b[1:]
	for range count {
		if len(b) < 2 {
			return e, fmt.Errorf("%w: truncated", ErrNotFE)
		}
		l := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+l {
			return e, fmt.Errorf("%w: truncated", ErrNotFE)
		}
		e.Values, b = append(e.Values, new(big.Int).SetBytes(b[2:2+l])), b[2+l:]
	}
	if len(b) != 0 {
		return e, fmt.Errorf("%w: trailing data", ErrNotFE)
	}
	switch {
	case e.Kind == KindHeader && count == 2, e.Kind == KindReading && count == 1:
		return e, nil
	}
	return e, fmt.Errorf("%w: kind %d with %d values", ErrNotFE, e.Kind, count)
}
