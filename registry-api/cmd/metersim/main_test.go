package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/simulator"
)

const (
	operatorToken = "operator-secret"
	ingestToken   = "ingest-secret"
)

var now = time.Date(2026, 5, 21, 10, 7, 0, 0, time.UTC)

// registryNMI is the MSP ID the fake registry speaks for: the meters'
// registrations must be proved for it.
const registryNMI = "PTBMSP"

// registry fakes registration and the two measurement endpoints, with the
// replay guard per meter.
type registry struct {
	mu         sync.Mutex
	keys       map[string]*meter.PublicKey
	last       map[string]uint64
	registered []int // meters per registration request
	// types and software are each meter's registered type and the
	// software it ran, from when; named counts the software the accepted
	// readings named.
	types    map[string]string
	software map[string][]meter.Installed
	named    map[string]int
	updates  int
}

func fakeRegistry(t *testing.T) (*registry, string) {
	reg := &registry{keys: map[string]*meter.PublicKey{}, last: map[string]uint64{}, types: map[string]string{},
		software: map[string][]meter.Installed{}, named: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/meters/batch", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r, operatorToken) {
			return
		}
		var regs []meter.Registration
		json.NewDecoder(r.Body).Decode(&regs)
		reg.mu.Lock()
		defer reg.mu.Unlock()
		var ids []string
		for _, rg := range regs {
			k, err := rg.Validate()
			if err == nil {
				err = rg.VerifyProof(k, registryNMI)
			}
			if err != nil {
				reply(w, http.StatusUnprocessableEntity, api.Problem{Code: string(meter.CodeOf(err)), Detail: err.Error()})
				return
			}
			if reg.keys[rg.MeterID] != nil {
				reply(w, http.StatusConflict, api.Problem{Code: string(meter.CodeMeterExists)})
				return
			}
			reg.keys[rg.MeterID] = k
			reg.types[rg.MeterID] = rg.TypeID
			reg.software[rg.MeterID] = []meter.Installed{{Software: meter.Software{ID: rg.SoftwareID, Checksum: rg.SoftwareChecksum},
				Since: "2000-01-01T00:00:00Z"}}
			ids = append(ids, rg.MeterID)
		}
		reg.registered = append(reg.registered, len(regs))
		reply(w, http.StatusCreated, api.Enrolment{Registered: len(ids), MeterIDs: ids})
	})
	mux.HandleFunc("GET /api/v1/consortium", func(w http.ResponseWriter, r *http.Request) {
		if authorized(w, r, operatorToken) {
			reply(w, http.StatusOK, api.Consortium{NMI: registryNMI})
		}
	})
	mux.HandleFunc("POST /api/v1/meters/{id}/measurements", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r, ingestToken) {
			return
		}
		var sm meter.SignedMeasurement
		json.NewDecoder(r.Body).Decode(&sm)
		res := reg.judge(0, sm)
		if res.Outcome == meter.OutcomeRejected {
			reply(w, http.StatusConflict, api.Problem{Code: string(res.Code)})
			return
		}
		reply(w, http.StatusCreated, api.MeasurementReceipt{MeterID: res.MeterID, Seq: res.Seq})
	})
	mux.HandleFunc("POST /api/v1/measurements/batch", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r, ingestToken) {
			return
		}
		var b api.MeasurementBatch
		json.NewDecoder(r.Body).Decode(&b)
		var rec api.BatchReceipt
		for i, sm := range b.Measurements {
			res := reg.judge(i, sm)
			if res.Outcome == meter.OutcomeAccepted {
				rec.Accepted++
			} else {
				rec.Rejected++
			}
			rec.Items = append(rec.Items, res)
		}
		reply(w, http.StatusOK, rec)
	})
	mux.HandleFunc("POST /api/v1/meters/{id}/software-updates", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r, ingestToken) {
			return
		}
		var su meter.SignedUpdate
		json.NewDecoder(r.Body).Decode(&su)
		reg.mu.Lock()
		defer reg.mu.Unlock()
		id := r.PathValue("id")
		k := reg.keys[id]
		if k == nil {
			reply(w, http.StatusNotFound, api.Problem{Code: string(meter.CodeMeterNotFound), TxID: "tx"})
			return
		}
		st, err := su.Open(k)
		ran := reg.software[id]
		switch {
		case err != nil:
			reply(w, http.StatusUnprocessableEntity, api.Problem{Code: string(meter.CodeOf(err)), TxID: "tx"})
		case st.From != ran[len(ran)-1].Software:
			reply(w, http.StatusUnprocessableEntity, api.Problem{Code: string(meter.CodeSoftwareMismatch), TxID: "tx"})
		default:
			reg.software[id] = append(ran, meter.Installed{Software: st.To, Since: st.Time})
			reg.updates++
			reply(w, http.StatusCreated, api.SoftwareUpdateReceipt{MeterID: id, Report: &meter.UpdateReport{MeterID: id, Number: 1}})
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return reg, srv.URL
}

func (reg *registry) judge(i int, sm meter.SignedMeasurement) meter.ItemResult {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	res := meter.ItemResult{Index: i, MeterID: sm.MeterID, Outcome: meter.OutcomeRejected}
	k := reg.keys[sm.MeterID]
	if k == nil {
		res.Code = meter.CodeMeterNotFound
		return res
	}
	m, err := sm.Open(k)
	res.Seq = m.Seq
	switch {
	case err != nil:
		res.Code = meter.CodeOf(err)
	case m.CheckPlausible(now) != nil:
		res.Code = meter.CodeImplausibleTime
	case m.Seq <= reg.last[sm.MeterID]:
		res.Code = meter.CodeReplay
	case m.SoftwareID != "" && m.SoftwareID != (&meter.Meter{Software: reg.software[sm.MeterID]}).SoftwareAt(m.MeasuredAt()).ID:
		res.Code = meter.CodeSoftwareMismatch
	default:
		reg.last[sm.MeterID] = m.Seq
		reg.named[m.SoftwareID]++
		res.Outcome = meter.OutcomeAccepted
	}
	return res
}

func authorized(w http.ResponseWriter, r *http.Request, token string) bool {
	if r.Header.Get("Authorization") == "Bearer "+token {
		return true
	}
	reply(w, http.StatusUnauthorized, api.Problem{Code: api.CodeUnauthenticated})
	return false
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

type result struct {
	code           int
	stdout, stderr string
}

func metersim(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"metersim"}, args...), env{
		getenv: func(k string) string { return vars[k] },
		stdout: &out, stderr: &errOut,
		now: func() time.Time { return now },
	})
	return result{code, out.String(), errOut.String()}
}

func (r result) want(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

func readSummary(t *testing.T, path string) simulator.Summary {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s simulator.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRunsKeepTheirMeters: a first run registers its meters and keeps their
// keys; a second run over the same period with one more meter registers only
// that one, and its seqs stay above the first run's.
func TestRunsKeepTheirMeters(t *testing.T) {
	reg, url := fakeRegistry(t)
	dir := t.TempDir()
	keys, summary := filepath.Join(dir, "keys"), filepath.Join(dir, "run.json")
	opFile := filepath.Join(dir, "operator.token")
	if err := os.WriteFile(opFile, []byte(operatorToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"PKI_API": url, "PKI_OPERATOR_TOKEN_FILE": opFile}
	r := metersim(t, vars, "--token", ingestToken, "--register", "--keys-dir", keys, "--meters", "3", "--slots", "4",
		"--batch", "5", "--concurrency", "2", "--replay", "--json", summary, "--quiet", "--run", "r1")
	r.want(t, exitOK)
	s := readSummary(t, summary)
	if s.Registered != 3 || s.Sent != 12 || s.Accepted != 12 || s.Mode != simulator.ModeBatch {
		t.Errorf("first run: %+v", s)
	}
	if s.Replay == nil || s.Replay.Items == 0 || s.Replay.RejectedByCode["REPLAY"] != s.Replay.Items {
		t.Errorf("replay %+v: want every item refused as REPLAY", s.Replay)
	}
	if strings.Contains(s.Command+r.stdout+r.stderr, ingestToken) || !strings.Contains(s.Command, "--token ***") {
		t.Errorf("the command line shows the token: %s", s.Command)
	}
	if !strings.Contains(r.stdout, "metersim summary") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "registered 3 meters at "+registryNMI) {
		t.Errorf("stderr does not say where the meters were registered:\n%s", r.stderr)
	}
	// With --register the meters are named in the registry's NMI's namespace.
	files, _ := filepath.Glob(filepath.Join(keys, "PTB-r1-*.key.pem"))
	if len(files) != 3 {
		t.Errorf("keys directory holds %v", files)
	}

	r = metersim(t, vars, "--token", ingestToken, "--register", "--keys-dir", keys, "--meters", "4", "--slots", "4",
		"--concurrency", "3", "--json", summary, "--quiet", "--run", "r2")
	r.want(t, exitOK)
	s = readSummary(t, summary)
	if s.Registered != 1 || s.Sent != 16 || s.Accepted != 16 || s.Mode != simulator.ModeSingle {
		t.Errorf("second run: %+v", s)
	}
	if len(reg.registered) != 2 || reg.registered[1] != 1 {
		t.Errorf("registration requests of %v meters; want 3, then 1", reg.registered)
	}
}

func TestUnregisteredMetersAreRefused(t *testing.T) {
	_, url := fakeRegistry(t)
	r := metersim(t, map[string]string{"PKI_API": url, "PKI_TOKEN": ingestToken}, "--meters", "2", "--slots", "2", "--quiet")
	r.want(t, exitOK)
	if !strings.Contains(r.stderr, "not registered") || !strings.Contains(r.stdout, "METER_NOT_FOUND 4") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
}

func TestFailedRequestsExit1(t *testing.T) {
	_, url := fakeRegistry(t)
	r := metersim(t, map[string]string{"PKI_API": url, "PKI_TOKEN": "wrong"}, "--meters", "2", "--slots", "2", "--quiet")
	r.want(t, exitFailure)
	if !strings.Contains(r.stderr, "run aborted") || !strings.Contains(r.stdout, "UNAUTHENTICATED") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
}

func TestUsage(t *testing.T) {
	vars := map[string]string{"PKI_API": "http://127.0.0.1:1", "PKI_TOKEN": ingestToken}
	for _, tc := range []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"argument", vars, []string{"go"}, "no arguments"},
		{"unknown flag", vars, []string{"--bogus"}, "unknown flag"},
		{"start and day", vars, []string{"--start", "2026-05-20T00:00:00Z", "--day", "2026-05-20"}, "not both"},
		{"bad start", vars, []string{"--start", "yesterday"}, "RFC 3339"},
		{"misaligned start", vars, []string{"--start", "2026-05-20T00:07:00Z"}, "boundary"},
		{"bad day", vars, []string{"--day", "20.05.2026"}, "YYYY-MM-DD"},
		{"bad interval", vars, []string{"--interval", "7m"}, "divide a day"},
		{"big batch", vars, []string{"--batch", "1001"}, "--batch"},
		{"no meters", vars, []string{"--meters", "0"}, "--meters"},
		{"no concurrency", vars, []string{"--concurrency", "0"}, "--concurrency"},
		{"bad curve", vars, []string{"--curve", "ed25519"}, "curve"},
		{"bad prefix", vars, []string{"--prefix", "no spaces"}, "invalid meter IDs"},
		{"no address", nil, nil, "no registry address"},
		{"no token", map[string]string{"PKI_API": "http://127.0.0.1:1"}, nil, "no credential"},
		{"register without operator", vars, []string{"--register"}, "--operator-token-file"},
		{"update without after", vars, []string{"--update-to", "metersim-2:sha256:2c26b46b68ffc68f"}, "go together"},
		{"update after without software", vars, []string{"--update-after", "2"}, "go together"},
		{"update not ID:ALG:HEX", vars, []string{"--update-to", "metersim-2", "--update-after", "2"}, "ID:ALG:HEX"},
		{"update with a bad checksum", vars, []string{"--update-to", "metersim-2:sha256:xyz", "--update-after", "2"}, "softwareChecksum"},
		{"update after every reading", vars, []string{"--update-to", "metersim-2:sha256:2c26b46b68ffc68f", "--update-after", "4", "--slots", "4"}, "no reading after"},
		{"update to the same software", vars, []string{"--update-to", "metersim-1:sha256:2c26b46b68ffc68f", "--update-after", "2"}, "run already"},
		{"bad software", vars, []string{"--software", "fw:md5"}, "ID:ALG:HEX"},
		{"type without register", vars, []string{"--type-id", "PTB-SIM"}, "needs --register"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := metersim(t, tc.vars, tc.args...)
			r.want(t, exitUsage)
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, r.stderr)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       config
		start     string
		slots     int
		interval  time.Duration
		wantStart string
	}{
		{"default", config{slots: 96, interval: 15 * time.Minute}, "", 96, 15 * time.Minute, "2026-05-20T10:00:00Z"},
		{"day", config{day: "2026-05-19", slots: 96, interval: 30 * time.Minute}, "", 48, 30 * time.Minute, "2026-05-19T00:00:00Z"},
		{"day with slots", config{day: "2026-05-19", slots: 10, slotsGiven: true, interval: 30 * time.Minute}, "", 10, 30 * time.Minute, "2026-05-19T00:00:00Z"},
		{"start", config{start: "2026-05-21T08:00:00+02:00", slots: 4, interval: time.Hour}, "", 4, time.Hour, "2026-05-21T06:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.cfg.schedule(now)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Start.Format(time.RFC3339); got != tc.wantStart || s.Slots != tc.slots || s.Interval != tc.interval {
				t.Errorf("schedule from %s, %d slots of %s; want from %s, %d of %s", got, s.Slots, s.Interval, tc.wantStart, tc.slots, tc.interval)
			}
		})
	}
}

// Two runs started in the same second (through two NMIs' registries, say)
// must not draw the same meter IDs.
func TestDefaultRunNamesDiffer(t *testing.T) {
	var e env
	if a, b := e.nonce(), e.nonce(); a == b || len(a) != 8 {
		t.Fatalf("run suffixes %q and %q", a, b)
	}
}

// A fleet registered as of a type goes through a software update mid-run:
// each meter's statement arrives between its readings, which name the
// software that made them.
func TestSoftwareUpdateMidRun(t *testing.T) {
	reg, url := fakeRegistry(t)
	vars := map[string]string{"PKI_API": url, "PKI_TOKEN": ingestToken, "PKI_OPERATOR_TOKEN": operatorToken}
	summary := filepath.Join(t.TempDir(), "run.json")
	for _, batch := range []string{"0", "3"} {
		r := metersim(t, vars, "--register", "--meters", "2", "--slots", "4", "--type-id", "PTB-SIM", "--software", "fw:1.0:sha256:9f86d081884c7d65",
			"--update-to", "fw:2.0:sha256:2c26b46b68ffc68f", "--update-after", "1", "--batch", batch, "--quiet", "--json", summary)
		r.want(t, exitOK)
		s := readSummary(t, summary)
		if u := s.Updates; u == nil || u.Sent != 2 || u.Accepted != 2 || u.After != 1 || u.To != "fw:2.0 (sha256:2c26b46b68ffc68f)" || s.Accepted != 8 {
			t.Fatalf("batch %s: summary %+v, updates %+v", batch, s, s.Updates)
		}
		if !strings.Contains(r.stdout, "2 statements, 2 accepted") {
			t.Errorf("stdout:\n%s", r.stdout)
		}
	}
	for id, typ := range reg.types {
		if typ != "PTB-SIM" {
			t.Errorf("meter %s registered as of type %q", id, typ)
		}
	}
	if reg.updates != 4 || reg.named["fw:1.0"] != 4 || reg.named["fw:2.0"] != 12 {
		t.Errorf("%d updates; readings named %v", reg.updates, reg.named)
	}
}

// --name-software alone names the meters' software in their readings.
func TestNameSoftware(t *testing.T) {
	reg, url := fakeRegistry(t)
	vars := map[string]string{"PKI_API": url, "PKI_TOKEN": ingestToken, "PKI_OPERATOR_TOKEN": operatorToken}
	metersim(t, vars, "--register", "--meters", "2", "--slots", "3", "--name-software", "--quiet").want(t, exitOK)
	if reg.named[simulator.SoftwareID] != 6 || len(reg.named) != 1 || reg.updates != 0 {
		t.Errorf("readings named %v, %d updates", reg.named, reg.updates)
	}
}
