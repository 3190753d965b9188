package main

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/inter-nmi/pki/network/internal/consortium"
	"github.com/inter-nmi/pki/network/pkg/topology"
)

// writeFile makes a file of data bytes, then extends it to size without
// writing (a sparse file, as a bbolt database grows).
func writeFile(t *testing.T, path string, data, size int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, data)); err != nil {
		t.Fatal(err)
	}
	if size > data {
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// Each file of a data directory goes to the store its path names, the rest
// to the node's other files; sizes are what is allocated on disk, so a
// sparse database counts what it holds, not its length; a file linked twice
// counts once; a missing tree counts nothing but is an instance.
func TestMeasureSizes(t *testing.T) {
	root := t.TempDir()
	peer, orderer := filepath.Join(root, "peer"), filepath.Join(root, "orderer")
	index, answers := filepath.Join(root, "registry", "readings.db"), filepath.Join(root, "registry", "registry.db")
	files := map[string]store{
		filepath.Join(peer, "ledgersData/chains/chains/metrology/blockfile_000000"): {nodePeer, "blocks"},
		filepath.Join(peer, "ledgersData/chains/index/000001.log"):                  {nodePeer, "block index"},
		filepath.Join(peer, "ledgersData/stateLeveldb/000002.ldb"):                  {nodePeer, "state"},
		filepath.Join(peer, "ledgersData/historyLeveldb/000001.log"):                {nodePeer, "history"},
		filepath.Join(peer, "ledgersData/bookkeeper/000001.log"):                    {nodePeer, "other"},
		filepath.Join(peer, "ledgersData/chains/chainsnot/x"):                       {nodePeer, "other"},
		filepath.Join(peer, "chaincodes/pki.tar.gz"):                                {nodePeer, "other"},
		filepath.Join(orderer, "ledger/chains/metrology/blockfile_000000"):          {nodeOrderer, "blocks"},
		filepath.Join(orderer, "ledger/index/000001.log"):                           {nodeOrderer, "blocks"},
		filepath.Join(orderer, "smartbft/wal/metrology/0000000000000001.wal"):       {nodeOrderer, "WAL"},
		filepath.Join(orderer, "smartbft/snapshot/x"):                               {nodeOrderer, "other"},
		answers: {nodeRegistry, "idempotency records"},
	}
	want := map[instanceStore]int64{}
	for path, s := range files {
		writeFile(t, path, 3*4096, 0)
		want[instanceStore{s, "PTB"}] += allocated(path)
	}
	// The WAL and the index are preallocated, sparse.
	wal := filepath.Join(orderer, "smartbft/wal/metrology/0000000000000002.wal")
	writeFile(t, wal, 4096, 64<<20)
	writeFile(t, index, 4096, 32<<20)
	want[instanceStore{store{nodeOrderer, "WAL"}, "PTB"}] += allocated(wal)
	want[instanceStore{store{nodeRegistry, "readings index"}, "PTB"}] = allocated(index)
	for _, sparse := range []string{wal, index} {
		if allocated(sparse) >= 32<<20 {
			t.Skipf("this file system allocates sparse files in full (%s: %d bytes)", sparse, allocated(sparse))
		}
	}
	if err := os.Link(filepath.Join(peer, "ledgersData/chains/chains/metrology/blockfile_000000"), filepath.Join(peer, "ledgersData/chains/chains/metrology/hardlink")); err != nil {
		t.Fatal(err)
	}

	trees := []tree{
		{Instance: "PTB", Root: peer, Parts: peerParts, Rest: store{nodePeer, "other"}},
		{Instance: "PTB", Root: orderer, Parts: ordererParts, Rest: store{nodeOrderer, "other"}},
		{Instance: "PTB", Root: index, Rest: store{nodeRegistry, "readings index"}},
		{Instance: "PTB", Root: answers, Rest: store{nodeRegistry, "idempotency records"}},
		{Instance: "CMI", Root: filepath.Join(root, "cmi", "peer"), Parts: peerParts, Rest: store{nodePeer, "other"}},
		{Instance: "explorer", Root: filepath.Join(root, "explorer.db"), Rest: store{nodeExplorer, "index"}},
	}
	got, err := measureSizes(trees)
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range want {
		if got.Bytes[k] != w {
			t.Errorf("%s %s of %s: %d bytes, want %d", k.Node, k.Store, k.Instance, got.Bytes[k], w)
		}
	}
	for k, b := range got.Bytes {
		if _, ok := want[k]; !ok {
			t.Errorf("%s %s of %s: %d bytes, want none", k.Node, k.Store, k.Instance, b)
		}
	}
	if got.Bytes[instanceStore{store{nodeOrderer, "WAL"}, "PTB"}] >= 64<<20 {
		t.Error("a sparse file counted at its length")
	}
	for s, want := range map[store]int{{nodePeer, "blocks"}: 2, {nodePeer, "other"}: 2, {nodeOrderer, "WAL"}: 1, {nodeExplorer, "index"}: 1} {
		if n := len(got.Instances[s]); n != want {
			t.Errorf("%s %s: %d instances, want %d", s.Node, s.Store, n, want)
		}
	}
}

// The trees are the consortium's run directory: every NMI's peer data and
// registry files, the orderers' data directories, the explorer's index.
func TestTrees(t *testing.T) {
	top, err := topology.Load(filepath.Join("..", "..", "topology.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	nw := &consortium.Network{Layout: consortium.Layout{Root: "/run"}, Topology: top}
	roots := map[string]bool{}
	orderers := 0
	for _, tr := range trees(nw) {
		roots[tr.Root] = true
		if tr.Rest.Node == nodeOrderer {
			orderers++
		}
	}
	if orderers != len(top.Orderers()) {
		t.Errorf("%d orderer trees for %d orderers", orderers, len(top.Orderers()))
	}
	ptb := &top.NMIs[0]
	for _, want := range []string{nw.PeerDataDir(ptb), nw.OrdererDataDir(ptb), nw.RegistryIndex(ptb), nw.RegistryDatabase(ptb), nw.ExplorerIndex()} {
		if !roots[want] {
			t.Errorf("no tree at %s", want)
		}
	}
	if len(roots) != 3*len(top.NMIs)+len(top.Orderers())+1 {
		t.Errorf("%d trees: %v", len(roots), roots)
	}
}

// Growth per accepted reading: of one instance on average and of all, per
// store and per node; one NMI's machines are the serving NMI's peer,
// orderer and registry, or the orderers' average if it runs none.
func TestStorageGrowth(t *testing.T) {
	at := func(node, st, instance string) instanceStore { return instanceStore{store{node, st}, instance} }
	after := Sizes{
		Bytes: map[instanceStore]int64{
			at(nodePeer, "blocks", "A"): 5000, at(nodePeer, "blocks", "B"): 5000,
			at(nodePeer, "state", "A"): 900, at(nodePeer, "state", "B"): 700,
			at(nodeOrderer, "blocks", "A"): 6000, at(nodeOrderer, "WAL", "A"): 300,
			at(nodeRegistry, "readings index", "A"): 400, at(nodeRegistry, "readings index", "B"): 400,
			at(nodeRegistry, "idempotency records", "B"): 250,
			at(nodeExplorer, "index", "explorer"):        1000,
		},
		Instances: map[store][]string{},
	}
	for _, s := range stores {
		switch s.Node {
		case nodeOrderer:
			after.Instances[s] = []string{"A"}
		case nodeExplorer:
			after.Instances[s] = []string{"explorer"}
		default:
			after.Instances[s] = []string{"A", "B"}
		}
	}
	grown := map[instanceStore]int64{
		at(nodePeer, "blocks", "A"): 1000, at(nodePeer, "blocks", "B"): 1000,
		at(nodePeer, "state", "A"): 300, at(nodePeer, "state", "B"): -100, // compacted
		at(nodeOrderer, "blocks", "A"): 1200, at(nodeOrderer, "WAL", "A"): 0,
		at(nodeRegistry, "readings index", "A"): 200, at(nodeRegistry, "readings index", "B"): 200,
		at(nodeRegistry, "idempotency records", "B"): 100,
		at(nodeExplorer, "index", "explorer"):        400,
		at(nodePeer, "other", "B"):                   -50, // a file removed
	}
	s := storageGrowth(after, grown, 100, "B")
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	byName := map[string]StoreGrowth{}
	for _, g := range append(s.Stores, s.Nodes...) {
		byName[g.Node+"/"+g.Store] = g
	}
	if len(s.Stores) != len(stores) || len(s.Nodes) != 4 {
		t.Fatalf("%d stores, %d nodes", len(s.Stores), len(s.Nodes))
	}
	near("peer blocks, all", byName["peer/blocks"].All, 20)
	near("peer blocks, one", byName["peer/blocks"].PerInstance, 10)
	near("peer state, all", byName["peer/state"].All, 2)
	near("peer other, all", byName["peer/other"].All, -0.5)
	near("peer, all", byName["peer/"].All, 21.5)
	near("peer, one", byName["peer/"].PerInstance, 10.75)
	near("orderer, one", byName["orderer/"].PerInstance, 12)
	near("registry, all", byName["registry/"].All, 5)
	near("explorer, one", byName["explorer/"].PerInstance, 4)
	if g := byName["peer/blocks"]; g.Instances != 2 || g.Bytes != 2000 || g.Size != 10000 {
		t.Errorf("peer blocks %+v", g)
	}
	// B: peer 1000-100-50, registry 200+100, and the orderers' average.
	near("one NMI", s.OneNMI.All, (850+300+1200)/100.0)
	if s.OneNMIName != "B" {
		t.Errorf("one NMI named %q", s.OneNMIName)
	}
	near("total", s.Total.All, (2000+200-50+1200+400+100+400)/100.0)
	if s.Total.Size != 19950 {
		t.Errorf("total size %d", s.Total.Size)
	}

	a := storageGrowth(after, grown, 100, "A")
	near("one NMI with its own orderer", a.OneNMI.All, (1000+300+1200+200)/100.0)

	if z := storageGrowth(after, grown, 0, "A"); z.Total.All != 0 || z.Total.Bytes == 0 {
		t.Errorf("nothing accepted: %+v", z.Total)
	}
}
