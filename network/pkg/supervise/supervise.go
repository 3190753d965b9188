// Package supervise runs long-lived native processes without a supervisor
// daemon: the consortium's peers, orderers, chaincode servers, registries
// and explorer are started by one short command and stopped by another, so
// what a later command needs to know about them lives in files.
//
// A Dir keeps, for every process it started, a log file (logs/NAME.log,
// appended to across restarts) and a PID file (pids/NAME.pid). The PID file
// records the PID, the binary and the start time of the process, so a
// running check or a stop never mistakes a recycled PID for the process it
// started. Processes run in a session of their own and so outlive the
// command that started them.
//
// It exists apart from package consortium so that the process handling can
// be tested, and reused, without a Fabric network.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/inter-nmi/pki/network/pkg/netns"
)

// Process is one long-running program to start.
type Process struct {
	// Name names its PID and log files, e.g. "ptb-peer".
	Name string
	// Bin is the absolute path of the executable.
	Bin  string
	Args []string
	// Env is added to BaseEnv.
	Env []string
	// Dir is the working directory.
	Dir string
	// Netns is the network namespace to run in, if any (see package netns).
	Netns string
}

// Dir is a directory of supervised processes: their PID files in pids/ and
// their logs in logs/.
type Dir struct{ Root string }

// PIDFile is where the record of the named process is kept.
func (d Dir) PIDFile(name string) string { return filepath.Join(d.Root, "pids", name+".pid") }

// LogFile is where the named process writes its output.
func (d Dir) LogFile(name string) string { return filepath.Join(d.Root, "logs", name+".log") }

// Start launches p unless a process of its name is already running. It
// reports whether it started a new process.
func (d Dir) Start(p Process) (bool, error) {
	if r, ok := d.Record(p.Name); ok {
		if r.Alive() {
			return false, nil
		}
		r.awaitGone(10 * time.Second)
	}
	if err := os.MkdirAll(filepath.Dir(d.PIDFile(p.Name)), 0o755); err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(d.LogFile(p.Name)), 0o755); err != nil {
		return false, err
	}
	logf, err := os.OpenFile(d.LogFile(p.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return false, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "\n==== %s starting %s %s\n", time.Now().Format(time.RFC3339), p.Bin, strings.Join(p.Args, " "))
	cmd := exec.Command(p.Bin, p.Args...)
	if p.Netns != "" {
		cmd = netns.Command(p.Netns, p.Bin, p.Args...)
	}
	cmd.Env = append(BaseEnv(), p.Env...)
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("start %s: %w", p.Name, err)
	}
	// The start time is read now, while the process certainly exists (if
	// it died already, its zombie waits for cmd.Wait below).
	_, started, _ := procStat(cmd.Process.Pid)
	record := Record{PID: cmd.Process.Pid, Bin: p.Bin, Start: started}
	if err := os.WriteFile(d.PIDFile(p.Name), record.Marshal(), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return false, err
	}
	// The process belongs to its own session from now on; reap it if it dies
	// while this command still runs, so it never lingers as a zombie.
	go func() { _ = cmd.Wait() }()
	return true, nil
}

// Running reports the PID of the named process, if it is still the process
// Start started.
func (d Dir) Running(name string) (int, bool) {
	r, ok := d.Record(name)
	return r.PID, ok && r.Alive()
}

// Record is what a PID file remembers of a process: its PID, the binary it
// was started as, and its start time (in clock ticks after boot, field 22
// of /proc/PID/stat). On disk it is three lines, in that order; a record
// of two lines (no start time) is matched by its binary alone.
type Record struct {
	PID   int
	Bin   string
	Start string
}

// Marshal is the record as a PID file holds it.
func (r Record) Marshal() []byte {
	return fmt.Appendf(nil, "%d\n%s\n%s\n", r.PID, r.Bin, r.Start)
}

// ParseRecord reads a PID file's content; it reports false for anything
// that is not a record of a positive PID and a binary.
func ParseRecord(b []byte) (Record, bool) {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return Record{}, false
	}
	pid, err := strconv.Atoi(lines[0])
	if err != nil || pid <= 0 {
		return Record{}, false
	}
	r := Record{PID: pid, Bin: lines[1]}
	if len(lines) > 2 {
		r.Start = lines[2]
	}
	return r, true
}

// Record reads the named process's PID file.
func (d Dir) Record(name string) (Record, bool) {
	b, err := os.ReadFile(d.PIDFile(name))
	if err != nil {
		return Record{}, false
	}
	return ParseRecord(b)
}

// Alive checks that the recorded process still runs (not a zombie) and is
// the one recorded, never a recycled PID: its start time, which the kernel
// keeps across exec (a node in a namespace starts as "ip netns exec" and
// becomes its binary), is the recorded one. A record without a start time
// is matched by the binary the process runs (/proc/PID/exe).
func (r Record) Alive() bool {
	state, start, err := procStat(r.PID)
	if err != nil || state == 'Z' {
		return false
	}
	if r.Start != "" {
		return start == r.Start
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", r.PID))
	return err == nil && strings.TrimSuffix(exe, " (deleted)") == r.Bin
}

// awaitGone waits, at most within, until the recorded process has no
// thread left that is still exiting. A killed process's main thread shows
// as a zombie while its other threads are still exiting, and until the
// last is gone it keeps its files and the locks on them (a peer's ledger
// lock, a registry's database): a process started on the same files then
// fails.
func (r Record) awaitGone(within time.Duration) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if _, start, err := procStat(r.PID); err != nil || (r.Start != "" && start != r.Start) || !exiting(r.PID) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exiting tells a process with a thread that has not exited yet.
func exiting(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if state, _, err := procStat(tid); err == nil && state != 'Z' && state != 'X' {
			return true
		}
	}
	return false
}

// procStat reads a process's state and its start time (clock ticks after
// boot) from /proc/PID/stat: fields 3 and 22, counted after the command name
// in parentheses, which may itself hold spaces.
func procStat(pid int) (state byte, start string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, "", fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return 0, "", fmt.Errorf("/proc/%d/stat: %d fields after the command name", pid, len(fields))
	}
	return fields[0][0], fields[19], nil
}

// Stop ends the named process: SIGTERM, then SIGKILL if it has not exited
// within grace. Its PID file is removed in any case. It reports whether the
// process was running.
func (d Dir) Stop(ctx context.Context, name string, grace time.Duration) (bool, error) {
	r, ok := d.Record(name)
	defer os.Remove(d.PIDFile(name))
	if !ok || !r.Alive() {
		return false, nil
	}
	pid := r.PID
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return false, fmt.Errorf("stop %s (pid %d): %w", name, pid, err)
	}
	deadline := time.Now().Add(grace)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for r.Alive() {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(grace)
		}
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-tick.C:
		}
	}
	r.awaitGone(10 * time.Second)
	return true, nil
}

// StopAll stops every process with a PID file, in passes by rank (lowest
// first; in name order within a rank), each as Stop does. It goes on past
// a failure and returns the names of the processes that were running, and
// every failure joined.
func (d Dir) StopAll(ctx context.Context, grace time.Duration, rank func(name string) int) ([]string, error) {
	names := d.Names()
	ranks := map[int]bool{}
	for _, name := range names {
		ranks[rank(name)] = true
	}
	var stopped []string
	var errs []error
	for _, pass := range slices.Sorted(maps.Keys(ranks)) {
		for _, name := range names {
			if rank(name) != pass {
				continue
			}
			ok, err := d.Stop(ctx, name, grace)
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				stopped = append(stopped, name)
			}
		}
	}
	return stopped, errors.Join(errs...)
}

// Names lists the processes with a PID file, in name order.
func (d Dir) Names() []string {
	entries, _ := os.ReadDir(filepath.Join(d.Root, "pids"))
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".pid"); ok {
			names = append(names, n)
		}
	}
	return names
}

// Processes are the PIDs of the processes with a PID file that still run,
// by name.
func (d Dir) Processes() map[string]int {
	out := map[string]int{}
	for _, name := range d.Names() {
		if pid, ok := d.Running(name); ok {
			out[name] = pid
		}
	}
	return out
}

// WaitFor polls check until it succeeds, the named process dies (if name is
// not empty) or timeout passes. A readiness check polled this way is the
// signal that a process is up; there are no fixed sleeps.
func (d Dir) WaitFor(ctx context.Context, name string, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		if name != "" {
			if _, alive := d.Running(name); !alive {
				return fmt.Errorf("%s exited; see %s", name, d.LogFile(name))
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s not ready after %s: %w (log: %s)", name, timeout, last, d.LogFile(name))
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// BaseEnv passes on only what a process needs from the caller's
// environment (PATH, HOME, TMPDIR, LANG), so no stray variable (a Fabric
// node's CORE_ or ORDERER_ ones) changes its configuration.
func BaseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
