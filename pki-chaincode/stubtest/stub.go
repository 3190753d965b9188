// Package stubtest is a test helper for chaincode contracts: a fake of the
// peer's chaincode stub, faithful where contracts depend on it, and client
// identities as Fabric presents them, with the pki.role attribute. Only tests
// import it.
package stubtest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/queryresult"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Ledger is the committed world state of a fake peer: what every transaction
// reads, and what only a successful transaction changes.
type Ledger struct {
	State   map[string][]byte
	Params  map[string][]byte                         // key-level endorsement policies
	History map[string][]*queryresult.KeyModification // oldest first
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{State: map[string][]byte{}, Params: map[string][]byte{}, History: map[string][]*queryresult.KeyModification{}}
}

// Snapshot is a deep copy of the committed state, to show that a refused
// transaction changed nothing.
type Snapshot struct {
	state, params map[string]string
	history       int
}

// Snapshot copies the committed state.
func (l *Ledger) Snapshot() Snapshot {
	s := Snapshot{state: map[string]string{}, params: map[string]string{}}
	for k, v := range l.State {
		s.state[k] = string(v)
	}
	for k, v := range l.Params {
		s.params[k] = string(v)
	}
	for _, h := range l.History {
		s.history += len(h)
	}
	return s
}

// Diff describes how two snapshots differ, "" if they do not.
func (s Snapshot) Diff(o Snapshot) string {
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

// Stub is one transaction against a Ledger. It mimics the peer where
// contracts depend on it: reads see only committed state (a transaction does
// not read its own writes), writes are staged and applied by Commit only when
// the transaction succeeds, paginated queries and writes exclude each other,
// range results are sorted and history is newest first. Methods a contract
// has no business calling are left to the nil embedded interface, so calling
// one panics visibly.
type Stub struct {
	shim.ChaincodeStubInterface

	ledger  *Ledger
	txID    string
	time    time.Time
	creator []byte
	args    [][]byte

	// Writes are the staged writes; a nil value is a delete.
	Writes map[string][]byte
	// Params are the staged key-level endorsement policies.
	Params map[string][]byte
	// Reads are the keys read one by one, as the read set records them.
	Reads map[string]bool
	// Event is the transaction's event, nil if it set none.
	Event *peer.ChaincodeEvent
	// Fault, when set, makes a ledger call fail as the peer's would when its
	// database does: op is the stub method, key the key or range start.
	Fault func(op, key string) error
	// LoseMultipleStates makes GetMultipleStates answer success with no
	// values, as the peer of the pinned Fabric does when its state
	// database fails during the read (fixed upstream in Fabric PR #5529).
	LoseMultipleStates bool

	wrote     bool
	paginated bool
}

// NewStub begins a transaction of the client whose serialized identity is
// creator, at time at; args are the function name and its arguments, as the
// peer passes them (none when the contract is called directly).
func NewStub(l *Ledger, txID string, at time.Time, creator []byte, args ...string) *Stub {
	s := &Stub{ledger: l, txID: txID, time: at, creator: creator,
		Writes: map[string][]byte{}, Params: map[string][]byte{}, Reads: map[string]bool{}}
	for _, a := range args {
		s.args = append(s.args, []byte(a))
	}
	return s
}

func (s *Stub) failed(op, key string) error {
	if s.Fault == nil {
		return nil
	}
	return s.Fault(op, key)
}

// Commit applies the staged writes, as the peer does for a valid transaction.
func (s *Stub) Commit() {
	ts := timestamppb.New(s.time)
	for _, k := range slices.Sorted(maps.Keys(s.Writes)) {
		v := s.Writes[k]
		mod := &queryresult.KeyModification{TxId: s.txID, Timestamp: ts}
		if v == nil {
			delete(s.ledger.State, k)
			mod.IsDelete = true
		} else {
			s.ledger.State[k] = v
			mod.Value = v
		}
		s.ledger.History[k] = append(s.ledger.History[k], mod)
	}
	for k, v := range s.Params {
		s.ledger.Params[k] = v
	}
}

// GetTxID returns the transaction's ID.
func (s *Stub) GetTxID() string { return s.txID }

// GetChannelID returns the channel's name.
func (s *Stub) GetChannelID() string { return "meters" }

// GetTxTimestamp returns the transaction's time.
func (s *Stub) GetTxTimestamp() (*timestamppb.Timestamp, error) {
	return timestamppb.New(s.time), nil
}

// GetCreator returns the submitter's serialized identity.
func (s *Stub) GetCreator() ([]byte, error) { return s.creator, nil }

// GetArgs returns the function name and arguments.
func (s *Stub) GetArgs() [][]byte { return s.args }

// GetStringArgs returns the function name and arguments as strings.
func (s *Stub) GetStringArgs() []string {
	out := make([]string, len(s.args))
	for i, a := range s.args {
		out[i] = string(a)
	}
	return out
}

// GetFunctionAndParameters splits the arguments into the function name and
// its parameters.
func (s *Stub) GetFunctionAndParameters() (string, []string) {
	args := s.GetStringArgs()
	if len(args) == 0 {
		return "", []string{}
	}
	return args[0], args[1:]
}

// GetState reads a committed value; nil if the key is absent.
func (s *Stub) GetState(key string) ([]byte, error) {
	if key == "" {
		return nil, errors.New("key must not be an empty string")
	}
	if err := s.failed("GetState", key); err != nil {
		return nil, err
	}
	s.Reads[key] = true
	if v, ok := s.ledger.State[key]; ok {
		return bytes.Clone(v), nil
	}
	return nil, nil
}

// GetMultipleStates reads several committed values in one call, as the
// peer answers it: in the order of the keys, nil for an absent one.
func (s *Stub) GetMultipleStates(keys ...string) ([][]byte, error) {
	if s.LoseMultipleStates {
		return nil, nil
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		v, err := s.GetState(k)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// StartWriteBatch and FinishWriteBatch group writes for the peer; staged
// writes are the same either way.
func (s *Stub) StartWriteBatch() {}

// FinishWriteBatch ends a write batch.
func (s *Stub) FinishWriteBatch() error { return nil }

func (s *Stub) checkWrite(key string) error {
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
// as a delete, which is never what a contract means by writing a value.
func (s *Stub) PutState(key string, value []byte) error {
	if err := s.checkWrite(key); err != nil {
		return err
	}
	if len(value) == 0 {
		return fmt.Errorf("empty value for key %q: the peer would silently delete the key", key)
	}
	if err := s.failed("PutState", key); err != nil {
		return err
	}
	s.Writes[key] = bytes.Clone(value)
	return nil
}

// DelState stages a delete.
func (s *Stub) DelState(key string) error {
	if err := s.checkWrite(key); err != nil {
		return err
	}
	s.Writes[key] = nil
	return nil
}

// SetStateValidationParameter stages a key-level endorsement policy.
func (s *Stub) SetStateValidationParameter(key string, ep []byte) error {
	if err := s.checkWrite(key); err != nil {
		return err
	}
	s.Params[key] = bytes.Clone(ep)
	return nil
}

// GetStateValidationParameter reads a committed key-level endorsement policy.
func (s *Stub) GetStateValidationParameter(key string) ([]byte, error) {
	return bytes.Clone(s.ledger.Params[key]), nil
}

// rangeKeys lists the committed keys in [start, end) in order; an empty end is
// open, as on the peer.
func (s *Stub) rangeKeys(start, end string) []string {
	var keys []string
	for k := range s.ledger.State {
		if k >= start && (end == "" || k < end) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func (s *Stub) iterator(keys []string) *kvIterator {
	it := &kvIterator{}
	for _, k := range keys {
		it.kvs = append(it.kvs, &queryresult.KV{Namespace: "pki", Key: k, Value: bytes.Clone(s.ledger.State[k])})
	}
	return it
}

// GetStateByRange lists the committed keys in [start, end) in order.
func (s *Stub) GetStateByRange(start, end string) (shim.StateQueryIteratorInterface, error) {
	if err := s.failed("GetStateByRange", start); err != nil {
		return nil, err
	}
	return s.iterator(s.rangeKeys(start, end)), nil
}

// GetStateByRangeWithPagination starts at the bookmark when there is one and
// returns the next key as the bookmark, "" after the last page, as LevelDB
// does. Like the peer, it refuses a transaction that has written.
func (s *Stub) GetStateByRangeWithPagination(start, end string, pageSize int32, bookmark string) (shim.StateQueryIteratorInterface, *peer.QueryResponseMetadata, error) {
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

// GetHistoryForKey lists a key's committed changes, newest first.
func (s *Stub) GetHistoryForKey(key string) (shim.HistoryQueryIteratorInterface, error) {
	if err := s.failed("GetHistoryForKey", key); err != nil {
		return nil, err
	}
	h := s.ledger.History[key]
	it := &historyIterator{}
	for i := len(h) - 1; i >= 0; i-- {
		it.mods = append(it.mods, h[i])
	}
	return it, nil
}

// SetEvent keeps only the last event, as a transaction carries one.
func (s *Stub) SetEvent(name string, payload []byte) error {
	if name == "" {
		return errors.New("event name can not be empty string")
	}
	s.Event = &peer.ChaincodeEvent{TxId: s.txID, EventName: name, Payload: bytes.Clone(payload)}
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
