//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"

	"github.com/inter-nmi/pki/network/internal/consortium"
	"github.com/inter-nmi/pki/network/internal/reconcile"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	regclient "github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/loadprofile"
	"github.com/inter-nmi/pki/registry-api/simulator"
)

// plan sizes a fault campaign. PKI_CAMPAIGN=full (make chaos) runs the
// long one; make test runs the short one.
type plan struct {
	name string
	// warmup is the load before the first fault; observe, the load watched
	// after each fault is healed.
	warmup, observe time.Duration
	// crashFor is how long a killed node stays down; stopFor how long an
	// orderer stays frozen (SIGSTOP); cutFor how long a host is cut off.
	crashFor, stopFor, cutFor time.Duration
	// The two loads: single deliveries and concentrator batches.
	singleMeters, singleConcurrency int
	singleRate                      float64
	batchMeters, concentrators      int
	batchSize                       int
	batchRate                       float64
}

var plans = map[string]plan{
	"short": {name: "short", warmup: 10 * time.Second, observe: 10 * time.Second,
		crashFor: 5 * time.Second, stopFor: 20 * time.Second, cutFor: 30 * time.Second,
		singleMeters: 16, singleConcurrency: 16, singleRate: 20,
		batchMeters: 200, concentrators: 2, batchSize: 100, batchRate: 100},
	"full": {name: "full", warmup: 30 * time.Second, observe: 30 * time.Second,
		crashFor: 15 * time.Second, stopFor: 20 * time.Second, cutFor: 30 * time.Second,
		singleMeters: 64, singleConcurrency: 32, singleRate: 40,
		batchMeters: 1000, concentrators: 4, batchSize: 250, batchRate: 300},
}

// loadNMI is the NMI whose registry serves the load; its peer is never a
// fault's target (its registry is).
const loadNMI = "PTB"

// TestFaultCampaign keeps a load of single deliveries and concentrator
// batches running through one registry while it injects, one after
// another, the faults a consortium meets: the BFT leader killed, a follower
// orderer frozen, an endorsing peer killed, a chaincode server killed, the
// registry serving the load killed (its client retries with the same
// Idempotency-Keys), and, when every NMI has a host of its own, a host cut
// off the network. Then it reconciles what clients were told with every
// peer's ledger: nothing acknowledged as accepted may be missing, nothing
// acknowledged as refused may be accepted, nothing may be accepted twice or
// both accepted and rejected, and every peer must hold the same chain.
func TestFaultCampaign(t *testing.T) {
	p := plans["short"]
	if name := os.Getenv("PKI_CAMPAIGN"); name != "" {
		var ok bool
		if p, ok = plans[name]; !ok {
			t.Fatalf("PKI_CAMPAIGN=%s: no such plan (short, full)", name)
		}
	}
	ctx := context.Background()
	c := &campaign{t: t, plan: p, acks: map[reconcile.Item][]simulator.Ack{}}
	c.watchCommits(ctx)

	np, err := profile.NMI(loadNMI)
	if err != nil {
		t.Fatal(err)
	}
	run := uniqueID(meter.Namespace(np.MSPID) + "CHAOS")
	single := c.fleet(ctx, run+"-S", p.singleMeters)
	batch := c.fleet(ctx, run+"-B", p.batchMeters)
	slots := func(meters int, rate float64) int {
		// Enough readings for the whole campaign at the rate, and more.
		return min(loadprofile.MaxSlots, int(rate*(10*time.Minute).Seconds())/meters+2)
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var loads sync.WaitGroup
	for _, l := range []struct {
		fleet      simulator.Fleet
		batch, con int
		rate       float64
	}{{single, 0, p.singleConcurrency, p.singleRate}, {batch, p.batchSize, p.concentrators, p.batchRate}} {
		loads.Go(func() {
			sum, err := simulator.Run(loadCtx, simulator.Options{
				Submitter: c.client(api.RoleIngest), Fleet: l.fleet, Seed: 7,
				Schedule: loadprofile.LastSlots(time.Now(), 5*time.Minute, slots(len(l.fleet), l.rate)),
				Batch:    l.batch, Concurrency: l.con, Rate: l.rate, Acknowledged: c.acknowledge,
			})
			if sum != nil {
				t.Logf("load (batch %d): sent %d, accepted %d (%d duplicates), rejected %d %v, failed %d %v",
					l.batch, sum.Sent, sum.Accepted, sum.Duplicates, sum.Rejected, sum.RejectedByCode, sum.Failed, sum.Errors)
			}
			if err != nil && loadCtx.Err() == nil {
				t.Errorf("load (batch %d) stopped: %v", l.batch, err)
			}
		})
	}

	c.phase("warm-up", func() time.Time { return c.sleep(p.warmup) })
	c.phase("BFT leader orderer SIGKILL, restarted", func() time.Time {
		leader, err := network.Leader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.note = leader
		c.signal(leader, consortium.NodeOrderer, syscall.SIGKILL)
		c.awaitCommit(c.current.start)
		c.sleep(p.crashFor)
		return c.restart(ctx, leader, consortium.NodeOrderer)
	})
	c.phase("follower orderer SIGSTOP, SIGCONT", func() time.Time {
		follower := c.follower(ctx)
		c.note = follower
		c.signal(follower, consortium.NodeOrderer, syscall.SIGSTOP)
		c.sleep(p.stopFor)
		c.signal(follower, consortium.NodeOrderer, syscall.SIGCONT)
		return time.Now()
	})
	c.phase("endorsing peer SIGKILL, restarted", func() time.Time {
		c.note = "INMETRO"
		c.signal("INMETRO", consortium.NodePeer, syscall.SIGKILL)
		c.sleep(p.crashFor)
		return c.restart(ctx, "INMETRO", consortium.NodePeer)
	})
	c.phase("chaincode server SIGKILL, restarted", func() time.Time {
		c.note = "NMIJ"
		c.signal("NMIJ", consortium.NodeChaincode, syscall.SIGKILL)
		c.sleep(p.crashFor)
		return c.restart(ctx, "NMIJ", consortium.NodeChaincode)
	})
	c.phase("registry serving the load SIGKILL, restarted", func() time.Time {
		c.note = loadNMI
		c.signal(loadNMI, consortium.NodeRegistry, syscall.SIGKILL)
		c.sleep(p.crashFor)
		return c.restart(ctx, loadNMI, consortium.NodeRegistry)
	})
	if network.Namespaces {
		c.phase("host cut off its link, reconnected", func() time.Time {
			cut := network.Topology.NMIs[len(network.Topology.NMIs)-1].Name
			c.note = cut
			if err := network.SetLink(cut, false); err != nil {
				t.Fatal(err)
			}
			c.sleep(p.cutFor)
			if err := network.SetLink(cut, true); err != nil {
				t.Fatal(err)
			}
			return time.Now()
		})
	} else {
		t.Log("every NMI shares this host: the link cut needs a host per NMI (make test-multihost, make chaos)")
	}
	stopLoad()
	loads.Wait()
	c.reconcile(ctx)
}

// campaign is one run's state.
type campaign struct {
	t    *testing.T
	plan plan

	mu   sync.Mutex
	acks map[reconcile.Item][]simulator.Ack
	// commits are the valid transactions the load NMI's peer committed:
	// when they were proposed and when the block arrived.
	commits []commit

	phases  []*phase
	current *phase
	note    string
}

type commit struct{ proposed, arrived time.Time }

// phase is one fault: from its injection (start) to the next fault's; the
// fault itself lasts until healed.
type phase struct {
	name, target             string
	start, healed, end       time.Time
	recovered                time.Duration // first commit of a transaction proposed after start
	during, after            float64       // accepted measurements per second
	acknowledged, onLedger   int
	lost, misreported, dupes []reconcile.Item
}

// phase runs one fault while the load goes on, then observes the load.
func (c *campaign) phase(name string, fault func() (healed time.Time)) {
	ph := &phase{name: name, start: time.Now()}
	c.current, c.note = ph, ""
	c.phases = append(c.phases, ph)
	c.t.Logf("%s: %s", ph.start.Format("15:04:05.000"), name)
	ph.healed = fault()
	ph.target = c.note
	if name != "warm-up" {
		c.sleep(c.plan.observe)
	}
	ph.end = time.Now()
}

// sleep lets the load run for d: a fault's intended duration, not a wait
// for something to happen.
func (c *campaign) sleep(d time.Duration) time.Time {
	time.Sleep(d)
	return time.Now()
}

func (c *campaign) signal(nmi, node string, sig syscall.Signal) {
	c.t.Helper()
	pid, err := network.Signal(nmi, node, sig)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("  %s %s (pid %d): %s", nmi, node, pid, sig)
}

func (c *campaign) restart(ctx context.Context, nmi, node string) time.Time {
	c.t.Helper()
	began := time.Now()
	if err := network.Start(ctx, nmi, node); err != nil {
		c.t.Fatalf("restart %s %s: %v", nmi, node, err)
	}
	c.t.Logf("  %s %s restarted and healthy in %s", nmi, node, time.Since(began).Round(time.Millisecond))
	return time.Now()
}

// follower is a running orderer that is not the BFT leader.
func (c *campaign) follower(ctx context.Context) string {
	leader, err := network.Leader(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, n := range network.Topology.Orderers() {
		if n.Name != leader {
			return n.Name
		}
	}
	c.t.Fatal("no follower orderer")
	return ""
}

// awaitCommit waits until a transaction proposed after since commits at
// the load NMI's peer: the consortium has recovered.
func (c *campaign) awaitCommit(since time.Time) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if c.firstCommitAfter(since) > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("nothing proposed since %s committed within 2 minutes", since.Format("15:04:05"))
}

func (c *campaign) firstCommitAfter(t time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cm := range c.commits {
		if cm.proposed.After(t) {
			return cm.arrived.Sub(t)
		}
	}
	return 0
}

// watchCommits follows the load NMI's peer's blocks for the whole run.
func (c *campaign) watchCommits(ctx context.Context) {
	conn := connect(c.t, loadNMI, consortium.UserAuditor)
	nw := conn.network
	height, err := channel.Height(ctx, nw)
	if err != nil {
		c.t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	c.t.Cleanup(cancel)
	blocks, err := nw.BlockEvents(wctx, client.WithStartBlock(height))
	if err != nil {
		c.t.Fatal(err)
	}
	go func() {
		for raw := range blocks {
			arrived := time.Now()
			b, err := chain.Parse(raw)
			if err != nil {
				continue
			}
			c.mu.Lock()
			for _, tx := range b.Txs {
				if tx.Valid() && tx.Chaincode == profile.Chaincode {
					c.commits = append(c.commits, commit{proposed: tx.Time, arrived: arrived})
				}
			}
			c.mu.Unlock()
		}
	}()
}

func (c *campaign) acknowledge(a simulator.Ack) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it := reconcile.Item{MeterID: a.MeterID, Seq: a.Seq}
	c.acks[it] = append(c.acks[it], a)
}

// client is a registry client of the load NMI that keeps retrying a write
// (with its Idempotency-Key) through a registry restart.
func (c *campaign) client(role api.Role) *regclient.Client {
	np, err := profile.NMI(loadNMI)
	if err != nil {
		c.t.Fatal(err)
	}
	token, err := os.ReadFile(np.Tokens[string(role)])
	if err != nil {
		c.t.Fatal(err)
	}
	cl, err := regclient.New(regclient.Options{BaseURL: np.Registry, Token: strings.TrimSpace(string(token)),
		CACert: np.TLSRootCert, Retries: 40, Timeout: time.Minute, MaxConns: 64})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// fleet makes n meters named prefix-0001... and registers them at the load
// NMI, each with its proof of possession for that NMI.
func (c *campaign) fleet(ctx context.Context, prefix string, n int) simulator.Fleet {
	f, err := simulator.Generate(simulator.MeterIDs(prefix, 1, n), meter.P256)
	if err != nil {
		c.t.Fatal(err)
	}
	np, err := profile.NMI(loadNMI)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := simulator.Register(ctx, c.client(api.RoleOperator), np.MSPID, f, 0, nil); err != nil {
		c.t.Fatal(err)
	}
	return f
}

// reconcile waits until every member's peer has the same height, reads
// each one's ledger, and checks what clients were told against it.
func (c *campaign) reconcile(ctx context.Context) {
	t := c.t
	sessions := map[string]*session{}
	for i := range network.Topology.NMIs {
		n := &network.Topology.NMIs[i]
		sessions[n.Name] = connect(t, n.Name, consortium.UserAuditor)
	}
	var height uint64
	deadline := time.Now().Add(2 * time.Minute)
	for {
		heights := map[string]uint64{}
		for name, s := range sessions {
			h, err := channel.Height(ctx, s.network)
			if err != nil {
				t.Fatalf("%s's height: %v", name, err)
			}
			heights[name] = h
		}
		hs := slices.Collect(maps.Values(heights))
		if slices.Min(hs) == slices.Max(hs) {
			height = hs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the peers did not reach one height within 2 minutes: %v", heights)
		}
		time.Sleep(500 * time.Millisecond)
	}
	var ledgers []*reconcile.Ledger
	for i := range network.Topology.NMIs {
		n := &network.Topology.NMIs[i]
		l, err := reconcile.Read(ctx, sessions[n.Name].network, profile.Chaincode, height)
		if err != nil {
			t.Fatalf("read %s's ledger: %v", n.Name, err)
		}
		if len(ledgers) > 0 {
			if b, diverge := reconcile.Diverging(ledgers[0], l); diverge {
				t.Errorf("%s's chain differs from %s's at block %d", n.Name, network.Topology.NMIs[0].Name, b)
			}
			if len(l.Accepted) != len(ledgers[0].Accepted) {
				t.Errorf("%s's ledger accepted %d measurements, %s's %d", n.Name, len(l.Accepted), network.Topology.NMIs[0].Name, len(ledgers[0].Accepted))
			}
		}
		ledgers = append(ledgers, l)
	}
	t.Logf("every member's peer at height %d with identical block hashes", height)

	// The last verdict on an item is the one its client kept.
	verdicts := map[reconcile.Item]reconcile.Verdict{}
	when := map[reconcile.Item]time.Time{}
	for it, as := range c.acks {
		a := as[len(as)-1]
		v := reconcile.Verdict{Accepted: a.Outcome == meter.OutcomeAccepted || a.Outcome == meter.OutcomeDuplicate,
			Rejected: a.Outcome == meter.OutcomeRejected, Code: a.Code}
		verdicts[it], when[it] = v, a.At
	}
	rep := reconcile.Compare(verdicts, ledgers[0])
	inPhase := func(at time.Time) *phase {
		for i := len(c.phases) - 1; i >= 0; i-- {
			if !at.Before(c.phases[i].start) {
				return c.phases[i]
			}
		}
		return c.phases[0]
	}
	for it, v := range verdicts {
		ph := inPhase(when[it])
		if v.Accepted || v.Rejected {
			ph.acknowledged++
		}
		if v.Accepted && ledgers[0].Accepted[it] > 0 {
			ph.onLedger++
		}
	}
	for _, it := range rep.Lost {
		ph := inPhase(when[it])
		ph.lost = append(ph.lost, it)
	}
	for _, it := range rep.Misreported {
		ph := inPhase(when[it])
		ph.misreported = append(ph.misreported, it)
	}
	for _, it := range rep.Duplicated {
		ph := inPhase(when[it])
		ph.dupes = append(ph.dupes, it)
	}
	accepted := func(from, to time.Time) float64 {
		n := 0
		for it, v := range verdicts {
			if v.Accepted && !when[it].Before(from) && when[it].Before(to) {
				n++
			}
		}
		return float64(n) / to.Sub(from).Seconds()
	}
	for _, ph := range c.phases {
		ph.during = accepted(ph.start, ph.healed)
		ph.after = accepted(ph.healed, ph.end)
		if ph.name != "warm-up" {
			ph.recovered = c.firstCommitAfter(ph.start)
		}
	}
	c.report(rep)
	if !rep.OK() {
		t.Errorf("lost %d %v, misreported %d %v, duplicated %d %v", len(rep.Lost), first(rep.Lost), len(rep.Misreported),
			first(rep.Misreported), len(rep.Duplicated), first(rep.Duplicated))
	}
	if rep.Acknowledged == 0 {
		t.Error("no measurement was acknowledged: the load never ran")
	}
}

func first(items []reconcile.Item) []reconcile.Item { return items[:min(len(items), 20)] }

// report prints the table and writes it as JSON beside the test's other
// artifacts.
func (c *campaign) report(rep *reconcile.Report) {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "fault\ttarget\trecovery (s)\tmsmt/s during\tmsmt/s after\tacknowledged\ton the ledger\tlost\tmisreported\tduplicated\t")
	type row struct {
		Fault        string  `json:"fault"`
		Target       string  `json:"target,omitempty"`
		RecoveryS    float64 `json:"recoverySeconds"`
		During       float64 `json:"perSecondDuring"`
		After        float64 `json:"perSecondAfter"`
		Acknowledged int     `json:"acknowledged"`
		OnLedger     int     `json:"onLedger"`
		Lost         int     `json:"lost"`
		Misreported  int     `json:"misreported"`
		Duplicated   int     `json:"duplicated"`
	}
	var rows []row
	for _, ph := range c.phases {
		r := row{ph.name, ph.target, ph.recovered.Seconds(), ph.during, ph.after, ph.acknowledged, ph.onLedger,
			len(ph.lost), len(ph.misreported), len(ph.dupes)}
		rows = append(rows, r)
		fmt.Fprintf(w, "%s\t%s\t%.1f\t%.1f\t%.1f\t%d\t%d\t%d\t%d\t%d\t\n", r.Fault, r.Target, r.RecoveryS, r.During, r.After,
			r.Acknowledged, r.OnLedger, r.Lost, r.Misreported, r.Duplicated)
	}
	fmt.Fprintf(w, "total\t\t\t\t\t%d\t%d\t%d\t%d\t%d\t\n", rep.Acknowledged, rep.OnLedger, len(rep.Lost), len(rep.Misreported), len(rep.Duplicated))
	w.Flush()
	c.t.Logf("fault campaign (%s plan), reconciled against every peer's ledger (%d accepted on the ledger without a verdict reaching the client):\n%s",
		c.plan.name, rep.Unacknowledged, b.String())
	if dir := os.Getenv("PKI_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err == nil {
			out, _ := json.MarshalIndent(map[string]any{"plan": c.plan.name, "rows": rows,
				"unacknowledgedOnLedger": rep.Unacknowledged}, "", "  ")
			_ = os.WriteFile(filepath.Join(dir, "fault-campaign-"+c.plan.name+".json"), out, 0o644)
			_ = os.WriteFile(filepath.Join(dir, "fault-campaign-"+c.plan.name+".txt"), []byte(b.String()), 0o644)
		}
	}
}
