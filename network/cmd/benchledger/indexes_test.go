package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// fakeExplorer answers as the explorer does: /login takes the auditor's
// token and sets a session cookie; /events, for a session, streams the
// index's height, then each new one.
type fakeExplorer struct {
	token    string
	sessions atomic.Int32
	// heights are what one stream announces, one per line; a stream then
	// sends heartbeats until the client leaves.
	heights []uint64
	// forget makes the explorer forget its sessions once, as a restart does.
	forget atomic.Bool
}

func (f *fakeExplorer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("token") != f.token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		n := f.sessions.Add(1)
		http.SetCookie(w, &http.Cookie{Name: "__Host-explorer-session", Value: fmt.Sprint(n), Path: "/", Secure: true, HttpOnly: true})
		http.Redirect(w, r, r.PostFormValue("next"), http.StatusSeeOther)
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		if _, err := r.Cookie("__Host-explorer-session"); err != nil || f.forget.CompareAndSwap(true, false) {
			http.Error(w, "sign in as an auditor first", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "retry: 5000\n")
		for _, h := range f.heights {
			fmt.Fprintf(w, "event: block\ndata: {\"height\":%d}\n\n", h)
			w.(http.Flusher).Flush()
		}
		for {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
				fmt.Fprint(w, ": heartbeat\n\n")
				w.(http.Flusher).Flush()
			}
		}
	})
	return mux
}

// The explorer client signs in when the explorer asks (at first, and after
// a restart forgot the session), and waits until the stream announces the
// height wanted; an index that stops short is reported as stalled.
func TestExplorerAwait(t *testing.T) {
	f := &fakeExplorer{token: "surveillance-auditor-token", heights: []uint64{3, 5, 8, 13}}
	srv := httptest.NewTLSServer(f.handler())
	defer srv.Close()
	c := newExplorerClientWith(srv.URL, f.token, srv.Client().Transport)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	got, err := c.await(ctx, 8, time.Second)
	if err != nil || got != 8 {
		t.Fatalf("await(8) = %d, %v", got, err)
	}
	if n := f.sessions.Load(); n != 1 {
		t.Fatalf("%d sign-ins, want 1", n)
	}
	f.forget.Store(true)
	if got, err := c.await(ctx, 13, time.Second); err != nil || got != 13 {
		t.Fatalf("await(13) after a restart = %d, %v", got, err)
	}
	if n := f.sessions.Load(); n != 2 {
		t.Fatalf("%d sign-ins, want 2", n)
	}

	got, err = c.await(ctx, 21, 200*time.Millisecond)
	var st *stalled
	if !errors.As(err, &st) || got != 13 || st.at != 13 || st.want != 21 {
		t.Fatalf("await(21) of an index stuck at 13 = %d, %v", got, err)
	}

	wrong := newExplorerClientWith(srv.URL, "not-a-token", srv.Client().Transport)
	if _, err := wrong.await(ctx, 1, time.Second); err == nil {
		t.Fatal("signed in with a wrong token")
	}
}
