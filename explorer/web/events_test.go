package web

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// openStream connects to /events and returns the stream's lines.
func openStream(t *testing.T, ctx context.Context, url string, cookie *http.Cookie) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(cookie)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return res, bufio.NewReader(res.Body)
}

// next reads the stream up to the next line that starts with prefix.
func next(t *testing.T, r *bufio.Reader, prefix string) string {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before %q: %v", prefix, err)
		}
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(line)
		}
	}
}

func TestEvents(t *testing.T) {
	f := newFixture(t, nil)
	f.srv.events.heartbeat = 20 * time.Millisecond
	ts := httptest.NewServer(f.h)
	cookie := f.session(t)

	ctx, cancel := context.WithCancel(t.Context())
	res, stream := openStream(t, ctx, ts.URL, cookie)
	// The stream starts with the current height: from then on the client is subscribed.
	if got := next(t, stream, "data:"); got != `data: {"height":6}` {
		t.Fatalf("first event %q", got)
	}
	f.srv.Notify(6)
	if got := next(t, stream, "data:"); got != `data: {"height":7}` {
		t.Fatalf("after Notify(6): %q", got)
	}
	next(t, stream, ": heartbeat")
	if n := f.srv.events.count(); n != 1 {
		t.Fatalf("%d streams open", n)
	}

	cancel()
	res.Body.Close()
	ts.Close() // returns once every handler has returned
	if n := f.srv.events.count(); n != 0 {
		t.Fatalf("%d streams left open after the client went away", n)
	}
}

func TestEventsClose(t *testing.T) {
	f := newFixture(t, nil)
	ts := httptest.NewServer(f.h)
	defer ts.Close()
	cookie := f.session(t)
	_, stream := openStream(t, t.Context(), ts.URL, cookie)
	next(t, stream, "data:")
	f.srv.Close()
	// Close ended the stream: reading it to its end returns.
	if rest, _ := io.ReadAll(stream); strings.TrimSpace(string(rest)) != "" {
		t.Fatalf("after Close the stream sent %q", rest)
	}
	req, _ := http.NewRequest("GET", ts.URL+"/events", nil)
	req.AddCookie(cookie)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a stream opened after Close: %d", res.StatusCode)
	}
	f.srv.Notify(9) // no stream: must not block
}

// ends reports whether the stream ends (its body reaches EOF) within 2 s.
func ends(r io.Reader) bool {
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, r); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(2 * time.Second):
		return false
	}
}

// An event stream lasts no longer than its session: signing out ends the
// session's streams at once, and not another session's; an expired
// session's stream ends at its next heartbeat.
func TestEventsEndWithSession(t *testing.T) {
	f := newFixture(t, nil)
	f.srv.events.heartbeat = 20 * time.Millisecond
	ts := httptest.NewServer(f.h)
	defer ts.Close()
	defer f.srv.Close()
	signedOut, other := f.session(t), f.session(t)
	resA, streamA := openStream(t, t.Context(), ts.URL, signedOut)
	defer resA.Body.Close()
	resB, streamB := openStream(t, t.Context(), ts.URL, other)
	defer resB.Body.Close()
	next(t, streamA, "data:")
	next(t, streamB, "data:")

	req, _ := http.NewRequest("POST", ts.URL+"/logout", nil)
	req.AddCookie(signedOut)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", res.StatusCode)
	}
	if !ends(streamA) {
		t.Fatal("the stream is still open 2 s after its session signed out")
	}
	f.srv.Notify(6)
	if got := next(t, streamB, "data:"); got != `data: {"height":7}` {
		t.Fatalf("the other session's stream: %q", got)
	}
	if n := f.srv.events.count(); n != 1 {
		t.Fatalf("%d streams open, want the other session's only", n)
	}
	req, _ = http.NewRequest("GET", ts.URL+"/events", nil)
	req.AddCookie(signedOut)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a stream of the signed-out session: %v %v", res, err)
	} else {
		res.Body.Close()
	}

	f.clock.add(sessionTTL)
	if !ends(streamB) {
		t.Fatal("the stream is still open 2 s after its session expired")
	}
}
