package web

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// heartbeatInterval keeps idle event streams open through proxies.
const heartbeatInterval = 15 * time.Second

// maxStreams bounds the open event streams.
const maxStreams = 256

// broker hands each new height to the open event streams.
type broker struct {
	mu        sync.Mutex
	streams   map[*subscription]struct{}
	closed    bool
	done      chan struct{}
	wg        sync.WaitGroup
	heartbeat time.Duration
}

// subscription is one open event stream of a session.
type subscription struct {
	// heights holds the latest height only.
	heights chan uint64
	session string
	// ended is closed when the session signs out.
	ended chan struct{}
}

func newBroker(heartbeat time.Duration) *broker {
	return &broker{streams: map[*subscription]struct{}{}, done: make(chan struct{}), heartbeat: heartbeat}
}

var errTooManyStreams = errors.New("too many event streams")

// subscribe opens a stream of a session. It holds the latest height only: a
// slow client skips heights, never blocks the indexer.
func (b *broker) subscribe(session string) (*subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, http.ErrServerClosed
	}
	if len(b.streams) >= maxStreams {
		return nil, errTooManyStreams
	}
	sub := &subscription{heights: make(chan uint64, 1), session: session, ended: make(chan struct{})}
	b.streams[sub] = struct{}{}
	b.wg.Add(1)
	return sub, nil
}

func (b *broker) unsubscribe(sub *subscription) {
	b.mu.Lock()
	delete(b.streams, sub)
	b.mu.Unlock()
	b.wg.Done()
}

// endSession ends the open streams of a session that signed out: a stream
// must not go on telling a signed-out browser about new blocks.
func (b *broker) endSession(session string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for sub := range b.streams {
		if sub.session == session {
			delete(b.streams, sub)
			close(sub.ended)
		}
	}
}

func (b *broker) publish(height uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for sub := range b.streams {
		select {
		case <-sub.heights: // drop the height the client has not taken yet
		default:
		}
		sub.heights <- height
	}
}

// count is the number of open streams.
func (b *broker) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.streams)
}

func (b *broker) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.done)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// Notify tells the open pages that block was indexed: each event stream
// sends the new height (block+1, the number of blocks indexed). It never
// blocks.
func (s *Server) Notify(block uint64) { s.events.publish(block + 1) }

// Close ends the open event streams and waits for them to finish; an
// http.Server's Shutdown would otherwise wait for them until its deadline
// (register it with RegisterOnShutdown). Streams opened afterwards are
// refused.
func (s *Server) Close() { s.events.close() }

// stream is the server-sent event stream of new blocks. It starts with the
// current height, so that a page rendered before it connected catches up
// (and a client knows it is subscribed). It lasts as long as its session:
// signing out ends it at once, and an expired session ends it at the next
// heartbeat or block, whichever comes first; a browser's reconnection is
// then refused (401) and stops.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) error {
	session, _ := sessionFrom(r.Context())
	sub, err := s.events.subscribe(session)
	if err != nil {
		w.Header().Set("Retry-After", "30")
		http.Error(w, "event stream unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return nil
	}
	defer s.events.unsubscribe(sub)
	live := func() bool { _, ok := s.sessions.get(session); return ok }
	if !live() { // signed out between the check of its request and now
		http.Error(w, "sign in as an auditor first", http.StatusUnauthorized)
		return nil
	}
	height, err := s.store.Height()
	if err != nil {
		return fmt.Errorf("height: %w", err)
	}
	rc := http.NewResponseController(w)
	// A stream outlives any write timeout of the server: each write gets
	// its own deadline instead.
	deadline := func() { rc.SetWriteDeadline(time.Now().Add(s.events.heartbeat + 10*time.Second)) }
	deadline()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(format string, a ...any) error {
		deadline()
		if _, err := fmt.Fprintf(w, format, a...); err != nil {
			return err
		}
		return rc.Flush()
	}
	if send("retry: 5000\nevent: block\ndata: {\"height\":%d}\n\n", height) != nil {
		return nil
	}
	tick := time.NewTicker(s.events.heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-s.events.done:
			return nil
		case <-sub.ended:
			return nil
		case h := <-sub.heights:
			if !live() || send("event: block\ndata: {\"height\":%d}\n\n", h) != nil {
				return nil
			}
		case <-tick.C:
			if !live() || send(": heartbeat\n\n") != nil {
				return nil
			}
		}
	}
}
