package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/network/internal/consortium"
	"github.com/inter-nmi/pki/network/internal/reconcile"
	"github.com/inter-nmi/pki/network/pkg/channel"
)

// ledgerCommand reads every member's peer's ledger and says what it holds
// of measurements: the ledger's own answer, for checking a load or fault
// run against it rather than against what the registries said.
func ledgerCommand(ctx context.Context, nw *consortium.Network, args []string, out io.Writer) (int, error) {
	fs := flag.NewFlagSet("ledger", flag.ContinueOnError)
	prefix := fs.String("meters", "", "count only meters whose ID starts with this (a metersim run's prefix)")
	save := fs.String("save", "", "also write the first NMI's peer's blocks to this directory, one protobuf file per block (0000.block, ...)")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	profile, err := consortium.LoadProfile(nw.ProfileFile())
	if err != nil {
		return 1, err
	}
	if *save != "" {
		if err := saveBlocks(ctx, nw, profile, *save); err != nil {
			return 1, err
		}
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "PEER\tHEIGHT\tACCEPTED\tACCEPTED TWICE\tREJECTIONS\tREJECTIONS OF ACCEPTED\tINVALID TXS")
	var first *reconcile.Ledger
	var firstName string
	code := 0
	for i := range nw.Topology.NMIs {
		n := &nw.Topology.NMIs[i]
		np, err := profile.NMI(n.Name)
		if err != nil {
			return 1, err
		}
		conn, err := np.Dial(consortium.UserAuditor)
		if err != nil {
			return 1, err
		}
		l, err := reconcile.Read(ctx, conn.GetNetwork(profile.Channel), profile.Chaincode, 0)
		conn.Close()
		if err != nil {
			fmt.Fprintf(w, "%s\t%v\n", n.Name, err)
			code = 1
			continue
		}
		accepted, twice, rejections, both := 0, 0, 0, 0
		for it, c := range l.Accepted {
			if strings.HasPrefix(it.MeterID, *prefix) {
				accepted++
				if c > 1 {
					twice++
				}
				if len(l.Rejected[it]) > 0 {
					both++
				}
			}
		}
		for it, codes := range l.Rejected {
			if strings.HasPrefix(it.MeterID, *prefix) {
				rejections += len(codes)
			}
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", n.Name, l.Height(), accepted, twice, rejections, both, invalid(l.Invalid))
		if twice > 0 || both > 0 {
			code = 1
		}
		if first == nil {
			first, firstName = l, n.Name
		} else if b, diverge := reconcile.Diverging(first, l); diverge {
			fmt.Fprintf(w, "%s\tdiffers from %s at block %d\n", n.Name, firstName, b)
			code = 1
		}
	}
	if err := w.Flush(); err != nil {
		return 1, err
	}
	if code != 0 {
		return code, errors.New("the ledgers disagree, or hold a measurement twice or both accepted and rejected")
	}
	return 0, nil
}

func invalid(counts map[string]int) string {
	if len(counts) == 0 {
		return "none"
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s %d", c, counts[c]))
	}
	return strings.Join(parts, ", ")
}

// saveBlocks writes every block of the channel, as the first NMI's peer
// returns them, to dir: the raw chain, for testdata/generate.sh and for an
// auditor who wants the blocks themselves.
func saveBlocks(ctx context.Context, nw *consortium.Network, profile *consortium.Profile, dir string) error {
	np, err := profile.NMI(nw.Topology.NMIs[0].Name)
	if err != nil {
		return err
	}
	conn, err := np.Dial(consortium.UserAuditor)
	if err != nil {
		return err
	}
	defer conn.Close()
	network := conn.GetNetwork(profile.Channel)
	height, err := channel.Height(ctx, network)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	blocks, err := network.BlockEvents(ctx, client.WithStartBlock(0))
	if err != nil {
		return fmt.Errorf("read blocks: %w", err)
	}
	for n := uint64(0); n < height; n++ {
		b, ok := <-blocks
		if !ok {
			return fmt.Errorf("the block stream ended at block %d, before %d", n, height)
		}
		if got := b.GetHeader().GetNumber(); got != n {
			return fmt.Errorf("block %d arrived where block %d was expected", got, n)
		}
		raw, err := proto.Marshal(b)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%04d.block", n)), raw, 0o644); err != nil {
			return err
		}
	}
	return nil
}
