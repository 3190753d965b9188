package consortium

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/inter-nmi/pki/network/netns"
)

// process is one long-running node the consortium starts: it runs in its own
// session (so it outlives the command that started it), logs to its own file
// and is remembered by a PID file that also names its binary, so a stop never
// signals a recycled PID.
type process struct {
	name string // e.g. "ptb-peer"
	bin  string // absolute path of the executable
	args []string
	env  []string
	dir  string // working directory
	// netns is the network namespace to run in, if any.
	netns string
}

func (l Layout) pidFile(name string) string { return filepath.Join(l.Root, "pids", name+".pid") }

// LogFile is where a process writes its output.
func (l Layout) LogFile(name string) string { return filepath.Join(l.Root, "logs", name+".log") }

// start launches p unless it is already running. It reports whether it
// started a new process.
func (l Layout) start(p process) (bool, error) {
	if _, ok := l.running(p.name); ok {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(l.pidFile(p.name)), 0o755); err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(l.LogFile(p.name)), 0o755); err != nil {
		return false, err
	}
	logf, err := os.OpenFile(l.LogFile(p.name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return false, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "\n==== %s starting %s %s\n", time.Now().Format(time.RFC3339), p.bin, strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	if p.netns != "" {
		cmd = netns.Command(p.netns, p.bin, p.args...)
	}
	cmd.Env = append(baseEnv(), p.env...)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("start %s: %w", p.name, err)
	}
	record := fmt.Sprintf("%d\n%s\n", cmd.Process.Pid, p.bin)
	if err := os.WriteFile(l.pidFile(p.name), []byte(record), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return false, err
	}
	// The process belongs to its own session from now on; reap it if it dies
	// while this command still runs, so it never lingers as a zombie.
	go func() { _ = cmd.Wait() }()
	return true, nil
}

// running reports the PID of a process the consortium started, if it is
// still that same process.
func (l Layout) running(name string) (int, bool) {
	pid, bin, ok := l.record(name)
	return pid, ok && isProcess(pid, bin)
}

// record reads a PID file: the PID and the binary it was started as.
func (l Layout) record(name string) (int, string, bool) {
	b, err := os.ReadFile(l.pidFile(name))
	if err != nil {
		return 0, "", false
	}
	lines := strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)
	if len(lines) != 2 {
		return 0, "", false
	}
	pid, err := strconv.Atoi(lines[0])
	if err != nil || pid <= 0 {
		return 0, "", false
	}
	return pid, lines[1], true
}

// isProcess checks that pid is alive and runs bin (not a zombie, not a
// recycled PID of another program).
func isProcess(pid int, bin string) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	if exe != bin && !enteringNamespace(pid, exe, bin) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Field 3 is the state; after the parenthesised command name.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// enteringNamespace recognises the instant after a start in a namespace,
// when "ip netns exec" has not yet replaced itself by the binary.
func enteringNamespace(pid int, exe, bin string) bool {
	if filepath.Base(exe) != "ip" {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(cmdline), bin)
}

// stop ends a process: SIGTERM, then SIGKILL if it has not exited within grace.
func (l Layout) stop(ctx context.Context, name string, grace time.Duration) (bool, error) {
	pid, bin, ok := l.record(name)
	defer os.Remove(l.pidFile(name))
	if !ok || !isProcess(pid, bin) {
		return false, nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return false, fmt.Errorf("stop %s (pid %d): %w", name, pid, err)
	}
	deadline := time.Now().Add(grace)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for isProcess(pid, bin) {
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
	return true, nil
}

// processNames lists the processes with a PID file, in a stable order.
func (l Layout) processNames() []string {
	entries, _ := os.ReadDir(filepath.Join(l.Root, "pids"))
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".pid"); ok {
			names = append(names, n)
		}
	}
	return names
}

// baseEnv passes on only what the nodes need from the caller's environment,
// so no stray CORE_ or ORDERER_ variable changes a node's configuration.
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
