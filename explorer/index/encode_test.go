package index

import (
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/inter-nmi/pki/network/pkg/chain"
)

func TestEncodingRoundTrip(t *testing.T) {
	hexID := strings.Repeat("0123456789abcdef", 4)
	times := []time.Time{{}, time.Unix(0, 0).UTC(), time.Date(2026, 11, 1, 12, 30, 15, 123456789, time.UTC), time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC)}
	ids := []string{hexID, strings.ToUpper(hexID), "", "config", hexID[:63], strings.Repeat("z", 300)}
	var e enc
	for _, tm := range times {
		e = e.time(tm)
	}
	for _, id := range ids {
		e = e.txID(id)
	}
	e = e.uvarint(math.MaxUint64).varint(math.MinInt64).bytes([]byte{0, 1, 2}).str("héllo")
	d := &dec{b: e}
	for _, want := range times {
		if got := d.time(); !got.Equal(want) || got.IsZero() != want.IsZero() {
			t.Errorf("time %v read back as %v", want, got)
		}
	}
	for _, want := range ids {
		if got := d.txID(); got != want {
			t.Errorf("transaction ID %q read back as %q", want, got)
		}
	}
	if d.uvarint() != math.MaxUint64 || d.varint() != math.MinInt64 || string(d.bytes()) != "\x00\x01\x02" || d.str() != "héllo" {
		t.Error("numbers, bytes or string not read back")
	}
	if err := d.end("test"); err != nil {
		t.Fatal(err)
	}
	// A Fabric ID costs its 32 bytes and one.
	if n := len(enc{}.txID(hexID)); n != 33 {
		t.Errorf("a hex transaction ID takes %d bytes", n)
	}
}

// A value that does not decode is an error, never a panic or a value
// made up.
func TestEncodingCorrupt(t *testing.T) {
	good := enc{}.str("meter").time(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)).txID(strings.Repeat("ab", 32))
	for name, b := range map[string][]byte{
		"cut short":      good[:len(good)-3],
		"trailing bytes": append(append([]byte(nil), good...), 7),
		"length too big": enc{}.uvarint(1 << 40),
		"bad varint":     {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	} {
		d := &dec{b: b}
		d.str()
		d.time()
		d.txID()
		if err := d.end("test"); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: %v, want errCorrupt", name, err)
		}
	}
	if _, _, _, _, err := readChunk([]byte{0, 1, 0, 0xff}); !errors.Is(err, errCorrupt) {
		t.Errorf("a corrupt chunk of readings: %v", err)
	}
	if _, err := getKey(deflate([]byte(`{"meterId":"X"`))[:5]); !errors.Is(err, errCorrupt) {
		t.Errorf("a key version cut short: %v", err)
	}
}

// Deflated with the layout's dictionary, a meter's record takes about half
// its size, and comes back as it was.
func TestDeflate(t *testing.T) {
	rec := []byte(`{"meterId":"PTB-0001","nmi":"PTBMSP","publicKey":"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE6dRLPwvutJMGiCQHVYXKekCAhmLR\n` +
		`uRx8leIVbBL9fOUm5x9wtUhkyMMCQh9I6vI3Sz9MhdFe01p2OaeoMNMq0w==\n-----END PUBLIC KEY-----\n","curve":"P-256",` +
		`"fingerprint":"c55c47df8a783fd6c9b934c9d10b1ba462f0d5ffa4670ff794a117b902ab9790","keyVersion":1,"status":"active",` +
		`"metadata":{"manufacturer":"Example Metering GmbH","model":"EM-3000","serialNumber":"SN0001","softwareId":"EM-FW 4.2.1",` +
		`"softwareChecksum":"sha256:9f86d081884c7d65"},"registeredTx":"pending","registeredAt":"2026-12-07T16:52:43Z","updatedTx":"","updatedAt":""}`)
	z := deflate(rec)
	if len(z) > len(rec)/2 {
		t.Errorf("a record of %d bytes deflated to %d", len(rec), len(z))
	}
	if back, err := inflate(z); err != nil || string(back) != string(rec) {
		t.Fatalf("read back %q, %v", back, err)
	}
}

func testDB(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "strs.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bStrs); return err }); err != nil {
		t.Fatal(err)
	}
	return db
}

// The dictionary gives a short string a number once, for good; a long one
// is kept in place.
func TestDictionary(t *testing.T) {
	db := testDB(t)
	long := strings.Repeat("x", maxDictLen+1)
	words := []string{"PTBMSP", "VALID", "", "PTBMSP", long, "SubmitMeasurementsPacked"}
	var e enc
	err := db.Update(func(tx *bolt.Tx) error {
		d := newStrs(tx)
		for _, w := range words {
			var err error
			if e, err = d.put(e, w); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(e) != 1+1+1+1+2+maxDictLen+1+1 {
		t.Errorf("%d bytes for %d strings: short ones must take a byte, the long one its length", len(e), len(words))
	}
	var again enc
	err = db.Update(func(tx *bolt.Tx) error {
		d := newStrs(tx)
		var err error
		again, err = d.put(nil, "VALID")
		if err != nil {
			return err
		}
		r := &dec{b: e}
		for _, w := range words {
			if got := d.get(r); got != w {
				t.Errorf("%.20q read back as %.20q", w, got)
			}
		}
		return r.end("test")
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(e[1:2]) {
		t.Error("a string got a second number in a later transaction")
	}
}

// A reading costs a few bytes, and every field comes back: refused ones
// without a meter time, a seq that starts again after a key rotation,
// times that go back.
func TestChunkRoundTrip(t *testing.T) {
	spots := []spot{
		{Block: 40, Tx: 0, Item: 17, Seq: 9, Time: 1_793_491_200, HasTime: true},
		{Block: 43, Tx: 2, Item: 999, Seq: 10, Time: 1_793_492_100, HasTime: true},
		{Block: 43, Tx: 2, Item: 1000, Refused: true, Seq: 10},
		{Block: 90, Tx: 0, Item: 0, Seq: 1, Time: 1_793_400_000, HasTime: true},
		{Block: 1 << 40, Tx: 1 << 20, Item: 1<<31 - 1, Seq: math.MaxUint64, Time: -5, HasTime: true},
	}
	chunk := newChunk(12, true)
	var end last
	for _, s := range spots {
		chunk = appendSpot(chunk, &end, s)
	}
	before, ok, got, gotEnd, err := readChunk(chunk)
	if err != nil || !ok || before != 12 || !reflect.DeepEqual(got, spots) || gotEnd != end {
		t.Fatalf("read back %d %v %+v %+v %v", before, ok, got, gotEnd, err)
	}
	if _, ok, _, _, _ := readChunk(newChunk(0, false)); ok {
		t.Error("a meter's first chunk names one before it")
	}
	// A reading of a batch, the meter's next, costs 7 bytes.
	l := last{block: 40, seq: 9, time: 1_793_491_200}
	if n := len(appendSpot(nil, &l, spot{Block: 42, Tx: 0, Item: 517, Seq: 10, Time: 1_793_492_100, HasTime: true})); n != 7 {
		t.Errorf("a reading costs %d bytes", n)
	}
}

// A block summary keeps what the block pages show.
func TestBlockRoundTrip(t *testing.T) {
	db := testDB(t)
	b := &chain.Block{Number: 7, HeaderHash: []byte{1, 2, 3}, PreviousHash: nil, DataHash: []byte{4}, Config: true, Size: 4096,
		Time:       time.Date(2026, 11, 1, 0, 0, 1, 5, time.UTC),
		Signatures: []chain.Signature{{ConsenterID: 1, MSPID: "PTBMSP", Subject: "CN=orderer0", Valid: true}, {ConsenterID: 4}},
		Txs: []chain.Tx{{ID: strings.Repeat("ab", 32), Code: "VALID", Function: "RevokeMeter", CreatorMSP: "PTBMSP"},
			{ID: "made-up", Code: "BAD_PROPOSAL_TXID", Function: strings.Repeat("f", 100)}}}
	err := db.Update(func(tx *bolt.Tx) error {
		v, err := putBlock(newStrs(tx), b)
		if err != nil {
			return err
		}
		got, err := getBlock(newStrs(tx), 7, v)
		if err != nil {
			return err
		}
		want := &BlockSummary{Number: 7, HeaderHash: "010203", DataHash: "04", Config: true, Size: 4096, Time: b.Time, Signatures: b.Signatures,
			Txs: []TxSummary{{ID: b.Txs[0].ID, Code: "VALID", Function: "RevokeMeter", CreatorMSP: "PTBMSP"},
				{ID: "made-up", Code: "BAD_PROPOSAL_TXID", Function: b.Txs[1].Function}}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("block read back as\n%+v\nwant\n%+v", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
