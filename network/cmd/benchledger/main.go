// Command benchledger measures the ledger path of verified measurements on a
// running consortium: it drives the meter simulator through an NMI's
// registry in the scenarios of the performance target, and for each prints
// the measurements per second, request latency, block bytes per accepted
// measurement, CPU-seconds per 1,000 accepted measurements of every kind
// of process (from /proc), the bytes on disk each store gained per accepted
// measurement, and the resident memory of every kind of process at its end,
// as tables and as JSON.
//
//	consortium -run .run-bench -port-offset 20000 exec -- bin/benchledger -json bench.json
//
// (make bench-ledger). With -long it delivers batches until that many
// measurements are accepted, with the same figures at each checkpoint
// counted from its start; with -rebuild it then times the rebuild of the
// serving registry's index and the explorer's from block 0
// (make bench-ledger-long). The consortium is found through PKI_NETWORK,
// as the end-to-end tests find theirs.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"

	"github.com/inter-nmi/pki/network/internal/consortium"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	regclient "github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/simulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "benchledger:", err)
		os.Exit(1)
	}
}

// Report is everything a run measured: its JSON form is the -json file.
type Report struct {
	Via       string    `json:"via"`
	Scenarios []Result  `json:"scenarios"`
	Long      *Long     `json:"long,omitempty"`
	Rebuilds  []Rebuild `json:"rebuilds,omitempty"`
}

// options are the command's flags.
type options struct {
	via         string
	json        string
	scenarios   []string
	long        int
	checkpoints []int
	rebuild     bool
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("benchledger", flag.ContinueOnError)
	fs.StringVar(&o.via, "via", "PTB", "the NMI whose registry serves the load")
	fs.StringVar(&o.json, "json", "", "also write the results as JSON to this file (rewritten at each checkpoint of a long run)")
	only := fs.String("scenarios", "", "comma-separated scenario names (default all, none with -long)")
	fs.IntVar(&o.long, "long", 0, "deliver batches until this many measurements are accepted (a long run)")
	checkpoints := fs.String("checkpoints", "", "comma-separated numbers of accepted measurements at which a long run prints its figures (default: a tenth of -long, and -long)")
	fs.BoolVar(&o.rebuild, "rebuild", false, "at the end, time the rebuild from block 0 of the serving registry's readings index and of the explorer's index")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case *only != "":
		for _, name := range strings.Split(*only, ",") {
			name = strings.TrimSpace(name)
			if _, ok := scenarioNamed(name); !ok {
				return o, fmt.Errorf("no scenario %q", name)
			}
			o.scenarios = append(o.scenarios, name)
		}
	case o.long == 0:
		for _, sc := range scenarios {
			o.scenarios = append(o.scenarios, sc.Name)
		}
	}
	if o.long < 0 {
		return o, fmt.Errorf("-long %d: a number of measurements", o.long)
	}
	if *checkpoints != "" && o.long == 0 {
		return o, errors.New("-checkpoints needs -long")
	}
	for _, c := range strings.Split(*checkpoints, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		n, err := strconv.Atoi(c)
		if err != nil || n <= 0 || n > o.long {
			return o, fmt.Errorf("checkpoint %q: a number of measurements from 1 to -long (%d)", c, o.long)
		}
		o.checkpoints = append(o.checkpoints, n)
	}
	if o.long > 0 {
		if *checkpoints == "" && o.long >= 10 {
			o.checkpoints = append(o.checkpoints, o.long/10)
		}
		o.checkpoints = append(o.checkpoints, o.long)
	}
	slices.Sort(o.checkpoints)
	o.checkpoints = slices.Compact(o.checkpoints)
	return o, nil
}

// bench is a connection to the running consortium, through one NMI.
type bench struct {
	nw               *consortium.Network
	via, mspID       string
	ledger           *client.Network
	operator, ingest *regclient.Client
	explorer         *explorerClient
	trees            []tree
	// progress receives what the run is doing (stderr).
	progress io.Writer
}

// How long the indexes may take to read a stretch of load's blocks before
// a figure is read anyway, and how long a rebuilt index may read no new
// block before the rebuild counts as failed.
const (
	settleStall  = 2 * time.Minute
	rebuildStall = 5 * time.Minute
	indexPoll    = 200 * time.Millisecond
)

// settle waits until the index of every registry running and the
// explorer's have read height blocks. An index that does not get there is
// reported, and the figures are read without it.
func (b *bench) settle(ctx context.Context, height uint64) {
	running := b.nw.Processes()
	for i := range b.nw.Topology.NMIs {
		n := b.nw.Topology.NMIs[i].Name
		if _, ok := running[consortium.ProcessName(n, consortium.NodeRegistry)]; !ok {
			continue
		}
		if err := awaitRegistryIndex(ctx, b.nw, n, height, indexPoll, settleStall); err != nil {
			fmt.Fprintf(b.progress, "benchledger: %s's registry index: %v; measuring without it\n", n, err)
		}
	}
	if _, ok := running[consortium.ExplorerProcess]; !ok {
		return
	}
	if _, err := b.explorer.await(ctx, height, settleStall); err != nil {
		fmt.Fprintf(b.progress, "benchledger: the explorer's index: %v; measuring without it\n", err)
	}
}

// fleet makes and registers n meters named after tag, of the type typeID
// if it is not empty.
func (b *bench) fleet(ctx context.Context, tag string, n int, typeID string) (simulator.Fleet, error) {
	ids := simulator.MeterIDs(fmt.Sprintf("%sBENCH-%d-%s", meter.Namespace(b.mspID), time.Now().Unix(), tag), 1, n)
	fleet, err := simulator.Generate(ids, meter.P256)
	if err != nil {
		return nil, err
	}
	for _, m := range fleet {
		m.TypeID = typeID
	}
	if _, err := simulator.Register(ctx, b.operator, b.mspID, fleet, 0, nil); err != nil {
		return nil, fmt.Errorf("register the fleet %s: %w", tag, err)
	}
	return fleet, nil
}

// meterType records, once per run, a meter type of the NMI with the
// simulated meters' software approved, and returns its ID.
func (b *bench) meterType(ctx context.Context) (string, error) {
	id := fmt.Sprintf("%sBENCH-TYPE-%d", meter.Namespace(b.mspID), time.Now().Unix())
	_, err := b.operator.RecordMeterType(ctx, api.TypeRecordRequest{TypeID: id, Manufacturer: "Inter-NMI simulator",
		Model: "metersim", Certificate: "BENCH-" + id, Versions: []meter.VersionApproval{{Software: simulator.DefaultSoftware(),
			ApprovedFrom: time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339)}}})
	if err != nil {
		return "", fmt.Errorf("record the meter type %s: %w", id, err)
	}
	return id, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	b, closeConn, err := connect(o.via)
	if err != nil {
		return err
	}
	defer closeConn()
	report := &Report{Via: b.via}
	save := func() error {
		if o.json == "" {
			return nil
		}
		j, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(o.json, j, 0o644)
	}

	byName := map[string]Result{}
	for i, sc := range scenarios {
		if !slices.Contains(o.scenarios, sc.Name) {
			continue
		}
		if sc.halfOf != "" {
			base, ok := byName[sc.halfOf]
			if !ok {
				fmt.Fprintf(b.progress, "benchledger: %s skipped: it runs at half the rate of %s, which did not run\n", sc.Name, sc.halfOf)
				continue
			}
			sc.Rate = base.PerSecond / 2
		}
		typeID := ""
		if sc.Software {
			if typeID, err = b.meterType(ctx); err != nil {
				return fmt.Errorf("%s: %w", sc.Name, err)
			}
		}
		fleet, err := b.fleet(ctx, strconv.Itoa(i), sc.Meters, typeID)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.Name, err)
		}
		fmt.Fprintf(b.progress, "benchledger: %s: %d meters × %d readings...\n", sc.Name, sc.Meters, sc.Slots)
		r, err := b.measure(ctx, sc, fleet)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.Name, err)
		}
		report.Scenarios = append(report.Scenarios, r)
		byName[sc.Name] = r
	}
	if len(report.Scenarios) > 0 {
		writeScenarios(out, report.Scenarios)
		if err := save(); err != nil {
			return err
		}
	}

	if o.long > 0 {
		report.Long = &Long{}
		err := b.long(ctx, o.long, o.checkpoints, report.Long, func() error {
			writeLong(out, report.Long)
			return save()
		})
		if err != nil {
			return fmt.Errorf("long run: %w", err)
		}
	}

	if o.rebuild {
		for _, rebuild := range []func(context.Context) (Rebuild, error){b.rebuildRegistryIndex, b.rebuildExplorerIndex} {
			r, err := rebuild(ctx)
			if err != nil {
				return err
			}
			report.Rebuilds = append(report.Rebuilds, r)
		}
		writeRebuilds(out, report.Rebuilds)
	}
	return save()
}

// connect opens the consortium of PKI_NETWORK and its NMI via: a gateway to
// its peer as its auditor, and its registry as operator and ingest.
func connect(via string) (*bench, func(), error) {
	root := os.Getenv("PKI_NETWORK")
	if root == "" {
		return nil, nil, errors.New("PKI_NETWORK is not set: run under `consortium exec` (make bench-ledger)")
	}
	nw, err := consortium.Open(root)
	if err != nil {
		return nil, nil, err
	}
	n, err := nw.Topology.NMI(via)
	if err != nil {
		return nil, nil, err
	}
	profile, err := consortium.LoadProfile(nw.ProfileFile())
	if err != nil {
		return nil, nil, err
	}
	np, err := profile.NMI(n.Name)
	if err != nil {
		return nil, nil, err
	}
	explorer, err := newExplorerClient(nw)
	if err != nil {
		return nil, nil, err
	}
	b := &bench{nw: nw, via: n.Name, mspID: n.MSPID, explorer: explorer, trees: trees(nw), progress: os.Stderr}
	clientFor := func(role api.Role) (*regclient.Client, error) {
		token, err := os.ReadFile(np.Tokens[string(role)])
		if err != nil {
			return nil, err
		}
		conns := 0
		for _, sc := range scenarios {
			conns = max(conns, sc.Concurrency) // a connection for every request in flight
		}
		return regclient.New(regclient.Options{BaseURL: np.Registry, Token: strings.TrimSpace(string(token)),
			CACert: np.TLSRootCert, MaxConns: conns, Timeout: 5 * time.Minute})
	}
	if b.operator, err = clientFor(api.RoleOperator); err != nil {
		return nil, nil, err
	}
	if b.ingest, err = clientFor(api.RoleIngest); err != nil {
		return nil, nil, err
	}
	conn, err := np.Dial(consortium.UserAuditor)
	if err != nil {
		return nil, nil, err
	}
	b.ledger = conn.GetNetwork(profile.Channel)
	return b, func() { conn.Close() }, nil
}
