package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/usage"
)

// typeArg checks the type ID argument.
func typeArg(id string) error {
	if err := meter.ValidateTypeID(id); err != nil {
		return usage.Wrap(err)
	}
	return nil
}

// rfc3339Flag refuses a time flag that is set but not RFC 3339.
func rfc3339Flag(name, value string) error {
	if value == "" {
		return nil
	}
	if _, err := time.Parse(time.RFC3339, value); err != nil {
		return usage.Errorf("--%s %q is not RFC 3339 (e.g. 2026-12-01T00:00:00Z)", name, value)
	}
	return nil
}

func (a *app) typeCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "type",
		Short: "Meter types and the software versions approved for them",
		Long: `Meter types as the NMI that examined them records them: the type-examination
certificate and the legally relevant software versions approved for the type
(WELMEC 7.2). Only the certifying NMI's operator records a type (its ID in the NMI's
namespace, PTB-… at PTB), approves further versions and withdraws them; every role
reads. Meters name their type at registration ("pki register --type-id") or later
("pki assign-type"), and report their software updates ("pki software update").`,
		Args: noArgs,
		RunE: groupRun,
	}
	c.AddCommand(a.typeRecordCommand(), a.typeShowCommand(), a.typeListCommand(), a.typeHistoryCommand(),
		a.typeMetersCommand(), a.typeApproveCommand(), a.typeWithdrawCommand())
	return c
}

func (a *app) typeRecordCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "record FILE|-",
		Short: "Record a meter type this NMI examined",
		Long: `Record a meter type under this NMI (operator token). The file is the type as JSON:

  {"typeId":"PTB-E350","manufacturer":"ACME","model":"E350","certificate":"DE-MI003-PTB001",
   "versions":[{"softwareId":"fw-1.2","softwareChecksum":"sha256:9f86d081…"},
               {"softwareId":"fw-1.3","softwareChecksum":"sha256:2c26b46b…","approvedFrom":"2026-12-01T00:00:00Z"}]}

The type ID lies in this NMI's namespace; each version is approved from approvedFrom
(RFC 3339) on, or at once. Recording the same type again changes nothing.`,
		Example: `  pki type record PTB-E350.json
  pki type record - < PTB-E350.json -o json`,
		Args: exactArgs(1, "one file (or - for stdin)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.readInput(args[0])
			if err != nil {
				return err
			}
			var req api.TypeRecordRequest
			if err := decodeJSONStrict(b, &req); err != nil {
				return usage.Errorf("%s: not a meter type (typeId, manufacturer, model, certificate, versions): %v", args[0], err)
			}
			if err := typeArg(req.TypeID); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.RecordMeterType(cmd.Context(), req)
			if err != nil {
				return fmt.Errorf("record meter type %s: %w", req.TypeID, err)
			}
			return a.print(r, func(w io.Writer) { typeReceiptText(w, "recorded", r) })
		},
	}
}

func (a *app) typeShowCommand() *cobra.Command {
	var r client.Read
	c := &cobra.Command{
		Use:   "show TYPE-ID",
		Short: "Show a meter type and its software versions",
		Long: `Show a meter type: its certifying NMI, certificate, and every software version
listed for it, from when each is approved and whether it was withdrawn.`,
		Example: `  pki type show PTB-E350
  pki type show PTB-E350 --min-block 1234 -o json`,
		Args: exactArgs(1, "one type ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := typeArg(args[0]); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			mt, err := c.GetMeterType(cmd.Context(), args[0], r)
			if err != nil {
				return fmt.Errorf("read meter type %s: %w", args[0], err)
			}
			return a.print(mt, func(w io.Writer) { typeText(w, mt) })
		},
	}
	minBlockFlag(c, &r)
	return c
}

func (a *app) typeListCommand() *cobra.Command {
	var o client.TypeListOptions
	var all bool
	c := &cobra.Command{
		Use:   "list [--nmi MSPID] [--limit N] [--all]",
		Short: "List meter types",
		Long: `List meter types by type ID, one page at a time, optionally only those one NMI
certified. A page that has more after it prints the cursor of the next page on
stderr; --all follows the cursors to the end.`,
		Example: `  pki type list
  pki type list --nmi PTBMSP --all`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Limit < 0 {
				return usage.Errorf("--limit must not be negative")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			page, err := c.ListMeterTypes(cmd.Context(), o)
			if err != nil {
				return fmt.Errorf("list meter types: %w", err)
			}
			for all && page.Next != "" {
				o.Cursor = page.Next
				next, err := c.ListMeterTypes(cmd.Context(), o)
				if err != nil {
					return fmt.Errorf("list meter types after %d: %w", len(page.Types), err)
				}
				page.Types, page.Next = append(page.Types, next.Types...), next.Next
			}
			if err := a.print(page, func(w io.Writer) {
				row(w, "TYPE", "NMI", "MANUFACTURER", "MODEL", "CERTIFICATE", "VERSIONS")
				for _, mt := range page.Types {
					row(w, mt.ID, mt.NMI, mt.Manufacturer, mt.Model, mt.Certificate, versionsText(mt.Versions))
				}
			}); err != nil {
				return err
			}
			if page.Next != "" && a.output == outputText {
				fmt.Fprintf(a.stderr, "more: pki type list --cursor %s (or --all)\n", page.Next)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&o.NMI, "nmi", "", "only the types this NMI certified (its MSP ID)")
	f.IntVar(&o.Limit, "limit", 0, "types per page (default the registry's)")
	f.StringVar(&o.Cursor, "cursor", "", "continue after a page, with the cursor it printed")
	f.BoolVar(&all, "all", false, "follow the pages to the end")
	minBlockFlag(c, &o.Read)
	return c
}

func (a *app) typeHistoryCommand() *cobra.Command {
	var r client.Read
	c := &cobra.Command{
		Use:   "history TYPE-ID",
		Short: "Show every version of a meter type's record",
		Long: `Show every version of a meter type's record, oldest first, with its transaction:
the recording, and each approval and withdrawal of a software version.`,
		Example: `  pki type history PTB-E350`,
		Args:    exactArgs(1, "one type ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := typeArg(args[0]); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			vs, err := c.MeterTypeHistory(cmd.Context(), args[0], r)
			if err != nil {
				return fmt.Errorf("read the history of meter type %s: %w", args[0], err)
			}
			return a.print(vs, func(w io.Writer) {
				row(w, "TIME", "TX", "VERSIONS")
				for _, v := range vs {
					if v.Type == nil {
						row(w, v.Time, short(v.TxID), "deleted")
						continue
					}
					row(w, v.Time, short(v.TxID), versionsText(v.Type.Versions))
				}
			})
		},
	}
	minBlockFlag(c, &r)
	return c
}

func (a *app) typeMetersCommand() *cobra.Command {
	var o client.TypeListOptions
	var all bool
	c := &cobra.Command{
		Use:   "meters TYPE-ID [--limit N] [--all]",
		Short: "List the meters of a type",
		Long: `List the meters registered as, or named to be, of a type, by meter ID, one page at
a time; --all follows the cursors to the end.`,
		Example: `  pki type meters PTB-E350 --all`,
		Args:    exactArgs(1, "one type ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := typeArg(id); err != nil {
				return err
			}
			if o.Limit < 0 {
				return usage.Errorf("--limit must not be negative")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			page, err := c.TypeMeters(cmd.Context(), id, o)
			if err != nil {
				return fmt.Errorf("list the meters of type %s: %w", id, err)
			}
			for all && page.Next != "" {
				o.Cursor = page.Next
				next, err := c.TypeMeters(cmd.Context(), id, o)
				if err != nil {
					return fmt.Errorf("list the meters of type %s after %d: %w", id, len(page.Meters), err)
				}
				page.Meters, page.Next = append(page.Meters, next.Meters...), next.Next
			}
			if err := a.print(page, func(w io.Writer) {
				row(w, "METER", "NMI", "STATUS", "SOFTWARE", "REGISTERED")
				for _, m := range page.Meters {
					row(w, m.ID, m.NMI, m.Status, m.CurrentSoftware().ID, m.RegisteredAt)
				}
			}); err != nil {
				return err
			}
			if page.Next != "" && a.output == outputText {
				fmt.Fprintf(a.stderr, "more: pki type meters %s --cursor %s (or --all)\n", id, page.Next)
			}
			return nil
		},
	}
	f := c.Flags()
	f.IntVar(&o.Limit, "limit", 0, "meters per page (default the registry's)")
	f.StringVar(&o.Cursor, "cursor", "", "continue after a page, with the cursor it printed")
	f.BoolVar(&all, "all", false, "follow the pages to the end")
	minBlockFlag(c, &o.Read)
	return c
}

func (a *app) typeApproveCommand() *cobra.Command {
	var req api.ApproveRequest
	c := &cobra.Command{
		Use:   "approve TYPE-ID --software-id ID --software-checksum ALG:HEX [--from RFC3339]",
		Short: "Approve another software version for a type",
		Long: `Approve another legally relevant software version for a type this NMI certified
(operator token), from --from on (default at once). A changed software needs a new
identification: a software ID listed already with another checksum is refused
(VERSION_EXISTS).`,
		Example: `  pki type approve PTB-E350 --software-id fw-1.3 --software-checksum sha256:2c26b46b68ffc68f
  pki type approve PTB-E350 --software-id fw-1.4 --software-checksum sha256:fcde2b2e --from 2027-01-01T00:00:00Z`,
		Args: exactArgs(1, "one type ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := typeArg(id); err != nil {
				return err
			}
			if req.ID == "" || req.Checksum == "" {
				return usage.Errorf("--software-id and --software-checksum are required")
			}
			if err := req.Validate(""); err != nil {
				return usage.Wrap(err)
			}
			if err := rfc3339Flag("from", req.ApprovedFrom); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.ApproveSoftware(cmd.Context(), id, req)
			if err != nil {
				return fmt.Errorf("approve software %s for meter type %s: %w", req.ID, id, err)
			}
			return a.print(r, func(w io.Writer) { typeReceiptText(w, "approved "+req.ID+" for", r) })
		},
	}
	f := c.Flags()
	f.StringVar(&req.ID, "software-id", "", "identification of the software version")
	f.StringVar(&req.Checksum, "software-checksum", "", "checksum of its legally relevant part, ALG:HEX (sha256:…)")
	f.StringVar(&req.ApprovedFrom, "from", "", "from when the approval takes effect, RFC 3339 (default at once)")
	return c
}

func (a *app) typeWithdrawCommand() *cobra.Command {
	var req api.WithdrawRequest
	c := &cobra.Command{
		Use:   "withdraw TYPE-ID --software-id ID --reason TEXT [--from RFC3339]",
		Short: "Withdraw a software version of a type",
		Long: `Withdraw a software version of a type this NMI certified (operator token), for a
reason, from --from on (default at once; it may lie in the past, for a fault found
after the fact, but not before the version's approval). Readings a meter signed from
then on naming the version are refused (SOFTWARE_NOT_APPROVED), and no meter may
update to it. A withdrawal is final.`,
		Example: `  pki type withdraw PTB-E350 --software-id fw-1.2 --reason "fault in the energy register" --from 2026-11-30T00:00:00Z`,
		Args:    exactArgs(1, "one type ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := typeArg(id); err != nil {
				return err
			}
			switch {
			case req.SoftwareID == "":
				return usage.Errorf("--software-id is required: the version to withdraw")
			case strings.TrimSpace(req.Reason) == "":
				return usage.Errorf("--reason is required: why the version is withdrawn")
			case len(req.Reason) > meter.MaxWithdrawalReason:
				return usage.Errorf("--reason is %d bytes, at most %d", len(req.Reason), meter.MaxWithdrawalReason)
			}
			if err := rfc3339Flag("from", req.From); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.WithdrawSoftware(cmd.Context(), id, req)
			if err != nil {
				return fmt.Errorf("withdraw software %s of meter type %s: %w", req.SoftwareID, id, err)
			}
			return a.print(r, func(w io.Writer) { typeReceiptText(w, "withdrew "+req.SoftwareID+" of", r) })
		},
	}
	f := c.Flags()
	f.StringVar(&req.SoftwareID, "software-id", "", "identification of the software version")
	f.StringVar(&req.Reason, "reason", "", "why the version is withdrawn")
	f.StringVar(&req.From, "from", "", "from when the withdrawal takes effect, RFC 3339 (default at once)")
	return c
}

func (a *app) assignTypeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "assign-type METER-ID TYPE-ID",
		Short: "Name the type of a meter registered without one",
		Long: `Name the type of a meter of this NMI registered without one (operator token). The
software the meter runs must be a version approved for the type now. A meter's type
never changes once set; a meter without one cannot report software updates.`,
		Example: `  pki assign-type PTB-0001 PTB-E350`,
		Args:    exactArgs(2, "a meter ID and a type ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, typeID := args[0], args[1]
			if err := meterArg(id); err != nil {
				return err
			}
			if err := typeArg(typeID); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.AssignMeterType(cmd.Context(), id, typeID)
			if err != nil {
				return fmt.Errorf("name the type of meter %s: %w", id, err)
			}
			return a.print(r, func(w io.Writer) {
				if r.Duplicate {
					fmt.Fprintf(w, "meter %s is of type %s already, since block %d, transaction %s\n", id, r.Meter.TypeID, r.Block, r.TxID)
					return
				}
				receiptText(w, "named the type of", r)
			})
		},
	}
}

// typeText writes a meter type and its versions.
func typeText(w io.Writer, mt *meter.MeterType) {
	fields(w,
		"type", mt.ID,
		"certified by", mt.NMI,
		"manufacturer", mt.Manufacturer,
		"model", mt.Model,
		"certificate", mt.Certificate,
		"recorded", atTx(mt.RecordedAt, mt.RecordedTx),
		"updated", atTx(mt.UpdatedAt, mt.UpdatedTx),
	)
	fmt.Fprintln(w)
	row(w, "SOFTWARE", "CHECKSUM", "APPROVED FROM", "WITHDRAWN")
	for _, v := range mt.Versions {
		withdrawn := "-"
		if wd := v.Withdrawal; wd != nil {
			withdrawn = "from " + wd.From + ": " + wd.Reason
		}
		row(w, v.ID, v.Checksum, v.ApprovedFrom, withdrawn)
	}
}

// typeReceiptText writes a type and the transaction that changed it.
func typeReceiptText(w io.Writer, verb string, r *api.TypeReceipt) {
	if r.Duplicate {
		fmt.Fprintf(w, "done before: meter type %s in block %d, transaction %s; nothing written\n", r.Type.ID, r.Block, r.TxID)
	} else {
		fmt.Fprintf(w, "%s meter type %s in block %d, transaction %s\n", verb, r.Type.ID, r.Block, r.TxID)
	}
	typeText(w, r.Type)
}

// versionsText lists a type's software IDs, a withdrawn one marked.
func versionsText(vs []meter.ApprovedSoftware) string {
	ids := make([]string, len(vs))
	for i, v := range vs {
		ids[i] = v.ID
		if v.Withdrawal != nil {
			ids[i] += " (withdrawn)"
		}
	}
	return dash(strings.Join(ids, ", "))
}
