package idempotency

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	hexFP := strings.Repeat("0123456789abcdef", 4)
	long := []byte(`{"items":[` + strings.Repeat(`{"meterId":"PTB-0000001","outcome":"accepted"},`, 50) + `{}]}`)
	for _, tc := range []struct {
		name     string
		r        record
		deflated bool
	}{
		{"hex fingerprint, short body", record{Response: Response{Fingerprint: hexFP, Status: 201,
			ContentType: "application/json", Body: []byte(`{"meterId":"PTB-0001"}`), Location: "/api/v1/meters/PTB-0001", Stored: 1_800_000_000}}, false},
		{"other fingerprint, body deflated", record{Response: Response{Fingerprint: "fp1", Status: 200,
			ContentType: "application/json; charset=utf-8", Body: long, Stored: 1}}, true},
		{"upper-case hex stays text", record{Response: Response{Fingerprint: strings.ToUpper(hexFP), Status: 422}}, false},
		{"pending parts", record{Response: Response{Fingerprint: hexFP, Stored: 7,
			Pending: map[int][]byte{0: []byte(`{"txId":"a"}`), 3: []byte(`{"txId":"b"}`)}},
			txIDs: map[int]string{0: "a", 3: "b"}}, false},
		{"part of a migrated record", record{Response: Response{Fingerprint: hexFP, Stored: 7,
			Pending: map[int][]byte{0: []byte(`{"txId":"a"}`)}}, txIDs: map[int]string{0: ""}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.r.encode()
			got, err := decodeRecord(v)
			if err != nil {
				t.Fatal(err)
			}
			if got.deflated != tc.deflated {
				t.Errorf("deflated = %v, want %v", got.deflated, tc.deflated)
			}
			if tc.deflated && len(v) >= len(tc.r.Body) {
				t.Errorf("a deflated record of %d bytes for a body of %d", len(v), len(tc.r.Body))
			}
			if err := got.inflate(); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.r) {
				t.Errorf("decoded %+v, want %+v", *got, tc.r)
			}
		})
	}
}

func TestDecodeRecordRefusesDamage(t *testing.T) {
	v := (&record{Response: Response{Fingerprint: "fp", Status: 200, Body: []byte("body"),
		Pending: map[int][]byte{1: []byte("ref")}}, txIDs: map[int]string{1: "tx"}}).encode()
	for n := range len(v) {
		if _, err := decodeRecord(v[:n]); err == nil {
			t.Errorf("the first %d of %d bytes decoded", n, len(v))
		}
	}
	if _, err := decodeRecord(append(bytes.Clone(v), 0)); err == nil {
		t.Error("a record with a trailing byte decoded")
	}
	if _, err := decodeRecord([]byte(`{"fingerprint":"fp"}`)); err == nil {
		t.Error("a record of the first layout decoded as binary")
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add((&record{Response: Response{Fingerprint: "fp", Status: 200, Body: bytes.Repeat([]byte("ab"), 100),
		Pending: map[int][]byte{1: []byte("ref")}}, txIDs: map[int]string{1: "tx"}}).encode())
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := decodeRecord(v)
		if err != nil || r.inflate() != nil {
			return
		}
		// What decodes encodes to a record that decodes the same.
		again, err := decodeRecord(r.encode())
		if err != nil || again.inflate() != nil || !reflect.DeepEqual(again, r) {
			t.Errorf("%x: decoded %+v, then %+v (%v)", v, r, again, err)
		}
	})
}
