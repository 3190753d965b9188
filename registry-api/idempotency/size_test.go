package idempotency

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
)

// blockBytesPerReading is what one reading of a 1,000-reading batch costs
// in a block (docs/performance.md): the transaction a batch request records
// is about that size.
const blockBytesPerReading = 128

// delivery is a concentrator's batch request as the store sees it: the
// transaction recorded before it is sent and the answer kept after.
type delivery struct {
	fingerprint string
	txID        string
	tx          []byte
	answer      []byte
}

// newDelivery builds a batch of n readings of n meters of a national fleet
// (meter IDs PTB-0000001 up, sequence numbers of a year of quarter-hour
// readings), a few refused as replays and a few duplicates of earlier
// transactions, answered as the registry answers it (api.BatchReceipt).
func newDelivery(tb testing.TB, rng *mrand.Rand, n int) delivery {
	tb.Helper()
	items := make([]meter.SignedMeasurement, n)
	results := make([]meter.ItemResult, n)
	first := rng.IntN(5_000_000)
	at := time.Date(2026, 11, 21, 10, 15, 0, 0, time.UTC)
	out := api.BatchReceipt{Tx: api.Tx{TxID: hexID(), Block: 100_000 + rng.Uint64N(1_000_000)}}
	for i := range items {
		id := fmt.Sprintf("PTB-%07d", first+i)
		seq := 30_000 + rng.Uint64N(5_000)
		m := meter.Measurement{MeterID: id, Seq: seq, Time: at.Format(time.RFC3339),
			Value: fmt.Sprintf("%d.%03d", rng.IntN(100_000), rng.IntN(1000)), Unit: "kWh"}
		payload, err := m.Payload()
		if err != nil {
			tb.Fatal(err)
		}
		sig := make([]byte, 70+rng.IntN(3)) // a DER ECDSA P-256 signature: incompressible
		rand.Read(sig)
		items[i] = meter.SignedMeasurement{MeterID: id, Payload: payload, Signature: sig}
		results[i] = meter.ItemResult{Index: i, MeterID: id, Seq: seq, Outcome: meter.OutcomeAccepted, KeyVersion: 1}
		switch r := rng.IntN(1000); {
		case r < 3:
			results[i] = meter.ItemResult{Index: i, MeterID: id, Seq: seq, Outcome: meter.OutcomeRejected,
				Code: meter.CodeReplay, Reason: fmt.Sprintf("seq %d was accepted before with other bytes", seq)}
			out.Rejected++
		case r < 8:
			results[i] = meter.ItemResult{Index: i, MeterID: id, Seq: seq, Outcome: meter.OutcomeDuplicate, TxID: hexID()}
			out.Duplicates++
		default:
			out.Accepted++
		}
	}
	out.Items = results
	answer, err := json.Marshal(out)
	if err != nil {
		tb.Fatal(err)
	}
	packed, err := wire.Pack(items)
	if err != nil {
		tb.Fatal(err)
	}
	// The envelope around the packed readings (read-write set, endorsements,
	// certificates), as random bytes up to a block's share.
	tx := make([]byte, max(len(packed), n*blockBytesPerReading))
	copy(tx, packed)
	rand.Read(tx[len(packed):])
	sum := sha256.Sum256(answer)
	return delivery{fingerprint: hex.EncodeToString(sum[:]), txID: out.TxID, tx: tx, answer: answer}
}

func hexID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// deliver runs one batch request with an Idempotency-Key through the store
// as the server does: claim the key, record the transaction, keep the answer.
func deliver(tb testing.TB, s *Store, key string, d delivery) {
	tb.Helper()
	if _, err := s.Begin(key, d.fingerprint); err != nil {
		tb.Fatal(err)
	}
	ref, _ := json.Marshal(map[string]any{"role": "ingest", "txId": d.txID, "item": -1})
	if err := s.Record([]Entry{{Key: key, Fingerprint: d.fingerprint, Ref: ref}}, d.txID, d.tx); err != nil {
		tb.Fatal(err)
	}
	if err := s.Finish(key, Response{Fingerprint: d.fingerprint, Status: 200,
		ContentType: "application/json; charset=utf-8", Body: d.answer}); err != nil {
		tb.Fatal(err)
	}
}

// onDisk is the size of the file at path and the bytes the file system
// holds for it (bbolt grows its file sparsely).
func onDisk(tb testing.TB, path string) (size, allocated int64) {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fi.Size(), fi.Size()
	}
	return fi.Size(), st.Blocks * 512
}

// BenchmarkBatchAnswers runs b.N concentrator batches of 1,000 readings
// through the store as the registry does (claim, record the transaction,
// keep the answer), all within Retention: the store's steady state holds a
// day of them. It reports what the database costs per reading: the file's
// size, the bytes the file system holds for it (bbolt grows its file ahead,
// sparsely) and the live records the byte bound counts.
//
//	go test -run '^$' -bench BatchAnswers -benchtime 3000x ./registry-api/idempotency/
func BenchmarkBatchAnswers(b *testing.B) {
	const readings = 1000
	path := filepath.Join(b.TempDir(), "registry.db")
	s, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	pool := make([]delivery, 16)
	for i := range pool {
		pool[i] = newDelivery(b, rng, readings)
	}
	b.ResetTimer()
	for i := range b.N {
		d := pool[i%len(pool)]
		d.fingerprint = fmt.Sprintf("%064x", i)
		d.txID = fmt.Sprintf("%064x", i)
		deliver(b, s, "ptb-ingest\x00"+hexID()[:32], d)
	}
	b.StopTimer()
	var live int64
	if err := s.view(func(tx *bolt.Tx) error {
		live = int64(binary.BigEndian.Uint64(tx.Bucket(metaBucket).Get(liveKey)))
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	size, allocated := onDisk(b, path)
	n := float64(b.N * readings)
	b.ReportMetric(float64(size)/n, "file-B/reading")
	b.ReportMetric(float64(allocated)/n, "disk-B/reading")
	b.ReportMetric(float64(live)/n, "live-B/reading")
}
