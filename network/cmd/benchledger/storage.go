package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/inter-nmi/pki/network/internal/consortium"
)

// The stores measured, by the node that keeps them. The peer's and the
// orderer's are parts of their data directories.
const (
	nodePeer     = "peer"
	nodeOrderer  = "orderer"
	nodeRegistry = "registry"
	nodeExplorer = "explorer"
)

// A store is one kind of data a node keeps on disk.
type store struct{ Node, Store string }

// stores in the order the tables list them.
var stores = []store{
	{nodePeer, "blocks"}, {nodePeer, "block index"}, {nodePeer, "state"}, {nodePeer, "history"}, {nodePeer, "other"},
	{nodeOrderer, "blocks"}, {nodeOrderer, "WAL"}, {nodeOrderer, "other"},
	{nodeRegistry, "readings index"}, {nodeRegistry, "idempotency records"},
	{nodeExplorer, "index"},
}

// part claims the files under a path relative to a tree's root for a store.
type part struct {
	Rel   string
	Store store
}

// A tree is a file or directory of one instance of a node (an NMI's peer,
// say), whose files are split among stores: each file goes to the first
// part whose path holds it, else to Rest.
type tree struct {
	// Instance is the NMI whose node keeps the tree, or the node's name.
	Instance string
	Root     string
	Parts    []part
	Rest     store
}

// What Fabric keeps under a peer's fileSystemPath (kvledger's layout):
// ledgersData/chains/chains/<channel>/blockfile_* are the blocks,
// ledgersData/chains/index the block store's index (block numbers,
// transaction IDs), stateLeveldb the world state and historyLeveldb the key
// history; the rest is small (bookkeeper, configHistory, ledgerProvider,
// pvtdataStore, the transient store, the chaincode installed, snapshots).
var peerParts = []part{
	{filepath.Join("ledgersData", "chains", "chains"), store{nodePeer, "blocks"}},
	{filepath.Join("ledgersData", "chains", "index"), store{nodePeer, "block index"}},
	{filepath.Join("ledgersData", "stateLeveldb"), store{nodePeer, "state"}},
	{filepath.Join("ledgersData", "historyLeveldb"), store{nodePeer, "history"}},
}

// An orderer's data directory (see fabricconfig.Orderer): ledger/ is its
// block ledger (block files and their index), smartbft/wal SmartBFT's
// write-ahead log; the rest is SmartBFT's snapshots.
var ordererParts = []part{
	{"ledger", store{nodeOrderer, "blocks"}},
	{filepath.Join("smartbft", "wal"), store{nodeOrderer, "WAL"}},
}

// trees are the consortium's stores: every NMI's peer, orderer (if it runs
// one) and registry, and the explorer.
func trees(nw *consortium.Network) []tree {
	var out []tree
	for i := range nw.Topology.NMIs {
		n := &nw.Topology.NMIs[i]
		out = append(out,
			tree{Instance: n.Name, Root: nw.PeerDataDir(n), Parts: peerParts, Rest: store{nodePeer, "other"}},
			tree{Instance: n.Name, Root: nw.RegistryIndex(n), Rest: store{nodeRegistry, "readings index"}},
			tree{Instance: n.Name, Root: nw.RegistryDatabase(n), Rest: store{nodeRegistry, "idempotency records"}})
		if n.Orderer != nil {
			out = append(out, tree{Instance: n.Name, Root: nw.OrdererDataDir(n), Parts: ordererParts, Rest: store{nodeOrderer, "other"}})
		}
	}
	return append(out, tree{Instance: nodeExplorer, Root: nw.ExplorerIndex(), Rest: store{nodeExplorer, "index"}})
}

// instanceStore is one instance's share of a store.
type instanceStore struct {
	store
	Instance string
}

// Sizes are the bytes allocated on disk by each instance's share of each
// store, and the instances of each store.
type Sizes struct {
	Bytes     map[instanceStore]int64
	Instances map[store][]string
}

// measureSizes walks the trees and adds up the bytes allocated to their
// files (st_blocks × 512, as du counts them): the databases are sparse
// files that grow by more than they hold. A file linked twice counts once;
// a tree or file that does not exist, or vanishes while it is walked (a
// LevelDB compaction), counts nothing.
func measureSizes(trees []tree) (Sizes, error) {
	s := Sizes{Bytes: map[instanceStore]int64{}, Instances: map[store][]string{}}
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	for _, t := range trees {
		for _, p := range t.Parts {
			s.Instances[p.Store] = append(s.Instances[p.Store], t.Instance)
		}
		s.Instances[t.Rest] = append(s.Instances[t.Rest], t.Instance)
		err := filepath.WalkDir(t.Root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			info, err := d.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			st, ok := info.Sys().(*syscall.Stat_t)
			if !ok {
				return nil
			}
			if st.Nlink > 1 {
				key := inode{uint64(st.Dev), st.Ino}
				if seen[key] {
					return nil
				}
				seen[key] = true
			}
			rel, err := filepath.Rel(t.Root, path)
			if err != nil {
				return err
			}
			s.Bytes[instanceStore{t.storeOf(rel), t.Instance}] += st.Blocks * 512
			return nil
		})
		if err != nil {
			return s, err
		}
	}
	return s, nil
}

// storeOf is the store a file of the tree belongs to.
func (t tree) storeOf(rel string) store {
	for _, p := range t.Parts {
		if rel == p.Rel || strings.HasPrefix(rel, p.Rel+string(os.PathSeparator)) {
			return p.Store
		}
	}
	return t.Rest
}

// grown is what each instance's share of each store grew from before to s.
func (s Sizes) grown(before Sizes) map[instanceStore]int64 {
	out := map[instanceStore]int64{}
	for k, b := range s.Bytes {
		out[k] += b
	}
	for k, b := range before.Bytes {
		out[k] -= b
	}
	return out
}

// Growth is how much one store (or several) grew over a stretch of load.
type Growth struct {
	Instances int `json:"instances"`
	// Bytes is the growth of all instances, Size their size at the end.
	Bytes int64 `json:"bytes"`
	Size  int64 `json:"sizeBytes"`
	// PerInstance is bytes per accepted reading of one instance (the
	// average), All of all instances.
	PerInstance float64 `json:"bytesPerReadingPerInstance"`
	All         float64 `json:"bytesPerReading"`
}

func (g *Growth) per(accepted int) {
	if accepted > 0 {
		g.All = float64(g.Bytes) / float64(accepted)
	}
	if g.Instances > 0 {
		g.PerInstance = g.All / float64(g.Instances)
	}
}

// StoreGrowth is the growth of one store, or of all a node's stores when
// Store is empty.
type StoreGrowth struct {
	Node  string `json:"node"`
	Store string `json:"store,omitempty"`
	Growth
}

// Storage is the bytes on disk the consortium spent on its accepted
// readings, store by store.
type Storage struct {
	Accepted int           `json:"accepted"`
	Stores   []StoreGrowth `json:"stores"`
	// Nodes adds up each node's stores, per instance of the node (a peer,
	// an orderer, a registry, the explorer).
	Nodes []StoreGrowth `json:"nodes"`
	// OneNMI is the machines of one NMI, the one that served the load: its
	// peer, its orderer (the orderers' average if it runs none), its
	// registry's index and idempotency records.
	OneNMIName string `json:"oneNMIName"`
	OneNMI     Growth `json:"oneNMI"`
	// Total is every store of the consortium.
	Total Growth `json:"total"`
}

// storageGrowth is what the stores grew by, per accepted reading, given
// the sizes at the end and each instance's growth.
func storageGrowth(after Sizes, grown map[instanceStore]int64, accepted int, via string) Storage {
	out := Storage{Accepted: accepted, OneNMIName: via, OneNMI: Growth{Instances: 1}, Total: Growth{Instances: 1}}
	byStore := map[store]*Growth{}
	for _, s := range stores {
		byStore[s] = &Growth{Instances: len(after.Instances[s])}
	}
	add := func(k instanceStore, bytes, size int64) {
		g := byStore[k.store]
		if g == nil {
			return
		}
		g.Bytes += bytes
		g.Size += size
		if k.Instance == via && k.Node != nodeExplorer {
			out.OneNMI.Bytes += bytes
			out.OneNMI.Size += size
		}
	}
	for k, b := range grown {
		add(k, b, 0)
	}
	for k, size := range after.Bytes {
		add(k, 0, size)
	}
	nodes := map[string]int{} // index in out.Nodes
	for _, s := range stores {
		g := *byStore[s]
		g.per(accepted)
		out.Stores = append(out.Stores, StoreGrowth{Node: s.Node, Store: s.Store, Growth: g})
		i, ok := nodes[s.Node]
		if !ok {
			i = len(out.Nodes)
			nodes[s.Node] = i
			out.Nodes = append(out.Nodes, StoreGrowth{Node: s.Node})
		}
		n := &out.Nodes[i]
		n.Instances = max(n.Instances, g.Instances)
		n.Bytes += g.Bytes
		n.Size += g.Size
		out.Total.Bytes += g.Bytes
		out.Total.Size += g.Size
	}
	for i := range out.Nodes {
		n := &out.Nodes[i]
		n.per(accepted)
		if n.Node == nodeOrderer && n.Instances > 0 && !slices.Contains(after.Instances[ordererParts[0].Store], via) {
			out.OneNMI.Bytes += n.Bytes / int64(n.Instances)
			out.OneNMI.Size += n.Size / int64(n.Instances)
		}
	}
	out.OneNMI.per(accepted)
	out.Total.per(accepted)
	return out
}
