// Command metersim simulates a fleet of smart meters against an NMI's
// registry: it makes (or loads) the meters' keys, optionally registers them,
// then delivers their signed 15-minute register readings, alone or in data
// concentrator batches, at a chosen rate, and summarises throughput, refusals
// and latency.
//
//	metersim --api https://127.0.0.1:8081 --token-file ingest.token \
//	    --operator-token-file operator.token --register --meters 1000 --batch 500
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/loadprofile"
	"github.com/inter-nmi/pki/registry-api/simulator"
	"github.com/inter-nmi/pki/registry-api/usage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, env{getenv: os.Getenv, stdout: os.Stdout, stderr: os.Stderr, now: time.Now})
	stop()
	os.Exit(code)
}

// env is what the command takes from the process.
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	now            func() time.Time
	// random names a run apart from others started in the same second.
	random func() string
}

func (e env) nonce() string {
	if e.random == nil {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	return e.random()
}

// Exit codes.
const (
	exitOK      = usage.ExitOK
	exitFailure = usage.ExitFailure // requests or registration failed, or the run was aborted or stopped
	exitUsage   = usage.ExitUsage
)

// config is the command line.
type config struct {
	registry         *client.Flags
	ingest, operator *client.Credential
	timeout          time.Duration

	meters        int
	prefix, runID string
	curve         string
	keysDir       string
	register      bool
	registerChunk int

	start, day string
	slots      int
	slotsGiven bool // --slots was given, so --day does not mean the whole day
	interval   time.Duration
	seed       uint64

	batch, concurrency int
	rate               float64
	replay, quiet      bool
	jsonFile           string

	software, typeID string
	nameSoftware     bool
	updateTo         string
	updateAfter      int
}

// run executes the command line args (args[0] is the program) and returns
// the exit code.
func run(ctx context.Context, args []string, e env) int {
	cfg := config{registry: client.NewFlags(e.getenv)}
	cmd := command(&cfg, e, args)
	cmd.SetArgs(args[1:])
	cmd.SetOut(e.stdout)
	cmd.SetErr(e.stderr)
	err := cmd.ExecuteContext(ctx)
	code := usage.ExitCode(err)
	switch code {
	case exitUsage:
		fmt.Fprintf(e.stderr, "metersim: %v\nRun 'metersim --help' for usage.\n", err)
	case exitFailure:
		fmt.Fprintf(e.stderr, "metersim: %v\n", err)
	}
	return code
}

func command(cfg *config, e env, args []string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "metersim [flags]",
		Short: "Simulate smart meters delivering signed readings to an NMI's registry",
		Long: `metersim simulates a fleet of smart meters against an NMI's registry.

Each meter gets its own key (P-256 by default), and reads its energy register every
interval (15 minutes by default) along the load shape of a London household (low
night base, morning peak 07:00-09:00, evening peak 17:00-21:00, households spread
lognormally around 8.5 kWh a day): the value sent is the cumulative register in kWh
with three decimals. The readings are reproducible with --seed: a meter's register is
a function of its ID, the seed and the time, and seq counts minutes since 2020.

The period is --slots intervals ending at the last full interval before now, or
starting at --start, or the UTC day --day. The registry refuses readings more than
10 minutes ahead or more than 45 days old.

Meters: --meters new ones named <prefix>-<run>-0001…, or those of --keys-dir, which
keeps their private keys (<id>.key.pem) and the highest seq used (state.json) so that
a later run continues above it. --register enrols the new meters first, in batches
of up to 10,000, with the operator token, each with its meter's proof of possession
for the registry's NMI (signed with the meter's key, as a real meter signs it at
manufacture); their keys are written to --keys-dir only once registered.

Delivery: one measurement per request (POST /meters/{id}/measurements) with
--concurrency meters at a time, or --batch B measurements per concentrator batch
(POST /measurements/batch) with --concurrency concentrators, each owning a share
of the meters so that every meter's readings arrive in order. --rate bounds the
measurements per second (0: as fast as possible).

Software: the meters run --software (default metersim-1 with its checksum) and are
registered with it, as of type --type-id if given (record the type first: pki type
record, with the software approved from a time before the period). --name-software
makes each reading name the software that made it (softwareId in the signed
payload), which the ledger checks against the meter's update log and its type.
--update-to ID:ALG:HEX with --update-after N takes the fleet through a software
update mid-run: after its Nth reading each meter loads the new software, signs its
update statement with its own key (time: half an interval after that reading), has
it delivered (ingest token), and names the new software in its following readings.
The version must be approved for the meters' type from before the update's time
(pki type approve --from). A later run of the same meters (--keys-dir) gives the
new software as --software.

A progress line goes to stderr every second; the summary to stdout, and with
--json also to a file. --replay sends the last request again after the run, to
show the registry answering a re-delivery as a duplicate of what it accepted.

` + client.FlagsHelp + `
The operator token of --register comes the same way from --operator-token-file
(PKI_OPERATOR_TOKEN_FILE) or --operator-token (PKI_OPERATOR_TOKEN).

Exit status: 0 when every measurement and update statement got the registry's
verdict (accepted or refused), 1 when requests failed (no answer, 5xx),
registration failed, or the run was aborted (a bad token, say) or interrupted, 2 on
a usage error.`,
		Example: `  # 100 new meters, registered first, one day of readings in batches of 500
  metersim --api https://127.0.0.1:8081 --ca tls-ca.pem --token-file ingest.token \
      --operator-token-file operator.token --register --meters 100 --batch 500 --concurrency 2

  # the same meters again later, single measurements at 50/s, keys kept between runs
  metersim --keys-dir sim-keys --register --meters 100 ...
  metersim --keys-dir sim-keys --meters 100 --rate 50 --concurrency 8 --slots 4 --replay --json run.json

  # a fleet of type PTB-SIM updating from metersim-1 to metersim-2 after 48 of 96 readings
  metersim --register --meters 100 --type-id PTB-SIM --batch 500 \
      --update-to metersim-2:sha256:2c26b46b68ffc68f --update-after 48 ...`,
		Args: func(_ *cobra.Command, rest []string) error {
			if len(rest) > 0 {
				return usage.Errorf("metersim takes no arguments, only flags; got %q", rest[0])
			}
			return nil
		},
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.slotsGiven = cmd.Flags().Changed("slots")
			return cfg.run(cmd.Context(), e, cfg.registry.Redact(args))
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage.Wrap(err) })
	f := cmd.Flags()
	cfg.registry.Register(f)
	cfg.ingest = cfg.registry.Credential(f, "token", "ingest token that delivers measurements")
	cfg.operator = cfg.registry.Credential(f, "operator-token", "operator token, for --register")
	f.DurationVar(&cfg.timeout, "timeout", 2*time.Minute, "bound on one request, retries apart")

	f.IntVar(&cfg.meters, "meters", 10, "number of meters")
	f.StringVar(&cfg.prefix, "prefix", "", "meter ID prefix; default with --register the namespace of the registry's NMI (PTB for PTBMSP), the only IDs it registers, else SIM")
	f.StringVar(&cfg.runID, "run", "", "run name in new meter IDs (default the UTC start time and a random suffix, e.g. 20260521T101500-3fa2c7d1)")
	f.StringVar(&cfg.curve, "curve", string(meter.P256), "curve of new meter keys: P-256, P-384 or secp256k1")
	f.StringVar(&cfg.keysDir, "keys-dir", "", "directory keeping the meters' keys and last seq between runs")
	f.BoolVar(&cfg.register, "register", false, "register the new meters first (operator token)")
	f.IntVar(&cfg.registerChunk, "register-batch", api.MaxRegistrationBatch, "meters per registration request")

	f.StringVar(&cfg.start, "start", "", "beginning of the first interval, RFC 3339, on an interval boundary")
	f.StringVar(&cfg.day, "day", "", "simulate this UTC day, YYYY-MM-DD (with the default --slots, the whole day)")
	f.IntVar(&cfg.slots, "slots", 96, "number of readings per meter")
	f.DurationVar(&cfg.interval, "interval", 15*time.Minute, "reading interval: whole minutes, at least 5, dividing a day")
	f.Uint64Var(&cfg.seed, "seed", 1, "seed of the load model")

	f.IntVar(&cfg.batch, "batch", 0, fmt.Sprintf("measurements per concentrator batch, at most %d; 0 sends them one by one", api.MaxMeasurementBatch))
	f.IntVar(&cfg.concurrency, "concurrency", 4, "meters (single) or concentrators (batch) delivering at once")
	f.Float64Var(&cfg.rate, "rate", 0, "measurements per second; 0 is as fast as possible")
	f.BoolVar(&cfg.replay, "replay", false, "send the last request again after the run and report the answer (a duplicate of what was accepted)")
	f.BoolVar(&cfg.quiet, "quiet", false, "no progress lines")
	f.StringVar(&cfg.jsonFile, "json", "", "also write the summary as JSON to this file")

	f.StringVar(&cfg.software, "software", "", "the software the meters run at the start, ID:ALG:HEX (default "+softwareText(simulator.DefaultSoftware())+")")
	f.StringVar(&cfg.typeID, "type-id", "", "register the new meters as of this type (with --register)")
	f.BoolVar(&cfg.nameSoftware, "name-software", false, "each reading names the software that made it (softwareId)")
	f.StringVar(&cfg.updateTo, "update-to", "", "software the meters load mid-run, ID:ALG:HEX (with --update-after)")
	f.IntVar(&cfg.updateAfter, "update-after", 0, "readings per meter before the update to --update-to")
	return cmd
}

// softwareText writes a software as --software takes it.
func softwareText(s meter.Software) string { return s.ID + ":" + s.Checksum }

// parseSoftware reads ID:ALG:HEX; the ID may hold colons itself.
func parseSoftware(flag, text string) (meter.Software, error) {
	rest, hexPart, ok1 := cutLast(text, ":")
	id, alg, ok2 := cutLast(rest, ":")
	if !ok1 || !ok2 || id == "" {
		return meter.Software{}, usage.Errorf("--%s %q is not ID:ALG:HEX (e.g. metersim-2:sha256:2c26b46b68ffc68f)", flag, text)
	}
	s := meter.Software{ID: id, Checksum: alg + ":" + hexPart}
	if err := s.Validate(""); err != nil {
		return s, usage.Errorf("--%s: %v", flag, err)
	}
	return s, nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// schedule is the period the flags ask for.
func (c *config) schedule(now time.Time) (loadprofile.Schedule, error) {
	if c.start != "" && c.day != "" {
		return loadprofile.Schedule{}, usage.Errorf("give --start or --day, not both")
	}
	s := loadprofile.LastSlots(now, c.interval, c.slots)
	switch {
	case c.start != "":
		t, err := time.Parse(time.RFC3339, c.start)
		if err != nil {
			return s, usage.Errorf("--start %q is not RFC 3339 (e.g. 2026-05-20T00:00:00Z)", c.start)
		}
		s.Start = t.UTC()
	case c.day != "":
		t, err := time.Parse(time.DateOnly, c.day)
		if err != nil {
			return s, usage.Errorf("--day %q is not YYYY-MM-DD", c.day)
		}
		s.Start = t
		if !c.slotsGiven && c.interval > 0 {
			s.Slots = int(24 * time.Hour / c.interval)
		}
	}
	if err := s.Validate(); err != nil {
		return s, usage.Wrap(err)
	}
	return s, nil
}

func (c *config) validate() error {
	switch {
	case c.meters < 1:
		return usage.Errorf("--meters must be at least 1")
	case c.batch < 0 || c.batch > api.MaxMeasurementBatch:
		return usage.Errorf("--batch must be between 0 and %d", api.MaxMeasurementBatch)
	case c.concurrency < 1:
		return usage.Errorf("--concurrency must be at least 1")
	case c.rate < 0:
		return usage.Errorf("--rate must not be negative")
	case c.registerChunk < 1 || c.registerChunk > api.MaxRegistrationBatch:
		return usage.Errorf("--register-batch must be between 1 and %d", api.MaxRegistrationBatch)
	case c.timeout <= 0:
		return usage.Errorf("--timeout must be positive")
	case (c.updateTo == "") != (c.updateAfter == 0):
		return usage.Errorf("--update-to and --update-after go together: the software the meters load, and after how many readings")
	case c.updateAfter < 0:
		return usage.Errorf("--update-after must be positive")
	case c.typeID != "" && !c.register:
		return usage.Errorf("--type-id names the type new meters are registered as; it needs --register")
	}
	if c.typeID != "" {
		if err := meter.ValidateTypeID(c.typeID); err != nil {
			return usage.Wrap(err)
		}
	}
	return nil
}

// softwareOptions are the meters' software at the start and the update the
// flags ask for, checked against the schedule.
func (c *config) softwareOptions(s loadprofile.Schedule) (meter.Software, *simulator.Update, error) {
	start := simulator.DefaultSoftware()
	if c.software != "" {
		var err error
		if start, err = parseSoftware("software", c.software); err != nil {
			return start, nil, err
		}
	}
	if c.updateTo == "" {
		return start, nil, nil
	}
	to, err := parseSoftware("update-to", c.updateTo)
	if err != nil {
		return start, nil, err
	}
	if to.ID == start.ID {
		return start, nil, usage.Errorf("--update-to names the software the meters run already, %s", start.ID)
	}
	if c.updateAfter >= s.Slots {
		return start, nil, usage.Errorf("--update-after %d leaves no reading after the update: the period has %d", c.updateAfter, s.Slots)
	}
	return start, &simulator.Update{To: to, After: c.updateAfter}, nil
}

func (c *config) run(ctx context.Context, e env, command string) error {
	if err := c.validate(); err != nil {
		return err
	}
	curve, err := meter.ParseCurve(c.curve)
	if err != nil {
		return usage.Wrap(err)
	}
	now := e.now()
	sched, err := c.schedule(now)
	if err != nil {
		return err
	}
	software, update, err := c.softwareOptions(sched)
	if err != nil {
		return err
	}
	if c.runID == "" {
		// The start time names the run for people; the random part keeps
		// two runs started in the same second (through different NMIs'
		// registries, say) from drawing the same meter IDs.
		c.runID = now.UTC().Format("20060102T150405") + "-" + e.nonce()
	}
	ingest, err := c.client(c.ingest)
	if err != nil {
		return err
	}
	var operator *client.Client
	if c.register {
		if operator, err = c.client(c.operator); err != nil {
			return err
		}
	}
	if c.prefix == "" {
		c.prefix = "SIM"
		if c.register {
			// New meters are named in the namespace of the NMI whose
			// registry registers them, the only IDs it may register.
			cs, err := operator.Consortium(ctx)
			if err != nil {
				return fmt.Errorf("ask the registry which NMI it speaks for, whose namespace names the meters: %w", err)
			}
			c.prefix = strings.TrimSuffix(meter.Namespace(cs.NMI), "-")
		}
	}
	prefix := c.prefix + "-" + c.runID
	if err := meter.ValidateMeterID(prefix + "-0001"); err != nil {
		return usage.Errorf("--prefix and --run make invalid meter IDs: %v", err)
	}
	warnImplausible(e.stderr, sched, now)

	fleet, fresh, err := c.fleet(prefix, curve)
	if err != nil {
		return err
	}
	for _, m := range fleet {
		m.Software, m.TypeID = software, c.typeID
	}
	dir := simulator.KeyDir(c.keysDir)
	registered, took := 0, time.Duration(0)
	switch {
	case c.register && len(fresh) > 0:
		begin := time.Now()
		var done func(simulator.Fleet) error
		if c.keysDir != "" {
			done = dir.Save
		}
		// Each meter proves its key for the NMI whose registry registers it.
		cs, err := operator.Consortium(ctx)
		if err != nil {
			return fmt.Errorf("ask the registry which NMI it speaks for, whom the meters' registration proofs name: %w", err)
		}
		registered, err = simulator.Register(ctx, operator, cs.NMI, fresh, c.registerChunk, done)
		took = time.Since(begin)
		if err != nil {
			return fmt.Errorf("registered %d of %d meters: %w", registered, len(fresh), err)
		}
		fmt.Fprintf(e.stderr, "metersim: registered %d meters at %s in %s\n", registered, cs.NMI, took.Round(time.Millisecond))
	case len(fresh) > 0:
		if c.keysDir != "" {
			if err := dir.Save(fresh); err != nil {
				return err
			}
		}
		fmt.Fprintf(e.stderr, "metersim: warning: %d new meters are not registered, so the registry will refuse their readings (METER_NOT_FOUND); give --register\n", len(fresh))
	}
	if c.keysDir != "" {
		last, err := dir.LastSeq()
		if err != nil {
			return err
		}
		sched.SeqOffset = simulator.SeqOffset(sched, last)
		if err := dir.SetLastSeq(loadprofile.SeqAt(sched.End()) + sched.SeqOffset); err != nil {
			return err
		}
	}

	o := simulator.Options{Submitter: ingest, Fleet: fleet, Seed: c.seed, Schedule: sched, Batch: c.batch,
		Concurrency: c.concurrency, Rate: c.rate, Replay: c.replay, NameSoftware: c.nameSoftware, Update: update, Updater: ingest}
	if !c.quiet {
		o.Progress = e.stderr
	}
	s, runErr := simulator.Run(ctx, o)
	if s == nil {
		return runErr
	}
	s.Command, s.Registered, s.RegisterSeconds = command, registered, took.Seconds()
	if err := s.WriteText(e.stdout); err != nil {
		return err
	}
	if c.jsonFile != "" {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(c.jsonFile, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write the summary: %w", err)
		}
	}
	if runErr != nil {
		return runErr
	}
	if s.Failed > 0 {
		return fmt.Errorf("%d of %d measurements got no verdict: their requests failed", s.Failed, s.Sent)
	}
	if u := s.Updates; u != nil && u.Failed > 0 {
		return fmt.Errorf("%d of %d update statements got no verdict: their requests failed", u.Failed, u.Sent)
	}
	return nil
}

// fleet is the run's meters: those of the keys directory, topped up with new
// ones (fresh) up to --meters.
func (c *config) fleet(prefix string, curve meter.Curve) (fleet, fresh simulator.Fleet, err error) {
	var loaded simulator.Fleet
	if c.keysDir != "" {
		if loaded, err = simulator.KeyDir(c.keysDir).Load(); err != nil {
			return nil, nil, err
		}
	}
	if len(loaded) >= c.meters {
		return loaded[:c.meters], nil, nil
	}
	have := make(map[string]bool, len(loaded))
	for _, m := range loaded {
		have[m.ID] = true
	}
	var ids []string
	for n := 1; len(ids) < c.meters-len(loaded); n++ {
		if id := simulator.MeterIDs(prefix, n, 1)[0]; !have[id] {
			ids = append(ids, id)
		}
	}
	if fresh, err = simulator.Generate(ids, curve); err != nil {
		return nil, nil, err
	}
	return append(loaded, fresh...), fresh, nil
}

// client connects with the credential cred, with connections for the
// concurrency asked for.
func (c *config) client(cred *client.Credential) (*client.Client, error) {
	return c.registry.Connect(cred, client.Options{Timeout: c.timeout, MaxConns: max(c.concurrency*2, 10)})
}

// warnImplausible says when part of the period lies where the registry will
// refuse the readings as IMPLAUSIBLE_TIME.
func warnImplausible(w io.Writer, s loadprofile.Schedule, now time.Time) {
	if s.End().After(now.Add(meter.MaxClockAhead)) {
		fmt.Fprintf(w, "metersim: warning: readings after %s are in the future; the registry will refuse them (IMPLAUSIBLE_TIME)\n",
			now.Add(meter.MaxClockAhead).UTC().Format(time.RFC3339))
	}
	if s.Time(0).Before(now.Add(-meter.MaxAge)) {
		fmt.Fprintf(w, "metersim: warning: readings before %s are older than %s; the registry will refuse them (IMPLAUSIBLE_TIME)\n",
			now.Add(-meter.MaxAge).UTC().Format(time.RFC3339), meter.MaxAge)
	}
}
