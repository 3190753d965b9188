// Command benchledger measures the ledger path of verified measurements on a
// running consortium: it drives the meter simulator through an NMI's
// registry in the scenarios of the performance target, and for each prints
// the measurements per second, request latency, block bytes per accepted
// measurement and CPU-seconds per 1,000 accepted measurements of every kind
// of process (from /proc), as a table and as JSON.
//
//	consortium -run .run-bench -port-offset 20000 exec -- bin/benchledger -json bench.json
//
// (make bench-ledger). The consortium is found through PKI_NETWORK, as the
// end-to-end tests find theirs.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"

	"github.com/inter-nmi/pki/network/internal/consortium"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	regclient "github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/loadprofile"
	"github.com/inter-nmi/pki/registry-api/simulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchledger:", err)
		os.Exit(1)
	}
}

// scenario is one load of the performance target.
type scenario struct {
	Name        string  `json:"name"`
	Meters      int     `json:"meters"`
	Slots       int     `json:"slots"`
	Batch       int     `json:"batch"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate,omitempty"`
	// halfOf runs at half the measured rate of that scenario.
	halfOf string
}

var scenarios = []scenario{
	{Name: "batches", Meters: 500, Slots: 48, Batch: 1000, Concurrency: 4},
	{Name: "singles", Meters: 64, Slots: 24, Concurrency: 64},
	{Name: "singles at half rate", Meters: 64, Slots: 24, Concurrency: 64, halfOf: "singles"},
}

// Result is one scenario's figures.
type Result struct {
	scenario
	Accepted   int     `json:"accepted"`
	Rejected   int     `json:"rejected"`
	Failed     int     `json:"failed"`
	PerSecond  float64 `json:"measurementsPerSecond"`
	P50ms      float64 `json:"p50ms"`
	P95ms      float64 `json:"p95ms"`
	Blocks     uint64  `json:"blocks"`
	BlockBytes float64 `json:"blockBytesPerMeasurement"`
	// CPU is CPU-seconds per 1,000 accepted measurements, by kind of process.
	CPU map[string]float64 `json:"cpuSecondsPer1000"`
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("benchledger", flag.ContinueOnError)
	via := fs.String("via", "PTB", "the NMI whose registry serves the load")
	jsonOut := fs.String("json", "", "also write the results as JSON to this file")
	only := fs.String("scenarios", "", "comma-separated scenario names (default all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root := os.Getenv("PKI_NETWORK")
	if root == "" {
		return errors.New("PKI_NETWORK is not set: run under `consortium exec` (make bench-ledger)")
	}
	nw, err := consortium.Open(root)
	if err != nil {
		return err
	}
	profile, err := consortium.LoadProfile(nw.ProfileFile())
	if err != nil {
		return err
	}
	np, err := profile.NMI(*via)
	if err != nil {
		return err
	}
	conn, err := np.Dial(consortium.UserAuditor)
	if err != nil {
		return err
	}
	defer conn.Close()
	ledger := conn.GetNetwork(profile.Channel)
	clientFor := func(role api.Role) (*regclient.Client, error) {
		token, err := os.ReadFile(np.Tokens[string(role)])
		if err != nil {
			return nil, err
		}
		return regclient.New(regclient.Options{BaseURL: np.Registry, Token: strings.TrimSpace(string(token)),
			CACert: np.TLSRootCert, MaxConns: 128, Timeout: 5 * time.Minute})
	}
	operator, err := clientFor(api.RoleOperator)
	if err != nil {
		return err
	}
	ingest, err := clientFor(api.RoleIngest)
	if err != nil {
		return err
	}
	var results []Result
	byName := map[string]Result{}
	for i, sc := range scenarios {
		if *only != "" && !slices.Contains(strings.Split(*only, ","), sc.Name) {
			continue
		}
		if sc.halfOf != "" {
			base, ok := byName[sc.halfOf]
			if !ok {
				continue
			}
			sc.Rate = base.PerSecond / 2
		}
		fleet, err := simulator.Generate(simulator.MeterIDs(fmt.Sprintf("%sBENCH-%d-%d", meter.Namespace(np.MSPID), time.Now().Unix(), i), 1, sc.Meters), meter.P256)
		if err != nil {
			return err
		}
		if _, err := simulator.Register(ctx, operator, np.MSPID, fleet, 0, nil); err != nil {
			return fmt.Errorf("register the fleet of %s: %w", sc.Name, err)
		}
		fmt.Fprintf(os.Stderr, "benchledger: %s: %d meters × %d readings...\n", sc.Name, sc.Meters, sc.Slots)
		r, err := measure(ctx, nw, ledger, ingest, sc, fleet)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.Name, err)
		}
		results = append(results, r)
		byName[sc.Name] = r
	}
	writeTable(out, results)
	if *jsonOut != "" {
		b, err := json.MarshalIndent(results, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*jsonOut, b, 0o644)
	}
	return nil
}

func measure(ctx context.Context, nw *consortium.Network, ledger *client.Network, ingest *regclient.Client, sc scenario, fleet simulator.Fleet) (Result, error) {
	from, err := channel.Height(ctx, ledger)
	if err != nil {
		return Result{}, err
	}
	cpuBefore := cpuByKind(nw)
	sum, err := simulator.Run(ctx, simulator.Options{
		Submitter: ingest, Fleet: fleet, Seed: 11,
		Schedule: loadprofile.LastSlots(time.Now(), 15*time.Minute, sc.Slots),
		Batch:    sc.Batch, Concurrency: sc.Concurrency, Rate: sc.Rate,
	})
	if err != nil {
		return Result{}, err
	}
	cpuAfter := cpuByKind(nw)
	to, err := channel.Height(ctx, ledger)
	if err != nil {
		return Result{}, err
	}
	r := Result{scenario: sc, Accepted: sum.Accepted, Rejected: sum.Rejected, Failed: sum.Failed,
		PerSecond: sum.PerSecond, P50ms: sum.Latency.P50, P95ms: sum.Latency.P95, Blocks: to - from, CPU: map[string]float64{}}
	bytes, err := blockBytes(ctx, ledger, from, to)
	if err != nil {
		return Result{}, err
	}
	if sum.Accepted > 0 {
		r.BlockBytes = float64(bytes) / float64(sum.Accepted)
		for kind, after := range cpuAfter {
			r.CPU[kind] = (after - cpuBefore[kind]) / float64(sum.Accepted) * 1000
		}
	}
	return r, nil
}

// blockBytes sums the encoded size of blocks [from, to).
func blockBytes(ctx context.Context, ledger *client.Network, from, to uint64) (int, error) {
	if to <= from {
		return 0, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	blocks, err := ledger.BlockEvents(ctx, client.WithStartBlock(from))
	if err != nil {
		return 0, err
	}
	total := 0
	for raw := range blocks {
		b, err := chain.Parse(raw)
		if err != nil {
			return 0, err
		}
		total += b.Size
		if b.Number+1 >= to {
			return total, nil
		}
	}
	return 0, fmt.Errorf("the block stream ended before block %d", to)
}

// cpuByKind sums user and system CPU-seconds of the consortium's processes
// by kind (peer, orderer, chaincode, registry, explorer).
func cpuByKind(nw *consortium.Network) map[string]float64 {
	out := map[string]float64{}
	for name, pid := range nw.Processes() {
		kind := name[strings.LastIndexByte(name, '-')+1:]
		out[kind] += cpuSeconds(pid)
	}
	return out
}

// cpuSeconds reads utime+stime of a process (fields 14 and 15 of
// /proc/PID/stat, counted after the command name), in seconds.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / clockTicks
}

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

func writeTable(out io.Writer, results []Result) {
	kinds := map[string]bool{}
	for _, r := range results {
		for k := range r.CPU {
			kinds[k] = true
		}
	}
	order := slices.Sorted(maps.Keys(kinds))
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(w, "scenario\taccepted\tmsmt/s\tp50 ms\tp95 ms\tblocks\tblock B/msmt\tCPU s/1000 total")
	for _, k := range order {
		fmt.Fprintf(w, "\t%s", k)
	}
	fmt.Fprintln(w, "\t")
	for _, r := range results {
		total := 0.0
		for _, v := range r.CPU {
			total += v
		}
		name := r.Name
		if r.Batch > 0 {
			name += fmt.Sprintf(" (%d×%d)", r.Concurrency, r.Batch)
		}
		if r.Rate > 0 {
			name += fmt.Sprintf(" at %.0f/s", r.Rate)
		}
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%.0f\t%.0f\t%d\t%.0f\t%.3f", name, r.Accepted, r.PerSecond, r.P50ms, r.P95ms, r.Blocks, r.BlockBytes, total)
		for _, k := range order {
			fmt.Fprintf(w, "\t%.3f", r.CPU[k])
		}
		fmt.Fprintln(w, "\t")
	}
	w.Flush()
}
