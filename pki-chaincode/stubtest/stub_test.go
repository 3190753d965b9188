package stubtest

import (
	"strings"
	"testing"
	"time"
)

// TestFakeStub pins the peer behaviour contract tests rely on.
func TestFakeStub(t *testing.T) {
	l := NewLedger()
	at := time.Date(2026, 11, 21, 10, 20, 0, 0, time.UTC)
	tx1 := NewStub(l, "tx1", at, nil)
	for _, k := range []string{"b", "a", "c", "d"} {
		if err := tx1.PutState(k, []byte("v1-"+k)); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := tx1.GetState("a"); v != nil {
		t.Fatal("a transaction reads its own write")
	}
	if tx1.PutState("e", nil) == nil || tx1.PutState("", []byte("x")) == nil {
		t.Fatal("an empty value or key is accepted")
	}
	if _, _, err := tx1.GetStateByRangeWithPagination("a", "z", 10, ""); err == nil {
		t.Fatal("a paginated query after a write is accepted")
	}
	tx1.Commit()

	tx2 := NewStub(l, "tx2", at.Add(time.Second), nil)
	if err := tx2.PutState("a", []byte("v2-a")); err != nil {
		t.Fatal(err)
	}
	if err := tx2.DelState("b"); err != nil {
		t.Fatal(err)
	}
	// tx2 is not committed: a failed transaction leaves the state alone.
	if v, _ := tx2.GetState("a"); string(v) != "v1-a" {
		t.Fatalf("read %q", v)
	}
	tx3 := NewStub(l, "tx3", at.Add(2*time.Second), nil)
	if err := tx3.PutState("a", []byte("v3-a")); err != nil {
		t.Fatal(err)
	}
	if err := tx3.DelState("b"); err != nil {
		t.Fatal(err)
	}
	tx3.Commit()

	read := NewStub(l, "tx4", at, nil)
	it, err := read.GetStateByRange("a", "d")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for it.HasNext() {
		kv, _ := it.Next()
		got = append(got, kv.Key+"="+string(kv.Value))
	}
	if strings.Join(got, ",") != "a=v3-a,c=v1-c" {
		t.Fatalf("range [a,d) = %v", got)
	}
	it, meta, err := read.GetStateByRangeWithPagination("a", "", 2, "")
	if err != nil || meta.Bookmark != "d" || meta.FetchedRecordsCount != 2 {
		t.Fatalf("first page: %v %v", meta, err)
	}
	it.Close()
	if it.HasNext() {
		t.Fatal("a closed iterator has more")
	}
	_, meta, err = read.GetStateByRangeWithPagination("a", "", 2, meta.Bookmark)
	if err != nil || meta.Bookmark != "" || meta.FetchedRecordsCount != 1 {
		t.Fatalf("last page: %v %v", meta, err)
	}
	if read.PutState("x", []byte("x")) == nil {
		t.Fatal("a write after a paginated query is accepted")
	}
	h, err := read.GetHistoryForKey("a")
	if err != nil {
		t.Fatal(err)
	}
	var txs []string
	for h.HasNext() {
		m, _ := h.Next()
		txs = append(txs, m.TxId)
	}
	if strings.Join(txs, ",") != "tx3,tx1" {
		t.Fatalf("history of a, newest first: %v", txs)
	}
	h, _ = read.GetHistoryForKey("b")
	if m, _ := h.Next(); !m.IsDelete || m.TxId != "tx3" {
		t.Fatalf("last change of b: %v", m)
	}
}
