package main

import (
	"context"
	"fmt"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/registry-api/loadprofile"
	"github.com/inter-nmi/pki/registry-api/simulator"
)

// scenario is one load of the performance target.
type scenario struct {
	Name        string  `json:"name"`
	Meters      int     `json:"meters"`
	Slots       int     `json:"slots"`
	Batch       int     `json:"batch"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate,omitempty"`
	// Software: the meters are of a recorded type and every reading
	// names the software it was made with, which the ledger checks.
	Software bool `json:"software,omitempty"`
	// halfOf runs at half the measured rate of that scenario.
	halfOf string
}

var scenarios = []scenario{
	{Name: "batches", Meters: 500, Slots: 48, Batch: 1000, Concurrency: 4},
	// The same batches from meters of a type, naming their software.
	{Name: "batches software", Meters: 500, Slots: 48, Batch: 1000, Concurrency: 4, Software: true},
	{Name: "singles", Meters: 64, Slots: 24, Concurrency: 64},
	{Name: "singles at half rate", Meters: 64, Slots: 24, Concurrency: 64, halfOf: "singles"},
	// Many meters at once, each waiting for its answer: larger groups.
	{Name: "singles 512", Meters: 512, Slots: 48, Concurrency: 512},
	// A light load: the latency of a reading when little else happens.
	{Name: "singles at 40/s", Meters: 64, Slots: 24, Concurrency: 64, Rate: 40},
}

// batchShape is the scenario whose shape a long run repeats.
const batchShape = "batches"

func scenarioNamed(name string) (scenario, bool) {
	for _, sc := range scenarios {
		if sc.Name == name {
			return sc, true
		}
	}
	return scenario{}, false
}

// title names a scenario in the tables, with its shape or derived rate.
func (sc scenario) title() string {
	name := sc.Name
	if sc.Batch > 0 {
		name += fmt.Sprintf(" (%d×%d)", sc.Concurrency, sc.Batch)
	}
	if sc.halfOf != "" {
		name += fmt.Sprintf(" (%.0f/s)", sc.Rate)
	}
	return name
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
	// Storage is the growth of every store on disk over the scenario.
	Storage Storage `json:"storage"`
	// Memory is the processes' resident memory at its end.
	Memory Memory `json:"memory"`
}

// phase is what one stretch of load did to the consortium: the blocks it
// made and what the processes spent on them, their indexes included.
type phase struct {
	sum      *simulator.Summary
	from, to uint64
	cpu      map[string]float64 // CPU-seconds spent, by kind
	grown    map[instanceStore]int64
	sizes    Sizes // at the end
	memory   Memory
}

// deliver runs the simulator and measures around it: before, once the
// indexes have read every block so far; after, once they have read the
// blocks the load made, so that their work and bytes count for it.
func (b *bench) deliver(ctx context.Context, o simulator.Options) (phase, error) {
	var p phase
	var err error
	if p.from, err = channel.Height(ctx, b.ledger); err != nil {
		return p, err
	}
	b.settle(ctx, p.from)
	before, err := measureSizes(b.trees)
	if err != nil {
		return p, err
	}
	cpuBefore := cpuByKind(b.nw.Processes())
	o.Submitter, o.Seed = b.ingest, 11
	if p.sum, err = simulator.Run(ctx, o); err != nil {
		return p, err
	}
	if p.to, err = channel.Height(ctx, b.ledger); err != nil {
		return p, err
	}
	b.settle(ctx, p.to)
	procs := b.nw.Processes()
	p.cpu = map[string]float64{}
	for kind, after := range cpuByKind(procs) {
		p.cpu[kind] = after - cpuBefore[kind]
	}
	p.memory = memoryByKind(procs)
	if p.sizes, err = measureSizes(b.trees); err != nil {
		return p, err
	}
	p.grown = p.sizes.grown(before)
	return p, nil
}

// measure runs one scenario with its registered fleet.
func (b *bench) measure(ctx context.Context, sc scenario, fleet simulator.Fleet) (Result, error) {
	p, err := b.deliver(ctx, simulator.Options{Fleet: fleet,
		Schedule: loadprofile.LastSlots(time.Now(), 15*time.Minute, sc.Slots),
		Batch:    sc.Batch, Concurrency: sc.Concurrency, Rate: sc.Rate, NameSoftware: sc.Software})
	if err != nil {
		return Result{}, err
	}
	sum := p.sum
	r := Result{scenario: sc, Accepted: sum.Accepted, Rejected: sum.Rejected, Failed: sum.Failed,
		PerSecond: sum.PerSecond, P50ms: sum.Latency.P50, P95ms: sum.Latency.P95, Blocks: p.to - p.from, CPU: map[string]float64{},
		Storage: storageGrowth(p.sizes, p.grown, sum.Accepted, b.via), Memory: p.memory}
	bytes, err := blockBytes(ctx, b.ledger, p.from, p.to)
	if err != nil {
		return Result{}, err
	}
	if sum.Accepted > 0 {
		r.BlockBytes = float64(bytes) / float64(sum.Accepted)
		for kind, spent := range p.cpu {
			r.CPU[kind] = spent / float64(sum.Accepted) * 1000
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
