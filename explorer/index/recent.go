package index

import (
	"container/list"
	"sync"
)

// Indexing a batch looks up the record and key in force of every meter it
// has a reading of, each a deflated JSON value to decode; the meters read
// every few minutes are looked up again block after block. The store keeps
// the most recently used ones decoded, as they stand in the committed
// index: an entry is dropped when a block writes the meter's record, and
// read again after that block.

// recentMeters is how many meters' records the store keeps decoded.
const recentMeters = 1 << 14

// known is a meter's record as the committed index holds it, and the key
// of its version in force once looked up.
type known struct {
	id     string
	st     *MeterState
	pem    string
	hasPEM bool
}

// knownMeters is a least-recently-used set of known meters.
type knownMeters struct {
	mu    sync.Mutex
	size  int
	order *list.List // of *known, most recent first
	byID  map[string]*list.Element
}

func newKnownMeters(size int) *knownMeters {
	return &knownMeters{size: size, order: list.New(), byID: map[string]*list.Element{}}
}

func (k *knownMeters) get(id string) (known, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.byID[id]
	if !ok {
		return known{}, false
	}
	k.order.MoveToFront(e)
	return *e.Value.(*known), true
}

// put keeps a meter's record, or the key of the record kept.
func (k *knownMeters) put(m known) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e, ok := k.byID[m.id]; ok {
		*e.Value.(*known) = m
		k.order.MoveToFront(e)
		return
	}
	k.byID[m.id] = k.order.PushFront(&m)
	for k.order.Len() > k.size {
		last := k.order.Back()
		k.order.Remove(last)
		delete(k.byID, last.Value.(*known).id)
	}
}

func (k *knownMeters) drop(ids map[string]bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for id := range ids {
		if e, ok := k.byID[id]; ok {
			k.order.Remove(e)
			delete(k.byID, id)
		}
	}
}
