// Command pki is the NMI operator's command line for the meter registry:
// make meter keys and their registration proofs, register meters one by one
// or from a manufacturer's CSV, rotate, revoke and reinstate their keys, read
// the registry, and sign, submit and verify measurements in the project's
// signing format.
//
//	pki --api https://127.0.0.1:8081 --token-file operator.token --ca tls-ca.pem list
//
// It exits 0 on success, 1 when the registry refuses or cannot be reached,
// and 2 on a usage error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/usage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, now: time.Now})
	stop()
	os.Exit(code)
}

// env is what the commands take from the process, so tests can give their own.
type env struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
}

// Exit codes.
const (
	exitOK      = usage.ExitOK
	exitFailure = usage.ExitFailure // the registry refused, or could not be reached
	exitUsage   = usage.ExitUsage
)

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, e env) int {
	a := &app{env: e, registry: client.NewFlags(e.getenv)}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	return a.report(cmd, err)
}

// app holds the global flags and builds the client on demand.
type app struct {
	env
	registry *client.Flags
	token    *client.Credential
	output   string
}

// Output formats.
const (
	outputText = "text"
	outputJSON = "json"
)

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "pki",
		Short: "Operate an NMI's meter registry: meter keys, registration, key lifecycle, measurements",
		Long: `pki is the NMI operator's command line for the Inter-NMI meter registry.

It makes meter keys and the meters' proofs of possession for the NMI that registers
them, registers meters (one by one or from a manufacturer's CSV), rotates, revokes
and reinstates their keys, reads the registry, and signs, submits and verifies
measurements in the project's signing format (docs/signing-format.md). It records
the meter types the NMI examined with their approved software ("pki type"), and
signs and delivers meters' software update statements ("pki software").

The operator role registers and changes meters and records types, the ingest role
delivers measurements and update statements, the auditor role reads.

` + client.FlagsHelp + `

Exit status: 0 on success, 1 when the registry refuses or cannot be reached (the
problem's code and detail go to stderr), 2 on a usage error.`,
		Example: `  export PKI_API=https://127.0.0.1:8081 PKI_TOKEN_FILE=operator.token PKI_CA=tls-ca.pem
  pki meter keygen --out meter.key.pem --pub meter.pub.pem
  pki meter prove --key meter.key.pem --meter PTB-0001 --nmi PTBMSP > proof.b64
  pki register --id PTB-0001 --key meter.pub.pem --proof proof.b64 --manufacturer ACME --model E350 \
      --serial 123456 --software-id fw-1.2 --software-checksum sha256:9f86d081884c7d65
  pki list --status active
  pki sign --key meter.key.pem --meter PTB-0001 --seq 1 --value 12.5 | pki submit -`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          noArgs,
		RunE:          groupRun,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if a.output != outputText && a.output != outputJSON {
				return usage.Errorf("--output must be text or json, not %q", a.output)
			}
			return nil
		},
	}
	f := root.PersistentFlags()
	a.registry.Register(f)
	a.token = a.registry.Credential(f, "token", "bearer token")
	f.StringVarP(&a.output, "output", "o", outputText, "output format: text (tables) or json (the registry's answer)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage.Wrap(err) })

	root.AddCommand(a.meterCommand(), a.registerCommand(), a.preEnrolCommand(),
		a.showCommand(), a.listCommand(), a.historyCommand(), a.keysCommand(),
		a.rotateCommand(), a.revokeCommand(), a.reinstateCommand(),
		a.signCommand(), a.submitCommand(), a.verifyCommand(), a.consortiumCommand(),
		a.attestCommand(), a.verifyProofCommand(), a.typeCommand(), a.assignTypeCommand(), a.softwareCommand())
	return root
}

// client connects to the registry named by the flags or the environment.
func (a *app) client() (*client.Client, error) {
	return a.registry.Connect(a.token, client.Options{})
}

// exitError ends the command with a status after its output was written,
// e.g. a batch with refused items.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// report writes err to stderr and returns the exit code.
func (a *app) report(cmd *cobra.Command, err error) int {
	var exit *exitError
	var problem *api.Problem
	switch {
	case usage.Is(err):
		fmt.Fprintf(a.stderr, "pki: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return exitUsage
	case errors.As(err, &exit):
		fmt.Fprintf(a.stderr, "pki: %s\n", exit.msg)
		return exit.code
	case errors.As(err, &problem):
		if a.output == outputJSON {
			b, _ := json.MarshalIndent(problem, "", "  ")
			fmt.Fprintf(a.stderr, "%s\n", b)
			return exitFailure
		}
		// err names what was attempted and ends in the problem's code and detail.
		fmt.Fprintf(a.stderr, "pki: %v\n", err)
		for _, e := range problem.Errors {
			fmt.Fprintf(a.stderr, "  %s\n", e)
		}
		if problem.TxID != "" {
			fmt.Fprintf(a.stderr, "  transaction %s\n", problem.TxID)
		}
		return exitFailure
	}
	fmt.Fprintf(a.stderr, "pki: %v\n", err)
	return exitFailure
}

// noArgs refuses positional arguments, naming a mistyped command.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usage.Wrap(errors.New(msg))
}

// groupRun answers a command that only groups others.
func groupRun(cmd *cobra.Command, _ []string) error {
	cmd.SetOut(cmd.ErrOrStderr())
	_ = cmd.Help()
	return usage.Errorf("%s needs a command", cmd.CommandPath())
}

// exactArgs requires n positional arguments, named in the message.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usage.Errorf("%s takes %s", cmd.CommandPath(), names)
		}
		return nil
	}
}
