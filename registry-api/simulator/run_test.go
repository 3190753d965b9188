package simulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/loadprofile"
	"github.com/inter-nmi/pki/registry-api/simulator"
)

const ingestToken = "ingest-secret"

// registry fakes the two measurement endpoints of a registry: it checks each
// signature against the fleet's keys and the replay guard per meter, and
// records what arrived.
type registry struct {
	keys    map[string]*meter.PublicKey
	revoked map[string]bool // refused with METER_REVOKED
	broken  map[string]bool // answered with 500 INTERNAL

	mu      sync.Mutex
	last    map[string]uint64
	seqs    map[string][]uint64 // accepted seqs per meter, in arrival order
	batches []int               // sizes of the batches received
	singles int

	// Software: what each meter runs, from when, and the software each
	// accepted reading named; refuseUpdate refuses a meter's statements.
	software     map[string][]meter.Installed
	named        map[string][]string
	refuseUpdate map[string]bool
	updates      []meter.UpdateStatement
}

func newRegistry(f simulator.Fleet) *registry {
	r := &registry{keys: map[string]*meter.PublicKey{}, revoked: map[string]bool{}, broken: map[string]bool{},
		last: map[string]uint64{}, seqs: map[string][]uint64{},
		software: map[string][]meter.Installed{}, named: map[string][]string{}, refuseUpdate: map[string]bool{}}
	for _, m := range f {
		r.keys[m.ID] = m.Key.Public()
		r.software[m.ID] = []meter.Installed{{Software: m.Runs(), Since: "2000-01-01T00:00:00Z"}}
	}
	return r
}

// serve starts the fake and returns a client with the ingest token.
func (r *registry) serve(t *testing.T) *client.Client {
	t.Helper()
	return clientFor(t, r.start(t), ingestToken)
}

func clientFor(t *testing.T, url, token string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{BaseURL: url, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// start starts the fake and returns its address.
func (r *registry) start(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.Prefix+"/meters/{id}/measurements", func(w http.ResponseWriter, req *http.Request) {
		var sm meter.SignedMeasurement
		if !decode(w, req, &sm) {
			return
		}
		if sm.MeterID != req.PathValue("id") {
			problem(w, string(meter.CodeMeterMismatch))
			return
		}
		r.mu.Lock()
		r.singles++
		res := r.judge(0, sm)
		r.mu.Unlock()
		switch {
		case r.broken[sm.MeterID]:
			problem(w, string(meter.CodeInternal))
		case res.Outcome == meter.OutcomeRejected:
			problem(w, string(res.Code))
		default:
			reply(w, http.StatusCreated, api.MeasurementReceipt{MeterID: res.MeterID, Seq: res.Seq, KeyVersion: 1})
		}
	})
	mux.HandleFunc("POST "+api.Prefix+"/measurements/batch", func(w http.ResponseWriter, req *http.Request) {
		var b api.MeasurementBatch
		if !decode(w, req, &b) {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.batches = append(r.batches, len(b.Measurements))
		rec := api.BatchReceipt{Tx: api.Tx{TxID: "tx", Block: 1}}
		for i, sm := range b.Measurements {
			res := r.judge(i, sm)
			if res.Outcome == meter.OutcomeAccepted {
				rec.Accepted++
			} else {
				rec.Rejected++
			}
			rec.Items = append(rec.Items, res)
		}
		reply(w, http.StatusOK, rec)
	})
	mux.HandleFunc("POST "+api.Prefix+"/meters/{id}/software-updates", func(w http.ResponseWriter, req *http.Request) {
		var su meter.SignedUpdate
		if !decode(w, req, &su) {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		id := req.PathValue("id")
		key, ok := r.keys[id]
		if !ok {
			problem(w, string(meter.CodeMeterNotFound))
			return
		}
		st, err := su.Open(key)
		installed := r.software[id]
		switch {
		case err != nil:
			problem(w, string(meter.CodeOf(err)))
		case st.From != installed[len(installed)-1].Software:
			problem(w, string(meter.CodeSoftwareMismatch))
		case r.refuseUpdate[id]:
			problem(w, string(meter.CodeSoftwareNotApproved))
		default:
			r.updates = append(r.updates, st)
			r.software[id] = append(installed, meter.Installed{Software: st.To, Since: st.Time})
			reply(w, http.StatusCreated, api.SoftwareUpdateReceipt{MeterID: id, Tx: api.Tx{TxID: "tx", Block: 2},
				Report: &meter.UpdateReport{MeterID: id, Number: 1, Time: st.Time, From: st.From, To: st.To, Result: st.Result}})
		}
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") != "Bearer "+ingestToken {
			problem(w, api.CodeUnauthenticated)
			return
		}
		if req.Header.Get("Idempotency-Key") == "" {
			problem(w, string(meter.CodeMalformed))
			return
		}
		mux.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// judge decides one measurement as the ledger would; r.mu is held.
func (r *registry) judge(i int, sm meter.SignedMeasurement) meter.ItemResult {
	res := meter.ItemResult{Index: i, MeterID: sm.MeterID, Outcome: meter.OutcomeRejected}
	key, ok := r.keys[sm.MeterID]
	if !ok {
		res.Code = meter.CodeMeterNotFound
		return res
	}
	m, err := sm.Open(key)
	res.Seq = m.Seq
	switch {
	case err != nil:
		res.Code = meter.CodeOf(err)
	case r.revoked[sm.MeterID]:
		res.Code = meter.CodeMeterRevoked
	case r.broken[sm.MeterID]:
		res.Code = meter.CodeInternal
	case m.Seq <= r.last[sm.MeterID]:
		res.Code = meter.CodeReplay
	case m.SoftwareID != "" && m.SoftwareID != r.ranAt(sm.MeterID, m.MeasuredAt()).ID:
		res.Code = meter.CodeSoftwareMismatch
	default:
		r.last[sm.MeterID] = m.Seq
		r.seqs[sm.MeterID] = append(r.seqs[sm.MeterID], m.Seq)
		r.named[sm.MeterID] = append(r.named[sm.MeterID], m.SoftwareID)
		res.Outcome = meter.OutcomeAccepted
	}
	return res
}

// ranAt is the software a meter ran at t, by the statements recorded; r.mu
// is held.
func (r *registry) ranAt(id string, t time.Time) meter.Software {
	m := meter.Meter{Software: r.software[id]}
	return m.SoftwareAt(t)
}

func decode(w http.ResponseWriter, req *http.Request, v any) bool {
	dec := json.NewDecoder(req.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		problem(w, string(meter.CodeMalformed))
		return false
	}
	return true
}

func problem(w http.ResponseWriter, code string) {
	status := map[string]int{
		api.CodeUnauthenticated: 401, string(meter.CodeInternal): 500, string(meter.CodeReplay): 409,
		string(meter.CodeMeterRevoked): 409, string(meter.CodeMalformed): 400,
	}[code]
	if status == 0 {
		status = 422
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(api.Problem{Type: api.ProblemType(code), Status: status, Code: code, Detail: "refused by the fake"})
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func schedule(slots int) loadprofile.Schedule {
	return loadprofile.LastSlots(time.Now(), 15*time.Minute, slots)
}

// checkOrder fails unless each meter's accepted seqs arrived strictly
// increasing, and every meter has want of them.
func (r *registry) checkOrder(t *testing.T, f simulator.Fleet, want int, skip map[string]bool) {
	t.Helper()
	for _, m := range f {
		if skip[m.ID] {
			continue
		}
		seqs := r.seqs[m.ID]
		if len(seqs) != want {
			t.Errorf("meter %s: %d measurements accepted, want %d", m.ID, len(seqs), want)
		}
		if !slices.IsSorted(seqs) || len(slices.Compact(slices.Clone(seqs))) != len(seqs) {
			t.Errorf("meter %s: seqs arrived out of order: %v", m.ID, seqs)
		}
	}
}

func TestRunSingle(t *testing.T) {
	f := generate(t, 5)
	reg := newRegistry(f)
	reg.revoked[f[1].ID] = true
	reg.broken[f[3].ID] = true
	c := reg.serve(t)
	const slots = 6
	s, err := simulator.Run(context.Background(), simulator.Options{Submitter: c, Fleet: f, Seed: 1, Schedule: schedule(slots), Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	reg.checkOrder(t, f, slots, map[string]bool{f[1].ID: true, f[3].ID: true})
	want := simulator.Summary{Mode: simulator.ModeSingle, Meters: 5, Slots: slots, Concurrency: 3,
		Requests: 5 * slots, Sent: 5 * slots, Accepted: 3 * slots, Rejected: slots, Failed: slots}
	checkCounts(t, s, want)
	if s.RejectedByCode["METER_REVOKED"] != slots || len(s.RejectedByCode) != 1 {
		t.Errorf("rejected by code %v, want METER_REVOKED %d", s.RejectedByCode, slots)
	}
	if s.Errors["INTERNAL"] != slots || len(s.Errors) != 1 {
		t.Errorf("errors %v, want INTERNAL %d", s.Errors, slots)
	}
	if s.Latency.Count != 5*slots || s.PerMeasurement != nil {
		t.Errorf("latency %+v, per measurement %v; want %d requests and no per-measurement figures", s.Latency, s.PerMeasurement, 5*slots)
	}
	if reg.singles != 5*slots || len(reg.batches) != 0 {
		t.Errorf("the registry saw %d single and %d batch requests", reg.singles, len(reg.batches))
	}
}

func TestRunBatch(t *testing.T) {
	f := generate(t, 7)
	reg := newRegistry(f)
	reg.revoked[f[2].ID] = true
	c := reg.serve(t)
	const slots = 5
	s, err := simulator.Run(context.Background(), simulator.Options{Submitter: c, Fleet: f, Seed: 1, Schedule: schedule(slots),
		Batch: 4, Concurrency: 2, Replay: true})
	if err != nil {
		t.Fatal(err)
	}
	reg.checkOrder(t, f, slots, map[string]bool{f[2].ID: true})
	// Two concentrators share 4 and 3 meters: 20 and 15 readings in
	// batches of at most 4.
	sizes := slices.Clone(reg.batches[:len(reg.batches)-1]) // the last one is the replay
	slices.Sort(sizes)
	if want := []int{3, 4, 4, 4, 4, 4, 4, 4, 4}; !slices.Equal(sizes, want) {
		t.Errorf("batch sizes %v, want %v", sizes, want)
	}
	want := simulator.Summary{Mode: simulator.ModeBatch, BatchSize: 4, Meters: 7, Slots: slots, Concurrency: 2,
		Requests: 9, Sent: 7 * slots, Accepted: 6 * slots, Rejected: slots}
	checkCounts(t, s, want)
	if s.RejectedByCode["METER_REVOKED"] != slots || len(s.Errors) != 0 {
		t.Errorf("rejected by code %v, errors %v", s.RejectedByCode, s.Errors)
	}
	if s.PerMeasurement == nil || s.PerMeasurement.Count != 9 || s.Latency.Count != 9 {
		t.Errorf("latency %+v, per measurement %+v; want 9 of each", s.Latency, s.PerMeasurement)
	}
	r := s.Replay
	if r == nil || r.Items == 0 || r.Accepted != 0 || r.Rejected != r.Items || r.RejectedByCode["REPLAY"]+r.RejectedByCode["METER_REVOKED"] != r.Items {
		t.Errorf("replay %+v: want every item refused", r)
	}
}

func TestRunReplaySingle(t *testing.T) {
	f := generate(t, 2)
	reg := newRegistry(f)
	c := reg.serve(t)
	s, err := simulator.Run(context.Background(), simulator.Options{Submitter: c, Fleet: f, Schedule: schedule(3), Replay: true})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Replay; r == nil || r.Items != 1 || r.RejectedByCode["REPLAY"] != 1 {
		t.Errorf("replay %+v, want one REPLAY refusal", r)
	}
}

func TestRunAbortsOnBadToken(t *testing.T) {
	f := generate(t, 3)
	reg := newRegistry(f)
	bad := clientFor(t, reg.start(t), "wrong")
	s, err := simulator.Run(context.Background(), simulator.Options{Submitter: bad, Fleet: f, Schedule: schedule(50), Batch: 10})
	if !errors.Is(err, simulator.ErrAborted) || client.ProblemCode(err) != api.CodeUnauthenticated {
		t.Fatalf("Run = %v, want ErrAborted with UNAUTHENTICATED", err)
	}
	if s == nil || s.Errors[api.CodeUnauthenticated] != 1 || s.Requests != 1 {
		t.Errorf("summary %+v: want the one failed request", s)
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	f := generate(t, 2)
	reg := newRegistry(f)
	c := reg.serve(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := simulator.Run(ctx, simulator.Options{Submitter: c, Fleet: f, Schedule: schedule(10)})
	if !errors.Is(err, context.Canceled) || s == nil || s.Sent != 0 {
		t.Errorf("Run on a cancelled context = %+v, %v", s, err)
	}
}

func TestRunValidates(t *testing.T) {
	f := generate(t, 1)
	c := newRegistry(f).serve(t)
	for name, o := range map[string]simulator.Options{
		"no fleet":     {Submitter: c, Schedule: schedule(1)},
		"no submitter": {Fleet: f, Schedule: schedule(1)},
		"big batch":    {Submitter: c, Fleet: f, Schedule: schedule(1), Batch: api.MaxMeasurementBatch + 1},
		"bad interval": {Submitter: c, Fleet: f, Schedule: loadprofile.Schedule{Start: day0, Interval: time.Minute, Slots: 1}},
		"twice":        {Submitter: c, Fleet: append(f, f[0]), Schedule: schedule(1)},
	} {
		if _, err := simulator.Run(context.Background(), o); err == nil {
			t.Errorf("%s: Run accepted the options", name)
		}
	}
}

func checkCounts(t *testing.T, got *simulator.Summary, want simulator.Summary) {
	t.Helper()
	type counts struct {
		Mode                                                string
		BatchSize, Meters, Slots, Concurrency               int
		Requests, Sent, Accepted, Rejected, Failed, Latency int
	}
	g := counts{got.Mode, got.BatchSize, got.Meters, got.Slots, got.Concurrency, got.Requests, got.Sent, got.Accepted, got.Rejected, got.Failed, got.Latency.Count}
	w := counts{want.Mode, want.BatchSize, want.Meters, want.Slots, want.Concurrency, want.Requests, want.Sent, want.Accepted, want.Rejected, want.Failed, want.Requests}
	if g != w {
		t.Errorf("summary counts\n got %+v\nwant %+v", g, w)
	}
}

// The fleet loads new software mid-run: each meter's statement, signed
// with its key, reaches the registry between its readings, which name the
// software they were made with.
func TestRunUpdate(t *testing.T) {
	to := meter.Software{ID: "metersim-2", Checksum: "sha256:2c26b46b68ffc68f"}
	for _, batch := range []int{0, 4} {
		t.Run(fmt.Sprintf("batch %d", batch), func(t *testing.T) {
			f := generate(t, 3)
			reg := newRegistry(f)
			reg.refuseUpdate[f[1].ID] = true
			c := reg.serve(t)
			const slots, after = 6, 2
			sched := schedule(slots)
			s, err := simulator.Run(context.Background(), simulator.Options{Submitter: c, Updater: c, Fleet: f, Schedule: sched,
				Batch: batch, Concurrency: 2, Update: &simulator.Update{To: to, After: after}})
			if err != nil {
				t.Fatal(err)
			}
			u := s.Updates
			if u == nil || u.Sent != 3 || u.Accepted != 2 || u.Refused != 1 || u.RefusedByCode["SOFTWARE_NOT_APPROVED"] != 1 || u.Failed != 0 || u.Latency.Count != 3 {
				t.Fatalf("updates %+v, want 2 of 3 accepted and 1 refused", u)
			}
			// The refused meter's readings after the update name software
			// the ledger does not know it runs.
			if s.Accepted != 3*slots-(slots-after) || s.RejectedByCode["SOFTWARE_MISMATCH"] != slots-after {
				t.Errorf("accepted %d, rejected %v", s.Accepted, s.RejectedByCode)
			}
			reg.checkOrder(t, simulator.Fleet{f[0], f[2]}, slots, nil)
			want := []string{simulator.SoftwareID, simulator.SoftwareID, to.ID, to.ID, to.ID, to.ID}
			for _, m := range []*simulator.Meter{f[0], f[2]} {
				if got := reg.named[m.ID]; !slices.Equal(got, want) {
					t.Errorf("meter %s's readings named %v, want %v", m.ID, got, want)
				}
			}
			at := sched.Time(after - 1).Add(sched.Interval / 2).UTC().Format(time.RFC3339)
			for _, st := range reg.updates {
				if st.From != simulator.DefaultSoftware() || st.To != to || st.Time != at || st.Result != meter.UpdateSuccess {
					t.Errorf("statement %+v, want from the default software to %v at %s", st, to, at)
				}
			}
			var b strings.Builder
			if err := s.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), "after 2 readings: 3 statements, 2 accepted, 1 refused (SOFTWARE_NOT_APPROVED 1), 0 failed") {
				t.Errorf("summary:\n%s", b.String())
			}
		})
	}
}

// NameSoftware alone names the software each meter runs in its readings.
func TestRunNamesSoftware(t *testing.T) {
	f := generate(t, 2)
	f[1].Software = meter.Software{ID: "fw-7", Checksum: "sha256:9f86d081884c7d65"}
	reg := newRegistry(f)
	c := reg.serve(t)
	s, err := simulator.Run(context.Background(), simulator.Options{Submitter: c, Fleet: f, Schedule: schedule(3), NameSoftware: true})
	if err != nil || s.Accepted != 6 || s.Updates != nil {
		t.Fatalf("Run = %+v, %v", s, err)
	}
	if got := reg.named[f[0].ID]; !slices.Equal(got, []string{simulator.SoftwareID, simulator.SoftwareID, simulator.SoftwareID}) {
		t.Errorf("meter %s named %v", f[0].ID, got)
	}
	if got := reg.named[f[1].ID]; !slices.Equal(got, []string{"fw-7", "fw-7", "fw-7"}) {
		t.Errorf("meter %s named %v", f[1].ID, got)
	}
}

func TestRunValidatesUpdate(t *testing.T) {
	f := generate(t, 1)
	c := newRegistry(f).serve(t)
	to := meter.Software{ID: "metersim-2", Checksum: "sha256:2c26b46b68ffc68f"}
	for name, o := range map[string]simulator.Options{
		"no updater":       {Submitter: c, Fleet: f, Schedule: schedule(4), Update: &simulator.Update{To: to, After: 2}},
		"before any":       {Submitter: c, Updater: c, Fleet: f, Schedule: schedule(4), Update: &simulator.Update{To: to, After: 0}},
		"after the last":   {Submitter: c, Updater: c, Fleet: f, Schedule: schedule(4), Update: &simulator.Update{To: to, After: 4}},
		"bad checksum":     {Submitter: c, Updater: c, Fleet: f, Schedule: schedule(4), Update: &simulator.Update{To: meter.Software{ID: "x", Checksum: "9f86"}, After: 2}},
		"no software name": {Submitter: c, Updater: c, Fleet: f, Schedule: schedule(4), Update: &simulator.Update{To: meter.Software{Checksum: to.Checksum}, After: 2}},
	} {
		if _, err := simulator.Run(context.Background(), o); err == nil {
			t.Errorf("%s: Run accepted the options", name)
		}
	}
}
