package simulator_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/loadprofile"
	"github.com/inter-nmi/pki/registry-api/simulator"
)

func TestMeterIDs(t *testing.T) {
	if got, want := simulator.MeterIDs("SIM-r1", 9, 3), []string{"SIM-r1-0009", "SIM-r1-0010", "SIM-r1-0011"}; !slices.Equal(got, want) {
		t.Errorf("MeterIDs = %v, want %v", got, want)
	}
	if got := simulator.MeterIDs("S", 99999, 2); got[1] != "S-100000" {
		t.Errorf("MeterIDs widens to %q", got[1])
	}
}

func generate(t *testing.T, n int) simulator.Fleet {
	t.Helper()
	f, err := simulator.Generate(simulator.MeterIDs("SIM-t", 1, n), meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestKeyDir(t *testing.T) {
	dir := simulator.KeyDir(filepath.Join(t.TempDir(), "keys"))
	empty, err := dir.Load()
	if err != nil || len(empty) != 0 {
		t.Fatalf("Load of a missing directory = %v, %v", empty, err)
	}
	f := generate(t, 3)
	if err := dir.Save(f); err != nil {
		t.Fatal(err)
	}
	if err := dir.Save(f); err != nil {
		t.Fatalf("saving the same keys again: %v", err)
	}
	for _, m := range f {
		fi, err := os.Stat(filepath.Join(string(dir), m.ID+".key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", fi.Name(), fi.Mode().Perm())
		}
	}
	loaded, err := dir.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != len(f) {
		t.Fatalf("loaded %d meters, want %d", len(loaded), len(f))
	}
	for i, m := range loaded {
		if m.ID != f[i].ID || !m.Key.Public().Equal(f[i].Key.Public()) {
			t.Errorf("meter %d: loaded %s, saved %s", i, m.ID, f[i].ID)
		}
	}
	other, _ := simulator.Generate([]string{f[0].ID}, meter.P256)
	if err := dir.Save(other); err == nil {
		t.Error("Save overwrote a meter's key with another")
	}

	if seq, err := dir.LastSeq(); err != nil || seq != 0 {
		t.Fatalf("LastSeq without state = %d, %v", seq, err)
	}
	if err := dir.SetLastSeq(123456); err != nil {
		t.Fatal(err)
	}
	if seq, err := dir.LastSeq(); err != nil || seq != 123456 {
		t.Errorf("LastSeq = %d, %v; want 123456", seq, err)
	}
}

// registrar records the batches it is asked to register, refusing any
// registration its meter did not prove for nmi, as a registry does.
type registrar struct {
	nmi     string
	batches [][]meter.Registration
	failAt  int
}

func (r *registrar) RegisterMeters(_ context.Context, regs []meter.Registration) (*api.Enrolment, error) {
	if len(r.batches) == r.failAt {
		return nil, &api.Problem{Code: string(meter.CodeMeterExists), Detail: "meter exists"}
	}
	for _, reg := range regs {
		key, err := reg.Validate()
		if err == nil {
			err = reg.VerifyProof(key, r.nmi)
		}
		if err != nil {
			return nil, &api.Problem{Code: string(meter.CodeOf(err)), Detail: err.Error()}
		}
	}
	r.batches = append(r.batches, regs)
	return &api.Enrolment{Registered: len(regs)}, nil
}

func TestRegister(t *testing.T) {
	f := generate(t, 5)
	for _, m := range f {
		reg, err := m.Registration("PTBMSP")
		if err != nil {
			t.Fatal(err)
		}
		key, err := reg.Validate()
		if err != nil {
			t.Fatalf("registration of %s: %v", m.ID, err)
		}
		if err := reg.VerifyProof(key, "PTBMSP"); err != nil {
			t.Errorf("the proof of %s for PTBMSP: %v", m.ID, err)
		}
		if err := reg.VerifyProof(key, "CMIMSP"); meter.CodeOf(err) != meter.CodeBadSignature {
			t.Errorf("the proof of %s for PTBMSP verifies for CMIMSP (%v)", m.ID, err)
		}
	}
	r := &registrar{nmi: "PTBMSP", failAt: -1}
	var done []string
	n, err := simulator.Register(context.Background(), r, "PTBMSP", f, 2, func(part simulator.Fleet) error {
		for _, m := range part {
			done = append(done, m.ID)
		}
		return nil
	})
	if err != nil || n != 5 {
		t.Fatalf("Register = %d, %v", n, err)
	}
	var sizes []int
	for _, b := range r.batches {
		sizes = append(sizes, len(b))
	}
	if !slices.Equal(sizes, []int{2, 2, 1}) {
		t.Errorf("batch sizes %v, want [2 2 1]", sizes)
	}
	if len(done) != 5 {
		t.Errorf("done saw %v", done)
	}

	r = &registrar{nmi: "PTBMSP", failAt: 1}
	done = nil
	n, err = simulator.Register(context.Background(), r, "PTBMSP", f, 2, func(part simulator.Fleet) error {
		for _, m := range part {
			done = append(done, m.ID)
		}
		return nil
	})
	var p *api.Problem
	if n != 2 || !errors.As(err, &p) || len(done) != 2 {
		t.Errorf("Register with a failing second batch = %d, %v; done saw %v", n, err, done)
	}

	// Registered at another NMI's registry than the proofs name, nothing is.
	r = &registrar{nmi: "CMIMSP", failAt: -1}
	n, err = simulator.Register(context.Background(), r, "PTBMSP", f, 2, nil)
	if n != 0 || !errors.As(err, &p) || p.Code != string(meter.CodeBadSignature) {
		t.Errorf("Register with proofs for PTBMSP at CMIMSP = %d, %v; want BAD_SIGNATURE", n, err)
	}
}

// day0 is a Monday midnight, a start on every interval boundary.
var day0 = time.Date(2026, time.March, 2, 0, 0, 0, 0, time.UTC)

func TestSeqOffset(t *testing.T) {
	s := loadprofile.Schedule{Start: day0, Interval: 15 * time.Minute, Slots: 4}
	first := loadprofile.SeqAt(s.Time(0))
	for _, tc := range []struct{ last, want uint64 }{
		{0, 0}, {first - 1, 0}, {first, 1}, {first + 1000, 1001},
	} {
		if got := simulator.SeqOffset(s, tc.last); got != tc.want {
			t.Errorf("SeqOffset(last %d) = %d, want %d", tc.last, got, tc.want)
		}
	}
	s.SeqOffset = simulator.SeqOffset(s, first+5)
	p := loadprofile.London()
	rs, err := p.Readings(p.Household(1, "M-1"), s)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Seq != first+6 {
		t.Errorf("first seq %d, want %d", rs[0].Seq, first+6)
	}
}
