package proof

import (
	"os"
	"path/filepath"
	"testing"
)

// Parse never panics, and what it accepts encodes back to a bundle it
// accepts again, field for field.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"fresh-nochain"} {
		data, err := os.ReadFile(filepath.Join(bundles, name+".json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"format":"inter-nmi/meter-attestation/1","channel":"c","meterId":"m","txId":"t","block":"AA=="}`))
	f.Add([]byte(`{"format":"inter-nmi/meter-attestation/1","config":[""]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse(data)
		if err != nil {
			return
		}
		again, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		b2, err := Parse(again)
		if err != nil {
			t.Fatalf("a parsed bundle does not parse again: %v", err)
		}
		if b2.TxID != b.TxID || b2.MeterID != b.MeterID || len(b2.Config) != len(b.Config) || string(b2.Block) != string(b.Block) {
			t.Fatal("a bundle changed on the way through JSON")
		}
	})
}

// Verify never panics on any block in place of the attestation's, and
// accepts none but the real one.
func FuzzVerify(f *testing.F) {
	b, o := load(f, "fresh"), opts(f)
	good, err := decodeBlock(b.Block)
	if err != nil {
		f.Fatal(err)
	}
	anchors, err := configChain(b, o, good.GetHeader().GetNumber())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b.Block)
	f.Add(load(f, "rotated").Block)
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		raw, err := decodeBlock(data)
		if err != nil {
			return
		}
		if _, err := verifyBlock(b, raw, anchors, o); err == nil && string(data) != string(b.Block) {
			// Only an encoding of the very same block may verify.
			again, merr := marshal(raw)
			if merr != nil || string(again) != string(b.Block) {
				t.Fatalf("a block other than the attestation's verified")
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	for _, bench := range []struct {
		name   string
		bundle string
	}{{"with-chain", "fresh"}, {"chain-given", "fresh-nochain"}} {
		b.Run(bench.name, func(b *testing.B) {
			bundle, o := load(b, bench.bundle), opts(b)
			if bench.bundle == "fresh-nochain" {
				o.Chain = load(b, "fresh")
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Verify(bundle, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("parse", func(b *testing.B) {
		data, err := os.ReadFile(filepath.Join(bundles, "fresh.json"))
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := Parse(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
