package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/proof"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/usage"
)

func (a *app) attestCommand() *cobra.Command {
	var out string
	var latest, noChain bool
	c := &cobra.Command{
		Use:   "attest METER-ID [--out FILE] [--latest] [--no-chain]",
		Short: "Get a meter's attestation bundle: its certificate, checkable offline",
		Long: `Ask the consortium to attest a meter and write the attestation bundle
(docs/attestation.md): the meter's record as the peers of at least two NMIs signed it,
in a block the orderers signed, with the channel's configuration blocks since genesis.
Anyone holding the channel's genesis block hash checks it offline with
"pki verify-proof".

By default a new attestation is made (one transaction; at most one per meter per
block). --latest answers the newest attestation already on the ledger instead.
--no-chain leaves out the genesis and configuration blocks, for a relying party
that already holds them (verify with --chain EARLIER-BUNDLE).`,
		Example: `  pki attest PTB-0001 --out PTB-0001.attestation.json
  pki verify-proof PTB-0001.attestation.json --genesis-hash $(cat genesis.hash) --max-age 24h`,
		Args: exactArgs(1, "one meter ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := meter.ValidateMeterID(args[0]); err != nil {
				return usage.Wrap(err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var bundle []byte
			if latest {
				bundle, err = c.LatestAttestation(cmd.Context(), args[0], !noChain, client.Read{})
			} else {
				bundle, err = c.Attest(cmd.Context(), args[0], !noChain)
			}
			if err != nil {
				return fmt.Errorf("attest %s: %w", args[0], err)
			}
			if out == "" || out == "-" {
				_, err = fmt.Fprintf(a.stdout, "%s\n", bundle)
				return err
			}
			if err := os.WriteFile(out, append(bundle, '\n'), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "wrote %s (%d bytes)\n", out, len(bundle)+1)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "file to write the bundle to; default stdout")
	c.Flags().BoolVar(&latest, "latest", false, "answer the newest attestation on the ledger; make none")
	c.Flags().BoolVar(&noChain, "no-chain", false, "leave out the genesis and configuration blocks")
	return c
}

func (a *app) verifyProofCommand() *cobra.Command {
	var genesisHash, genesisBlock, meterID, chainFile string
	var maxAge time.Duration
	c := &cobra.Command{
		Use:   "verify-proof BUNDLE|- (--genesis-hash HEX | --genesis-block FILE) [--max-age 24h] [--meter ID] [--chain EARLIER]",
		Short: "Check a meter's attestation bundle offline and print what it proves",
		Long: `Verify an attestation bundle (docs/attestation.md) with nothing but the channel's
genesis block hash: no registry, no peer, no network. It checks the genesis block
against the hash, each configuration block since against the orderers in force
before it, the attestation's block against a BFT quorum of the orderers in force at
it, and the attestation transaction: an AttestMeter of the meter, endorsed by the
peers of at least two NMIs of the consortium, whose signatures cover the meter's
record as they read it.

On success it prints the statement the bundle proves:

  As of block N (time T), meter M is bound to key fingerprint F (curve C, key
  version V), status S, owned by NMI O; attested by NMIs A and B; ordered by k of
  n consenters.

A refusal names the part that failed and why, and exits 1. The genesis hash is the
one "make up" writes (network/.run/genesis.hash) and the explorer pins; obtain it
out of band, e.g. from the NMIs' published channel parameters. --genesis-block takes
the genesis block itself (as "peer channel fetch 0" writes it) and hashes it.
--max-age (30 days unless given) refuses an attestation made longer ago: a
fresh attestation is a fresh certificate, and an endorsed attestation held back
and ordered after the meter was revoked is refused by the peers' validation
flags the bundle carries, which the orderers do not sign; the age bounds what a
bundle whose flags were forged can claim. The relying party decides how old an
attestation may be; --max-age 0 accepts any age.`,
		Example: `  pki verify-proof PTB-0001.attestation.json --genesis-hash aa8d0efa...9c35 --max-age 24h
  pki verify-proof new.json --chain earlier.json --genesis-hash aa8d0efa...9c35 --meter PTB-0001 -o json`,
		Args: exactArgs(1, "one bundle file (or - for stdin)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			pinned, err := a.pinnedGenesis(genesisHash, genesisBlock)
			if err != nil {
				return err
			}
			if maxAge < 0 {
				return usage.Errorf("--max-age must not be negative")
			}
			data, err := a.readInput(args[0])
			if err != nil {
				return err
			}
			b, err := proof.Parse(data)
			if err != nil {
				return a.refused(&proof.Refusal{Kind: proof.ErrBundle, Where: args[0], Reason: err.Error()})
			}
			opts := proof.Options{GenesisHash: pinned, MaxAge: maxAge, MeterID: meterID, Now: a.now()}
			if chainFile != "" {
				data, err := a.readInput(chainFile)
				if err != nil {
					return err
				}
				if opts.Chain, err = proof.Parse(data); err != nil {
					return a.refused(&proof.Refusal{Kind: proof.ErrChain, Where: chainFile, Reason: err.Error()})
				}
			}
			st, err := proof.Verify(b, opts)
			if err != nil {
				var r *proof.Refusal
				if errors.As(err, &r) {
					return a.refused(r)
				}
				return err
			}
			return a.print(st, func(w io.Writer) { fmt.Fprintln(w, st) })
		},
	}
	f := c.Flags()
	f.StringVar(&genesisHash, "genesis-hash", "", "hex SHA-256 header hash of the channel's genesis block: the trust anchor")
	f.StringVar(&genesisBlock, "genesis-block", "", "the channel's genesis block (protobuf), instead of its hash")
	f.DurationVar(&maxAge, "max-age", 30*24*time.Hour, "refuse an attestation older than this (e.g. 24h); 0 accepts any age")
	f.StringVar(&meterID, "meter", "", "refuse a bundle that attests another meter")
	f.StringVar(&chainFile, "chain", "", "an earlier bundle whose configuration chain to verify with (for bundles made with --no-chain)")
	return c
}

// pinnedGenesis reads the trust anchor from --genesis-hash or --genesis-block.
func (a *app) pinnedGenesis(hash, blockFile string) ([]byte, error) {
	switch {
	case hash != "" && blockFile != "":
		return nil, usage.Errorf("give --genesis-hash or --genesis-block, not both")
	case hash != "":
		h, err := hex.DecodeString(strings.TrimSpace(hash))
		if err != nil || len(h) != 32 {
			return nil, usage.Errorf("--genesis-hash must be 64 hexadecimal digits (a SHA-256 hash), not %q", hash)
		}
		return h, nil
	case blockFile != "":
		data, err := a.readInput(blockFile)
		if err != nil {
			return nil, err
		}
		var g common.Block
		if err := proto.Unmarshal(data, &g); err != nil {
			return nil, usage.Errorf("--genesis-block %s is not a block: %v", blockFile, err)
		}
		if g.GetHeader().GetNumber() != 0 {
			return nil, usage.Errorf("--genesis-block %s is block %d, not the genesis block", blockFile, g.GetHeader().GetNumber())
		}
		return chain.GenesisHash(&g)
	}
	return nil, usage.Errorf("the trust anchor is required: --genesis-hash HEX (or --genesis-block FILE)")
}

// refused reports a refusal: the reason on stderr, or with -o json the
// refusal as JSON on stdout; the exit status is 1 either way.
func (a *app) refused(r *proof.Refusal) error {
	if a.output == outputJSON {
		if err := writeJSON(a.stdout, struct {
			Verified bool   `json:"verified"`
			Kind     string `json:"kind"`
			Where    string `json:"where"`
			Reason   string `json:"reason"`
		}{false, string(r.Kind), r.Where, r.Reason}); err != nil {
			return err
		}
	}
	return &exitError{code: exitFailure, msg: r.Error()}
}
