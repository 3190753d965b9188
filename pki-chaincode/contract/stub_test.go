package contract_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/queryresult"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ledger is the committed world state of a fake peer: what every transaction
// reads, and what only a successful transaction changes.
type ledger struct {
	state   map[string][]byte
	params  map[string][]byte                         // key-level endorsement policies
	history map[string][]*queryresult.KeyModification // oldest first
}

func newLedger() *ledger {
	return &ledger{state: map[string][]byte{}, params: map[string][]byte{}, history: map[string][]*queryresult.KeyModification{}}
}

// ledgerSnapshot is a deep copy of the committed state, to show that a
// refused transaction changed nothing.
type ledgerSnapshot struct {
	state, params map[string]string
	history       int
}

func (l *ledger) snapshot() ledgerSnapshot {
	s := ledgerSnapshot{state: map[string]string{}, params: map[string]string{}}
	for k, v := range l.state {
		s.state[k] = string(v)
	}
	for k, v := range l.params {
		s.params[k] = string(v)
	}
	for _, h := range l.history {
		s.history += len(h)
	}
	return s
}

// diff describes how two snapshots differ, "" if they do not.
func (s ledgerSnapshot) diff(o ledgerSnapshot) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(s.state)) {
		if v, ok := o.state[k]; !ok {
			out = append(out, "deleted "+k)
		} else if v != s.state[k] {
			out = append(out, "changed "+k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(o.state)) {
		if _, ok := s.state[k]; !ok {
			out = append(out, "added "+k)
		}
	}
	if !maps.Equal(s.params, o.params) {
		out = append(out, "key-level policies changed")
	}
	if s.history != o.history {
		out = append(out, fmt.Sprintf("history grew from %d to %d entries", s.history, o.history))
	}
	return strings.Join(out, "; ")
}

// fakeStub is one transaction against a ledger. It mimics the peer where the
// contract depends on it: reads see only committed state (a transaction does
// not read its own writes), writes are staged and applied by commit only when
// the transaction succeeds, paginated queries and writes exclude each other,
// range results are sorted and history is newest first. Methods the contract
// has no business calling are left to the nil embedded interface, so calling
// one panics visibly.
type fakeStub struct {
	shim.ChaincodeStubInterface

	ledger  *ledger
	txID    string
	time    time.Time
	creator []byte
	args    [][]byte

	writes    map[string][]byte // a nil value is a delete
	params    map[string][]byte
	event     *peer.ChaincodeEvent
	wrote     bool
	paginated bool

	// fault, when set, makes a ledger call fail as the peer's would when
	// its database does: op is the stub method, key the key or range start.
	fault func(op, key string) error
}

func (s *fakeStub) failed(op, key string) error {
	if s.fault == nil {
		return nil
	}
	return s.fault(op, key)
}

func newFakeStub(l *ledger, txID string, at time.Time, creator []byte, args ...string) *fakeStub {
	s := &fakeStub{ledger: l, txID: txID, time: at, creator: creator,
		writes: map[string][]byte{}, params: map[string][]byte{}}
	for _, a := range args {
		s.args = append(s.args, []byte(a))
	}
	return s
}

// commit applies the staged writes, as the peer does for a valid transaction.
func (s *fakeStub) commit() {
	ts := timestamppb.New(s.time)
	for _, k := range slices.Sorted(maps.Keys(s.writes)) {
		v := s.writes[k]
		mod := &queryresult.KeyModification{TxId: s.txID, Timestamp: ts}
		if v == nil {
			delete(s.ledger.state, k)
			mod.IsDelete = true
		} else {
			s.ledger.state[k] = v
			mod.Value = v
		}
		s.ledger.history[k] = append(s.ledger.history[k], mod)
	}
	for k, v := range s.params {
		s.ledger.params[k] = v
	}
}

func (s *fakeStub) GetTxID() string { return s.txID }

func (s *fakeStub) GetChannelID() string { return "meters" }

func (s *fakeStub) GetTxTimestamp() (*timestamppb.Timestamp, error) {
	return timestamppb.New(s.time), nil
}

func (s *fakeStub) GetCreator() ([]byte, error) { return s.creator, nil }

func (s *fakeStub) GetArgs() [][]byte { return s.args }

func (s *fakeStub) GetStringArgs() []string {
	out := make([]string, len(s.args))
	for i, a := range s.args {
		out[i] = string(a)
	}
	return out
}

func (s *fakeStub) GetFunctionAndParameters() (string, []string) {
	args := s.GetStringArgs()
	if len(args) == 0 {
		return "", []string{}
	}
	return args[0], args[1:]
}

func (s *fakeStub) GetState(key string) ([]byte, error) {
	if key == "" {
		return nil, errors.New("key must not be an empty string")
	}
	if err := s.failed("GetState", key); err != nil {
		return nil, err
	}
	if v, ok := s.ledger.state[key]; ok {
		return bytes.Clone(v), nil
	}
	return nil, nil
}

func (s *fakeStub) checkWrite(key string) error {
	if key == "" {
		return errors.New("key must not be an empty string")
	}
	if key[0] == 0 {
		return errors.New("simple keys must not start with 0x00, the composite key namespace")
	}
	if s.paginated {
		return fmt.Errorf("txid [%s]: unsupported transaction. Transaction has already performed a paginated query. Writes are not allowed", s.txID)
	}
	s.wrote = true
	return nil
}

// PutState stages a write. An empty value is refused: the peer would record it
// as a delete, which is never what the contract means by writing a value.
func (s *fakeStub) PutState(key string, value []byte) error {
	if err := s.checkWrite(key); err != nil {
		return err
	}
	if len(value) == 0 {
		return fmt.Errorf("empty value for key %q: the peer would silently delete the key", key)
	}
	if err := s.failed("PutState", key); err != nil {
		return err
	}
	s.writes[key] = bytes.Clone(value)
	return nil
}

func (s *fakeStub) DelState(key string) error {
	if err := s.checkWrite(key); err != nil {
		return err
	}
	s.writes[key] = nil
	return nil
}

func (s *fakeStub) SetStateValidationParameter(key string, ep []byte) error {
	if err := s.checkWrite(key); err != nil {
		return err
	}
	s.params[key] = bytes.Clone(ep)
	return nil
}

func (s *fakeStub) GetStateValidationParameter(key string) ([]byte, error) {
	return bytes.Clone(s.ledger.params[key]), nil
}

// rangeKeys lists the committed keys in [start, end) in order; an empty end is
// open, as on the peer.
func (s *fakeStub) rangeKeys(start, end string) []string {
	var keys []string
	for k := range s.ledger.state {
		if k >= start && (end == "" || k < end) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func (s *fakeStub) iterator(keys []string) *kvIterator {
	it := &kvIterator{}
	for _, k := range keys {
		it.kvs = append(it.kvs, &queryresult.KV{Namespace: "pki", Key: k, Value: bytes.Clone(s.ledger.state[k])})
	}
	return it
}

func (s *fakeStub) GetStateByRange(start, end string) (shim.StateQueryIteratorInterface, error) {
	if err := s.failed("GetStateByRange", start); err != nil {
		return nil, err
	}
	return s.iterator(s.rangeKeys(start, end)), nil
}

// GetStateByRangeWithPagination starts at the bookmark when there is one and
// returns the next key as the bookmark, "" after the last page, as LevelDB
// does. Like the peer, it refuses a transaction that has written.
func (s *fakeStub) GetStateByRangeWithPagination(start, end string, pageSize int32, bookmark string) (shim.StateQueryIteratorInterface, *peer.QueryResponseMetadata, error) {
	if s.wrote {
		return nil, nil, fmt.Errorf("txid [%s]: unsupported transaction. Paginated queries are supported only in a read-only transaction", s.txID)
	}
	if pageSize <= 0 {
		return nil, nil, fmt.Errorf("page size %d", pageSize)
	}
	s.paginated = true
	if bookmark != "" {
		start = bookmark
	}
	keys := s.rangeKeys(start, end)
	next := ""
	if len(keys) > int(pageSize) {
		next = keys[pageSize]
		keys = keys[:pageSize]
	}
	return s.iterator(keys), &peer.QueryResponseMetadata{FetchedRecordsCount: int32(len(keys)), Bookmark: next}, nil
}

func (s *fakeStub) GetHistoryForKey(key string) (shim.HistoryQueryIteratorInterface, error) {
	if err := s.failed("GetHistoryForKey", key); err != nil {
		return nil, err
	}
	h := s.ledger.history[key]
	it := &historyIterator{}
	for i := len(h) - 1; i >= 0; i-- {
		it.mods = append(it.mods, h[i])
	}
	return it, nil
}

// SetEvent keeps only the last event, as a transaction carries one.
func (s *fakeStub) SetEvent(name string, payload []byte) error {
	if name == "" {
		return errors.New("event name can not be empty string")
	}
	s.event = &peer.ChaincodeEvent{TxId: s.txID, EventName: name, Payload: bytes.Clone(payload)}
	return nil
}

type kvIterator struct {
	kvs    []*queryresult.KV
	closed bool
}

func (it *kvIterator) HasNext() bool { return !it.closed && len(it.kvs) > 0 }

func (it *kvIterator) Next() (*queryresult.KV, error) {
	if !it.HasNext() {
		return nil, errors.New("no more results")
	}
	kv := it.kvs[0]
	it.kvs = it.kvs[1:]
	return kv, nil
}

func (it *kvIterator) Close() error { it.closed = true; return nil }

type historyIterator struct {
	mods   []*queryresult.KeyModification
	closed bool
}

func (it *historyIterator) HasNext() bool { return !it.closed && len(it.mods) > 0 }

func (it *historyIterator) Next() (*queryresult.KeyModification, error) {
	if !it.HasNext() {
		return nil, errors.New("no more results")
	}
	m := it.mods[0]
	it.mods = it.mods[1:]
	return m, nil
}

func (it *historyIterator) Close() error { it.closed = true; return nil }

// TestFakeStub pins the peer behaviour the contract tests rely on.
func TestFakeStub(t *testing.T) {
	l := newLedger()
	at := time.Date(2026, 11, 21, 10, 20, 0, 0, time.UTC)
	tx1 := newFakeStub(l, "tx1", at, nil)
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
	tx1.commit()

	tx2 := newFakeStub(l, "tx2", at.Add(time.Second), nil)
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
	tx3 := newFakeStub(l, "tx3", at.Add(2*time.Second), nil)
	if err := tx3.PutState("a", []byte("v3-a")); err != nil {
		t.Fatal(err)
	}
	if err := tx3.DelState("b"); err != nil {
		t.Fatal(err)
	}
	tx3.commit()

	read := newFakeStub(l, "tx4", at, nil)
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
