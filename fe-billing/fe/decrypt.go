package fe

import (
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"sort"
	"strings"
	"sync"

	"github.com/inter-nmi/pki/fe-billing/dlog"
)

// Ciphertext is a period's ciphertext as the ledger holds it: the header
// and one encrypted reading per slot.
type Ciphertext struct {
	Header   Header
	Readings []*big.Int
}

// SlotError names what is wrong with a period's ciphertexts: a missing or
// doubled slot is never a smaller bill.
type SlotError struct {
	Period    string
	NoHeader  bool
	Headers   int
	Missing   []int
	Duplicate []int
	Foreign   []int // slots beyond the period
}

func (e *SlotError) Error() string {
	var parts []string
	if e.NoHeader {
		parts = append(parts, "no ciphertext header")
	}
	if e.Headers > 1 {
		parts = append(parts, fmt.Sprintf("%d ciphertext headers", e.Headers))
	}
	if len(e.Missing) > 0 {
		parts = append(parts, "missing slots "+ranges(e.Missing))
	}
	if len(e.Duplicate) > 0 {
		parts = append(parts, "duplicated slots "+ranges(e.Duplicate))
	}
	if len(e.Foreign) > 0 {
		parts = append(parts, "slots outside the period "+ranges(e.Foreign))
	}
	return fmt.Sprintf("period %s cannot be billed: %s", e.Period, strings.Join(parts, "; "))
}

// ranges renders 1,2,3,7 as "1-3, 7".
func ranges(slots []int) string {
	sort.Ints(slots)
	var out []string
	for i := 0; i < len(slots); {
		j := i
		for j+1 < len(slots) && slots[j+1] == slots[j]+1 {
			j++
		}
		if i == j {
			out = append(out, fmt.Sprint(slots[i]))
		} else {
			out = append(out, fmt.Sprintf("%d-%d", slots[i], slots[j]))
		}
		i = j + 1
	}
	return strings.Join(out, ", ")
}

// Collect assembles a period's envelopes into its ciphertext. Every slot
// must be present exactly once, with exactly one header; otherwise the error
// (a *SlotError) names the slots.
func Collect(p Params, envelopes []Envelope) (*Ciphertext, error) {
	ct := &Ciphertext{Readings: make([]*big.Int, p.Period.Slots)}
	e := &SlotError{Period: p.Period.ID}
	seen := make([]int, p.Period.Slots)
	for _, env := range envelopes {
		if env.Period != p.Period.ID {
			continue
		}
		switch env.Kind {
		case KindHeader:
			e.Headers++
			ct.Header = Header{C: env.Values[0], D: env.Values[1]}
		case KindReading:
			if env.Slot < 0 || env.Slot >= p.Period.Slots {
				e.Foreign = append(e.Foreign, env.Slot)
				continue
			}
			seen[env.Slot]++
			ct.Readings[env.Slot] = env.Values[0]
		}
	}
	for slot, n := range seen {
		switch {
		case n == 0:
			e.Missing = append(e.Missing, slot)
		case n > 1:
			e.Duplicate = append(e.Duplicate, slot)
		}
	}
	e.NoHeader = e.Headers == 0
	if e.NoHeader || e.Headers > 1 || len(e.Missing) > 0 || len(e.Duplicate) > 0 || len(e.Foreign) > 0 {
		return nil, e
	}
	return ct, nil
}

// Tables keeps discrete-log tables for reuse: a utility billing many meters
// builds each table once.
type Tables struct {
	mu     sync.Mutex
	tables map[string]*dlog.Table
}

// NewTables makes an empty cache.
func NewTables() *Tables { return &Tables{tables: map[string]*dlog.Table{}} }

// table returns a table for results up to at least bound, rounded up to a
// power of two so that bills of similar size share it.
func (t *Tables) table(g, p *big.Int, bound uint64) (*dlog.Table, error) {
	if bound < 1<<10 {
		bound = 1 << 10
	}
	rounded := uint64(1)<<bits.Len64(bound-1) - 1
	if bits.Len64(bound-1) >= 64 {
		rounded = bound
	}
	key := fmt.Sprintf("%x/%d", p.Bytes()[:8], rounded)
	t.mu.Lock()
	defer t.mu.Unlock()
	if tab, ok := t.tables[key]; ok {
		return tab, nil
	}
	tab, err := dlog.NewTable(g, p, rounded)
	if err != nil {
		return nil, err
	}
	t.tables[key] = tab
	return tab, nil
}

// ErrNoBill means the functional key does not open the ciphertext for this
// tariff: the key was derived for another tariff, or the ciphertext is not
// the period's.
var ErrNoBill = errors.New("the functional key does not yield a bill for this tariff")

// Bill computes the tariff-weighted sum of the period's readings, in the
// tariff's units (milli-cents), with the utility's functional key.
func Bill(ct *Ciphertext, fk *FunctionKey, t Tariff, tables *Tables) (uint64, error) {
	if fk.TariffHash != t.Hash() {
		return 0, fmt.Errorf("%w: the key is for tariff %s, not %s", ErrNoBill, fk.TariffHash, t.Hash())
	}
	return Evaluate(ct, fk, t.Weights, tables)
}

// Evaluate is the decryption itself: Π c_i^{y_i} / (C^{k1} · D^{k2}) is
// g^{<x,y>} exactly when the key was derived for y; its discrete log, within
// MaxReading · Σ y, is the bill. For any other y the search fails.
func Evaluate(ct *Ciphertext, fk *FunctionKey, weights []uint64, tables *Tables) (uint64, error) {
	p := fk.Params
	if len(weights) != p.Period.Slots || len(ct.Readings) != p.Period.Slots {
		return 0, fmt.Errorf("%d weights and %d readings for %d slots", len(weights), len(ct.Readings), p.Period.Slots)
	}
	g, mod, _, err := p.group()
	if err != nil {
		return 0, err
	}
	var sum uint64
	num := big.NewInt(1)
	y := new(big.Int)
	for i, c := range ct.Readings {
		if weights[i] > p.MaxWeight {
			return 0, fmt.Errorf("weight %d of slot %d exceeds the bound %d", weights[i], i, p.MaxWeight)
		}
		sum += weights[i]
		num.Mul(num, new(big.Int).Exp(c, y.SetUint64(weights[i]), mod)).Mod(num, mod)
	}
	denom := new(big.Int).Exp(ct.Header.C, fk.Key1, mod)
	denom.Mul(denom, new(big.Int).Exp(ct.Header.D, fk.Key2, mod)).Mod(denom, mod)
	inv := new(big.Int).ModInverse(denom, mod)
	if inv == nil {
		return 0, ErrNoBill
	}
	gx := num.Mul(num, inv).Mod(num, mod)
	hi, bound := bits.Mul64(p.MaxReading, sum)
	if hi != 0 || bound > dlog.MaxBound {
		return 0, fmt.Errorf("the largest possible bill (%d × %d) is beyond what can be decrypted", p.MaxReading, sum)
	}
	tab, err := tables.table(g, mod, bound)
	if err != nil {
		return 0, err
	}
	x, err := tab.Log(gx)
	if errors.Is(err, dlog.ErrOutOfRange) || x > bound {
		return 0, ErrNoBill
	}
	return x, err
}

// Reading decrypts one slot's reading: only the master key can.
func (mk *MasterKey) Reading(h Header, slot int, c *big.Int, tables *Tables) (uint64, error) {
	if slot < 0 || slot >= len(mk.S) {
		return 0, fmt.Errorf("slot %d is outside the period", slot)
	}
	g, mod, _, err := mk.Params.group()
	if err != nil {
		return 0, err
	}
	denom := new(big.Int).Exp(h.C, mk.S[slot], mod)
	denom.Mul(denom, new(big.Int).Exp(h.D, mk.T[slot], mod)).Mod(denom, mod)
	inv := new(big.Int).ModInverse(denom, mod)
	if inv == nil {
		return 0, fmt.Errorf("slot %d: the header does not match", slot)
	}
	gx := new(big.Int).Mul(c, inv)
	gx.Mod(gx, mod)
	tab, err := tables.table(g, mod, mk.Params.MaxReading)
	if err != nil {
		return 0, err
	}
	x, err := tab.Log(gx)
	if err != nil {
		return 0, fmt.Errorf("slot %d does not decrypt under this key: %w", slot, err)
	}
	return x, nil
}
