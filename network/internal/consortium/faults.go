package consortium

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/inter-nmi/pki/network/pkg/topology"
)

// OrdererState is what one running orderer says of the channel.
type OrdererState struct {
	// Name is the NMI that runs the orderer.
	Name string
	// Height is how many blocks of the channel it holds.
	Height uint64
	// View is its BFT view number: it advances with every view change.
	View uint64
	// Leader is the NMI whose orderer it names as the BFT leader in its
	// metrics. An orderer that restarted names its own view's leader until
	// it takes part in a view change, though it follows the current one.
	Leader string
	// Syncs counts the times it caught up by pulling blocks from the
	// others since it started: an orderer that has fallen behind, or is
	// still catching up after a restart, keeps syncing; one that follows
	// the cluster by consensus does not.
	Syncs uint64
}

// OrdererStates asks every orderer of the topology for its height (channel
// participation API) and its view and leader (metrics). It returns the
// states of those that answered, and an error naming each that did not
// (stopped, frozen, cut off).
func (nw *Network) OrdererStates(ctx context.Context) ([]OrdererState, error) {
	orderers := nw.Topology.Orderers()
	var out []OrdererState
	var errs []error
	for _, n := range orderers {
		if _, ok := nw.procs().Running(ordererProc(n)); !ok {
			errs = append(errs, fmt.Errorf("%s orderer is not running", n.Name))
			continue
		}
		s, err := nw.ordererState(ctx, n, orderers)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s orderer: %w", n.Name, err))
			continue
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

func (nw *Network) ordererState(ctx context.Context, n *topology.NMI, orderers []*topology.NMI) (OrdererState, error) {
	s := OrdererState{Name: n.Name}
	admin := filepath.Join(nw.user(n, UserAdmin), "tls")
	status, body, err := httpsGet(ctx, n.OrdererAdminAddress(), "/participation/v1/channels/"+url.PathEscape(nw.Topology.Channel), nw.tlsCA(n), admin)
	if err != nil {
		return s, err
	}
	if status != 200 {
		return s, fmt.Errorf("channel participation API: status %d: %s", status, body)
	}
	var info struct {
		Height uint64 `json:"height"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return s, fmt.Errorf("channel participation API: %w", err)
	}
	s.Height = info.Height
	status, body, err = httpsGet(ctx, n.OrdererOperationsAddress(), "/metrics", nw.tlsCA(n), admin)
	if err != nil {
		return s, err
	}
	if status != 200 {
		return s, fmt.Errorf("metrics: status %d", status)
	}
	view, ok := metric(body, "consensus_smartbft_view_number")
	if !ok {
		return s, errors.New("no consensus_smartbft_view_number in its metrics")
	}
	leader, ok := metric(body, "consensus_BFT_leader_id")
	if !ok {
		return s, errors.New("no consensus_BFT_leader_id in its metrics")
	}
	syncs, _ := metric(body, "consensus_smartbft_consensus_latency_sync_count")
	s.View, s.Syncs = uint64(view), uint64(syncs)
	if id := int(leader); id >= 1 && id <= len(orderers) {
		s.Leader = orderers[id-1].Name
	}
	return s, nil
}

// metric reads the value of a gauge from a Prometheus text exposition
// (the first series of that name).
func metric(body []byte, name string) (float64, bool) {
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			continue
		}
		return v, true
	}
	return 0, false
}

// RebuildPeer gives an NMI's peer an empty ledger, as after the loss of its
// disk: the peer is killed, its ledger directory removed, and it is started
// and joined to the channel with the genesis block again; it then rebuilds
// every block from the orderers while it serves. The chaincode installed on
// it is kept. It returns once the peer has joined, before it has caught up.
func (nw *Network) RebuildPeer(ctx context.Context, nmi string) error {
	n, err := nw.Topology.NMI(nmi)
	if err != nil {
		return err
	}
	if _, err := nw.procs().Stop(ctx, peerProc(n), 0); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(nw.PeerDataDir(n), "ledgersData")); err != nil {
		return err
	}
	if err := nw.startPeer(ctx, n); err != nil {
		return err
	}
	return nw.joinPeer(ctx, n)
}

// LimitRegistryDisk stops an NMI's registry, moves its directory onto a
// file system of its own with only free bytes left (a tmpfs), and starts
// it again there: its disk fills up as it works. It needs root.
// ResizeRegistryDisk gives it room again; UnlimitRegistryDisk moves it back.
func (nw *Network) LimitRegistryDisk(ctx context.Context, nmi string, free int64) error {
	n, err := nw.Topology.NMI(nmi)
	if err != nil {
		return err
	}
	dir := nw.registryDir(n)
	if _, err := nw.procs().Stop(ctx, registryProc(n), stopGrace); err != nil {
		return err
	}
	used, err := diskUsage(dir)
	if err != nil {
		return err
	}
	saved := dir + ".saved"
	if err := os.Rename(dir, saved); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if err := mountTmpfs(dir, used+free); err != nil {
		return err
	}
	if err := copySparse(saved, dir); err != nil {
		return err
	}
	return nw.startRegistry(ctx, n)
}

// ResizeRegistryDisk sets the size of the file system LimitRegistryDisk
// made for an NMI's registry, which keeps running.
func (nw *Network) ResizeRegistryDisk(nmi string, size int64) error {
	n, err := nw.Topology.NMI(nmi)
	if err != nil {
		return err
	}
	return command("mount", "-o", "remount,size="+strconv.FormatInt(size, 10), nw.registryDir(n))
}

// UnlimitRegistryDisk stops the registry, moves its directory back from the
// file system LimitRegistryDisk made, and starts it again.
func (nw *Network) UnlimitRegistryDisk(ctx context.Context, nmi string) error {
	n, err := nw.Topology.NMI(nmi)
	if err != nil {
		return err
	}
	dir := nw.registryDir(n)
	saved := dir + ".saved"
	if _, err := os.Stat(saved); err != nil {
		return fmt.Errorf("%s's registry has no limited disk: %w", n.Name, err)
	}
	if _, err := nw.procs().Stop(ctx, registryProc(n), stopGrace); err != nil {
		return err
	}
	if err := os.RemoveAll(saved); err != nil {
		return err
	}
	if err := os.Mkdir(saved, 0o755); err != nil {
		return err
	}
	if err := copySparse(dir, saved); err != nil {
		return err
	}
	if err := command("umount", dir); err != nil {
		return err
	}
	if err := os.Remove(dir); err != nil {
		return err
	}
	if err := os.Rename(saved, dir); err != nil {
		return err
	}
	return nw.startRegistry(ctx, n)
}

// RemoveRegistryIndex deletes an NMI's registry's index of the blocks
// while the registry runs (it keeps the file it has open, unlinked).
func (nw *Network) RemoveRegistryIndex(nmi string) error {
	n, err := nw.Topology.NMI(nmi)
	if err != nil {
		return err
	}
	return os.Remove(nw.RegistryIndex(n))
}

func mountTmpfs(dir string, size int64) error {
	// tmpfs sizes are whole pages.
	page := int64(os.Getpagesize())
	size = (size + page - 1) / page * page
	return command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10)+",mode=0755", "tmpfs", dir)
}

// diskUsage is the bytes the files under dir take on disk. bbolt grows a
// file sparsely, ahead of its data: counted (and copied) with its holes,
// a database would find room in them that the limited disk must not give.
func diskUsage(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			return err
		}
		total += st.Blocks * 512
		return nil
	})
	return total, err
}

// copySparse copies a directory tree, leaving a hole where a file has a
// page of zeros (its holes read as such): the copy takes no more of the
// disk than the original.
func copySparse(src, dst string) error { return copyTreeWith(src, dst, copyFileSparse) }

func copyFileSparse(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	page := make([]byte, 4096)
	var off int64
	for {
		n, err := io.ReadFull(in, page)
		if n > 0 && !allZero(page[:n]) {
			if _, werr := out.WriteAt(page[:n], off); werr != nil {
				out.Close()
				return werr
			}
		}
		off += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			out.Close()
			return err
		}
	}
	if err := out.Truncate(info.Size()); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func command(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// RegistryMetric reads a gauge or counter of an NMI's registry from its
// operations endpoint, as the NMI's monitoring would.
func (nw *Network) RegistryMetric(ctx context.Context, nmi, name string) (float64, error) {
	n, err := nw.Topology.NMI(nmi)
	if err != nil {
		return 0, err
	}
	status, body, err := httpsGet(ctx, n.RegistryOperationsAddress(), "/metrics", nw.tlsCA(n), filepath.Join(nw.user(n, UserAdmin), "tls"))
	if err != nil {
		return 0, err
	}
	if status != 200 {
		return 0, fmt.Errorf("%s registry metrics: status %d", n.Name, status)
	}
	v, ok := metric(body, name)
	if !ok {
		return 0, fmt.Errorf("%s registry metrics: no %s", n.Name, name)
	}
	return v, nil
}
