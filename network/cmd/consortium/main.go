// Command consortium brings the Inter-NMI Fabric network up on this machine,
// reports its health, changes its membership and takes it down.
//
//	consortium [flags] up                 start or resume the consortium
//	consortium [flags] status             every node: running, healthy
//	consortium [flags] down [-clean]      stop what was started (and wipe it)
//	consortium [flags] exec -- CMD ARGS   fresh consortium, run CMD, wipe it
//	consortium [flags] org ...            a newcomer defines itself, joins, leaves
//	consortium [flags] orderer ...        an NMI's orderer joins or leaves the consenter set
//	consortium [flags] update ...         propose, sign, review and submit a channel update
//	consortium [flags] ledger [-meters P] what every peer's ledger holds of measurements
//
// Once a run directory exists, the topology it recorded (with the members
// that joined or left since) is the network's; -topology and -port-offset
// shape a new run only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/inter-nmi/pki/network/internal/consortium"
	"github.com/inter-nmi/pki/network/pkg/topology"
)

// EnvNetwork names the run directory of the consortium a command executed by
// "consortium exec" runs against.
const EnvNetwork = "PKI_NETWORK"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "consortium:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

type options struct {
	topology, root, bin, builder, latency string
	offset                                int
	netns                                 bool
}

func run(ctx context.Context, args []string, out io.Writer) (int, error) {
	fs := flag.NewFlagSet("consortium", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.topology, "topology", "network/topology.yaml", "topology file")
	fs.StringVar(&o.root, "run", ".run", "run directory (crypto, config, ledgers, logs, PIDs)")
	fs.StringVar(&o.bin, "bin", "bin", "directory of the Fabric binaries, pki-chaincode and sampleconfig/")
	fs.StringVar(&o.builder, "builder", "network/builder", "external chaincode builder directory")
	fs.IntVar(&o.offset, "port-offset", 0, "shift every port of the topology by this much")
	fs.BoolVar(&o.netns, "netns", false, "run each NMI in a network namespace of its own, at its topology address (needs root and iproute2)")
	fs.StringVar(&o.latency, "latency", "", "with -netns: delay the links between the NMIs' hosts by the round trips of this table (network/latency.yaml; needs iptables)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: consortium [flags] up | status | down [-clean] | exec -- command [args] | org | orderer | update | ledger [-meters PREFIX]")
		fs.PrintDefaults()
		fmt.Fprintln(fs.Output(), governanceUsage)
	}
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2, errors.New("no command")
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	nw, err := o.network(out, cmd != "exec")
	if err != nil {
		return 1, err
	}
	switch cmd {
	case "org":
		return orgCommand(ctx, nw, rest, out)
	case "orderer":
		return ordererCommand(ctx, nw, rest, out)
	case "update":
		return updateCommand(ctx, nw, rest, out)
	case "ledger":
		return ledgerCommand(ctx, nw, rest, out)
	case "up":
		return 0, up(ctx, nw, out)
	case "status":
		return status(ctx, nw, out)
	case "wan":
		// The link proxies of a run with latencies, started by up as a
		// process of the run.
		return 0, nw.ServeLinks(ctx)
	case "down":
		df := flag.NewFlagSet("down", flag.ContinueOnError)
		clean := df.Bool("clean", false, "also delete the run directory: crypto material, ledgers, logs")
		if err := df.Parse(rest); err != nil {
			return 2, err
		}
		return 0, down(ctx, nw, *clean, out)
	case "exec":
		if len(rest) > 0 && rest[0] == "--" {
			rest = rest[1:]
		}
		if len(rest) == 0 {
			return 2, errors.New("exec needs a command")
		}
		return execute(ctx, nw, rest, out)
	default:
		fs.Usage()
		return 2, fmt.Errorf("unknown command %q", cmd)
	}
}

// network is the consortium the command acts on: the one recorded in the run
// directory if there is one (and recorded may be used), else a new one from
// the topology file.
func (o options) network(out io.Writer, recorded bool) (*consortium.Network, error) {
	if recorded {
		nw, err := consortium.Open(o.root)
		if err == nil {
			nw.Progress = out
			return nw, nil
		}
		if _, statErr := os.Stat(filepath.Join(o.root, "run.json")); statErr == nil {
			return nil, err
		}
	}
	t, err := topology.Load(o.topology)
	if err != nil {
		return nil, err
	}
	if o.offset != 0 {
		if t, err = t.WithPortOffset(o.offset); err != nil {
			return nil, fmt.Errorf("port offset %d: %w", o.offset, err)
		}
	}
	abs := func(p string) (string, error) { return filepath.Abs(p) }
	var l consortium.Layout
	if l.Root, err = abs(o.root); err != nil {
		return nil, err
	}
	if l.Bin, err = abs(o.bin); err != nil {
		return nil, err
	}
	if l.Builder, err = abs(o.builder); err != nil {
		return nil, err
	}
	l.Namespaces = o.netns
	if o.latency != "" {
		if l.Latency, err = abs(o.latency); err != nil {
			return nil, err
		}
	}
	return &consortium.Network{Layout: l, Topology: t, Progress: out}, nil
}

func up(ctx context.Context, nw *consortium.Network, out io.Writer) error {
	start := time.Now()
	fmt.Fprintf(out, "Bringing up the Inter-NMI consortium (%d NMIs, channel %s)\n", len(nw.Topology.NMIs), nw.Topology.Channel)
	if err := nw.Up(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nConsortium up in %.1fs.\n\n", time.Since(start).Seconds())
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NMI\tMSP\tpeer\torderer\tchaincode server\tregistry API")
	for i := range nw.Topology.NMIs {
		n := &nw.Topology.NMIs[i]
		orderer := "-"
		if n.Orderer != nil {
			orderer = n.OrdererAddress()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.MSPID, n.PeerAddress(), orderer, n.ChaincodeAddress(), consortium.RegistryURL(n))
	}
	w.Flush()
	first := &nw.Topology.NMIs[0]
	creds := nw.CredentialsDir(first)
	fmt.Fprintf(out, "\nConnection profile: %s\nLogs:               %s\nCredentials:        %s (one token per NMI and role)\n",
		nw.ProfileFile(), filepath.Dir(nw.LogFile("x")), filepath.Dir(creds))
	fmt.Fprintf(out, "Explorer:           %s (sign in with an auditor token, e.g. %s)\n",
		consortium.ExplorerURL(nw.Topology), filepath.Join(nw.SurveillanceCredentialsDir(), "auditor.token"))
	fmt.Fprintf(out, "\nTry: curl --cacert %s -H \"Authorization: Bearer $(cat %s)\" %s/api/v1/consortium\n",
		nw.TLSCACert(first), filepath.Join(creds, "auditor.token"), consortium.RegistryURL(first))
	return nil
}

func status(ctx context.Context, nw *consortium.Network, out io.Writer) (int, error) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tROLE\tADDRESS\tPID\tSTATE\tDETAIL")
	code := 0
	for _, h := range nw.Status(ctx, nw.Topology) {
		state, pid := "down", "-"
		if h.Running {
			pid = fmt.Sprint(h.PID)
			state = "unhealthy"
		}
		if h.Healthy {
			state = "healthy"
		} else {
			code = 1
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", h.Process, h.Role, h.Address, pid, state, h.Detail)
	}
	if err := w.Flush(); err != nil {
		return code, err
	}
	// An orderer that has fallen behind is healthy to every probe, and BFT
	// orders without it, until a second fault finds the quorum short.
	states, _ := nw.OrdererStates(ctx)
	if len(states) == 0 {
		return code, nil
	}
	var top uint64
	for _, s := range states {
		top = max(top, s.Height)
	}
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ORDERER\tHEIGHT\tBEHIND\tVIEW\tSYNCS")
	for _, s := range states {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\n", s.Name, s.Height, top-s.Height, s.View, s.Syncs)
	}
	return code, w.Flush()
}

func down(ctx context.Context, nw *consortium.Network, clean bool, out io.Writer) error {
	stopped, err := nw.Down(ctx, clean)
	fmt.Fprintf(out, "Stopped %d processes", len(stopped))
	if clean {
		fmt.Fprintf(out, " and removed %s", nw.Root)
	}
	fmt.Fprintln(out)
	return err
}

// execute runs a command against a fresh consortium and always takes the
// consortium down afterwards: the shape of an end-to-end test run.
func execute(ctx context.Context, nw *consortium.Network, argv []string, out io.Writer) (int, error) {
	if _, err := nw.Down(ctx, true); err != nil {
		return 1, fmt.Errorf("clear previous run: %w", err)
	}
	failed := true
	defer func() {
		if failed {
			keepLogs(nw, out)
		}
		if _, err := nw.Down(context.Background(), true); err != nil {
			fmt.Fprintln(os.Stderr, "consortium: take down:", err)
		}
	}()
	if err := up(ctx, nw, out); err != nil {
		return 1, err
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), EnvNetwork+"="+nw.Root)
	err := cmd.Run()
	failed = err != nil
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	return 0, err
}

// keepLogs saves the nodes' logs of a failed run beside the run directory,
// which is about to be wiped.
func keepLogs(nw *consortium.Network, out io.Writer) {
	src := filepath.Dir(nw.LogFile("x"))
	dst := nw.Root + "-logs"
	_ = os.RemoveAll(dst)
	if err := os.Rename(src, dst); err != nil {
		fmt.Fprintln(os.Stderr, "consortium: keep logs:", err)
		return
	}
	fmt.Fprintf(out, "The run failed; the nodes' logs are kept in %s\n", dst)
}
