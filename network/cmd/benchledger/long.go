package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/inter-nmi/pki/registry-api/loadprofile"
	"github.com/inter-nmi/pki/registry-api/simulator"
)

// Long is a long run: rounds of batches, each by a fleet registered for
// it, until Target measurements are accepted.
type Long struct {
	Target int `json:"target"`
	// Round is the shape of a full round (the batches scenario's); a round
	// that ends at a checkpoint has fewer meters.
	Round       scenario     `json:"round"`
	Rounds      int          `json:"rounds"`
	Meters      int          `json:"meters"`
	Checkpoints []Checkpoint `json:"checkpoints"`
}

// Checkpoint is a long run's figures once At measurements were accepted,
// counted from its start over its deliveries only: the registration of
// each round's fleet, and the wait for the indexes between rounds, are left
// out of every figure but the memory.
type Checkpoint struct {
	At       int `json:"checkpoint"`
	Accepted int `json:"accepted"`
	Rejected int `json:"rejected"`
	Failed   int `json:"failed"`
	// Seconds is the time spent delivering.
	Seconds   float64 `json:"deliverySeconds"`
	PerSecond float64 `json:"acceptedPerSecond"`
	Blocks    uint64  `json:"blocks"`
	// CPU is CPU-seconds per 1,000 accepted measurements, by kind of process.
	CPU     map[string]float64 `json:"cpuSecondsPer1000"`
	Storage Storage            `json:"storage"`
	// Memory is the processes' resident memory at the checkpoint.
	Memory Memory `json:"memory"`
}

// long delivers rounds of batches until the last checkpoint; at each it
// adds a Checkpoint to l and calls reached.
func (b *bench) long(ctx context.Context, target int, checkpoints []int, l *Long, reached func() error) error {
	shape, ok := scenarioNamed(batchShape)
	if !ok {
		return fmt.Errorf("no scenario %q to repeat", batchShape)
	}
	l.Target, l.Round = target, shape
	var (
		done     Checkpoint
		cpu      = map[string]float64{}
		grown    = map[instanceStore]int64{}
		sizes    Sizes
		memory   Memory
		started  = time.Now()
		nextStop = 0
	)
	for nextStop < len(checkpoints) {
		want := checkpoints[nextStop] - done.Accepted
		meters := min(shape.Meters, (want+shape.Slots-1)/shape.Slots)
		fleet, err := b.fleet(ctx, "L"+strconv.Itoa(l.Rounds), meters, "")
		if err != nil {
			return err
		}
		l.Rounds++
		l.Meters += meters
		p, err := b.deliver(ctx, simulator.Options{Fleet: fleet,
			Schedule: loadprofile.LastSlots(time.Now(), 15*time.Minute, shape.Slots),
			Batch:    shape.Batch, Concurrency: shape.Concurrency})
		if err != nil {
			return err
		}
		if p.sum.Accepted == 0 {
			return errors.New("a round accepted no measurement")
		}
		done.Accepted += p.sum.Accepted
		done.Rejected += p.sum.Rejected
		done.Failed += p.sum.Failed
		done.Seconds += p.sum.WallSeconds
		done.Blocks += p.to - p.from
		for k, v := range p.cpu {
			cpu[k] += v
		}
		for k, v := range p.grown {
			grown[k] += v
		}
		sizes, memory = p.sizes, p.memory
		fmt.Fprintf(b.progress, "benchledger: long run: %d of %d accepted (%.0f/s delivering, %s in all)\n",
			done.Accepted, target, float64(done.Accepted)/done.Seconds, time.Since(started).Round(time.Second))
		for ; nextStop < len(checkpoints) && done.Accepted >= checkpoints[nextStop]; nextStop++ {
			c := done
			c.At = checkpoints[nextStop]
			c.PerSecond = float64(c.Accepted) / c.Seconds
			c.CPU = map[string]float64{}
			for k, v := range cpu {
				c.CPU[k] = v / float64(c.Accepted) * 1000
			}
			c.Storage = storageGrowth(sizes, grown, c.Accepted, b.via)
			c.Memory = memory
			l.Checkpoints = append(l.Checkpoints, c)
			if err := reached(); err != nil {
				return err
			}
		}
	}
	return nil
}
