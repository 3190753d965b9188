//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"

	"github.com/inter-nmi/pki/network/internal/consortium"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// leaderRun is one crash of the BFT leader.
type leaderRun struct {
	Mode   string `json:"mode"`
	Run    int    `json:"run"`
	Leader string `json:"leader"`
	// ViewChangeS is from the kill until an orderer reported a new view
	// (sampled every viewPoll); 0 if none was seen before the commit.
	ViewChangeS float64 `json:"viewChangeSeconds"`
	// RecoveryS is from the kill until a reading submitted at the kill
	// was committed.
	RecoveryS float64 `json:"recoverySeconds"`
	// Views is how many views the cluster moved on.
	Views int `json:"views"`
}

// TestLeaderCrashRecovery kills the BFT leader's orderer again and again,
// first with the consortium idle, then under the campaign's load, and
// measures each time how long a reading submitted at the moment of the
// kill takes to commit: the followers must notice the leader is gone
// (its heartbeats stop; the reading waits in their pools), agree on a new
// view and order the reading. Before each kill every node holds every
// block; after it the old leader is restarted. PKI_LEADER_RUNS sets the
// runs per mode (default 1; make chaos runs 10). The figures are reported
// (and written to test-artifacts/leader-crash-<plan>.json), not asserted.
func TestLeaderCrashRecovery(t *testing.T) {
	runs := 1
	if v := os.Getenv("PKI_LEADER_RUNS"); v != "" {
		var err error
		if runs, err = strconv.Atoi(v); err != nil || runs < 1 {
			t.Fatalf("PKI_LEADER_RUNS=%q: want a positive number", v)
		}
	}
	ctx := context.Background()
	c := newCampaign(ctx, t)
	np, err := profile.NMI(loadNMI)
	if err != nil {
		t.Fatal(err)
	}
	probe := registeredFleet(t, meter.Namespace(np.MSPID)+"PROBE", 1)[0]
	s := connect(t, loadNMI, consortium.UserIngest)
	var seq uint64
	var out []leaderRun
	for _, mode := range []string{"idle", "loaded"} {
		stop := func() {}
		if mode == "loaded" {
			stop = c.startLoad(ctx)
			time.Sleep(c.plan.observe) // the load's own pace before the first kill
		}
		for i := 1; i <= runs; i++ {
			c.settle(ctx)
			leader := c.leader(ctx)
			before := c.views.view()
			seq++
			packed, err := wire.Pack([]meter.SignedMeasurement{signedAt(t, probe, seq, time.Now())})
			if err != nil {
				t.Fatal(err)
			}
			killed := time.Now()
			if _, err := network.Signal(leader, consortium.NodeOrderer, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if err := s.submitPatiently(wire.TxSubmitPacked, string(packed)); err != nil {
				c.dumpOrderers()
				t.Fatalf("%s run %d: the reading submitted at the kill of %s's orderer: %v", mode, i, leader, err)
			}
			committed := time.Now()
			c.views.catchUp()
			r := leaderRun{Mode: mode, Run: i, Leader: leader, RecoveryS: committed.Sub(killed).Seconds(), Views: int(c.views.view() - before)}
			for _, vc := range c.views.changes() {
				if vc.at.After(killed) {
					r.ViewChangeS = vc.at.Sub(killed).Seconds()
					break
				}
			}
			out = append(out, r)
			t.Logf("%s run %d: %s's orderer killed; new view after %.1f s, the reading committed after %.1f s (%d views on)",
				mode, i, leader, r.ViewChangeS, r.RecoveryS, r.Views)
			if err := network.Start(ctx, leader, consortium.NodeOrderer); err != nil {
				t.Fatalf("restart %s's orderer: %v", leader, err)
			}
		}
		stop()
	}
	reportLeaderRuns(t, c.plan.name, out)
}

// submitPatiently endorses a transaction once and hands it to the ordering
// service as the registry does (session.hand), and it must commit valid.
func (s *session) submitPatiently(fn string, args ...string) error {
	proposal, err := s.contract.NewProposal(fn, client.WithArguments(args...))
	if err != nil {
		return err
	}
	tx, err := proposal.Endorse()
	if err != nil {
		return err
	}
	status, err := s.hand(tx)
	if err != nil {
		return err
	}
	if !status.Successful {
		return fmt.Errorf("transaction %s committed as invalid: %s", status.TransactionID, status.Code)
	}
	return nil
}

// reportLeaderRuns prints every run and the distribution per mode.
func reportLeaderRuns(t *testing.T, plan string, runs []leaderRun) {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "mode\truns\tmin (s)\tmedian (s)\t90th pct (s)\tmax (s)\t<= 5 s\tviews per crash\t")
	for _, mode := range []string{"idle", "loaded"} {
		var rs, views []float64
		for _, r := range runs {
			if r.Mode == mode {
				rs = append(rs, r.RecoveryS)
				views = append(views, float64(r.Views))
			}
		}
		if len(rs) == 0 {
			continue
		}
		slices.Sort(rs)
		within := 0
		for _, r := range rs {
			if r <= 5 {
				within++
			}
		}
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%d of %d\t%.1f\t\n", mode, len(rs), rs[0], quantile(rs, 0.5), quantile(rs, 0.9),
			rs[len(rs)-1], within, len(rs), mean(views))
	}
	w.Flush()
	var all []string
	for _, r := range runs {
		all = append(all, fmt.Sprintf("%s %.1f", r.Mode, r.RecoveryS))
	}
	t.Logf("BFT leader crashes (%s plan): from the kill to the commit of a reading submitted then\n%s\nevery run: %s",
		plan, b.String(), strings.Join(all, ", "))
	if dir := os.Getenv("PKI_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err == nil {
			out, _ := json.MarshalIndent(map[string]any{"plan": plan, "runs": runs}, "", "  ")
			_ = os.WriteFile(filepath.Join(dir, "leader-crash-"+plan+".json"), out, 0o644)
		}
	}
}

// quantile is the q-quantile of sorted values, nearest rank.
func quantile(sorted []float64, q float64) float64 {
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func mean(v []float64) float64 {
	var sum float64
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}
