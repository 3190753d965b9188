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
	for seq := uint64(1); seq <= wire.GuardWindow+5; seq++ {
		g.Accept(seq*10, []byte(strings.Repeat("x", int(seq))))
	}
	back, err := wire.UnmarshalGuard(g.Marshal())
	if err != nil || back.Last != g.Last || len(back.Recent) != wire.GuardWindow {
		t.Fatalf("guard %+v: %v", back, err)
	}
	if _, ok := back.Find(g.Last); !ok {
		t.Fatal("the last accepted seq is not in the window")
	}
	if _, ok := back.Find(10); ok {
		t.Fatal("the window holds more than its size")
	}
	a, _ := back.Find(g.Last - 10)
	if a.Hash != wire.HashOf([]byte(strings.Repeat("x", wire.GuardWindow+4))) {
		t.Fatal("hash of a remembered reading")
	}
	if empty, err := wire.UnmarshalGuard(nil); err != nil || empty.Last != 0 {
		t.Fatalf("empty guard %+v %v", empty, err)
	}
	for _, bad := range [][]byte{{9}, {1}, {1, 5, 17}, {1, 5, 1, 6}, append(g.Marshal(), 0)} {
		if _, err := wire.UnmarshalGuard(bad); err == nil {
			t.Errorf("UnmarshalGuard(%x) accepted", bad)
		}
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
