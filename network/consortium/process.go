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
	// The start time is read now, while the process certainly exists (if
	// it died already, its zombie waits for cmd.Wait below).
	_, started, _ := procStat(cmd.Process.Pid)
	record := fmt.Sprintf("%d\n%s\n%s\n", cmd.Process.Pid, p.bin, started)
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
	r, ok := l.record(name)
	return r.pid, ok && r.alive()
}

// pidRecord is what a PID file remembers of a process: its PID, the binary
// it was started as, and its start time.
type pidRecord struct {
	pid   int
	bin   string
	start string
}

// record reads a PID file.
func (l Layout) record(name string) (pidRecord, bool) {
	b, err := os.ReadFile(l.pidFile(name))
	if err != nil {
		return pidRecord{}, false
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return pidRecord{}, false
	}
	pid, err := strconv.Atoi(lines[0])
	if err != nil || pid <= 0 {
		return pidRecord{}, false
	}
	r := pidRecord{pid: pid, bin: lines[1]}
	if len(lines) > 2 {
		r.start = lines[2]
	}
	return r, true
}

// alive checks that the recorded process still runs (not a zombie) and is
// the one recorded, never a recycled PID: its start time, which the kernel
// keeps across exec (a node in a namespace starts as "ip netns exec" and
// becomes its binary), is the recorded one. A record without a start time
// is matched by the binary the process runs.
func (r pidRecord) alive() bool {
	state, start, err := procStat(r.pid)
	if err != nil || state == 'Z' {
		return false
	}
	if r.start != "" {
		return start == r.start
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", r.pid))
	return err == nil && strings.TrimSuffix(exe, " (deleted)") == r.bin
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

// stop ends a process: SIGTERM, then SIGKILL if it has not exited within grace.
func (l Layout) stop(ctx context.Context, name string, grace time.Duration) (bool, error) {
	r, ok := l.record(name)
	defer os.Remove(l.pidFile(name))
	if !ok || !r.alive() {
		return false, nil
	}
	pid := r.pid
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return false, fmt.Errorf("stop %s (pid %d): %w", name, pid, err)
	}
	deadline := time.Now().Add(grace)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for r.alive() {
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

// The nodes an NMI runs, as Signal names them.
const (
	NodePeer      = "peer"
	NodeOrderer   = "orderer"
	NodeChaincode = "chaincode"
	NodeRegistry  = "registry"
)

// Signal sends sig to one of an NMI's running nodes, as a crash (SIGKILL)
// or a stalled machine (SIGSTOP, SIGCONT) would, and returns its PID.
func (nw *Network) Signal(nmi, node string, sig syscall.Signal) (int, error) {
	n, err := nw.Topology.NMI(nmi)
	if err != nil {
		return 0, err
	}
	name := strings.ToLower(n.Name) + "-" + node
	pid, ok := nw.running(name)
	if !ok {
		return 0, fmt.Errorf("%s is not running", name)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return pid, fmt.Errorf("signal %s (pid %d): %w", name, pid, err)
	}
	return pid, nil
}

// Start starts one of an NMI's nodes if it is not running (after a crash,
// say) and waits until it is healthy; the registry restarts on its data.
func (nw *Network) Start(ctx context.Context, nmi, node string) error {
	n, err := nw.Topology.NMI(nmi)
	if err != nil {
		return err
	}
	switch node {
	case NodePeer:
		return nw.startPeer(ctx, n)
	case NodeOrderer:
		return nw.StartOrderer(ctx, n.Name)
	case NodeChaincode:
		return nw.StartChaincode(ctx, n.Name)
	case NodeRegistry:
		return nw.startRegistry(ctx, n)
	}
	return fmt.Errorf("no node %q: peer, orderer, chaincode or registry", node)
}

// SetLink takes an NMI's host off the network (up false) or back on, in a
// run where each NMI has a host of its own (Namespaces).
func (nw *Network) SetLink(nmi string, up bool) error {
	if !nw.Namespaces {
		return errors.New("only an NMI on a host of its own (a namespace run) can be cut off")
	}
	n, err := nw.Topology.NMI(nmi)
	if err != nil {
		return err
	}
	return netns.SetLink(nw.namespace(n), up)
}

// Processes are the PIDs of the nodes the consortium started that still
// run, by process name (ptb-peer, cmi-orderer, explorer, ...).
func (l Layout) Processes() map[string]int {
	out := map[string]int{}
	for _, name := range l.processNames() {
		if pid, ok := l.running(name); ok {
			out[name] = pid
		}
	}
	return out
}
