// Package fe is privacy-preserving billing by functional encryption for
// inner products (Damgård's fully secure DDH scheme, as gofe implements it,
// on gofe's precomputed groups). The customer owns the readings and the
// master secret; the meter encrypts each reading as it is taken with the
// customer's public key; the utility holds a functional key bound to the
// agreed tariff and learns the tariff-weighted sum — the bill — and nothing
// else.
//
// Why Damgård and not gofe's simpler DDH scheme: the DDH scheme is secure
// only against an adversary that fixes the readings it attacks before it
// sees the public key (selective security); Damgård's variant stays secure
// when functional keys are chosen adaptively, for the price of one more
// group element per ciphertext (a header of two elements instead of one) and
// a master key twice the size. Encryption, the meter's only work, costs the
// same: one exponentiation per reading.
package fe

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/fentec-project/gofe/innerprod/fullysec"
)

// Defaults of a billing period's parameters.
const (
	DefaultGroup = 2048
	// DefaultMaxReading bounds one slot's energy in Wh: 100 kWh in 15
	// minutes is a 400 kW connection.
	DefaultMaxReading = 100_000
	// DefaultMaxWeight bounds a tariff weight: milli-cents per Wh, so
	// 10,000 is 100 € per kWh.
	DefaultMaxWeight = 10_000
)

// Groups are the modulus sizes offered: gofe's precomputed 2048- and
// 3072-bit groups.
var Groups = []int{2048, 3072}

// Period is a billing period of a meter: Slots readings, one per Interval,
// the first covering [Start, Start+Interval).
type Period struct {
	ID       string        `json:"id"`
	Start    time.Time     `json:"start"`
	Interval time.Duration `json:"interval"`
	Slots    int           `json:"slots"`
}

// MaxSlots bounds a period: a 31-day month of 15-minute slots.
const MaxSlots = 31 * 96

// Validate checks the period.
func (p Period) Validate() error {
	switch {
	case p.ID == "" || len(p.ID) > 32:
		return errors.New("period ID must be 1 to 32 characters")
	case p.Slots < 1 || p.Slots > MaxSlots:
		return fmt.Errorf("slots %d must be between 1 and %d", p.Slots, MaxSlots)
	case p.Interval < time.Minute || p.Interval%time.Minute != 0:
		return fmt.Errorf("interval %s must be whole minutes", p.Interval)
	case p.Start.IsZero():
		return errors.New("period start is required")
	}
	return nil
}

// SlotEnd is when slot i's reading is taken: the end of its interval.
func (p Period) SlotEnd(i int) time.Time { return p.Start.Add(time.Duration(i+1) * p.Interval).UTC() }

// End is the end of the period.
func (p Period) End() time.Time { return p.SlotEnd(p.Slots - 1) }

// Params are the scheme's parameters for one period.
type Params struct {
	Period Period `json:"period"`
	// Group is the modulus size in bits (2048 or 3072).
	Group int `json:"group"`
	// MaxReading bounds each slot's value (Wh); larger readings are refused
	// at encryption.
	MaxReading uint64 `json:"maxReading"`
	// MaxWeight bounds each tariff weight.
	MaxWeight uint64 `json:"maxWeight"`
}

// Validate checks the parameters.
func (p Params) Validate() error {
	if err := p.Period.Validate(); err != nil {
		return err
	}
	if p.Group != 2048 && p.Group != 3072 {
		return fmt.Errorf("group %d: use 2048 or 3072 bits", p.Group)
	}
	if p.MaxReading < 1 || p.MaxReading > 1<<32 || p.MaxWeight < 1 || p.MaxWeight > 1<<32 {
		return errors.New("maxReading and maxWeight must be between 1 and 2^32")
	}
	return nil
}

// scheme is gofe's Damgård instance for the parameters.
func (p Params) scheme() (*fullysec.Damgard, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	bound := new(big.Int).SetUint64(max(p.MaxReading, p.MaxWeight))
	d, err := fullysec.NewDamgardPrecomp(p.Period.Slots, p.Group, bound)
	if err != nil {
		return nil, fmt.Errorf("damgard scheme: %w", err)
	}
	return d, nil
}

// PublicKey is what the meter encrypts with.
type PublicKey struct {
	Params Params     `json:"params"`
	H      []*big.Int `json:"h"`
}

// Hash is the SHA-256 (hex) of the public key's canonical JSON, the value
// bound on the ledger to the meter and period.
func (pk *PublicKey) Hash() string {
	b, _ := json.Marshal(pk)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// MasterKey is the customer's secret: it derives functional keys and
// decrypts every single reading. It never leaves the customer.
type MasterKey struct {
	Params Params     `json:"params"`
	S      []*big.Int `json:"s"`
	T      []*big.Int `json:"t"`
	// Issued are the hashes of the tariffs a functional key was derived for.
	Issued []string `json:"issued"`
}

// GenerateKeys makes the customer's master key and the meter's public key
// for one period.
func GenerateKeys(p Params) (*MasterKey, *PublicKey, error) {
	d, err := p.scheme()
	if err != nil {
		return nil, nil, err
	}
	sk, pk, err := d.GenerateMasterKeys()
	if err != nil {
		return nil, nil, fmt.Errorf("generate keys: %w", err)
	}
	return &MasterKey{Params: p, S: sk.S, T: sk.T}, &PublicKey{Params: p, H: pk}, nil
}

// FunctionKey lets its holder compute the tariff-weighted sum of one
// period's readings, and nothing else.
type FunctionKey struct {
	Params     Params   `json:"params"`
	TariffHash string   `json:"tariffSha256"`
	Key1       *big.Int `json:"key1"`
	Key2       *big.Int `json:"key2"`
}

// group returns the group's generator and modulus.
func (p Params) group() (g, mod, order *big.Int, err error) {
	d, err := p.scheme()
	if err != nil {
		return nil, nil, nil, err
	}
	return d.Params.G, d.Params.P, d.Params.Q, nil
}
