package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/inter-nmi/pki/fe-billing/billing"
	"github.com/inter-nmi/pki/fe-billing/fe"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/loadprofile"
	"github.com/inter-nmi/pki/registry-api/usage"
)

// period flags describe a billing period.
type periodFlags struct {
	meterID, id, start string
	interval           time.Duration
	slots, group       int
}

func (p *periodFlags) flags(cmd *cobra.Command, full bool) {
	cmd.Flags().StringVar(&p.meterID, "meter", "", "meter ID")
	cmd.Flags().StringVar(&p.id, "period", "", "billing period ID, e.g. 2026-11")
	if full {
		cmd.Flags().StringVar(&p.start, "start", "", "start of the period, RFC 3339 (default: 24 hours ago, on a slot boundary)")
		cmd.Flags().DurationVar(&p.interval, "interval", 15*time.Minute, "reading interval")
		cmd.Flags().IntVar(&p.slots, "slots", 96, "readings in the period (96 a day, 2880 a 30-day month)")
		cmd.Flags().IntVar(&p.group, "group", fe.DefaultGroup, "modulus size in bits: 2048 or 3072")
	}
}

func (p *periodFlags) check() error {
	if p.meterID == "" || p.id == "" {
		return usage.Errorf("--meter and --period are required")
	}
	return nil
}

func (p *periodFlags) params() (fe.Params, error) {
	start := time.Now().UTC().Add(-24 * time.Hour).Truncate(p.interval)
	if p.start != "" {
		t, err := time.Parse(time.RFC3339, p.start)
		if err != nil {
			return fe.Params{}, usage.Errorf("--start: %w", err)
		}
		start = t
	}
	params := fe.Params{Period: fe.Period{ID: p.id, Start: start, Interval: p.interval, Slots: p.slots},
		Group: p.group, MaxReading: fe.DefaultMaxReading, MaxWeight: fe.DefaultMaxWeight}
	return params, params.Validate()
}

// periodCommand is what every command on a meter's billing period takes:
// the period's flags and the registry's.
type periodCommand struct {
	periodFlags
	conn
}

// flags adds the period flags (all of them if full) and the registry flags.
func (pc *periodCommand) flags(cmd *cobra.Command, full bool) {
	pc.periodFlags.flags(cmd, full)
	pc.conn.flags(cmd)
}

// open is the preamble of a command on a bound period: it checks the
// period flags, then connects to the registry.
func (pc *periodCommand) open() (*client.Client, error) {
	if err := pc.check(); err != nil {
		return nil, err
	}
	return pc.client()
}

// openNew is the preamble of the command that makes a period: it checks
// the period flags and reads the period's parameters from them, then
// connects to the registry.
func (pc *periodCommand) openNew() (fe.Params, *client.Client, error) {
	if err := pc.check(); err != nil {
		return fe.Params{}, nil, err
	}
	params, err := pc.params()
	if err != nil {
		return fe.Params{}, nil, err
	}
	cl, err := pc.client()
	if err != nil {
		return fe.Params{}, nil, err
	}
	return params, cl, nil
}

func ctx() context.Context { return context.Background() }

func say(cmd *cobra.Command, format string, args ...any) {
	fmt.Fprintf(cmd.OutOrStdout(), format+"\n", args...)
}

func customerKeygen() *cobra.Command {
	var p periodCommand
	var dir, meterKeyFile string
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Make the period's master key and public key, and bind the public key to the meter on the ledger",
		Long: `Make the period's master key and public key, and bind the public key to the meter on the
ledger. The meter consents by signing the binding statement with its registered key
(--meter-key: the meter's signing key as its own device would use it), so no one but
whoever holds the meter can take its billing period first.`,
		Example: "  febill customer keygen --meter PTB-0001 --period 2026-11-20 --start 2026-11-20T00:00:00Z --slots 96 \\\n" +
			"      --meter-key meter.key.pem --dir customer --api https://127.0.0.1:8081 --token-file customer.token --ca tls-ca.pem",
		RunE: func(cmd *cobra.Command, _ []string) error {
			params, cl, err := p.openNew()
			if err != nil {
				return err
			}
			key, err := partyKey(dir)
			if err != nil {
				return err
			}
			began := time.Now()
			mk, pk, err := fe.GenerateKeys(params)
			if err != nil {
				return err
			}
			if err := writeJSON(path(dir, p.meterID, p.id, "master"), mk, secret); err != nil {
				return err
			}
			if err := writeJSON(path(dir, p.meterID, p.id, "public"), pk, 0o644); err != nil {
				return err
			}
			if meterKeyFile == "" {
				return usage.Errorf("--meter-key is required: the meter consents to the binding with its own key")
			}
			kb, err := readSecret(meterKeyFile)
			if err != nil {
				return fmt.Errorf("the meter's key (--meter-key): %w", err)
			}
			meterKey, err := meter.ParsePrivateKeyPEM(string(kb))
			if err != nil {
				return err
			}
			req, err := billing.BindRequest(p.meterID, pk, key, meterKey)
			if err != nil {
				return err
			}
			r, err := cl.BindBillingPeriod(ctx(), req)
			if err != nil {
				return err
			}
			say(cmd, "keys for %d slots made in %s; public key %s bound to %s/%s in block %d",
				params.Period.Slots, time.Since(began).Round(time.Millisecond), pk.Hash(), p.meterID, p.id, r.Block)
			say(cmd, "give the meter %s", path(dir, p.meterID, p.id, "public"))
			return nil
		},
	}
	p.flags(cmd, true)
	cmd.Flags().StringVar(&dir, "dir", "customer", "the customer's directory")
	cmd.Flags().StringVar(&meterKeyFile, "meter-key", "", "the meter's private key (PEM), which signs its consent to the binding (required)")
	return cmd
}

func utilityTariff() *cobra.Command {
	var p periodCommand
	var dir, currency string
	var peakFrom, peakTo int
	var peak, offPeak uint64
	cmd := &cobra.Command{
		Use:   "tariff",
		Short: "Make a time-of-use tariff for a bound period and sign it",
		Long:  "The tariff's weights are milli-cents per Wh for each slot: peak in the UTC hours [peak-from, peak-to), off-peak otherwise.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := p.open()
			if err != nil {
				return err
			}
			rec, err := cl.BillingPeriod(ctx(), p.meterID, p.id, client.Read{})
			if err != nil {
				return err
			}
			params, err := billing.ParamsOf(rec.Period)
			if err != nil {
				return err
			}
			customer, err := meter.ParsePublicKeyPEM(rec.CustomerKey)
			if err != nil {
				return fmt.Errorf("the customer key bound with the period: %w", err)
			}
			key, err := partyKey(dir)
			if err != nil {
				return err
			}
			t := fe.TimeOfUse(p.meterID, params.Period, currency, peakFrom, peakTo, peak, offPeak)
			sig, err := billing.SignTariff(t, customer, key)
			if err != nil {
				return err
			}
			if err := writeJSON(path(dir, p.meterID, p.id, "tariff"), t, 0o644); err != nil {
				return err
			}
			if err := writeFile(sigPath(dir, p.meterID, p.id), []byte(sig+"\n"), 0o644); err != nil {
				return err
			}
			if err := writeFile(dirFile(dir, "utility.pub.pem"), []byte(key.Public().PEM()), 0o644); err != nil {
				return err
			}
			say(cmd, "tariff %s written with the utility's signature; give the customer %s, %s and %s",
				t.Hash(), path(dir, p.meterID, p.id, "tariff"), sigPath(dir, p.meterID, p.id), dirFile(dir, "utility.pub.pem"))
			return nil
		},
	}
	p.flags(cmd, false)
	cmd.Flags().StringVar(&dir, "dir", "utility", "the utility's directory")
	cmd.Flags().StringVar(&currency, "currency", "EUR", "currency of the bill")
	cmd.Flags().IntVar(&peakFrom, "peak-from", 7, "first peak hour (UTC)")
	cmd.Flags().IntVar(&peakTo, "peak-to", 21, "first hour after the peak (UTC)")
	cmd.Flags().Uint64Var(&peak, "peak", 40, "peak price, milli-cents per Wh")
	cmd.Flags().Uint64Var(&offPeak, "off-peak", 25, "off-peak price, milli-cents per Wh")
	return cmd
}

func dirFile(dir, name string) string { return filepath.Join(dir, name) }

func customerAgree() *cobra.Command {
	var p periodCommand
	var dir, tariffFile, utilityKey, utilitySig string
	cmd := &cobra.Command{
		Use:   "agree",
		Short: "Check a tariff with the privacy guard, countersign the utility's signature, record the agreement",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := p.open()
			if err != nil {
				return err
			}
			var mk fe.MasterKey
			if err := readSecretJSON(path(dir, p.meterID, p.id, "master"), &mk); err != nil {
				return err
			}
			t, err := readTariff(tariffFile)
			if err != nil {
				return err
			}
			uk, err := os.ReadFile(utilityKey)
			if err != nil {
				return err
			}
			sig, err := os.ReadFile(utilitySig)
			if err != nil {
				return err
			}
			key, err := partyKey(dir)
			if err != nil {
				return err
			}
			req, err := billing.AgreeRequest(t, mk.Params, key, string(uk), strings.TrimSpace(string(sig)))
			if err != nil {
				return err
			}
			r, err := cl.AgreeTariff(ctx(), p.meterID, p.id, req)
			if err != nil {
				return err
			}
			say(cmd, "tariff %s agreed for %s/%s in block %d", t.Hash(), p.meterID, p.id, r.Block)
			return nil
		},
	}
	p.flags(cmd, false)
	cmd.Flags().StringVar(&dir, "dir", "customer", "the customer's directory")
	cmd.Flags().StringVar(&tariffFile, "tariff", "", "the utility's tariff file")
	cmd.Flags().StringVar(&utilityKey, "utility-key", "", "the utility's public key (PEM)")
	cmd.Flags().StringVar(&utilitySig, "utility-signature", "", "the utility's signature file")
	return cmd
}

func customerDerive() *cobra.Command {
	var p periodCommand
	var dir, tariffFile, out string
	var override bool
	cmd := &cobra.Command{
		Use:   "derive",
		Short: "Derive the functional key for the agreed tariff, for the utility; record that it was issued",
		Long: "The privacy guard refuses tariffs whose key would reveal more than a bill (zero weights, a weight\n" +
			"that runs over less than an hour at a time) and a second key for another tariff in the same period; --override-privacy-guard\n" +
			"overrides it, on the customer's own decision.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := p.open()
			if err != nil {
				return err
			}
			masterFile := path(dir, p.meterID, p.id, "master")
			var mk fe.MasterKey
			if err := readSecretJSON(masterFile, &mk); err != nil {
				return err
			}
			t, err := readTariff(tariffFile)
			if err != nil {
				return err
			}
			key, err := partyKey(dir)
			if err != nil {
				return err
			}
			rec, err := cl.BillingPeriod(ctx(), p.meterID, p.id, client.Read{})
			if err != nil {
				return err
			}
			if rec.Tariff == nil {
				return fmt.Errorf("period %s of meter %s has no agreed tariff yet", p.id, p.meterID)
			}
			utility, err := meter.ParsePublicKeyPEM(rec.Tariff.UtilityKey)
			if err != nil {
				return fmt.Errorf("the utility key of the agreed tariff: %w", err)
			}
			fk, req, err := billing.KeyRequest(&mk, t, key, utility, override)
			if err != nil {
				return err
			}
			if _, err := cl.RecordKeyIssued(ctx(), p.meterID, p.id, req); err != nil {
				return err
			}
			// The master key file remembers the issued tariff (the guard's memory).
			if err := writeJSON(masterFile, &mk, secret); err != nil {
				return err
			}
			if out == "" {
				out = path(dir, p.meterID, p.id, "function")
			}
			if err := writeJSON(out, fk, secret); err != nil {
				return err
			}
			say(cmd, "functional key for tariff %s written to %s; give it to the utility over a secure channel", t.Hash(), out)
			return nil
		},
	}
	p.flags(cmd, false)
	cmd.Flags().StringVar(&dir, "dir", "customer", "the customer's directory")
	cmd.Flags().StringVar(&tariffFile, "tariff", "", "the agreed tariff file")
	cmd.Flags().StringVar(&out, "out", "", "where to write the functional key")
	cmd.Flags().BoolVar(&override, "override-privacy-guard", false, "derive even a key the privacy guard refuses")
	return cmd
}

func meterStream() *cobra.Command {
	var p periodCommand
	var keyFile, publicFile string
	var seed uint64
	var batch int
	var withhold []int
	cmd := &cobra.Command{
		Use:   "stream",
		Short: "Encrypt the period's readings (the simulator's household load) and deliver them signed",
		Long: "The meter publishes the ciphertext header, then one encrypted reading per slot, each a signed\n" +
			"measurement without plaintext value; its sequence numbers count minutes since 2020, like metersim's.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := p.open()
			if err != nil {
				return err
			}
			kb, err := readSecret(keyFile)
			if err != nil {
				return err
			}
			mkey, err := meter.ParsePrivateKeyPEM(string(kb))
			if err != nil {
				return err
			}
			var pk fe.PublicKey
			if err := readJSON(publicFile, &pk); err != nil {
				return err
			}
			sum, err := Stream(cl, p.meterID, mkey, &pk, seed, batch, withhold)
			if err != nil {
				return err
			}
			say(cmd, "%s", sum)
			return nil
		},
	}
	p.flags(cmd, false)
	cmd.Flags().StringVar(&keyFile, "key", "", "the meter's signing key (PEM)")
	cmd.Flags().StringVar(&publicFile, "public", "", "the customer's public key for the period")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed of the simulated household")
	cmd.Flags().IntVar(&batch, "batch", 500, "measurements per concentrator batch")
	cmd.Flags().IntSliceVar(&withhold, "withhold", nil, "slots not to deliver (to see the utility refuse an incomplete period)")
	return cmd
}

// Stream delivers a period's encrypted readings; exported for the tests.
func Stream(cl *client.Client, meterID string, key *meter.PrivateKey, pk *fe.PublicKey, seed uint64, batch int, withhold []int) (string, error) {
	period := pk.Params.Period
	wh, err := billing.Consumption(seed, meterID, period)
	if err != nil {
		return "", err
	}
	m, err := billing.NewMeter(meterID, key, pk)
	if err != nil {
		return "", err
	}
	defer m.Close()
	head, err := m.Header(loadprofile.SeqAt(period.Start))
	if err != nil {
		return "", err
	}
	items := []meter.SignedMeasurement{head}
	skip := map[int]bool{}
	for _, s := range withhold {
		skip[s] = true
	}
	began := time.Now()
	for slot, x := range wh {
		if skip[slot] {
			continue
		}
		sm, err := m.Reading(loadprofile.SeqAt(period.SlotEnd(slot)), slot, x)
		if err != nil {
			return "", err
		}
		items = append(items, sm)
	}
	encrypted := time.Since(began)
	var accepted, rejected int
	for len(items) > 0 {
		n := min(batch, len(items), api.MaxMeasurementBatch)
		r, err := cl.SubmitBatch(ctx(), items[:n])
		if err != nil {
			return "", err
		}
		accepted, rejected = accepted+r.Accepted, rejected+r.Rejected
		items = items[n:]
	}
	return fmt.Sprintf("%d readings encrypted in %s; delivered %d accepted, %d rejected",
		len(wh)-len(skip), encrypted.Round(time.Millisecond), accepted, rejected), nil
}

func utilityBill() *cobra.Command {
	var p periodCommand
	var dir, keyFile, tariffFile string
	cmd := &cobra.Command{
		Use:   "bill",
		Short: "Compute the period's bill from the ledger's ciphertexts with the functional key, and record it",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := p.open()
			if err != nil {
				return err
			}
			var fk fe.FunctionKey
			if err := readSecretJSON(keyFile, &fk); err != nil {
				return err
			}
			t, err := readTariff(tariffFile)
			if err != nil {
				return err
			}
			key, err := partyKey(dir)
			if err != nil {
				return err
			}
			began := time.Now()
			envs, err := billing.Fetch(ctx(), cl, p.meterID, fk.Params, 0)
			if err != nil {
				return err
			}
			fetched := time.Since(began)
			amount, err := billing.Bill(envs, &fk, t, fe.NewTables())
			if err != nil {
				return err
			}
			rec, err := cl.BillingPeriod(ctx(), p.meterID, p.id, client.Read{})
			if err != nil {
				return err
			}
			customer, err := meter.ParsePublicKeyPEM(rec.CustomerKey)
			if err != nil {
				return fmt.Errorf("the customer key bound with the period: %w", err)
			}
			req, err := billing.BillRequest(t, amount, fk.Params.Period.Slots, customer, key)
			if err != nil {
				return err
			}
			r, err := cl.RecordBill(ctx(), p.meterID, p.id, req)
			if err != nil {
				return err
			}
			say(cmd, "bill for %s/%s: %d milli-cents (%.2f %s) over %d slots; fetched in %s, computed in %s; recorded in block %d",
				p.meterID, p.id, amount, float64(amount)/100000, t.Currency, fk.Params.Period.Slots,
				fetched.Round(time.Millisecond), (time.Since(began) - fetched).Round(time.Millisecond), r.Block)
			return nil
		},
	}
	p.flags(cmd, false)
	cmd.Flags().StringVar(&dir, "dir", "utility", "the utility's directory")
	cmd.Flags().StringVar(&keyFile, "function-key", "", "the functional key from the customer")
	cmd.Flags().StringVar(&tariffFile, "tariff", "", "the agreed tariff")
	return cmd
}

func customerCheck() *cobra.Command {
	var p periodCommand
	var dir, tariffFile string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Decrypt the period's readings with the master key and check the recorded bill against them",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := p.open()
			if err != nil {
				return err
			}
			var mk fe.MasterKey
			if err := readSecretJSON(path(dir, p.meterID, p.id, "master"), &mk); err != nil {
				return err
			}
			t, err := readTariff(tariffFile)
			if err != nil {
				return err
			}
			envs, err := billing.Fetch(ctx(), cl, p.meterID, mk.Params, 0)
			if err != nil {
				return err
			}
			own, readings, err := billing.CustomerBill(&mk, envs, t, fe.NewTables())
			if err != nil {
				return err
			}
			var total uint64
			for _, r := range readings {
				total += r
			}
			rec, err := cl.BillingPeriod(ctx(), p.meterID, p.id, client.Read{})
			if err != nil {
				return err
			}
			say(cmd, "%d readings, %d Wh in all; my bill %d milli-cents", len(readings), total, own)
			switch {
			case rec.Bill == nil:
				say(cmd, "no bill recorded yet")
			case rec.Bill.Amount == own:
				say(cmd, "the recorded bill (tx %s) matches", rec.Bill.TxID)
			default:
				return fmt.Errorf("the recorded bill %d differs from my own %d", rec.Bill.Amount, own)
			}
			return nil
		},
	}
	p.flags(cmd, false)
	cmd.Flags().StringVar(&dir, "dir", "customer", "the customer's directory")
	cmd.Flags().StringVar(&tariffFile, "tariff", "", "the agreed tariff")
	return cmd
}
