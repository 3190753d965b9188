package follow_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/inter-nmi/pki/network/pkg/follow"
)

func TestKey(t *testing.T) {
	for _, tc := range []struct {
		parts [][]byte
		want  []byte
	}{
		{nil, nil},
		{[][]byte{[]byte("PTB-1")}, []byte("PTB-1")},
		{[][]byte{[]byte("PTB-1"), follow.Uint64(7)}, []byte("PTB-1\x00\x00\x00\x00\x00\x00\x00\x00\x07")},
		{[][]byte{follow.Uint64(1), follow.Uint32(2), nil}, []byte("\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x02\x00")},
	} {
		if got := follow.Key(tc.parts...); !bytes.Equal(got, tc.want) {
			t.Errorf("Key(%q) = %q, want %q", tc.parts, got, tc.want)
		}
	}
}

// Keys of one meter sort by number, and before those of any meter whose
// ID it prefixes.
func TestKeysSort(t *testing.T) {
	keys := [][]byte{
		follow.Key([]byte("PTB-10"), follow.Uint64(1)),
		follow.Key([]byte("PTB-1"), follow.Uint64(256)),
		follow.Key([]byte("PTB-1"), follow.Uint64(2)),
		follow.Key([]byte("PTB-1"), follow.Uint64(2), follow.Uint32(1)),
	}
	slices.SortFunc(keys, bytes.Compare)
	want := [][]byte{
		follow.Key([]byte("PTB-1"), follow.Uint64(2)),
		follow.Key([]byte("PTB-1"), follow.Uint64(2), follow.Uint32(1)),
		follow.Key([]byte("PTB-1"), follow.Uint64(256)),
		follow.Key([]byte("PTB-10"), follow.Uint64(1)),
	}
	if !slices.EqualFunc(keys, want, bytes.Equal) {
		t.Fatalf("sorted %q, want %q", keys, want)
	}
}

func TestUint64(t *testing.T) {
	for _, n := range []uint64{0, 1, 1 << 32, 1<<64 - 1} {
		if got := follow.ReadUint64(follow.Uint64(n)); got != n {
			t.Errorf("ReadUint64(Uint64(%d)) = %d", n, got)
		}
	}
	for _, b := range [][]byte{nil, {}, follow.Uint32(5), append(follow.Uint64(5), 0)} {
		if got := follow.ReadUint64(b); got != 0 {
			t.Errorf("ReadUint64(%x) = %d, want 0", b, got)
		}
	}
	if got := follow.Uint32(0x01020304); !bytes.Equal(got, []byte{1, 2, 3, 4}) {
		t.Errorf("Uint32 = %x", got)
	}
}
