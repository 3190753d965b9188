package wire_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

func signed(t testing.TB, n int) []meter.SignedMeasurement {
	t.Helper()
	key, err := meter.GenerateKey(meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	var out []meter.SignedMeasurement
	for i := range n {
		sm, err := meter.Sign(key, meter.Measurement{MeterID: "PTB-0001", Seq: uint64(i + 1),
			Time: time.Date(2026, 11, 21, 10, i%60, 0, 0, time.UTC).Format(time.RFC3339), Value: "1.5", Unit: "kWh"})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sm)
	}
	return out
}

func TestPackRoundTrip(t *testing.T) {
	items := signed(t, 50)
	items[3].MeterID = "" // kept as it is: the chaincode refuses it
	packed, err := wire.Pack(items)
	if err != nil {
		t.Fatal(err)
	}
	back, err := wire.Unpack(packed)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(items) {
		t.Fatalf("%d items back of %d", len(back), len(items))
	}
	for i := range items {
		if back[i].MeterID != items[i].MeterID || !bytes.Equal(back[i].Payload, items[i].Payload) || !bytes.Equal(back[i].Signature, items[i].Signature) {
			t.Fatalf("item %d differs", i)
		}
	}
	js, _ := json.Marshal(items)
	t.Logf("%d items: %d bytes packed, %d as JSON", len(items), len(packed), len(js))
}

func TestUnpackRefuses(t *testing.T) {
	gz := func(raw []byte) []byte {
		var b bytes.Buffer
		b.WriteString("PKM1")
		w := gzip.NewWriter(&b)
		w.Write(raw)
		w.Close()
		return b.Bytes()
	}
	good, _ := wire.Pack(signed(t, 2))
	many, _ := wire.Pack(make([]meter.SignedMeasurement, meter.MaxBatch+1))
	cases := map[string]struct {
		in   []byte
		code meter.Code
	}{
		"no magic":           {[]byte("[{}]"), meter.CodeMalformed},
		"not gzip":           {[]byte("PKM1 not gzip"), meter.CodeMalformed},
		"truncated":          {good[:len(good)-10], meter.CodeMalformed},
		"a short field":      {gz([]byte{5, 'a'}), meter.CodeMalformed},
		"a huge field":       {gz([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}), meter.CodeMalformed},
		"too many items":     {many, meter.CodeTooLarge},
		"decompression bomb": {gz(bytes.Repeat([]byte{0}, meter.MaxBatch*(64+meter.MaxPayloadBytes+160)+10)), meter.CodeTooLarge},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := wire.Unpack(tc.in); meter.CodeOf(err) != tc.code {
				t.Fatalf("Unpack = %v, want %s", err, tc.code)
			}
		})
	}
}

func FuzzUnpack(f *testing.F) {
	good, _ := wire.Pack(signed(f, 3))
	f.Add(good)
	f.Add([]byte("PKM1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := wire.Unpack(b)
		if err == nil && len(items) > meter.MaxBatch {
			t.Fatalf("%d items", len(items))
		}
	})
}

func TestGuard(t *testing.T) {
	var g wire.Guard
	g.Reset(3)
	for seq := uint64(1); seq <= wire.GuardRecent+5; seq++ {
		if v := g.Check(seq * 10); v != wire.Fresh {
			t.Fatalf("seq %d: verdict %d, want fresh", seq*10, v)
		}
		g.Accept(seq*10, []byte(strings.Repeat("x", int(seq))))
	}
	back, err := wire.UnmarshalGuard(g.Marshal())
	if err != nil || back.Last != g.Last || back.KeyVersion != 3 || len(back.Recent) != wire.GuardRecent {
		t.Fatalf("guard %+v: %v", back, err)
	}
	if _, ok := back.Find(g.Last); !ok {
		t.Fatal("the last accepted seq is not remembered")
	}
	if _, ok := back.Find(10); ok {
		t.Fatal("the guard remembers more readings than GuardRecent")
	}
	a, _ := back.Find(g.Last - 10)
	if !a.Matches(wire.HashOf([]byte(strings.Repeat("x", wire.GuardRecent+4)))) {
		t.Fatal("hash of a remembered reading")
	}
	if empty, err := wire.UnmarshalGuard(nil); err != nil || empty.Last != 0 || empty.Check(1) != wire.Fresh {
		t.Fatalf("empty guard %+v %v", empty, err)
	}
	for _, bad := range [][]byte{{9}, {2}, {2, 1, 5}, append(g.Marshal(), 0), {1}, {1, 5, 17}, {1, 5, 1, 6}} {
		if _, err := wire.UnmarshalGuard(bad); err == nil {
			t.Errorf("UnmarshalGuard(%x) accepted", bad)
		}
	}
}

// The window accepts each seq once: out of order within ReplayWindow of the
// highest, refused when seen or older, and a jump beyond MaxSeqAdvance is
// refused. Checked against a model that remembers every accepted seq.
func TestGuardWindow(t *testing.T) {
	var g wire.Guard
	accepted := map[uint64]bool{}
	highest := uint64(0)
	check := func(seq uint64) {
		t.Helper()
		want := wire.Fresh
		switch {
		case seq > highest && seq-highest > wire.MaxSeqAdvance:
			want = wire.TooFar
		case seq <= highest && highest-seq > wire.ReplayWindow:
			want = wire.TooOld
		case accepted[seq]:
			want = wire.Seen
		}
		if got := g.Check(seq); got != want {
			t.Fatalf("after %v: seq %d verdict %d, want %d", highest, seq, got, want)
		}
		if want == wire.Fresh {
			g.Accept(seq, []byte{byte(seq)})
			accepted[seq] = true
			highest = max(highest, seq)
			// The window survives encoding.
			back, err := wire.UnmarshalGuard(g.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			g = back
		}
	}
	// Reversed, interleaved, repeated, jumps of 1, 64, 128, 129 and more.
	for _, seq := range []uint64{5, 3, 4, 5, 1, 2, 200, 72, 71, 73, 72, 199, 201, 329, 201, 330, 202, 1000, 872, 871, 999, 5, 1000 + 1<<32, 1000 + 1<<32 + 1} {
		check(seq)
	}
	for seq := uint64(2000); seq > 1800; seq-- {
		check(seq)
	}
	for seq := uint64(1700); seq < 2100; seq += 7 {
		check(seq)
	}
}

// A guard written by the first layout (8-byte hashes, no window, no key
// version) keeps its meaning: every seq at or below its Last counts as
// accepted, and its hashes still match.
func TestGuardLegacy(t *testing.T) {
	h := wire.HashOf([]byte("reading 9"))
	v1 := append([]byte{1, 9, 1, 0}, h[:8]...)
	g, err := wire.UnmarshalGuard(v1)
	if err != nil || g.KeyVersion != wire.LegacyKeyVersion || g.Last != 9 {
		t.Fatalf("legacy guard %+v %v", g, err)
	}
	for seq := uint64(1); seq <= 9; seq++ {
		if g.Check(seq) != wire.Seen {
			t.Errorf("seq %d of a legacy guard is not counted as accepted", seq)
		}
	}
	if a, ok := g.Find(9); !ok || !a.Matches(h) {
		t.Errorf("legacy hash does not match")
	}
	g.KeyVersion = 1
	back, err := wire.UnmarshalGuard(g.Marshal())
	if err != nil || back.Check(3) != wire.Seen || back.Check(10) != wire.Fresh {
		t.Fatalf("legacy guard written again: %+v %v", back, err)
	}
}

func FuzzUnmarshalGuard(f *testing.F) {
	var g wire.Guard
	g.Accept(7, []byte("a"))
	f.Add(g.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := wire.UnmarshalGuard(b)
		if err == nil {
			if back, err := wire.UnmarshalGuard(g.Marshal()); err != nil || back.Last != g.Last {
				t.Fatalf("round trip of %x: %v", b, err)
			}
		}
	})
}
