// Command febill runs privacy-preserving billing for each of its parties:
//
//	febill customer keygen   functional keys for a meter's period, bound on the ledger
//	febill utility tariff    a time-of-use tariff, signed by the utility
//	febill customer agree    the customer's countersignature, recorded on the ledger
//	febill customer derive   the functional key for the agreed tariff (privacy guard)
//	febill meter stream      the meter's encrypted, signed readings, delivered
//	febill utility bill      the bill from the ledger's ciphertexts, recorded
//	febill customer check    the customer's own readings and bill, against the recorded one
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/usage"
)

func main() {
	if err := root().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "febill:", err)
		os.Exit(usage.ExitCode(err))
	}
}

// conn are the registry flags every command that talks to the ledger takes.
type conn struct {
	registry *client.Flags
	token    *client.Credential
}

func (c *conn) flags(cmd *cobra.Command) {
	c.registry = client.NewFlags(nil)
	c.registry.Register(cmd.Flags())
	c.token = c.registry.Credential(cmd.Flags(), "token", "this party's registry token")
}

func (c *conn) client() (*client.Client, error) {
	return c.registry.Connect(c.token, client.Options{})
}

func root() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "febill",
		Short: "Privacy-preserving billing by functional encryption",
		Long: "febill runs the billing of seed 000's model: the customer owns the readings and the master key,\n" +
			"the meter encrypts each reading, the utility computes only the tariff-weighted sum.\n\n" + client.FlagsHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage.Wrap(err) })
	customer := &cobra.Command{Use: "customer", Short: "The customer: keys, tariff agreement, functional key, own readings"}
	customer.AddCommand(customerKeygen(), customerAgree(), customerDerive(), customerCheck())
	utility := &cobra.Command{Use: "utility", Short: "The utility: tariffs and bills"}
	utility.AddCommand(utilityTariff(), utilityBill())
	meterCmd := &cobra.Command{Use: "meter", Short: "The meter: encrypted, signed readings"}
	meterCmd.AddCommand(meterStream())
	cmd.AddCommand(customer, utility, meterCmd)
	return cmd
}
