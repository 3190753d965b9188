//go:build e2e

package e2e

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/client"
)

// TestReorderedDeliveries: distinct readings of one meter raced through
// every NMI's registry at once, and a concentrator's batch in
// reverse seq order, are each accepted exactly once. Before, the replay
// guard accepted only seqs above the last accepted one, and of five racing
// readings two were refused with 409 and lost. A reading already accepted,
// or older than the guard's window, is refused with REPLAY.
func TestReorderedDeliveries(t *testing.T) {
	ctx := context.Background()
	fleet := registeredFleet(t, "PTB-ORD", 2)
	start := time.Now().Add(-time.Hour).Truncate(time.Minute)
	racer, batched := fleet[0], fleet[1]

	// Every member's registry (the members change in other tests).
	var nmis []string
	for _, n := range profile.NMIs {
		nmis = append(nmis, n.Name)
	}
	errs := make([]error, len(nmis))
	blocks := make([]uint64, len(nmis))
	var wg sync.WaitGroup
	for i, nmi := range nmis {
		c := registry(t, nmi, api.RoleIngest)
		sm := signedAt(t, racer, uint64(i+1), start.Add(time.Duration(i)*time.Minute))
		wg.Go(func() {
			r, err := c.SubmitMeasurement(ctx, sm)
			if err == nil {
				blocks[i] = r.Block
			}
			errs[i] = err
		})
	}
	wg.Wait()
	last := uint64(0)
	for i, err := range errs {
		if err != nil {
			t.Errorf("seq %d through %s: %v", i+1, nmis[i], err)
		}
		last = max(last, blocks[i])
	}

	var items []meter.SignedMeasurement
	for seq := uint64(20); seq >= 1; seq-- {
		items = append(items, signedAt(t, batched, seq, start.Add(time.Duration(seq)*time.Minute)))
	}
	receipt, err := registry(t, "CMI", api.RoleIngest).SubmitBatch(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	if receipt.Accepted != len(items) || receipt.Rejected != 0 {
		t.Fatalf("the reversed batch: %d accepted, %d refused of %d", receipt.Accepted, receipt.Rejected, len(items))
	}
	last = max(last, receipt.Block)

	// Refused: a seq accepted before (other bytes), and one older than the
	// window below the highest.
	ptb := registry(t, "PTB", api.RoleIngest)
	_, err = ptb.SubmitMeasurement(ctx, signedAt(t, racer, 3, start.Add(time.Hour)))
	wantProblem(t, err, http.StatusConflict, string(meter.CodeReplay))
	high, err := ptb.SubmitMeasurement(ctx, signedAt(t, batched, 20+wire.ReplayWindow+1, start.Add(30*time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	last = max(last, high.Block)
	_, err = ptb.SubmitMeasurement(ctx, signedAt(t, batched, 0+20, start.Add(31*time.Minute)))
	var p *api.Problem
	if !errors.As(err, &p) || p.Code != string(meter.CodeReplay) {
		t.Fatalf("seq 20, accepted before and now below the window: %v", err)
	}

	// The ledger, read through another registry: each reading once.
	auditor := registry(t, "NMIJ", api.RoleAuditor)
	for _, c := range []struct {
		id   string
		want int
	}{{racer.ID, len(nmis)}, {batched.ID, len(items) + 1}} {
		list, err := auditor.Measurements(ctx, c.id, client.MeasurementQuery{Read: client.Read{MinBlock: last}, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[uint64]int{}
		for _, m := range list.Measurements {
			seen[m.Seq]++
		}
		if len(list.Measurements) != c.want || len(seen) != c.want {
			t.Errorf("%s: %d readings, %d seqs on the ledger; want %d, each once", c.id, len(list.Measurements), len(seen), c.want)
		}
	}
}
