package fe_test

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/inter-nmi/pki/fe-billing/fe"
)

// Benchmarks of each party's work, for a day (96 slots) and a 30-day month
// (2,880 slots): `go test -run '^$' -bench . -benchtime 1x ./fe-billing/fe/`
// (key generation for 2,880 slots takes about a minute per run).

var slotCounts = []int{96, 2880}

func BenchmarkSetupAndKeygen(b *testing.B) {
	for _, slots := range slotCounts {
		b.Run(fmt.Sprintf("slots=%d", slots), func(b *testing.B) {
			for b.Loop() {
				if _, _, err := fe.GenerateKeys(params(slots)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncryptReading(b *testing.B) {
	for _, group := range fe.Groups {
		b.Run(fmt.Sprintf("group=%d", group), func(b *testing.B) {
			p := params(96)
			p.Group = group
			_, pk, err := fe.GenerateKeys(p)
			if err != nil {
				b.Fatal(err)
			}
			s, err := fe.NewStream(pk)
			if err != nil {
				b.Fatal(err)
			}
			var c *big.Int
			slot := 0
			for b.Loop() {
				if slot == 96 { // a new period when the day is full
					s.Close()
					if s, err = fe.NewStream(pk); err != nil {
						b.Fatal(err)
					}
					slot = 0
				}
				if c, err = s.Encrypt(slot, 1234); err != nil {
					b.Fatal(err)
				}
				slot++
			}
			b.ReportMetric(float64(len(c.Bytes())), "element-bytes")
			b.ReportMetric(float64(len(fe.ReadingEnvelope("2026-11", 2879, c).Encode())), "envelope-base64-bytes")
		})
	}
}

func BenchmarkBill(b *testing.B) {
	for _, slots := range slotCounts {
		b.Run(fmt.Sprintf("slots=%d", slots), func(b *testing.B) {
			p := params(slots)
			mk, pk, err := fe.GenerateKeys(p)
			if err != nil {
				b.Fatal(err)
			}
			tariff := fe.TimeOfUse("PTB-0001", p.Period, "EUR", 7, 21, 40, 25)
			fk, err := mk.Derive(tariff, false)
			if err != nil {
				b.Fatal(err)
			}
			s, err := fe.NewStream(pk)
			if err != nil {
				b.Fatal(err)
			}
			ct := &fe.Ciphertext{Header: s.Header(), Readings: make([]*big.Int, slots)}
			var want uint64
			for i := range slots {
				x := uint64(50 + i%400)
				if ct.Readings[i], err = s.Encrypt(i, x); err != nil {
					b.Fatal(err)
				}
				want += x * tariff.Weights[i]
			}
			tables := fe.NewTables()
			// The first bill builds the discrete-log table; a utility keeps it.
			if got, err := fe.Bill(ct, fk, tariff, tables); err != nil || got != want {
				b.Fatalf("bill %d %v, want %d", got, err, want)
			}
			for b.Loop() {
				if _, err := fe.Bill(ct, fk, tariff, tables); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFirstBill(b *testing.B) {
	p := params(96)
	mk, pk, err := fe.GenerateKeys(p)
	if err != nil {
		b.Fatal(err)
	}
	tariff := fe.TimeOfUse("PTB-0001", p.Period, "EUR", 7, 21, 40, 25)
	fk, _ := mk.Derive(tariff, false)
	s, _ := fe.NewStream(pk)
	ct := &fe.Ciphertext{Header: s.Header(), Readings: make([]*big.Int, 96)}
	for i := range 96 {
		ct.Readings[i], _ = s.Encrypt(i, 100)
	}
	for b.Loop() {
		if _, err := fe.Bill(ct, fk, tariff, fe.NewTables()); err != nil {
			b.Fatal(err)
		}
	}
}
