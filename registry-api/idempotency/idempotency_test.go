package idempotency

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// clock is a settable time for the store.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// openAt opens the store at path on clock c, closing it when the test ends.
func openAt(t *testing.T, path string, c *clock, opts ...Option) *Store {
	t.Helper()
	s, err := Open(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.now = c.now
	return s
}

func newStore(t *testing.T) (*Store, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	return openAt(t, filepath.Join(t.TempDir(), "idempotency.db"), c), c
}

func answer(fingerprint string) Response {
	return Response{Fingerprint: fingerprint, Status: 201, ContentType: "application/json",
		Body: []byte(`{"meterId":"PTB-0001"}`), Location: "/api/v1/meters/PTB-0001"}
}

func begin(t *testing.T, s *Store, key, fingerprint string) *Response {
	t.Helper()
	r, err := s.Begin(key, fingerprint)
	if err != nil {
		t.Fatalf("Begin(%q): %v", key, err)
	}
	return r
}

func finish(t *testing.T, s *Store, key string, r Response) {
	t.Helper()
	if err := s.Finish(key, r); err != nil {
		t.Fatal(err)
	}
}

func TestBeginFinishReplay(t *testing.T) {
	s, c := newStore(t)
	if r := begin(t, s, "op\x00k1", "fp1"); r != nil {
		t.Fatalf("a new key has an answer: %+v", r)
	}
	finish(t, s, "op\x00k1", answer("fp1"))
	got := begin(t, s, "op\x00k1", "fp1")
	want := answer("fp1")
	want.Stored = c.t.Unix()
	if got == nil || !reflect.DeepEqual(*got, want) {
		t.Errorf("replay = %+v, want %+v", got, want)
	}
	// A replay does not claim the key: it can be replayed again at once.
	if got := begin(t, s, "op\x00k1", "fp1"); got == nil {
		t.Error("the second replay found no answer")
	}
}

func TestReusedKey(t *testing.T) {
	s, _ := newStore(t)
	begin(t, s, "k", "fp1")
	finish(t, s, "k", answer("fp1"))
	if r, err := s.Begin("k", "fp2"); !errors.Is(err, ErrReused) || r != nil {
		t.Errorf("Begin with another request = %+v, %v; want ErrReused", r, err)
	}
}

func TestInFlight(t *testing.T) {
	s, _ := newStore(t)
	begin(t, s, "k", "fp1")
	for _, fp := range []string{"fp1", "fp2"} {
		if r, err := s.Begin("k", fp); !errors.Is(err, ErrInFlight) || r != nil {
			t.Errorf("Begin(%s) while in flight = %+v, %v; want ErrInFlight", fp, r, err)
		}
	}
	// Other keys are independent.
	if r := begin(t, s, "other", "fp1"); r != nil {
		t.Errorf("another key has an answer: %+v", r)
	}
	finish(t, s, "k", answer("fp1"))
	if r := begin(t, s, "k", "fp1"); r == nil {
		t.Error("no answer after Finish")
	}
}

func TestAbandon(t *testing.T) {
	s, _ := newStore(t)
	begin(t, s, "k", "fp1")
	s.Abandon("k")
	// Nothing was kept: the key is free, for any request.
	if r := begin(t, s, "k", "fp2"); r != nil {
		t.Errorf("an abandoned key has an answer: %+v", r)
	}
	if _, err := s.Begin("k", "fp2"); !errors.Is(err, ErrInFlight) {
		t.Errorf("the key was not claimed again: %v", err)
	}
}

func TestSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idempotency.db")
	c := &clock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	s := openAt(t, path, c)
	begin(t, s, "k", "fp1")
	finish(t, s, "k", answer("fp1"))
	begin(t, s, "pending", "fp1") // in flight when the process stops
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Hour)
	s = openAt(t, path, c)
	if r := begin(t, s, "k", "fp1"); r == nil || string(r.Body) != `{"meterId":"PTB-0001"}` {
		t.Errorf("after reopening: %+v", r)
	}
	if _, err := s.Begin("k", "fp2"); !errors.Is(err, ErrReused) {
		t.Errorf("after reopening, another request: %v, want ErrReused", err)
	}
	// In-flight claims do not outlive the process.
	if r := begin(t, s, "pending", "fp1"); r != nil {
		t.Errorf("the pending key has an answer: %+v", r)
	}
}

func TestOpenRefusesUnwritablePath(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing", "idempotency.db")); err == nil {
		t.Error("Open succeeded in a directory that does not exist")
	}
}

func TestExpiredAnswerIsForgotten(t *testing.T) {
	s, c := newStore(t)
	begin(t, s, "k", "fp1")
	finish(t, s, "k", answer("fp1"))
	c.t = c.t.Add(Retention - time.Second)
	if r := begin(t, s, "k", "fp1"); r == nil {
		t.Fatal("the answer was forgotten before Retention")
	}
	c.t = c.t.Add(time.Second)
	// After Retention the key is new again, even for another request.
	if r := begin(t, s, "k", "fp2"); r != nil {
		t.Errorf("an expired answer was replayed: %+v", r)
	}
	finish(t, s, "k", answer("fp2"))
	if r := begin(t, s, "k", "fp2"); r == nil || r.Fingerprint != "fp2" || r.Stored != c.t.Unix() {
		t.Errorf("the new answer = %+v", r)
	}
}

func TestPrune(t *testing.T) {
	s, c := newStore(t)
	start := c.t
	begin(t, s, "old", "fp")
	finish(t, s, "old", answer("fp"))
	c.t = start.Add(20 * time.Hour)
	begin(t, s, "young", "fp")
	finish(t, s, "young", answer("fp"))

	c.t = start.Add(Retention - time.Second)
	if p, err := s.Prune(); err != nil || p.Expired != 0 {
		t.Errorf("Prune before Retention removed %d (%v), want 0", p.Expired, err)
	}
	c.t = start.Add(Retention + time.Second)
	if p, err := s.Prune(); err != nil || p.Expired != 1 {
		t.Errorf("Prune removed %d (%v), want 1", p.Expired, err)
	}
	// Retention has not passed for young: it is still replayed.
	if r := begin(t, s, "young", "fp"); r == nil {
		t.Error("Prune removed an answer younger than Retention")
	}
	// Back within old's retention, its answer would be replayed had it been
	// kept: it is gone.
	c.t = start
	if r := begin(t, s, "old", "fp"); r != nil {
		t.Errorf("old was not pruned: %+v", r)
	}
	c.t = start.Add(100 * time.Hour)
	if p, err := s.Prune(); err != nil || p.Expired != 1 || p.Live != 0 {
		t.Errorf("the last Prune removed %d (%v) and left %d bytes, want 1 (young) and 0", p.Expired, err, p.Live)
	}
}
