//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/simulator"
)

// signedAt is a reading of m with seq, taken at t.
func signedAt(t *testing.T, m *simulator.Meter, seq uint64, at time.Time) meter.SignedMeasurement {
	t.Helper()
	sm, err := meter.Sign(m.Key, meter.Measurement{MeterID: m.ID, Seq: seq, Time: at.UTC().Format(time.RFC3339), Value: fmt.Sprintf("%d.5", seq), Unit: "kWh"})
	if err != nil {
		t.Fatal(err)
	}
	return sm
}

// registeredFleet registers n new meters at PTB and waits until every
// NMI's registry has read them.
func registeredFleet(t *testing.T, prefix string, n int) simulator.Fleet {
	t.Helper()
	ctx := context.Background()
	fleet, err := simulator.Generate(simulator.MeterIDs(uniqueID(prefix), 1, n), meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	regs, err := fleet.Registrations("PTBMSP")
	if err != nil {
		t.Fatal(err)
	}
	enrolled, err := registry(t, "PTB", api.RoleOperator).RegisterMeters(ctx, regs)
	if err != nil {
		t.Fatal(err)
	}
	last := enrolled.Transactions[len(enrolled.Transactions)-1].Block
	for _, n := range profile.NMIs {
		if _, err := registry(t, n.Name, api.RoleAuditor).GetMeter(ctx, fleet[len(fleet)-1].ID, client.Read{MinBlock: last}); err != nil {
			t.Fatal(err)
		}
	}
	return fleet
}

// TestAttackMalformedDeliveriesAmongHonestOnes is the review's high
// finding, tried as a new user would through the REST API: eight meters
// deliver single readings through PTB's registry while one client with a
// valid ingest token sends deliveries with 1,100-byte signatures, and junk
// signatures naming the busy meters. Before, 10 of 21 honest deliveries
// were refused MALFORMED (grouped with the oversized ones). Now every
// honest delivery is accepted, once; the attacker's are refused alone.
func TestAttackMalformedDeliveriesAmongHonestOnes(t *testing.T) {
	ctx := context.Background()
	fleet := registeredFleet(t, "PTB-GRP", 8)
	honest := registry(t, "PTB", api.RoleIngest)
	attacker := registry(t, "PTB", api.RoleIngest)
	start := time.Now().Add(-time.Hour).Truncate(time.Minute)
	const rounds = 4
	var wg sync.WaitGroup
	var mu sync.Mutex
	var last uint64
	errs := make(chan error, 8*rounds)
	for _, m := range fleet {
		wg.Go(func() {
			// Each meter delivers in order, one reading after the other.
			for seq := uint64(1); seq <= rounds; seq++ {
				r, err := honest.SubmitMeasurement(ctx, signedAt(t, m, seq, start.Add(time.Duration(seq)*time.Minute)))
				if err != nil {
					errs <- fmt.Errorf("%s seq %d: %w", m.ID, seq, err)
					continue
				}
				mu.Lock()
				last = max(last, r.Block)
				mu.Unlock()
			}
		})
	}
	refused := make(chan error, 8*rounds*2)
	for i := range 8 * rounds {
		wg.Go(func() {
			m := fleet[i%len(fleet)]
			oversized := signedAt(t, m, uint64(100+i), start)
			oversized.Signature = bytes.Repeat([]byte{0x30}, 1100)
			_, err := attacker.SubmitMeasurement(ctx, oversized)
			refused <- err
			junk := signedAt(t, m, uint64(200+i), start)
			junk.Signature = signedAt(t, fleet[(i+1)%len(fleet)], uint64(200+i), start).Signature
			_, err = attacker.SubmitMeasurement(ctx, junk)
			refused <- err
		})
	}
	wg.Wait()
	close(errs)
	close(refused)
	for err := range errs {
		t.Errorf("an honest delivery failed: %v", err)
	}
	codes := map[string]int{}
	for err := range refused {
		var p *api.Problem
		if !errors.As(err, &p) || p.Status != http.StatusUnprocessableEntity {
			t.Errorf("an attacker's delivery: %v, want 422", err)
			continue
		}
		codes[p.Code]++
	}
	if codes[string(meter.CodeBadSignature)] != 2*8*rounds {
		t.Errorf("the attacker's deliveries were answered %v, want every one BAD_SIGNATURE", codes)
	}
	// The ledger itself: every honest reading is there, once.
	for _, m := range fleet {
		list, err := registry(t, "CMI", api.RoleAuditor).Measurements(ctx, m.ID, client.MeasurementQuery{Read: client.Read{MinBlock: last}, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Measurements) != rounds {
			t.Errorf("%s: %d readings on the ledger, want %d", m.ID, len(list.Measurements), rounds)
		}
	}
}
