package server

import (
	"context"
	"slices"
	"sync"
)

// meterLocks keeps a meter's readings in order within this registry: no two
// of its transactions in flight carry readings of the same meter. Readings
// of one meter sent in two concurrent transactions would be ordered by
// chance, and the second would conflict on the meter's replay guard; a
// transaction takes the locks of all its meters at once, waiting until
// none is held, so it cannot deadlock with another.
type meterLocks struct {
	mu   sync.Mutex
	held map[string]chan struct{} // closed when released
	// waiting, if set, is told when a transaction waits for a meter (for
	// tests).
	waiting func(meterID string)
}

// lock takes the locks of ids (duplicates allowed) once none is held, or
// fails when ctx ends.
func (l *meterLocks) lock(ctx context.Context, ids []string) error {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	for {
		l.mu.Lock()
		if l.held == nil {
			l.held = map[string]chan struct{}{}
		}
		var wait chan struct{}
		var busy string
		for _, id := range ids {
			if c, ok := l.held[id]; ok {
				wait, busy = c, id
				break
			}
		}
		if wait == nil {
			release := make(chan struct{})
			for _, id := range ids {
				l.held[id] = release
			}
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
		if l.waiting != nil {
			l.waiting(busy)
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// unlock releases the locks lock took for ids.
func (l *meterLocks) unlock(ids []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var release chan struct{}
	for _, id := range ids {
		if c, ok := l.held[id]; ok {
			release = c
			delete(l.held, id)
		}
	}
	if release != nil {
		close(release)
	}
}
