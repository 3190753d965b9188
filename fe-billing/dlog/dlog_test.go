package dlog_test

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/fentec-project/gofe/innerprod/fullysec"

	"github.com/inter-nmi/pki/fe-billing/dlog"
)

// group is gofe's precomputed 2048-bit group.
func group(t testing.TB) (g, p *big.Int) {
	t.Helper()
	d, err := fullysec.NewDamgardPrecomp(1, 2048, big.NewInt(10))
	if err != nil {
		t.Fatal(err)
	}
	return d.Params.G, d.Params.P
}

func TestLog(t *testing.T) {
	g, p := group(t)
	const bound = 1_000_000
	table, err := dlog.NewTable(g, p, bound)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, x := range []uint64{0, 1, 2, 999, 1000, 1001, bound - 1, bound, rng.Uint64N(bound), rng.Uint64N(bound)} {
		h := new(big.Int).Exp(g, new(big.Int).SetUint64(x), p)
		got, err := table.Log(h)
		if err != nil || got != x {
			t.Errorf("Log(g^%d) = %d, %v", x, got, err)
		}
	}
	for _, x := range []uint64{bound + 1, 2 * bound, 1 << 40} {
		h := new(big.Int).Exp(g, new(big.Int).SetUint64(x), p)
		if got, err := table.Log(h); !errors.Is(err, dlog.ErrOutOfRange) {
			t.Errorf("Log(g^%d) beyond the bound = %d, %v; want ErrOutOfRange", x, got, err)
		}
	}
	if _, err := table.Log(big.NewInt(0)); !errors.Is(err, dlog.ErrOutOfRange) {
		t.Errorf("Log(0): %v", err)
	}
}

func TestBadTables(t *testing.T) {
	g, p := group(t)
	if _, err := dlog.NewTable(g, p, dlog.MaxBound+1); err == nil {
		t.Error("a bound beyond MaxBound was accepted")
	}
	if _, err := dlog.NewTable(p, p, 10); err == nil {
		t.Error("a generator equal to p was accepted")
	}
}

// TestNoGoroutineLeft is the property gofe's own search lacks.
func TestNoGoroutineLeft(t *testing.T) {
	g, p := group(t)
	table, err := dlog.NewTable(g, p, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	for x := uint64(0); x < 20; x++ {
		if _, err := table.Log(new(big.Int).Exp(g, new(big.Int).SetUint64(x*777), p)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := table.Log(new(big.Int).Exp(g, big.NewInt(1<<30), p)); !errors.Is(err, dlog.ErrOutOfRange) {
		t.Fatal(err)
	}
	if after := runtime.NumGoroutine(); after != before {
		t.Fatalf("goroutines %d before, %d after", before, after)
	}
}

func BenchmarkTable2to36(b *testing.B) {
	g, p := group(b)
	for b.Loop() {
		if _, err := dlog.NewTable(g, p, 1<<36); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLog2to36(b *testing.B) {
	g, p := group(b)
	table, err := dlog.NewTable(g, p, 1<<36)
	if err != nil {
		b.Fatal(err)
	}
	h := new(big.Int).Exp(g, big.NewInt(1<<35+12345), p)
	for b.Loop() {
		if _, err := table.Log(h); err != nil {
			b.Fatal(err)
		}
	}
}
