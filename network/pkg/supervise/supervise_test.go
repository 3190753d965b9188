package supervise

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s: %v", name, err)
	}
	p, err = filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sleeper is a process that runs until it is stopped.
func sleeper(t *testing.T, name string) Process {
	return Process{Name: name, Bin: lookPath(t, "sleep"), Args: []string{"300"}, Dir: t.TempDir()}
}

// stopOnCleanup makes sure no test leaves a process behind.
func stopOnCleanup(t *testing.T, d Dir, name string) {
	t.Cleanup(func() { _, _ = d.Stop(context.Background(), name, time.Second) })
}

func TestStartStop(t *testing.T) {
	d := Dir{Root: t.TempDir()}
	p := sleeper(t, "ptb-peer")
	stopOnCleanup(t, d, p.Name)
	started, err := d.Start(p)
	if err != nil || !started {
		t.Fatalf("Start = %v, %v", started, err)
	}
	pid, ok := d.Running(p.Name)
	if !ok || pid <= 0 {
		t.Fatalf("Running after Start = %d, %v", pid, ok)
	}
	if again, err := d.Start(p); err != nil || again {
		t.Fatalf("second Start of a running process = %v, %v; want no new process", again, err)
	}
	if again, _ := d.Running(p.Name); again != pid {
		t.Fatalf("second Start replaced pid %d by %d", pid, again)
	}
	r, ok := d.Record(p.Name)
	if !ok || r.PID != pid || r.Bin != p.Bin || r.Start == "" {
		t.Fatalf("record %+v, %v", r, ok)
	}
	if got := d.Processes(); len(got) != 1 || got[p.Name] != pid {
		t.Fatalf("Processes = %v", got)
	}
	log, err := os.ReadFile(d.LogFile(p.Name))
	if err != nil || !strings.Contains(string(log), "starting "+p.Bin+" 300") {
		t.Fatalf("log %q, %v", log, err)
	}

	stopped, err := d.Stop(context.Background(), p.Name, 10*time.Second)
	if err != nil || !stopped {
		t.Fatalf("Stop = %v, %v", stopped, err)
	}
	if r.Alive() {
		t.Fatal("the process still runs after Stop")
	}
	if _, ok := d.Running(p.Name); ok {
		t.Fatal("Running after Stop")
	}
	if _, err := os.Stat(d.PIDFile(p.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("PID file after Stop: %v", err)
	}
	if stopped, err := d.Stop(context.Background(), p.Name, time.Second); err != nil || stopped {
		t.Fatalf("Stop of a stopped process = %v, %v", stopped, err)
	}
}

// A process that ignores SIGTERM is killed once the grace period is over.
func TestStopKillsAfterGrace(t *testing.T) {
	d := Dir{Root: t.TempDir()}
	// An ignored signal stays ignored across exec, so sleep ignores SIGTERM.
	p := Process{Name: "stubborn", Bin: lookPath(t, "sh"), Args: []string{"-c", `trap "" TERM; exec sleep 300`}}
	stopOnCleanup(t, d, p.Name)
	if _, err := d.Start(p); err != nil {
		t.Fatal(err)
	}
	r, _ := d.Record(p.Name)
	// Wait until sh has exec'd sleep with SIGTERM ignored.
	if err := d.WaitFor(context.Background(), p.Name, 10*time.Second, func(context.Context) error {
		exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(r.PID), "exe"))
		if err != nil || filepath.Base(exe) != "sleep" {
			return errors.New("not sleeping yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	stopped, err := d.Stop(context.Background(), p.Name, 100*time.Millisecond)
	if err != nil || !stopped {
		t.Fatalf("Stop = %v, %v", stopped, err)
	}
	if r.Alive() {
		t.Fatal("the process survived Stop")
	}
}

// A PID file whose process is gone, or whose PID now belongs to another
// process, is stale: the process counts as not running, Start starts it
// anew and Stop signals nothing.
func TestStalePIDFile(t *testing.T) {
	_, selfStart, err := procStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	gone := exec.Command(lookPath(t, "true"))
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		record Record
	}{
		{"exited", Record{PID: gone.Process.Pid, Bin: gone.Path, Start: "1"}},
		// This test's own PID, as if recycled: the start time differs.
		{"recycled", Record{PID: os.Getpid(), Bin: "/usr/bin/sleep", Start: selfStart + "0"}},
		// A record without start time is matched by binary.
		{"recycled, old record", Record{PID: os.Getpid(), Bin: "/usr/bin/sleep"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Dir{Root: t.TempDir()}
			if err := os.MkdirAll(filepath.Dir(d.PIDFile("x")), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(d.PIDFile("ptb-orderer"), tc.record.Marshal(), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, ok := d.Running("ptb-orderer"); ok {
				t.Fatal("a stale PID file counts as running")
			}
			if got := d.Processes(); len(got) != 0 {
				t.Fatalf("Processes = %v", got)
			}
			if stopped, err := d.Stop(context.Background(), "ptb-orderer", time.Second); err != nil || stopped {
				t.Fatalf("Stop of a stale PID file = %v, %v", stopped, err)
			}
			if _, err := os.Stat(d.PIDFile("ptb-orderer")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("stale PID file left: %v", err)
			}
		})
	}
	t.Run("Start replaces it", func(t *testing.T) {
		d := Dir{Root: t.TempDir()}
		p := sleeper(t, "ptb-peer")
		stopOnCleanup(t, d, p.Name)
		if err := os.MkdirAll(filepath.Dir(d.PIDFile(p.Name)), 0o755); err != nil {
			t.Fatal(err)
		}
		stale := Record{PID: os.Getpid(), Bin: p.Bin, Start: selfStart + "0"}
		if err := os.WriteFile(d.PIDFile(p.Name), stale.Marshal(), 0o644); err != nil {
			t.Fatal(err)
		}
		if started, err := d.Start(p); err != nil || !started {
			t.Fatalf("Start over a stale PID file = %v, %v", started, err)
		}
		if pid, ok := d.Running(p.Name); !ok || pid == os.Getpid() {
			t.Fatalf("Running = %d, %v", pid, ok)
		}
	})
}

// A PID record names one process: the running test process matches its own
// record, and the same PID with another start time (a recycled PID) does not.
func TestRecordAlive(t *testing.T) {
	_, start, err := procStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	self := Record{PID: os.Getpid(), Bin: "/not/this/binary", Start: start}
	if !self.Alive() {
		t.Fatal("the running process does not match its own record")
	}
	recycled := self
	recycled.Start = start + "0"
	if recycled.Alive() {
		t.Fatal("a record with another start time matches")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !(Record{PID: os.Getpid(), Bin: exe}).Alive() {
		t.Fatal("a record without start time does not match by binary")
	}
	if (Record{PID: os.Getpid(), Bin: "/not/this/binary"}).Alive() {
		t.Fatal("a record without start time matches another binary")
	}
}

// The PID file format: PID, binary and start time, one a line.
func TestRecordFormat(t *testing.T) {
	r := Record{PID: 4242, Bin: "/opt/fabric/bin/peer", Start: "123456"}
	if got := string(r.Marshal()); got != "4242\n/opt/fabric/bin/peer\n123456\n" {
		t.Fatalf("Marshal = %q", got)
	}
	if back, ok := ParseRecord(r.Marshal()); !ok || back != r {
		t.Fatalf("ParseRecord(Marshal) = %+v, %v", back, ok)
	}
	for in, want := range map[string]Record{
		"17\n/bin/orderer\n":     {PID: 17, Bin: "/bin/orderer"},
		"17\n/bin/orderer\n99\n": {PID: 17, Bin: "/bin/orderer", Start: "99"},
	} {
		if got, ok := ParseRecord([]byte(in)); !ok || got != want {
			t.Errorf("ParseRecord(%q) = %+v, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "17\n", "x\n/bin/peer\n", "0\n/bin/peer\n", "-3\n/bin/peer\n"} {
		if got, ok := ParseRecord([]byte(in)); ok {
			t.Errorf("ParseRecord(%q) = %+v, want no record", in, got)
		}
	}
}

// StopAll stops by rank, lowest first, and reports what it stopped.
func TestStopAll(t *testing.T) {
	d := Dir{Root: t.TempDir()}
	rank := map[string]int{"ptb-orderer": 2, "ptb-peer": 1, "ptb-registry": 0, "cmi-peer": 1}
	for name := range rank {
		stopOnCleanup(t, d, name)
		if _, err := d.Start(sleeper(t, name)); err != nil {
			t.Fatal(err)
		}
	}
	stopped, err := d.StopAll(context.Background(), 10*time.Second, func(name string) int { return rank[name] })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ptb-registry", "cmi-peer", "ptb-peer", "ptb-orderer"}
	if !slices.Equal(stopped, want) {
		t.Fatalf("StopAll stopped %v, want %v", stopped, want)
	}
	if got := d.Processes(); len(got) != 0 {
		t.Fatalf("still running: %v", got)
	}
}

func TestWaitFor(t *testing.T) {
	ctx := context.Background()
	t.Run("ready", func(t *testing.T) {
		d := Dir{Root: t.TempDir()}
		calls := 0
		err := d.WaitFor(ctx, "", 10*time.Second, func(context.Context) error {
			if calls++; calls < 3 {
				return errors.New("not yet")
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Fatalf("WaitFor = %v after %d checks", err, calls)
		}
	})
	t.Run("process exits", func(t *testing.T) {
		d := Dir{Root: t.TempDir()}
		p := Process{Name: "ptb-chaincode", Bin: lookPath(t, "sh"), Args: []string{"-c", "exit 3"}}
		if _, err := d.Start(p); err != nil {
			t.Fatal(err)
		}
		err := d.WaitFor(ctx, p.Name, time.Minute, func(context.Context) error { return errors.New("no answer") })
		if err == nil || !strings.Contains(err.Error(), "ptb-chaincode exited; see "+d.LogFile(p.Name)) {
			t.Fatalf("WaitFor = %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		d := Dir{Root: t.TempDir()}
		p := sleeper(t, "ptb-registry")
		stopOnCleanup(t, d, p.Name)
		if _, err := d.Start(p); err != nil {
			t.Fatal(err)
		}
		err := d.WaitFor(ctx, p.Name, 300*time.Millisecond, func(context.Context) error { return errors.New("503") })
		if err == nil || !strings.Contains(err.Error(), "ptb-registry not ready after 300ms: 503") {
			t.Fatalf("WaitFor = %v", err)
		}
	})
}

// Only PATH, HOME, TMPDIR and LANG reach a process from the caller.
func TestBaseEnv(t *testing.T) {
	t.Setenv("CORE_PEER_ID", "stray")
	t.Setenv("LANG", "C.UTF-8")
	env := BaseEnv()
	if slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "CORE_") }) {
		t.Fatalf("BaseEnv passes on a CORE_ variable: %v", env)
	}
	if !slices.Contains(env, "LANG=C.UTF-8") {
		t.Fatalf("BaseEnv = %v, want LANG", env)
	}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains([]string{"PATH", "HOME", "TMPDIR", "LANG"}, k) {
			t.Fatalf("BaseEnv passes on %s", k)
		}
	}
}
