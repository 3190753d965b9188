//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
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
	// orderer stays frozen (SIGSTOP); lagFor how long a follower is frozen
	// before the leader is killed; cutFor how long a host is cut off.
	crashFor, stopFor, lagFor, cutFor time.Duration
	// diskFree is the room left on the registry's limited disk; fullFor
	// how long it stays full once the registry refuses writes.
	diskFree int64
	fullFor  time.Duration
	// The two loads: single deliveries and concentrator batches.
	singleMeters, singleConcurrency int
	singleRate                      float64
	batchMeters, concentrators      int
	batchSize                       int
	batchRate                       float64
}

var plans = map[string]plan{
	"short": {name: "short", warmup: 10 * time.Second, observe: 10 * time.Second,
		crashFor: 5 * time.Second, stopFor: 20 * time.Second, lagFor: 10 * time.Second, cutFor: 30 * time.Second,
		diskFree: 256 << 10, fullFor: 5 * time.Second,
		singleMeters: 16, singleConcurrency: 16, singleRate: 20,
		batchMeters: 200, concentrators: 2, batchSize: 100, batchRate: 100},
	"full": {name: "full", warmup: 30 * time.Second, observe: 30 * time.Second,
		crashFor: 15 * time.Second, stopFor: 20 * time.Second, lagFor: 20 * time.Second, cutFor: 30 * time.Second,
		diskFree: 512 << 10, fullFor: 15 * time.Second,
		singleMeters: 64, singleConcurrency: 32, singleRate: 40,
		batchMeters: 1000, concentrators: 4, batchSize: 250, batchRate: 300},
}

// loadNMI is the NMI whose registry serves the load; its peer is never a
// fault's target (its registry is).
const loadNMI = "PTB"

// TestFaultCampaign keeps a load of single deliveries and concentrator
// batches running through one registry while it injects, one after
// another, the faults a consortium meets: the BFT leader killed, a follower
// orderer frozen, a lagging orderer and then the leader killed, an
// endorsing peer killed, a peer's ledger lost, a chaincode server killed,
// the registry serving the load killed (its client retries with the same
// Idempotency-Keys), that registry's index lost, its disk full, and, when
// every NMI has a host of its own, a host cut off the network. Before each
// fault every orderer and peer holds every block: one fault at a time.
// Then it reconciles what clients were told with every peer's ledger:
// nothing acknowledged as accepted may be missing, nothing acknowledged as
// refused may be accepted, nothing may be accepted twice or both accepted
// and rejected, and every peer must hold the same chain. The BFT view
// changes are counted per fault: only a fault of the leader should cause
// one.
func TestFaultCampaign(t *testing.T) {
	ctx := context.Background()
	c := newCampaign(ctx, t)
	p := c.plan
	stopLoad := c.startLoad(ctx)

	c.phase(ctx, "warm-up", func() time.Time { return c.sleep(p.warmup) })
	c.phase(ctx, "BFT leader orderer SIGKILL, restarted", func() time.Time {
		leader := c.leader(ctx)
		c.note = leader
		c.signal(leader, consortium.NodeOrderer, syscall.SIGKILL)
		c.awaitCommit(c.current.start)
		c.sleep(p.crashFor)
		return c.restartCaughtUp(ctx, leader, consortium.NodeOrderer)
	})
	c.phase(ctx, "follower orderer SIGSTOP, SIGCONT", func() time.Time {
		follower := c.follower(ctx)
		c.note = follower
		c.signal(follower, consortium.NodeOrderer, syscall.SIGSTOP)
		c.sleep(p.stopFor)
		c.signal(follower, consortium.NodeOrderer, syscall.SIGCONT)
		healed := time.Now()
		c.caughtUp(ctx, follower+" orderer", healed)
		return healed
	})
	c.phase(ctx, "lagging orderer, then BFT leader SIGKILL", func() time.Time {
		// The case of a SmartBFT stall: a follower is behind when the leader
		// dies, and the view change needs it.
		leader, laggard := c.leader(ctx), c.follower(ctx)
		was := c.height(ctx, laggard+" orderer")
		c.signal(laggard, consortium.NodeOrderer, syscall.SIGSTOP)
		c.sleep(p.lagFor)
		ahead := c.height(ctx, leader+" orderer")
		c.signal(laggard, consortium.NodeOrderer, syscall.SIGCONT)
		c.current.faultAt = time.Now()
		c.signal(leader, consortium.NodeOrderer, syscall.SIGKILL)
		c.note = fmt.Sprintf("%s (%s %d blocks behind)", leader, laggard, ahead-was)
		c.awaitCommit(c.current.faultAt)
		c.sleep(p.crashFor)
		return c.restartCaughtUp(ctx, leader, consortium.NodeOrderer)
	})
	c.phase(ctx, "endorsing peer SIGKILL, restarted", func() time.Time {
		c.note = "INMETRO"
		c.signal("INMETRO", consortium.NodePeer, syscall.SIGKILL)
		c.sleep(p.crashFor)
		return c.restartCaughtUp(ctx, "INMETRO", consortium.NodePeer)
	})
	c.phase(ctx, "peer's ledger lost, rebuilt from the orderers", func() time.Time {
		c.note = "INMETRO"
		if err := network.RebuildPeer(ctx, "INMETRO"); err != nil {
			t.Fatal(err)
		}
		healed := time.Now()
		c.caughtUp(ctx, "INMETRO peer", c.current.start)
		return healed
	})
	c.phase(ctx, "chaincode server SIGKILL, restarted", func() time.Time {
		c.note = "NMIJ"
		c.signal("NMIJ", consortium.NodeChaincode, syscall.SIGKILL)
		c.sleep(p.crashFor)
		return c.restart(ctx, "NMIJ", consortium.NodeChaincode)
	})
	c.phase(ctx, "registry serving the load SIGKILL, restarted", func() time.Time {
		c.note = loadNMI
		c.signal(loadNMI, consortium.NodeRegistry, syscall.SIGKILL)
		c.sleep(p.crashFor)
		return c.restart(ctx, loadNMI, consortium.NodeRegistry)
	})
	c.phase(ctx, "registry's index deleted, registry restarted", func() time.Time {
		c.note = loadNMI
		probes := c.acceptedReadings(ctx, c.batch, 6)
		if err := network.RemoveRegistryIndex(loadNMI); err != nil {
			t.Fatal(err)
		}
		c.sleep(p.crashFor) // it serves on from the file it has open
		c.signal(loadNMI, consortium.NodeRegistry, syscall.SIGKILL)
		healed := c.restart(ctx, loadNMI, consortium.NodeRegistry)
		// Re-deliveries of readings accepted long ago, while the index is
		// rebuilt: each must be answered as the duplicate it is, never as
		// refused.
		var redelivered sync.WaitGroup
		redelivered.Go(func() { c.redeliver(ctx, probes) })
		c.indexCaughtUp(ctx, healed)
		redelivered.Wait()
		return healed
	})
	c.phase(ctx, "registry's disk full, then room again", func() time.Time {
		c.note = loadNMI
		if err := network.LimitRegistryDisk(ctx, loadNMI, p.diskFree); err != nil {
			t.Fatal(err)
		}
		limited := true
		defer func() {
			if limited {
				_ = network.UnlimitRegistryDisk(ctx, loadNMI)
			}
		}()
		full := c.awaitMetric(ctx, "registry_storage_full_total", 1, 2*time.Minute)
		c.t.Logf("  %s: the registry refused writes for lack of space %.0f s after its disk was limited", clock(time.Now()), time.Since(c.current.start).Seconds())
		c.sleep(p.fullFor)
		refused, err := network.RegistryMetric(ctx, loadNMI, "registry_storage_full_total")
		if err != nil {
			t.Fatal(err)
		}
		if err := network.ResizeRegistryDisk(loadNMI, 1<<30); err != nil {
			t.Fatal(err)
		}
		healed := time.Now()
		c.awaitCommit(healed)
		c.current.restored = c.firstCommitAfter(healed)
		c.t.Logf("  writes refused for lack of space: %.0f (first at %s); room again at %s, first commit %.1f s later",
			refused, clock(full), clock(healed), c.current.restored.Seconds())
		limited = false
		if err := network.UnlimitRegistryDisk(ctx, loadNMI); err != nil {
			t.Fatal(err)
		}
		return healed
	})
	if network.Namespaces {
		c.phase(ctx, "host cut off its link, reconnected", func() time.Time {
			cut := network.Topology.NMIs[len(network.Topology.NMIs)-1].Name
			c.note = cut
			if err := network.SetLink(cut, false); err != nil {
				t.Fatal(err)
			}
			c.sleep(p.cutFor)
			if err := network.SetLink(cut, true); err != nil {
				t.Fatal(err)
			}
			healed := time.Now()
			c.caughtUp(ctx, cut+" peer", healed)
			return healed
		})
	} else {
		t.Log("every NMI shares this host: the link cut needs a host per NMI (make test-multihost, make chaos)")
	}
	stopLoad()
	c.reconcile(ctx)
}

// newCampaign reads the plan (PKI_CAMPAIGN) and starts watching the load
// NMI's commits and the BFT views.
func newCampaign(ctx context.Context, t *testing.T) *campaign {
	t.Helper()
	p := plans["short"]
	if name := os.Getenv("PKI_CAMPAIGN"); name != "" {
		var ok bool
		if p, ok = plans[name]; !ok {
			t.Fatalf("PKI_CAMPAIGN=%s: no such plan (short, full)", name)
		}
	}
	c := &campaign{t: t, plan: p, acks: map[reconcile.Item][]simulator.Ack{}, peers: map[string]*session{}}
	for i := range network.Topology.NMIs {
		n := &network.Topology.NMIs[i]
		c.peers[n.Name] = connect(t, n.Name, consortium.UserAuditor)
	}
	c.watchCommits(ctx)
	c.views = watchViews(ctx, t)
	return c
}

// startLoad registers the plan's two fleets at the load NMI and starts
// delivering their readings through its registry: single deliveries and
// concentrator batches. The returned func stops the load and waits for it.
func (c *campaign) startLoad(ctx context.Context) (stop func()) {
	t, p := c.t, c.plan
	np, err := profile.NMI(loadNMI)
	if err != nil {
		t.Fatal(err)
	}
	run := uniqueID(meter.Namespace(np.MSPID) + "CHAOS")
	c.single = c.fleet(ctx, run+"-S", p.singleMeters)
	c.batch = c.fleet(ctx, run+"-B", p.batchMeters)
	slots := func(meters int, rate float64) int {
		// Enough readings for the whole campaign at the rate, and more.
		return min(loadprofile.MaxSlots, int(rate*(15*time.Minute).Seconds())/meters+2)
	}
	loadCtx, cancel := context.WithCancel(ctx)
	var loads sync.WaitGroup
	for _, l := range []struct {
		fleet      simulator.Fleet
		batch, con int
		rate       float64
	}{{c.single, 0, p.singleConcurrency, p.singleRate}, {c.batch, p.batchSize, p.concentrators, p.batchRate}} {
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
	return func() {
		cancel()
		loads.Wait()
	}
}

// campaign is one run's state.
type campaign struct {
	t    *testing.T
	plan plan
	// peers are auditor sessions of every member's peer.
	peers map[string]*session
	views *viewWatch
	// The load's meters: single deliveries and concentrator batches.
	single, batch simulator.Fleet

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

// phase is one fault: from its injection (start, or faultAt where the
// fault proper comes later) to the next fault's; the fault itself lasts
// until healed.
type phase struct {
	name, target             string
	start, faultAt           time.Time
	healed, end              time.Time
	recovered                time.Duration // first commit of a transaction proposed after faultAt
	restored                 time.Duration // from healed until the target serves in full again
	viewChanges              int
	during, after            float64 // accepted measurements per second
	acknowledged, onLedger   int
	lost, misreported, dupes []reconcile.Item
}

// phase waits until the consortium is whole (every node at the channel's
// height), runs one fault while the load goes on, then observes the load.
func (c *campaign) phase(ctx context.Context, name string, fault func() (healed time.Time)) {
	if len(c.phases) > 0 {
		c.settle(ctx)
	}
	ph := &phase{name: name, start: time.Now()}
	ph.faultAt = ph.start
	c.current, c.note = ph, ""
	c.phases = append(c.phases, ph)
	c.t.Logf("%s: %s", clock(ph.start), name)
	ph.healed = fault()
	ph.target = c.note
	if name != "warm-up" {
		c.sleep(c.plan.observe)
	}
	ph.end = time.Now()
}

func clock(t time.Time) string { return t.Format("15:04:05.000") }

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

// restartCaughtUp restarts a node and waits until it holds every block the
// others held when it came back: the target is restored then.
func (c *campaign) restartCaughtUp(ctx context.Context, nmi, node string) time.Time {
	began := time.Now()
	healed := c.restart(ctx, nmi, node)
	c.caughtUp(ctx, nmi+" "+node, began)
	return healed
}

// leader is the NMI whose orderer leads the BFT ordering service.
func (c *campaign) leader(ctx context.Context) string {
	leader, err := network.Leader(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	return leader
}

// follower is a running orderer that is not the BFT leader.
func (c *campaign) follower(ctx context.Context) string {
	leader := c.leader(ctx)
	for _, n := range network.Topology.Orderers() {
		if n.Name != leader {
			return n.Name
		}
	}
	c.t.Fatal("no follower orderer")
	return ""
}

// heights asks every orderer and every member's peer for its height,
// by "<NMI> orderer" and "<NMI> peer"; a node that does not answer is
// missing.
func (c *campaign) heights(ctx context.Context) map[string]uint64 {
	out := map[string]uint64{}
	states, _ := network.OrdererStates(ctx)
	for _, s := range states {
		out[s.Name+" "+consortium.NodeOrderer] = s.Height
	}
	for name, s := range c.peers {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		h, err := channel.Height(hctx, s.network)
		cancel()
		if err == nil {
			out[name+" "+consortium.NodePeer] = h
		}
	}
	return out
}

// height is one node's height ("<NMI> orderer", "<NMI> peer").
func (c *campaign) height(ctx context.Context, node string) uint64 {
	h, ok := c.heights(ctx)[node]
	if !ok {
		c.t.Fatalf("%s does not answer", node)
	}
	return h
}

// nodes are the names heights gives every node of the consortium.
func (c *campaign) nodes() []string {
	var out []string
	for _, n := range network.Topology.Orderers() {
		out = append(out, n.Name+" "+consortium.NodeOrderer)
	}
	for name := range c.peers {
		out = append(out, name+" "+consortium.NodePeer)
	}
	return out
}

// steady is how long every orderer must have followed the cluster by
// consensus alone (no sync) for the consortium to count as whole: an
// orderer back from a fault catches up by syncing in rounds, and until it
// stops, a leader crash needs more than one view change (its view data
// names an older decision than the new leader's). Across continents
// (links with latencies) there is no such moment under load: a round of
// syncing takes seconds there, and the consenter farthest from the leader's
// quorum keeps falling behind and catching up; that is the normal state
// there, and the check is left out.
func steady() time.Duration {
	if network.Latency != "" {
		return 0
	}
	return 3 * time.Second
}

// settle waits until every orderer and every peer answers and holds every
// block the most advanced node held when it began, and every orderer is in
// one view and has not synced for steady (or, for at most a minute more,
// keeps syncing): the previous fault is healed through, and the next meets
// a whole consortium.
func (c *campaign) settle(ctx context.Context) {
	c.t.Helper()
	began := time.Now()
	target := slices.Max(slices.Collect(maps.Values(c.heights(ctx))))
	deadline := began.Add(3 * time.Minute)
	syncs := map[string]uint64{}
	var since, whole time.Time
	for {
		hs := c.heights(ctx)
		var behind []string
		for _, n := range c.nodes() {
			if h, ok := hs[n]; !ok || h < target {
				behind = append(behind, fmt.Sprintf("%s at %d", n, h))
			}
		}
		states, err := network.OrdererStates(ctx)
		if err != nil {
			behind = append(behind, err.Error())
		}
		for _, s := range states {
			if s.View != states[0].View {
				behind = append(behind, fmt.Sprintf("orderers in views %v", states))
				break
			}
		}
		for _, s := range states {
			if n, ok := syncs[s.Name]; !ok || n != s.Syncs {
				syncs[s.Name], since = s.Syncs, time.Now()
			}
		}
		if len(behind) > 0 {
			whole = time.Time{}
		} else if whole.IsZero() {
			whole = time.Now()
		}
		if len(behind) == 0 && steady() > 0 && time.Since(since) < steady() {
			if time.Since(whole) > time.Minute {
				// An orderer that keeps catching up by syncing, a block
				// behind each time, under this load: BFT orders on without
				// it. The next fault meets it so, as it would in the field.
				c.t.Logf("  every orderer and peer holds block %d and follows one view, an orderer still syncing a minute on (%.1f s)",
					target-1, time.Since(began).Seconds())
				return
			}
			behind = append(behind, "an orderer synced in the last "+steady().String())
		}
		if len(behind) == 0 {
			c.t.Logf("  every orderer and peer holds block %d (%.1f s)", target-1, time.Since(began).Seconds())
			return
		}
		if time.Now().After(deadline) {
			c.dumpStuck(hs, target)
			c.t.Fatalf("the consortium is not whole 3 minutes after the last fault: height %d wanted, %v", target, behind)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// dumpStuck has every orderer or peer still below target print its
// goroutines into its log (SIGQUIT), for the record of why it is stuck.
func (c *campaign) dumpStuck(hs map[string]uint64, target uint64) {
	for _, n := range c.nodes() {
		if h, ok := hs[n]; ok && h < target {
			nmi, node, _ := strings.Cut(n, " ")
			if pid, err := network.Signal(nmi, node, syscall.SIGQUIT); err == nil {
				c.t.Logf("  %s stuck at height %d: its goroutines are in its log (pid %d, SIGQUIT)", n, h, pid)
			}
		}
	}
}

// dumpOrderers has every running orderer print its goroutines into its log
// (SIGQUIT): the record of a cluster that stopped ordering.
func (c *campaign) dumpOrderers() {
	for _, n := range network.Topology.Orderers() {
		if pid, err := network.Signal(n.Name, consortium.NodeOrderer, syscall.SIGQUIT); err == nil {
			c.t.Logf("  %s orderer's goroutines are in its log (pid %d, SIGQUIT)", n.Name, pid)
		}
	}
}

// caughtUp waits until node holds every block the other nodes held when
// it began, and records the time since from as the phase's restored. A
// node rebuilding a long chain under load takes minutes: it fails when the
// node has gained no block for a minute (stuck), or after 15 minutes.
func (c *campaign) caughtUp(ctx context.Context, node string, from time.Time) {
	c.t.Helper()
	var target uint64
	for n, h := range c.heights(ctx) {
		if n != node {
			target = max(target, h)
		}
	}
	began := time.Now()
	var best uint64
	progressed := began
	for {
		h, ok := c.heights(ctx)[node]
		if ok && h >= target {
			c.current.restored = time.Since(from)
			c.t.Logf("  %s holds block %d, %.1f s after %s", node, target-1, c.current.restored.Seconds(), clock(from))
			return
		}
		if ok && h > best {
			best, progressed = h, time.Now()
		}
		switch {
		case time.Since(progressed) > time.Minute:
			c.t.Fatalf("%s is stuck at height %d, %d wanted: no new block for a minute", node, best, target)
		case time.Since(began) > 15*time.Minute:
			c.t.Fatalf("%s has not reached height %d within 15 minutes (at %d)", node, target, best)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// indexCaughtUp waits until the load NMI's registry has indexed every
// block its peer held when it began, as its metrics say.
func (c *campaign) indexCaughtUp(ctx context.Context, from time.Time) {
	c.t.Helper()
	target := c.height(ctx, loadNMI+" "+consortium.NodePeer)
	c.awaitMetric(ctx, "registry_index_next_block", float64(target), 3*time.Minute)
	c.current.restored = time.Since(from)
	c.t.Logf("  %s's registry has indexed the %d blocks its peer held, %.1f s after %s", loadNMI, target, c.current.restored.Seconds(), clock(from))
}

// awaitMetric waits until a metric of the load NMI's registry reaches at
// least want, and returns when it did.
func (c *campaign) awaitMetric(ctx context.Context, name string, want float64, within time.Duration) time.Time {
	c.t.Helper()
	deadline := time.Now().Add(within)
	var last float64
	var err error
	for time.Now().Before(deadline) {
		if last, err = network.RegistryMetric(ctx, loadNMI, name); err == nil && last >= want {
			return time.Now()
		}
		time.Sleep(250 * time.Millisecond)
	}
	c.t.Fatalf("%s's registry %s is %v (%v), not %v, after %s", loadNMI, name, last, err, want, within)
	return time.Time{}
}

// acceptedReadings are the first n readings the ledger accepted of the
// fleet's first meters, with their signed bytes, as the registry lists them.
func (c *campaign) acceptedReadings(ctx context.Context, f simulator.Fleet, n int) []meter.SignedMeasurement {
	c.t.Helper()
	cl := c.client(api.RoleAuditor)
	var out []meter.SignedMeasurement
	for _, m := range f {
		list, err := cl.Measurements(ctx, m.ID, regclient.MeasurementQuery{Limit: 2})
		if err != nil {
			c.t.Fatal(err)
		}
		for _, rec := range list.Measurements {
			payload, err1 := base64.StdEncoding.DecodeString(rec.Payload)
			sig, err2 := base64.StdEncoding.DecodeString(rec.Signature)
			if err := errors.Join(err1, err2); err != nil {
				c.t.Fatal(err)
			}
			out = append(out, meter.SignedMeasurement{MeterID: rec.MeterID, Payload: payload, Signature: sig})
			if len(out) == n {
				return out
			}
		}
	}
	c.t.Fatalf("only %d readings of the fleet accepted so far", len(out))
	return nil
}

// redeliver sends readings accepted long before again, each alone, and
// checks that each is answered as a duplicate; the answers count as
// acknowledgements, reconciled with the rest.
func (c *campaign) redeliver(ctx context.Context, readings []meter.SignedMeasurement) {
	cl := c.client(api.RoleIngest)
	for _, sm := range readings {
		m, err := meter.ParseMeasurement(sm.Payload)
		if err != nil {
			c.t.Error(err)
			return
		}
		r, err := cl.SubmitMeasurement(ctx, sm)
		ack := simulator.Ack{MeterID: sm.MeterID, Seq: m.Seq, At: time.Now()}
		switch {
		case err != nil:
			ack.Outcome = simulator.OutcomeFailed
			var p *api.Problem
			if errors.As(err, &p) {
				ack.Code = p.Code
				if p.Status < 500 {
					ack.Outcome = meter.OutcomeRejected
				}
			}
			c.t.Errorf("re-delivery of %s#%d while the index is rebuilt: %v", sm.MeterID, m.Seq, err)
		case !r.Duplicate:
			ack.Outcome = meter.OutcomeAccepted
			c.t.Errorf("re-delivery of %s#%d answered as a new acceptance (tx %s)", sm.MeterID, m.Seq, r.TxID)
		default:
			ack.Outcome, ack.TxID = meter.OutcomeDuplicate, r.TxID
		}
		c.acknowledge(ack)
	}
	c.t.Logf("  %d readings accepted before the index was lost re-delivered while it was rebuilt: each answered as a duplicate", len(readings))
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
	c.dumpOrderers()
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
	sessions := c.peers
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
	changes := c.views.changes()
	for i, ph := range c.phases {
		ph.during = accepted(ph.start, ph.healed)
		ph.after = accepted(ph.healed, ph.end)
		if ph.name != "warm-up" {
			ph.recovered = c.firstCommitAfter(ph.faultAt)
		}
		// A phase's view changes: from its start to the next one's.
		until := time.Now()
		if i+1 < len(c.phases) {
			until = c.phases[i+1].start
		}
		for _, vc := range changes {
			if !vc.at.Before(ph.start) && vc.at.Before(until) {
				ph.viewChanges += vc.views
			}
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
	fmt.Fprintln(w, "fault\ttarget\trecovery (s)\trestored (s)\tview changes\tmsmt/s during\tmsmt/s after\tacknowledged\ton the ledger\tlost\tmisreported\tduplicated\t")
	type row struct {
		Fault        string  `json:"fault"`
		Target       string  `json:"target,omitempty"`
		RecoveryS    float64 `json:"recoverySeconds"`
		RestoredS    float64 `json:"restoredSeconds"`
		ViewChanges  int     `json:"viewChanges"`
		During       float64 `json:"perSecondDuring"`
		After        float64 `json:"perSecondAfter"`
		Acknowledged int     `json:"acknowledged"`
		OnLedger     int     `json:"onLedger"`
		Lost         int     `json:"lost"`
		Misreported  int     `json:"misreported"`
		Duplicated   int     `json:"duplicated"`
	}
	var rows []row
	views := 0
	for _, ph := range c.phases {
		r := row{ph.name, ph.target, ph.recovered.Seconds(), ph.restored.Seconds(), ph.viewChanges, ph.during, ph.after, ph.acknowledged, ph.onLedger,
			len(ph.lost), len(ph.misreported), len(ph.dupes)}
		rows = append(rows, r)
		views += ph.viewChanges
		fmt.Fprintf(w, "%s\t%s\t%.1f\t%.1f\t%d\t%.1f\t%.1f\t%d\t%d\t%d\t%d\t%d\t\n", r.Fault, r.Target, r.RecoveryS, r.RestoredS, r.ViewChanges,
			r.During, r.After, r.Acknowledged, r.OnLedger, r.Lost, r.Misreported, r.Duplicated)
	}
	fmt.Fprintf(w, "total\t\t\t\t%d\t\t\t%d\t%d\t%d\t%d\t%d\t\n", views, rep.Acknowledged, rep.OnLedger, len(rep.Lost), len(rep.Misreported), len(rep.Duplicated))
	w.Flush()
	c.t.Logf("fault campaign (%s plan), reconciled against every peer's ledger (%d accepted on the ledger without a verdict reaching the client):\n%s",
		c.plan.name, rep.Unacknowledged, b.String())
	if dir := os.Getenv("PKI_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err == nil {
			out, _ := json.MarshalIndent(map[string]any{"plan": c.plan.name, "rows": rows, "viewChanges": views,
				"unacknowledgedOnLedger": rep.Unacknowledged}, "", "  ")
			_ = os.WriteFile(filepath.Join(dir, "fault-campaign-"+c.plan.name+".json"), out, 0o644)
			_ = os.WriteFile(filepath.Join(dir, "fault-campaign-"+c.plan.name+".txt"), []byte(b.String()), 0o644)
		}
	}
}
