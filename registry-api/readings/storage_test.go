package readings_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/readings"
)

// diskBytes is what a file takes on disk (bbolt grows its file sparsely).
func diskBytes(tb testing.TB, path string) int64 {
	tb.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		tb.Fatal(err)
	}
	return st.Blocks * 512
}

// BenchmarkStoragePerReading indexes concentrator batches of 1,000 readings
// of 2,500 meters at a 15-minute interval, as a registry's index follows a
// national roll-out, and reports the index's bytes on disk per accepted
// reading and the time to index one (a rebuild's cost). Run it with
//
//	go test -run '^$' -bench StoragePerReading -benchtime 1x ./registry-api/readings/
//
// (-benchtime 1x: one load of readingsForStorage readings).
func BenchmarkStoragePerReading(b *testing.B) {
	const meters, batch = 2500, 1000
	readingsForStorage := 100_000
	if testing.Short() {
		readingsForStorage = 10_000
	}
	ids := make([]string, meters)
	for i := range ids {
		ids[i] = fmt.Sprintf("PTB-SM-%07d", i+1)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// The blocks, signed before the clock starts: a meter signs its own.
	var blocks []*chain.Block
	var regItems []meter.SignedMeasurement
	for _, id := range ids {
		regItems = append(regItems, meter.SignedMeasurement{MeterID: id})
	}
	blocks = append(blocks, &chain.Block{Number: 0, Txs: []chain.Tx{registration(regItems)}})
	for n := 0; n*batch < readingsForStorage; n++ {
		items := make([]meter.SignedMeasurement, batch)
		for i := range items {
			k := n*batch + i
			slot := k / meters
			items[i] = reading(b, ids[k%meters], uint64(slot+1), start.Add(time.Duration(slot)*15*time.Minute))
		}
		packed, err := wire.Pack(items)
		if err != nil {
			b.Fatal(err)
		}
		o := wire.Outcome{TxID: fmt.Sprintf("%064x", n+1), Items: batch, Accepted: batch, KeyVersions: map[string]int{}}
		for _, sm := range items {
			o.KeyVersions[sm.MeterID] = 1
		}
		result, _ := json.Marshal(o)
		blocks = append(blocks, &chain.Block{Number: uint64(n + 1), Txs: []chain.Tx{{ID: o.TxID, Code: "VALID", Chaincode: "pki",
			Function: wire.TxSubmitPacked, Args: []string{string(packed)}, ResponsePayload: result, CreatorMSP: "PTBMSP",
			Time: start.Add(time.Duration(n) * time.Minute)}}})
	}
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "readings.db")
		x, err := readings.Open(path, "pki")
		if err != nil {
			b.Fatal(err)
		}
		began := time.Now()
		for _, blk := range blocks {
			if err := x.Add(blk); err != nil {
				b.Fatal(err)
			}
		}
		took := time.Since(began)
		if err := x.Close(); err != nil {
			b.Fatal(err)
		}
		n := float64(readingsForStorage)
		b.ReportMetric(float64(diskBytes(b, path))/n, "disk-B/reading")
		b.ReportMetric(float64(took.Microseconds())/n, "µs-index/reading")
		os.Remove(path)
	}
}
