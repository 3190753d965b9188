// Package dlog computes bounded discrete logarithms in Z_p* by baby-step
// giant-step with a table built once and reused: the last step of every
// functional decryption, where the plaintext inner product x is recovered
// from g^x.
//
// It exists because gofe's own search, at the version the project pins,
// leaves a goroutine running after every call and quietly drops bounds above
// 2^48: here a Table is plain data, a search runs in the caller's goroutine
// and stops at its bound, and a result out of range is an error.
package dlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
)

// MaxBound bounds the tables this package builds: sqrt(2^56) = 2^28 baby
// steps would take gigabytes; larger ranges need another method.
const MaxBound = uint64(1) << 56

// ErrOutOfRange means no x in [0, bound] has g^x = h.
var ErrOutOfRange = errors.New("the discrete logarithm is not within the bound")

// Table answers log_g(h) for results in [0, Bound].
type Table struct {
	p, g  *big.Int
	bound uint64
	m     uint64
	// baby maps a fingerprint of g^j to j for j in [0, m); collisions of
	// fingerprints are resolved by checking candidates.
	baby  map[uint64]uint32
	extra map[uint64][]uint32
	// giant is g^-m.
	giant *big.Int
}

// NewTable builds the baby steps for results in [0, bound]: sqrt(bound+1)
// multiplications and entries.
func NewTable(g, p *big.Int, bound uint64) (*Table, error) {
	if bound > MaxBound {
		return nil, fmt.Errorf("bound %d exceeds the largest supported, %d", bound, MaxBound)
	}
	if g.Sign() <= 0 || p.Cmp(big.NewInt(2)) <= 0 || g.Cmp(p) >= 0 {
		return nil, errors.New("the generator must lie in (0, p)")
	}
	m := isqrt(bound) + 1
	t := &Table{p: new(big.Int).Set(p), g: new(big.Int).Set(g), bound: bound, m: m,
		baby: make(map[uint64]uint32, m), extra: map[uint64][]uint32{}}
	e := big.NewInt(1)
	for j := uint64(0); j < m; j++ {
		f := fingerprint(e)
		if _, dup := t.baby[f]; dup {
			t.extra[f] = append(t.extra[f], uint32(j))
		} else {
			t.baby[f] = uint32(j)
		}
		e.Mul(e, g).Mod(e, p)
	}
	// e is now g^m; the giant step multiplies by its inverse.
	t.giant = new(big.Int).ModInverse(e, p)
	if t.giant == nil {
		return nil, errors.New("g^m has no inverse modulo p")
	}
	return t, nil
}

// Bound is the largest result the table finds.
func (t *Table) Bound() uint64 { return t.bound }

// Matches reports whether the table was built for this generator and modulus.
func (t *Table) Matches(g, p *big.Int) bool { return t.g.Cmp(g) == 0 && t.p.Cmp(p) == 0 }

// Log returns x in [0, Bound] with g^x = h mod p, or ErrOutOfRange.
func (t *Table) Log(h *big.Int) (uint64, error) {
	if h.Sign() <= 0 || h.Cmp(t.p) >= 0 {
		return 0, fmt.Errorf("%w: the value is not an element of the group", ErrOutOfRange)
	}
	gamma := new(big.Int).Set(h)
	for i := uint64(0); i*t.m <= t.bound; i++ {
		f := fingerprint(gamma)
		if j, ok := t.baby[f]; ok {
			if x, ok := t.check(i, j, h); ok {
				return x, nil
			}
			for _, j := range t.extra[f] {
				if x, ok := t.check(i, j, h); ok {
					return x, nil
				}
			}
		}
		gamma.Mul(gamma, t.giant).Mod(gamma, t.p)
	}
	return 0, ErrOutOfRange
}

// check confirms a candidate i*m+j, since fingerprints may collide.
func (t *Table) check(i uint64, j uint32, h *big.Int) (uint64, bool) {
	x := i*t.m + uint64(j)
	if x > t.bound {
		return 0, false
	}
	return x, new(big.Int).Exp(t.g, new(big.Int).SetUint64(x), t.p).Cmp(h) == 0
}

// fingerprint is the low 64 bits of an element.
func fingerprint(e *big.Int) uint64 {
	b := e.Bytes()
	var buf [8]byte
	if len(b) >= 8 {
		copy(buf[:], b[len(b)-8:])
	} else {
		copy(buf[8-len(b):], b)
	}
	return binary.BigEndian.Uint64(buf[:])
}

func isqrt(n uint64) uint64 {
	r := new(big.Int).Sqrt(new(big.Int).SetUint64(n))
	return r.Uint64()
}
