package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/usage"
)

// minBlockFlag adds --min-block to a read command.
func minBlockFlag(c *cobra.Command, r *client.Read) {
	c.Flags().Uint64Var(&r.MinBlock, "min-block", 0, "wait until the registry's peer has this block, to read a write made through another NMI")
}

// meterArg checks the meter ID argument.
func meterArg(id string) error {
	if err := meter.ValidateMeterID(id); err != nil {
		return usage.Wrap(err)
	}
	return nil
}

func (a *app) showCommand() *cobra.Command {
	var r client.Read
	c := &cobra.Command{
		Use:   "show METER-ID",
		Short: "Show a meter's record",
		Long:  `Show a meter's record: NMI, status, current key (curve, version, fingerprint, PEM), metadata, and revocation if any.`,
		Example: `  pki show PTB-0001
  pki show PTB-0001 --min-block 1234 -o json`,
		Args: exactArgs(1, "one meter ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := meterArg(args[0]); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			m, err := c.GetMeter(cmd.Context(), args[0], r)
			if err != nil {
				return fmt.Errorf("read meter %s: %w", args[0], err)
			}
			return a.print(m, func(w io.Writer) {
				meterText(w, m)
				fmt.Fprintf(w, "public key\n%s", m.PublicKey)
			})
		},
	}
	minBlockFlag(c, &r)
	return c
}

func (a *app) listCommand() *cobra.Command {
	var o client.ListOptions
	var all bool
	c := &cobra.Command{
		Use:   "list [--nmi NMI] [--status active|revoked] [--limit N] [--all]",
		Short: "List meters",
		Long: `List meters, one page at a time, optionally only one NMI's or only active or
revoked ones. A page that has more after it prints the cursor of the next page on
stderr; --all follows the cursors to the end.`,
		Example: `  pki list
  pki list --nmi PTB --status revoked --all
  pki list --limit 100 --cursor eyJ…`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := meter.ParseStatus(o.Status); err != nil {
				return usage.Wrap(err)
			}
			if o.Limit < 0 {
				return usage.Errorf("--limit must not be negative")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			page, err := c.ListMeters(cmd.Context(), o)
			if err != nil {
				return fmt.Errorf("list meters: %w", err)
			}
			for all && page.Next != "" {
				o.Cursor = page.Next
				next, err := c.ListMeters(cmd.Context(), o)
				if err != nil {
					return fmt.Errorf("list meters after %d: %w", len(page.Meters), err)
				}
				page.Meters, page.Next = append(page.Meters, next.Meters...), next.Next
			}
			if err := a.print(page, func(w io.Writer) {
				row(w, "METER", "NMI", "STATUS", "CURVE", "KEY", "FINGERPRINT", "REGISTERED")
				for _, m := range page.Meters {
					row(w, m.ID, m.NMI, m.Status, m.Curve, m.KeyVersion, short(m.Fingerprint), m.RegisteredAt)
				}
			}); err != nil {
				return err
			}
			if page.Next != "" && a.output == outputText {
				fmt.Fprintf(a.stderr, "more: pki list --cursor %s (or --all)\n", page.Next)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&o.NMI, "nmi", "", "only this NMI's meters (its MSP ID)")
	f.StringVar(&o.Status, "status", "", "only active or only revoked meters")
	f.IntVar(&o.Limit, "limit", 0, "meters per page (default the registry's)")
	f.StringVar(&o.Cursor, "cursor", "", "continue after a page, with the cursor it printed")
	f.BoolVar(&all, "all", false, "follow the pages to the end")
	minBlockFlag(c, &o.Read)
	return c
}

func (a *app) historyCommand() *cobra.Command {
	var r client.Read
	c := &cobra.Command{
		Use:   "history METER-ID",
		Short: "Show every version of a meter's record",
		Long: `Show every version of a meter's record, oldest first: the registration and each
rotation, revocation and reinstatement, with its transaction. Nothing is ever
overwritten: this is the meter's audit trail.`,
		Example: `  pki history PTB-0001
  pki history PTB-0001 -o json > PTB-0001.history.json`,
		Args: exactArgs(1, "one meter ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := meterArg(args[0]); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			vs, err := c.MeterHistory(cmd.Context(), args[0], r)
			if err != nil {
				return fmt.Errorf("read the history of meter %s: %w", args[0], err)
			}
			return a.print(vs, func(w io.Writer) {
				row(w, "TIME", "TX", "STATUS", "KEY", "FINGERPRINT", "REVOCATION")
				for _, v := range vs {
					if v.Meter == nil {
						row(w, v.Time, short(v.TxID), "deleted", "-", "-", "-")
						continue
					}
					row(w, v.Time, short(v.TxID), v.Meter.Status, v.Meter.KeyVersion, short(v.Meter.Fingerprint), revocationText(v.Meter.Revocation))
				}
			})
		},
	}
	minBlockFlag(c, &r)
	return c
}

func revocationText(r *meter.Revocation) string {
	if r == nil {
		return "-"
	}
	parts := []string{string(r.Reason)}
	if r.InvalidityDate != "" {
		parts = append(parts, "invalid since "+r.InvalidityDate)
	}
	return strings.Join(parts, ", ")
}

func (a *app) keysCommand() *cobra.Command {
	var r client.Read
	c := &cobra.Command{
		Use:   "keys METER-ID",
		Short: "Show every key a meter has held",
		Long: `Show every key version of a meter: curve, fingerprint, from when it verifies
measurements and the transaction that added it. A rotation adds a version; the
previous one stops verifying new measurements from the rotation on.`,
		Example: `  pki keys PTB-0001`,
		Args:    exactArgs(1, "one meter ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := meterArg(args[0]); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ks, err := c.MeterKeys(cmd.Context(), args[0], r)
			if err != nil {
				return fmt.Errorf("read the keys of meter %s: %w", args[0], err)
			}
			return a.print(ks, func(w io.Writer) {
				row(w, "VERSION", "CURVE", "FINGERPRINT", "VALID FROM", "TX")
				for _, k := range ks {
					row(w, k.Version, k.Curve, k.Fingerprint, k.ValidFrom, short(k.TxID))
				}
			})
		},
	}
	minBlockFlag(c, &r)
	return c
}

func (a *app) consortiumCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "consortium",
		Short: "Show the consortium: members, orderers, height, chaincode",
		Long: `Show what the channel says about the consortium: the member NMIs and their anchor
peers, the BFT ordering nodes, the block height, and the committed chaincode.`,
		Example: `  pki consortium
  pki consortium -o json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			cs, err := c.Consortium(cmd.Context())
			if err != nil {
				return fmt.Errorf("read the consortium: %w", err)
			}
			return a.print(cs, func(w io.Writer) { consortiumText(w, cs) })
		},
	}
}

func consortiumText(w io.Writer, cs *api.Consortium) {
	cc := cs.Chaincode
	fields(w,
		"channel", cs.Channel,
		"this registry", cs.NMI,
		"height", fmt.Sprint(cs.Height),
		"consensus", cs.ConsensusType,
		"config sequence", fmt.Sprint(cs.ConfigSeq),
		"chaincode", fmt.Sprintf("%s %s (sequence %d, contract %s)", cc.Name, cc.Version, cc.Sequence, dash(cc.ContractVersion)),
	)
	fmt.Fprintln(w)
	row(w, "MEMBER", "MSP ID", "ANCHOR PEERS", "ORDERER ENDPOINTS")
	for _, m := range cs.Members {
		row(w, m.Name, m.MSPID, dash(strings.Join(m.AnchorPeers, ",")), dash(strings.Join(m.OrdererEndpoints, ",")))
	}
	fmt.Fprintln(w)
	row(w, "ORDERER", "ADDRESS", "MSP ID", "SUBJECT")
	for _, o := range cs.Orderers {
		row(w, o.ID, fmt.Sprintf("%s:%d", o.Host, o.Port), o.MSPID, dash(o.Subject))
	}
}
