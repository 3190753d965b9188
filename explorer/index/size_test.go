package index_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/explorer/index/synth"
	"github.com/inter-nmi/pki/network/pkg/chain"
)

// The national-scale chain the size benchmark indexes: 2,525 meters
// registered in blocks of 505, then concentrator batches of 1,000
// readings over the meters in turn (every 50th refused as a replay), and
// after every 10th batch a block of 25 single-reading transactions (every
// 5th refused): a little over 100,000 accepted readings.
const (
	sizeMeters      = 2525
	sizeRegBlock    = 505
	sizeBatches     = 102
	sizeBatch       = 1000
	sizeRefuseEvery = 50
	sizeSinglesEach = 10
	sizeSingles     = 25
)

// sizeChain is the chain, made once per run, and the number of accepted
// readings up to each of its blocks.
var sizeChain struct {
	once     sync.Once
	blocks   []*chain.Block
	accepted []uint64
}

func nationalChain() ([]*chain.Block, []uint64) {
	sizeChain.once.Do(func() {
		c := synth.New(start)
		var blocks []*chain.Block
		for k := range sizeMeters / sizeRegBlock {
			blocks = append(blocks, c.Register(synth.NMIs[k%len(synth.NMIs)], sizeRegBlock))
		}
		meters := c.Meters()
		next := 0
		take := func(n int) []string {
			out := make([]string, n)
			for i := range out {
				out[i] = meters[next]
				next = (next + 1) % len(meters)
			}
			return out
		}
		for k := range sizeBatches {
			blocks = append(blocks, c.Measurements(synth.NMIs[k%len(synth.NMIs)], take(sizeBatch), sizeBatch, sizeRefuseEvery))
			if k%sizeSinglesEach == sizeSinglesEach-1 {
				blocks = append(blocks, c.Singles(synth.NMIs[(k+1)%len(synth.NMIs)], take(sizeSingles), 5))
			}
		}
		var n uint64
		for _, b := range blocks {
			for _, t := range b.Txs {
				n += accepted(t)
			}
			sizeChain.accepted = append(sizeChain.accepted, n)
		}
		sizeChain.blocks = blocks
	})
	return sizeChain.blocks, sizeChain.accepted
}

// accepted counts a synthetic transaction's accepted readings.
func accepted(t chain.Tx) uint64 {
	var n uint64
	switch {
	case len(t.Args) == 1 && len(t.ResponsePayload) > 0:
		var o struct{ Accepted uint64 }
		if err := json.Unmarshal(t.ResponsePayload, &o); err == nil {
			n = o.Accepted
		}
	case len(t.Args) == 3:
		var r struct{ Outcome string }
		if err := json.Unmarshal(t.ResponsePayload, &r); err == nil && r.Outcome == "accepted" {
			n = 1
		}
	}
	return n
}

// cpu is the processor time the process has used, user and system: the
// cost of a rebuild on a machine whose cores other processes share, where
// the time it takes says less.
func cpu() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// allocated is the space a file takes on disk (st_blocks), which a sparse
// file's size overstates.
func allocated(tb testing.TB, path string) int64 {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return fi.Size()
}

// BenchmarkRebuild indexes the national-scale chain into a new index, as
// the explorer does when it reads the chain again from block 0, and
// reports the index's size on disk per accepted reading: over the whole
// chain, and in steady state (the growth over the second half of the
// readings, once the meters are registered). One iteration is one whole
// rebuild:
//
//	go test ./explorer/index -run '^$' -bench Rebuild -benchtime 1x
func BenchmarkRebuild(b *testing.B) {
	blocks, acc := nationalChain()
	total := acc[len(acc)-1]
	half := 0
	for acc[half] < total/2 {
		half++
	}
	var bytes, atHalf int64
	var took, used time.Duration
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "explorer.db")
		began, cpuBefore := time.Now(), cpu()
		s, err := index.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		s.SetNoSync(true)
		for i, blk := range blocks {
			if err := s.Add(blk, index.Integrity{Checked: true, CheckedThrough: blk.Number}, []byte(`{}`), nil); err != nil {
				b.Fatalf("add block %d: %v", blk.Number, err)
			}
			if i == half {
				atHalf = allocated(b, path)
			}
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		took, used = time.Since(began), cpu()-cpuBefore
		bytes = allocated(b, path)
	}
	b.ReportMetric(float64(bytes)/float64(total), "B/reading")
	b.ReportMetric(float64(bytes-atHalf)/float64(total-acc[half]), "B/reading-steady")
	b.ReportMetric(float64(bytes)/1e6, "MB")
	b.ReportMetric(float64(total)/took.Seconds(), "readings/s")
	b.ReportMetric(used.Seconds(), "cpu-s")
	b.Logf("%d blocks, %d accepted readings over %d meters: %.1f MB on disk, rebuilt in %v (%v of processor time)",
		len(blocks), total, sizeMeters, float64(bytes)/1e6, took.Round(time.Millisecond), used.Round(time.Millisecond))
}

// BenchmarkMeterReadings lists a meter's 20 newest readings of the
// national-scale chain and reads what they measured from their blocks, as
// the meter page does: cold, each page reading its blocks afresh, and
// warm, pages sharing the blocks kept (index.DefaultEvidenceCache). The
// peer is a fake that serves parsed blocks: the time leaves out the peer's
// reading and sending them and their parsing (chain.Parse); blocks/page
// and kB/page are what a page asks of the peer.
//
//	go test ./explorer/index -run '^$' -bench MeterReadings
func BenchmarkMeterReadings(b *testing.B) {
	blocks, _ := nationalChain()
	s, err := index.Open(filepath.Join(b.TempDir(), "explorer.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.SetNoSync(true)
	for _, blk := range blocks {
		if err := s.Add(blk, index.Integrity{Checked: true, CheckedThrough: blk.Number}, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	for _, cold := range []bool{true, false} {
		name := "warm"
		if cold {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			src := &counting{src: blocks}
			ev := index.NewEvidence(src, 0)
			pages := 0
			for b.Loop() {
				if cold {
					ev = index.NewEvidence(src, 0)
				}
				id := synth.MeterID(1 + (pages*7919)%sizeMeters)
				pages++
				v, err := s.Meter(id, 20)
				if err != nil || len(v.Recent) != 20 {
					b.Fatalf("meter %s: %d readings, %v", id, len(v.Recent), err)
				}
				if err := ev.Readings(context.Background(), id, v.Recent); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(src.total())/float64(pages), "blocks/page")
			b.ReportMetric(float64(src.bytes)/1e3/float64(pages), "kB/page")
		})
	}
}

// The index stays within its budget of 150 bytes on disk per accepted
// reading in steady state (issue 22), on a chain a tenth of
// BenchmarkRebuild's.
func TestSizePerReading(t *testing.T) {
	if testing.Short() {
		t.Skip("signs and indexes 12,000 readings")
	}
	c := synth.New(start)
	var blocks []*chain.Block
	blocks = append(blocks, c.Register("PTBMSP", 250))
	for k := range 24 {
		from := (k * 500) % 250
		meters := append(c.Meters()[from:], c.Meters()[:from]...)
		blocks = append(blocks, c.Measurements(synth.NMIs[k%len(synth.NMIs)], meters, 500, sizeRefuseEvery))
	}
	path := filepath.Join(t.TempDir(), "explorer.db")
	s, err := index.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetNoSync(true)
	var half int64
	for i, b := range blocks {
		if err := s.Add(b, index.Integrity{Checked: true, CheckedThrough: b.Number}, nil, nil); err != nil {
			t.Fatal(err)
		}
		if i == 12 {
			half = allocated(t, path)
		}
	}
	perReading := float64(allocated(t, path)-half) / (12 * 500 * (1 - 1.0/sizeRefuseEvery))
	t.Logf("%.1f bytes per accepted reading in steady state", perReading)
	if perReading > 150 {
		t.Errorf("%.1f bytes on disk per accepted reading in steady state, the budget is 150", perReading)
	}
}
