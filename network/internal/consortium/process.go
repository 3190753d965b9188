package consortium

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/inter-nmi/pki/network/pkg/netns"
	"github.com/inter-nmi/pki/network/pkg/supervise"
)

// procs is the run's supervised processes: pids/ and logs/ of the run
// directory.
func (l Layout) procs() supervise.Dir { return supervise.Dir{Root: l.Root} }

// stopGrace is how long a node has to exit after SIGTERM before it is killed.
const stopGrace = 10 * time.Second

// LogFile is where a process writes its output.
func (l Layout) LogFile(name string) string { return l.procs().LogFile(name) }

// The nodes an NMI runs, as Signal names them.
const (
	NodePeer      = "peer"
	NodeOrderer   = "orderer"
	NodeChaincode = "chaincode"
	NodeRegistry  = "registry"
)

// nodeProc is the process name of one of an NMI's nodes.
func (nw *Network) nodeProc(nmi, node string) (string, error) {
	n, err := nw.Topology.NMI(nmi)
	if err != nil {
		return "", err
	}
	switch node {
	case NodePeer, NodeOrderer, NodeChaincode, NodeRegistry:
		return ProcessName(n.Name, node), nil
	}
	return "", fmt.Errorf("no node %q: peer, orderer, chaincode or registry", node)
}

// Signal sends sig to one of an NMI's running nodes, as a crash (SIGKILL)
// or a stalled machine (SIGSTOP, SIGCONT) would, and returns its PID.
// After SIGKILL it returns once the process has died: a kill is delivered
// asynchronously, and a Start in that window would find the node still
// running, start nothing, and then watch the old process exit.
func (nw *Network) Signal(nmi, node string, sig syscall.Signal) (int, error) {
	name, err := nw.nodeProc(nmi, node)
	if err != nil {
		return 0, err
	}
	pid, ok := nw.procs().Running(name)
	if !ok {
		return 0, fmt.Errorf("%s is not running", name)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return pid, fmt.Errorf("signal %s (pid %d): %w", name, pid, err)
	}
	if sig == syscall.SIGKILL {
		deadline := time.Now().Add(killGrace)
		for {
			r, ok := nw.procs().Record(name)
			if !ok || r.PID != pid || !r.Alive() {
				break
			}
			if time.Now().After(deadline) {
				return pid, fmt.Errorf("%s (pid %d) still runs %s after SIGKILL", name, pid, killGrace)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return pid, nil
}

// killGrace bounds how long a SIGKILLed node may take to die (its
// threads unwinding on a loaded machine).
const killGrace = 10 * time.Second

// Stop stops one of an NMI's nodes as an operator would: SIGTERM, then
// SIGKILL if it has not exited within the grace every node has. Stopping a
// node that is not running is no error.
func (nw *Network) Stop(ctx context.Context, nmi, node string) error {
	name, err := nw.nodeProc(nmi, node)
	if err != nil {
		return err
	}
	_, err = nw.procs().Stop(ctx, name, stopGrace)
	return err
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
func (l Layout) Processes() map[string]int { return l.procs().Processes() }
