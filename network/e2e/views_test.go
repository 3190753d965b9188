//go:build e2e

package e2e

import (
	"context"
	"sync"
	"testing"
	"time"
)

// viewWatch follows the BFT view of the ordering service for a whole test:
// it asks every orderer for its view number every viewPoll, and notes
// when the highest view any of them reports moves on. A view change is the
// cluster electing a new leader; only a fault of the leader should cause
// one.
type viewWatch struct {
	mu      sync.Mutex
	highest uint64
	seen    []viewChange
	// samples counts the samples taken; sampled is closed and replaced
	// after each.
	samples int
	sampled chan struct{}
}

// viewChange is the highest view moving up by views at a sample.
type viewChange struct {
	at    time.Time
	views int
}

const viewPoll = 250 * time.Millisecond

func watchViews(ctx context.Context, t *testing.T) *viewWatch {
	t.Helper()
	w := &viewWatch{sampled: make(chan struct{})}
	states, err := network.OrdererStates(ctx)
	if err != nil {
		t.Fatalf("orderer states: %v", err)
	}
	for _, s := range states {
		w.highest = max(w.highest, s.View)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(viewPoll)
		defer tick.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
			}
			// Those that answer: a killed or frozen orderer is skipped.
			states, _ := network.OrdererStates(wctx)
			w.mu.Lock()
			for _, s := range states {
				if s.View > w.highest {
					w.seen = append(w.seen, viewChange{at: time.Now(), views: int(s.View - w.highest)})
					w.highest = s.View
				}
			}
			w.samples++
			close(w.sampled)
			w.sampled = make(chan struct{})
			w.mu.Unlock()
		}
	}()
	return w
}

// changes are the view changes seen so far.
func (w *viewWatch) changes() []viewChange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]viewChange(nil), w.seen...)
}

// view is the highest view seen so far.
func (w *viewWatch) view() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.highest
}

// catchUp waits until a sample begun after the call is taken: what the
// orderers reported by then is in view and changes.
func (w *viewWatch) catchUp() {
	w.mu.Lock()
	n := w.samples
	w.mu.Unlock()
	for {
		w.mu.Lock()
		taken, next := w.samples, w.sampled
		w.mu.Unlock()
		if taken >= n+2 {
			return
		}
		<-next
	}
}
