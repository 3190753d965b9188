package readings

import (
	"container/list"
	"sync"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// txCacheSize is how many decoded transactions the index keeps for
// listings: a page of a meter's readings from concentrator batches names
// up to a page's worth of transactions, and the next meter's page mostly
// the same ones.
const txCacheSize = 128

type cachedTx struct {
	tx    *chain.Tx
	items []wire.Item
}

// txCache is a least-recently-used cache of decoded transactions.
type txCache struct {
	mu    sync.Mutex
	size  int
	order *list.List // of *entry, most recent first
	byID  map[string]*list.Element
}

type entry struct {
	id string
	tx cachedTx
}

func newTxCache(size int) *txCache {
	return &txCache{size: size, order: list.New(), byID: map[string]*list.Element{}}
}

func (c *txCache) get(id string) (cachedTx, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[id]
	if !ok {
		return cachedTx{}, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*entry).tx, true
}

func (c *txCache) put(id string, tx cachedTx) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byID[id]; ok {
		c.order.MoveToFront(e)
		e.Value.(*entry).tx = tx
		return
	}
	c.byID[id] = c.order.PushFront(&entry{id, tx})
	for c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byID, last.Value.(*entry).id)
	}
}
