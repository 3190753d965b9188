package readings

import (
	"slices"
	"testing"
	"time"
)

func TestTimeChunk(t *testing.T) {
	var entries []timeEntry
	for _, e := range []timeEntry{{Nanos: 5, Seq: 2}, {Nanos: 1, Seq: 9, Version: 2}, {Nanos: 5, Seq: 1}, {Nanos: 3_599_999_999_999, Seq: 1 << 40}} {
		entries = insertTime(entries, e)
	}
	entries = insertTime(entries, timeEntry{Nanos: 5, Seq: 2, Version: 3}) // the same time and seq: replaced
	want := []timeEntry{{1, 9, 2}, {5, 1, 0}, {5, 2, 3}, {3_599_999_999_999, 1 << 40, 0}}
	if !slices.Equal(entries, want) {
		t.Fatalf("entries %v, want %v", entries, want)
	}
	got, err := decodeTimeChunk(encodeTimeChunk(entries))
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("round trip %v %v", got, err)
	}
	if _, err := decodeTimeChunk([]byte{0x80}); err == nil {
		t.Error("a truncated varint decoded")
	}
}

func TestHours(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2026, 12, 7, 16, 59, 59, 999999999, time.UTC),
		time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 30, 0, 0, time.UTC),
		time.Unix(0, -1<<63).UTC(), time.Unix(0, 1<<63-1).UTC(),
	} {
		h, nanos := splitTime(at)
		if back := hourStart(h).Add(time.Duration(nanos)); !back.Equal(at) || nanos >= uint64(time.Hour) {
			t.Errorf("%v: hour %d + %d ns = %v", at, h, nanos, back)
		}
	}
	if hourOf(time.Date(1969, 12, 31, 23, 30, 0, 0, time.UTC)) >= hourOf(time.Unix(0, 0)) {
		t.Error("an hour before 1970 does not sort first")
	}
}

func TestSeqChunk(t *testing.T) {
	a := seqEntry{Version: 1, Low: 63, Block: 1 << 33, Tx: 7, Item: 999}
	a.Payload[0], a.Evidence[7] = 1, 2
	b := seqEntry{Version: 300, Low: 0}
	got, err := decodeSeqChunk(b.append(a.append(nil)))
	if err != nil || len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("round trip %+v %v", got, err)
	}
	if _, err := decodeSeqChunk(a.append(nil)[:20]); err == nil {
		t.Error("a truncated entry decoded")
	}
}
