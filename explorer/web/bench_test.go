package web

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/explorer/index/synth"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/credentials"
)

// The benchmark index: 100,000 meters over 10,000 blocks, alternately a
// block registering 20 meters for one NMI in turn and a block with a
// concentrator batch of 100 readings, every 25th refused.
const (
	benchRegBlocks   = 5000
	benchPerReg      = 20
	benchBatch       = 100
	benchRefuseEvery = 25
	benchMeters      = benchRegBlocks * benchPerReg
)

// bench is the index the benchmarks share: generated once per run, in a
// temporary directory named after its size, removed by TestMain.
var bench struct {
	once       sync.Once
	err        error
	dir        string
	store      *index.Store
	generated  time.Duration
	indexBytes int64
	heapInuse  uint64
	last       time.Time // the newest block's time
	txIDs      []string
	hashes     []string
	srv        *Server
	cookie     *http.Cookie
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.store != nil {
		bench.store.Close()
	}
	if bench.dir != "" && os.Getenv("EXPLORER_BENCH_KEEP") == "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

// benchIndex returns the signed-in server over the benchmark index.
func benchIndex(b *testing.B) (*Server, *http.Cookie) {
	b.Helper()
	bench.once.Do(func() { bench.err = generate() })
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.srv, bench.cookie
}

func generate() error {
	// EXPLORER_BENCH_KEEP keeps the generated index in that directory, to
	// measure the explorer binary serving it.
	dir := os.Getenv("EXPLORER_BENCH_KEEP")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", fmt.Sprintf("explorer-web-bench-%dm-%db-", benchMeters, 2*benchRegBlocks)); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	bench.dir = dir
	path := filepath.Join(dir, "index.db")
	began := time.Now()
	store, err := index.Open(path)
	if err != nil {
		return err
	}
	store.SetNoSync(true)
	// Making blocks and indexing them overlap: one goroutine each.
	blocks := make(chan *chain.Block, 64)
	go func() {
		defer close(blocks)
		c := synth.New(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
		for k := range benchRegBlocks {
			blocks <- c.Register(synth.NMIs[k%len(synth.NMIs)], benchPerReg)
			all := c.Meters()
			from := (k * benchBatch) % len(all)
			batch := all[from:min(from+benchBatch, len(all))]
			blocks <- c.Measurements(synth.NMIs[(k+2)%len(synth.NMIs)], batch, benchBatch, benchRefuseEvery)
		}
	}()
	for blk := range blocks {
		if err := store.Add(blk, index.Integrity{Checked: true, CheckedThrough: blk.Number}, nil, nil); err != nil {
			store.Close()
			for range blocks { // let the producer finish
			}
			return err
		}
		if blk.Number%997 == 0 {
			bench.txIDs = append(bench.txIDs, blk.Txs[0].ID)
			bench.hashes = append(bench.hashes, hex.EncodeToString(blk.HeaderHash))
		}
		bench.last = blk.Time
	}
	if err := store.Close(); err != nil {
		return err
	}
	bench.generated = time.Since(began)

	// Loading: what the explorer holds after opening the index.
	if bench.store, err = index.Open(path); err != nil {
		return err
	}
	token, cred, err := credentials.NewToken("bench-auditor", credentials.RoleAuditor)
	if err != nil {
		return err
	}
	creds, err := credentials.New([]credentials.Credential{cred})
	if err != nil {
		return err
	}
	now := bench.last.Add(30 * time.Second)
	bench.srv = New(Options{Store: bench.store, Credentials: creds, Channel: "metrology", Now: func() time.Time { return now }})
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	bench.heapInuse = after.HeapInuse

	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	bench.indexBytes = fi.Size()

	req := httptest.NewRequest("POST", "/login", nil)
	req.PostForm = url.Values{"token": {token}}
	rec := httptest.NewRecorder()
	bench.srv.Handler().ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == cookieName {
			bench.cookie = c
		}
	}
	if bench.cookie == nil {
		return fmt.Errorf("bench sign-in: %d", rec.Code)
	}
	fmt.Fprintf(os.Stderr, "bench index: %d meters, %d blocks, generated in %v, %.1f MB on disk, heap in use after loading %.1f MB\n",
		benchMeters, 2*benchRegBlocks, bench.generated.Round(time.Millisecond), float64(bench.indexBytes)/1e6, float64(bench.heapInuse)/1e6)
	return nil
}

// serve runs the requests round-robin, expecting status.
func serve(b *testing.B, paths []string, status int) {
	srv, cookie := benchIndex(b)
	h := srv.Handler()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		req := httptest.NewRequest("GET", paths[i%len(paths)], nil)
		req.AddCookie(cookie)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != status {
			b.Fatalf("%s: %d, want %d", paths[i%len(paths)], rec.Code, status)
		}
	}
	// After the loop: b.Loop's first call drops metrics reported before it.
	b.ReportMetric(float64(bench.indexBytes)/1e6, "index-MB")
	b.ReportMetric(float64(bench.heapInuse)/1e6, "heap-MB")
}

func BenchmarkDashboard(b *testing.B) {
	serve(b, []string{"/"}, http.StatusOK)
}

func BenchmarkMeterPage(b *testing.B) {
	var paths []string
	for i := range 1000 {
		paths = append(paths, "/meters/"+synth.MeterID(1+(i*7919)%benchMeters))
	}
	serve(b, paths, http.StatusOK)
}

func BenchmarkSearch(b *testing.B) {
	benchIndex(b)
	var paths []string
	for i := range bench.txIDs {
		for _, q := range []string{synth.MeterID(1 + (i*7919)%benchMeters), bench.txIDs[i], bench.hashes[i], strconv.Itoa(i * 997)} {
			paths = append(paths, "/search?q="+url.QueryEscape(q))
		}
	}
	serve(b, paths, http.StatusSeeOther)
}

// BenchmarkExportCSV is the whole registry of 100,000 meters as of the
// newest block.
func BenchmarkExportCSV(b *testing.B) {
	serve(b, []string{"/export/registry.csv"}, http.StatusOK)
}
