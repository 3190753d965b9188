package readings_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	bolt "go.etcd.io/bbolt"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/chain/chaintest"
	"github.com/inter-nmi/pki/network/pkg/follow"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/readings"
)

var key = func() *meter.PrivateKey {
	k, err := meter.GenerateKey(meter.P256)
	if err != nil {
		panic(err)
	}
	return k
}()

func reading(t testing.TB, id string, seq uint64, at time.Time) meter.SignedMeasurement {
	t.Helper()
	sm, err := meter.Sign(key, meter.Measurement{MeterID: id, Seq: seq, Time: at.Format(time.RFC3339Nano), Value: fmt.Sprint(seq), Unit: "kWh"})
	if err != nil {
		t.Fatal(err)
	}
	return sm
}

// block holds one valid packed batch whose outcome lists the exceptions.
func block(t *testing.T, n uint64, txID string, items []meter.SignedMeasurement, exceptions ...meter.ItemResult) *chain.Block {
	t.Helper()
	packed, err := wire.Pack(items)
	if err != nil {
		t.Fatal(err)
	}
	o := wire.Outcome{TxID: txID, Items: len(items), Accepted: len(items) - len(exceptions), KeyVersions: map[string]int{}, Exceptions: exceptions}
	for _, sm := range items {
		o.KeyVersions[sm.MeterID] = 1
	}
	result, _ := json.Marshal(o)
	return &chain.Block{Number: n, Txs: []chain.Tx{
		registration(items),
		{ID: txID, Code: "VALID", Chaincode: "pki", Function: wire.TxSubmitPacked, Args: []string{string(packed)}, ResponsePayload: result,
			CreatorMSP: "CMIMSP", Time: time.Date(2026, 11, 21, 10, 20, 0, 0, time.UTC)},
		// An invalid transaction's items are not indexed.
		{ID: "bad", Code: "MVCC_READ_CONFLICT", Chaincode: "pki", Function: wire.TxSubmitPacked, Args: []string{string(packed)}, ResponsePayload: result},
	}}
}

// registration is the transaction that registered the items' meters with
// key, as the chaincode writes it: each meter's record and its key version.
func registration(items []meter.SignedMeasurement) chain.Tx {
	tx := chain.Tx{ID: "reg", Code: "VALID", Chaincode: "pki", Function: wire.TxRegisterMeters, CreatorMSP: "PTBMSP"}
	seen := map[string]bool{}
	for _, sm := range items {
		if seen[sm.MeterID] || meter.ValidateMeterID(sm.MeterID) != nil {
			continue
		}
		seen[sm.MeterID] = true
		pub := key.Public()
		m, _ := json.Marshal(meter.Meter{ID: sm.MeterID, NMI: "PTBMSP", PublicKey: pub.PEM(), Curve: pub.Curve(), Fingerprint: pub.Fingerprint(),
			KeyVersion: 1, Status: meter.StatusActive})
		kv, _ := json.Marshal(meter.KeyVersion{MeterID: sm.MeterID, Version: 1, PublicKey: pub.PEM(), Curve: pub.Curve(), Fingerprint: pub.Fingerprint()})
		tx.Writes = append(tx.Writes, chain.Write{Namespace: "pki", Key: wire.KeyVersionKey(sm.MeterID, 1), Value: kv},
			chain.Write{Namespace: "pki", Key: wire.MeterKey(sm.MeterID), Value: m})
	}
	return tx
}

// indexed is an index whose evidence source is the peer of the blocks it
// was given: their valid transactions, by ID.
type indexed struct {
	*readings.Index
	mu    sync.Mutex
	txs   map[string]*chain.Tx
	reads int // transactions read from the "peer"
}

func (x *indexed) Add(b *chain.Block) error {
	x.mu.Lock()
	for i := range b.Txs {
		if b.Txs[i].Valid() {
			x.txs[b.Txs[i].ID] = &b.Txs[i]
		}
	}
	x.mu.Unlock()
	return x.Index.Add(b)
}

func (x *indexed) transaction(_ context.Context, id string) (*chain.Tx, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.reads++
	t, ok := x.txs[id]
	if !ok {
		return nil, fmt.Errorf("no transaction %s", id)
	}
	return t, nil
}

func open(t *testing.T) *indexed {
	t.Helper()
	ix, err := readings.Open(filepath.Join(t.TempDir(), "r.db"), "pki")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	x := &indexed{Index: ix, txs: map[string]*chain.Tx{}}
	ix.SetEvidence(x.transaction)
	return x
}

func TestMeasurementsByTime(t *testing.T) {
	x := open(t)
	start := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	var items []meter.SignedMeasurement
	for i := range 4 {
		items = append(items, reading(t, "PTB-0001", uint64(i+1), start.Add(time.Duration(i)*15*time.Minute)))
	}
	// A meter whose ID extends the other's must not show up in its range.
	items = append(items, reading(t, "PTB-00010", 1, start))
	if err := x.Add(block(t, 0, "tx0", items)); err != nil {
		t.Fatal(err)
	}
	if err := x.Add(block(t, 0, "again", items)); err == nil {
		t.Fatal("a block indexed twice")
	}
	list := func(from, to string, limit int, cursor []byte) ([]*meter.MeasurementRecord, []byte) {
		q := readings.Query{MeterID: "PTB-0001", Limit: limit, Cursor: cursor}
		if from != "" {
			q.From, _ = meter.ParseTime(from)
		}
		if to != "" {
			q.To, _ = meter.ParseTime(to)
		}
		out, next, err := x.Measurements(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		return out, next
	}
	seqs := func(recs []*meter.MeasurementRecord) string {
		var out []string
		for _, r := range recs {
			out = append(out, fmt.Sprint(r.Seq))
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct{ from, to, want string }{
		{"", "", "1,2,3,4"},
		{"2026-11-21T09:15:00Z", "2026-11-21T09:30:00Z", "2,3"}, // both ends included
		{"2026-11-21T10:15:00+01:00", "", "2,3,4"},              // 09:15 UTC
		{"", "2026-11-21T09:14:59.999Z", "1"},
		{"2026-11-21T09:45:00.000000001Z", "", ""},
		{"2026-11-21T09:15:00Z", "2026-11-21T09:15:00Z", "2"},
	} {
		if got, next := list(tc.from, tc.to, 0, nil); seqs(got) != tc.want || next != nil {
			t.Errorf("%s..%s: %s (next %q), want %s", tc.from, tc.to, seqs(got), next, tc.want)
		}
	}
	p1, next := list("", "", 3, nil)
	p2, last := list("", "", 3, next)
	if seqs(p1) != "1,2,3" || next == nil || seqs(p2) != "4" || last != nil {
		t.Fatalf("pages %s, %s", seqs(p1), seqs(p2))
	}
	if _, _, err := x.Measurements(context.Background(), readings.Query{MeterID: "PTB-0002", Cursor: next}); err != readings.ErrCursor {
		t.Fatalf("another meter's cursor: %v", err)
	}
	rec := p1[0]
	if rec.TxID != "tx0" || rec.Fingerprint != key.Public().Fingerprint() || rec.KeyVersion != 1 || rec.AcceptedAt != "2026-11-21T10:20:00Z" || rec.Payload == "" || rec.Signature == "" {
		t.Errorf("record %+v", rec)
	}
	if txID, block, found, err := x.Accepted(items[1], 2); err != nil || !found || txID != "tx0" || block != 0 {
		t.Errorf("Accepted = %s %d %v %v", txID, block, found, err)
	}
	other := reading(t, "PTB-0001", 2, start.Add(time.Minute))
	if _, _, found, _ := x.Accepted(other, 2); found {
		t.Error("other bytes of an accepted seq found as accepted")
	}
	resigned := items[1]
	resigned.Signature = reading(t, "PTB-0001", 2, start.Add(15*time.Minute)).Signature
	if _, _, found, _ := x.Accepted(resigned, 2); found {
		t.Error("a re-signed payload found as the exact evidence")
	}
	resigned.Signature = nil
	if _, _, found, _ := x.Accepted(resigned, 2); !found {
		t.Error("the payload alone not found")
	}
}

func TestRejectionsAndAwait(t *testing.T) {
	x := open(t)
	at := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	items := []meter.SignedMeasurement{reading(t, "PTB-0001", 1, at), {MeterID: "PTB 1", Payload: []byte("x"), Signature: []byte{1}},
		reading(t, "PTB-0001", 1, at.Add(time.Minute))}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- x.Await(ctx, 0)
	}()
	if err := x.Add(block(t, 0, "tx0", items,
		meter.ItemResult{Index: 1, MeterID: "PTB 1", Outcome: meter.OutcomeRejected, Code: meter.CodeMalformed, Reason: "bad ID"},
		meter.ItemResult{Index: 2, MeterID: "PTB-0001", Seq: 1, Outcome: meter.OutcomeRejected, Code: meter.CodeReplay, Reason: "seq 1"})); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Await(0) after block 0: %v", err)
	}
	rej, _, err := x.Rejections(readings.Query{MeterID: "PTB-0001"})
	if err != nil || len(rej) != 1 || rej[0].Code != meter.CodeReplay || rej[0].TxID != "tx0" || rej[0].Index != 2 {
		t.Fatalf("rejections %+v %v", rej, err)
	}
	// CMI's client filed bytes naming PTB's meter: the rejection says so.
	if rej[0].SubmittedBy != "CMIMSP" {
		t.Fatalf("a rejection filed under PTB's meter by CMI's client is attributed to %q", rej[0].SubmittedBy)
	}
	if un, _, _ := x.Rejections(readings.Query{MeterID: readings.Unattributed}); len(un) != 1 || un[0].MeterID != "PTB 1" {
		t.Fatalf("unattributed %+v", un)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := x.Await(ctx, 1); err == nil {
		t.Fatal("Await of a block not indexed returned")
	}
	if x.Next() != 1 {
		t.Fatalf("next %d", x.Next())
	}
}

// The index remembers each meter's latest valid attestation and where the
// configuration blocks are, to assemble attestation bundles.
func TestAttestationsAndConfigBlocks(t *testing.T) {
	x := open(t)
	attest := func(id, meterID, code string) chain.Tx {
		return chain.Tx{ID: id, Code: code, Chaincode: "pki", Function: wire.TxAttestMeter, Args: []string{meterID}}
	}
	blocks := []*chain.Block{
		{Number: 0, Config: true},
		{Number: 1, Txs: []chain.Tx{attest("a1", "PTB-0001", "VALID")}},
		{Number: 2, Config: true},
		{Number: 3, Txs: []chain.Tx{attest("a2", "PTB-0001", "VALID"), attest("a3", "PTB-0002", "MVCC_READ_CONFLICT")}},
	}
	for _, b := range blocks {
		if err := x.Add(b); err != nil {
			t.Fatal(err)
		}
	}
	if a, found, err := x.Attestation("PTB-0001"); err != nil || !found || a != (readings.Attested{Block: 3, TxID: "a2"}) {
		t.Fatalf("PTB-0001's attestation %+v %v %v", a, found, err)
	}
	if _, found, _ := x.Attestation("PTB-0002"); found {
		t.Fatal("an invalid attestation was indexed")
	}
	for upTo, want := range map[uint64][]uint64{0: {0}, 1: {0}, 2: {0, 2}, 3: {0, 2}} {
		if got, err := x.ConfigBlocks(upTo); err != nil || !slices.Equal(got, want) {
			t.Errorf("configuration blocks up to %d: %v %v, want %v", upTo, got, err, want)
		}
	}
}

// rotation is the transaction by which a meter's owner rotates it to a
// new key, version 2, as the chaincode writes it.
func rotation(t *testing.T, id string) (chain.Tx, *meter.PrivateKey) {
	t.Helper()
	newKey, err := meter.GenerateKey(meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	pub := newKey.Public()
	rec, _ := json.Marshal(meter.Meter{ID: id, NMI: "PTBMSP", PublicKey: pub.PEM(), Curve: pub.Curve(), Fingerprint: pub.Fingerprint(),
		KeyVersion: 2, Status: meter.StatusActive})
	kv, _ := json.Marshal(meter.KeyVersion{MeterID: id, Version: 2, PublicKey: pub.PEM(), Curve: pub.Curve(), Fingerprint: pub.Fingerprint()})
	return chain.Tx{ID: "rotate", Code: "VALID", Chaincode: "pki", Function: wire.TxRotateKey, CreatorMSP: "PTBMSP", Writes: []chain.Write{
		{Namespace: "pki", Key: wire.KeyVersionKey(id, 2), Value: kv}, {Namespace: "pki", Key: wire.MeterKey(id), Value: rec}}}, newKey
}

// A rotation starts a new sequence space: the new key's seq 1 does not
// hide the old key's, whose re-delivery is still found as accepted.
func TestAcceptedAcrossKeyVersions(t *testing.T) {
	x := open(t)
	at := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	old := reading(t, "PTB-0001", 1, at)
	if err := x.Add(block(t, 0, "tx-old", []meter.SignedMeasurement{old})); err != nil {
		t.Fatal(err)
	}
	rotate, newKey := rotation(t, "PTB-0001")
	fresh, err := meter.Sign(newKey, meter.Measurement{MeterID: "PTB-0001", Seq: 1, Time: at.Add(time.Hour).Format(time.RFC3339), Value: "7", Unit: "kWh"})
	if err != nil {
		t.Fatal(err)
	}
	packed, err := wire.Pack([]meter.SignedMeasurement{fresh})
	if err != nil {
		t.Fatal(err)
	}
	result, _ := json.Marshal(wire.Outcome{TxID: "tx-new", Items: 1, Accepted: 1, KeyVersions: map[string]int{"PTB-0001": 2}})
	if err := x.Add(&chain.Block{Number: 1, Txs: []chain.Tx{
		rotate,
		{ID: "tx-new", Code: "VALID", Chaincode: "pki", Function: wire.TxSubmitPacked, Args: []string{string(packed)}, ResponsePayload: result,
			CreatorMSP: "PTBMSP", Time: at.Add(time.Hour)},
	}}); err != nil {
		t.Fatal(err)
	}
	if f, _, _ := x.Findings(0, nil); len(f) != 0 {
		t.Fatalf("findings %+v", f)
	}
	for _, tc := range []struct {
		sm   meter.SignedMeasurement
		want string
	}{{old, "tx-old"}, {fresh, "tx-new"}} {
		if txID, _, found, err := x.Accepted(tc.sm, 1); err != nil || !found || txID != tc.want {
			t.Errorf("Accepted = %s %v %v, want %s", txID, found, err, tc.want)
		}
	}
}

// A block the index fails to store is tried again from a new stream: the
// index falls behind while it cannot write (a full disk), and catches up
// once it can, instead of stopping for good.
func TestFollowResumesAfterAFailedBlock(t *testing.T) {
	blocks := chaintest.Blocks(t)
	if len(blocks) < 4 {
		t.Fatalf("only %d testdata blocks", len(blocks))
	}
	x := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var starts []uint64
	feed := func(ctx context.Context, from uint64) (<-chan *common.Block, error) {
		mu.Lock()
		first := len(starts) == 0
		starts = append(starts, from)
		mu.Unlock()
		ch := make(chan *common.Block)
		go func() {
			defer close(ch)
			for i := from; i < uint64(len(blocks)); i++ {
				if first && i == 2 {
					continue // the first stream skips block 2: block 3 cannot be stored
				}
				select {
				case ch <- blocks[i]:
				case <-ctx.Done():
					return
				}
			}
			<-ctx.Done()
		}()
		return ch, nil
	}
	done := make(chan error, 1)
	go func() {
		done <- follow.Run(ctx, feed, follow.Parsed(x.Index), follow.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()
	wait, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	if err := x.Await(wait, uint64(len(blocks)-1)); err != nil {
		t.Fatalf("the index stopped at block %d after a block it could not store: %v", x.Next(), err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Follow: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(starts) != 2 || starts[0] != 0 || starts[1] != 2 {
		t.Fatalf("streams opened from %v, want [0 2]", starts)
	}
}

// A meter's readings over days, delivered out of order across many
// transactions, list in meter-time order, page by page across hours and
// seq chunks; the pages read each transaction from the peer once.
func TestMeasurementsAcrossChunks(t *testing.T) {
	x := open(t)
	start := time.Date(2026, 11, 20, 23, 50, 0, 0, time.UTC)
	const n = 150
	order := make([]int, n)
	for i := range order {
		order[i] = (i * 7) % n // every seq once, out of order
	}
	for b := 0; b < n/10; b++ {
		var items []meter.SignedMeasurement
		for _, i := range order[b*10 : b*10+10] {
			items = append(items, reading(t, "PTB-0001", uint64(i+1), start.Add(time.Duration(i)*15*time.Minute)))
		}
		if err := x.Add(block(t, uint64(b), fmt.Sprintf("tx%02d", b), items)); err != nil {
			t.Fatal(err)
		}
	}
	var all []*meter.MeasurementRecord
	var cursor []byte
	for pages := 0; ; pages++ {
		page, next, err := x.Measurements(context.Background(), readings.Query{MeterID: "PTB-0001", Limit: 40, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if next == nil {
			break
		}
		if pages > 5 {
			t.Fatal("the pages do not end")
		}
		cursor = next
	}
	if len(all) != n {
		t.Fatalf("%d readings listed, want %d", len(all), n)
	}
	for i, r := range all {
		want := start.Add(time.Duration(i) * 15 * time.Minute)
		if r.Seq != uint64(i+1) || r.Time != want.Format(time.RFC3339Nano) || r.Payload == "" || r.TxID == "" {
			t.Fatalf("reading %d: %+v, want seq %d at %v", i, r, i+1, want)
		}
	}
	if x.reads != n/10 {
		t.Errorf("%d transactions read from the peer for %d transactions", x.reads, n/10)
	}
	for _, sm := range []uint64{1, 64, 65, 128, 150} {
		if _, _, found, err := x.Accepted(reading(t, "PTB-0001", sm, start), sm); err != nil || found {
			t.Errorf("seq %d with another time found as accepted: %v", sm, err)
		}
	}
}

// A peer that answers other evidence than the index kept is not believed.
func TestMeasurementsWrongEvidence(t *testing.T) {
	x := open(t)
	at := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	if err := x.Add(block(t, 0, "tx0", []meter.SignedMeasurement{reading(t, "PTB-0001", 1, at)})); err != nil {
		t.Fatal(err)
	}
	swapped := block(t, 1, "tx0", []meter.SignedMeasurement{reading(t, "PTB-0001", 1, at.Add(time.Second))})
	x.txs["tx0"] = &swapped.Txs[1]
	if _, _, err := x.Measurements(context.Background(), readings.Query{MeterID: "PTB-0001"}); err == nil || !strings.Contains(err.Error(), "as indexed") {
		t.Fatalf("a listing from swapped evidence: %v", err)
	}
}

// An index of an older layout is replaced by a new file, rebuilt from
// block 0: the old layout's pages do not stay in it.
func TestOlderLayoutReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket([]byte("meta"))
		meta.Put([]byte("version"), binary.BigEndian.AppendUint64(nil, 3))
		meta.Put([]byte("next"), binary.BigEndian.AppendUint64(nil, 500))
		old, _ := tx.CreateBucket([]byte("readings"))
		for i := range 20000 {
			old.Put(fmt.Appendf(nil, "PTB-0001\x00%08d", i), make([]byte, 200))
		}
		return nil
	})
	if err != nil || db.Close() != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)
	x, err := readings.Open(path, "pki")
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	after, _ := os.Stat(path)
	if x.Next() != 0 || after.Size() >= before.Size()/10 {
		t.Fatalf("next %d, file %d bytes, was %d", x.Next(), after.Size(), before.Size())
	}
}

// A reading checked before its block is written (on every core) is judged
// against the meter as the block's earlier transactions leave it: after a
// rotation in the same block, a reading marked accepted under the old key
// is a finding, not a reading.
func TestCheckedAfterRotationInTheBlock(t *testing.T) {
	x := open(t)
	at := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	if err := x.Add(block(t, 0, "tx0", []meter.SignedMeasurement{reading(t, "PTB-0001", 1, at)})); err != nil {
		t.Fatal(err)
	}
	rotate, _ := rotation(t, "PTB-0001")
	stale := reading(t, "PTB-0001", 2, at.Add(time.Hour)) // signed with the old key
	packed, err := wire.Pack([]meter.SignedMeasurement{stale})
	if err != nil {
		t.Fatal(err)
	}
	result, _ := json.Marshal(wire.Outcome{Items: 1, Accepted: 1, KeyVersions: map[string]int{"PTB-0001": 1}})
	if err := x.Add(&chain.Block{Number: 1, Txs: []chain.Tx{
		rotate,
		{ID: "stale", Code: "VALID", Chaincode: "pki", Function: wire.TxSubmitPacked, Args: []string{string(packed)}, ResponsePayload: result,
			CreatorMSP: "CMIMSP"},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, _, found, _ := x.Accepted(stale, 2); found {
		t.Error("a reading under the rotated-out key is indexed as accepted")
	}
	if f, _, _ := x.Findings(10, nil); len(f) != 1 || f[0].TxID != "stale" {
		t.Fatalf("findings %+v, want one about tx stale", f)
	}
}
