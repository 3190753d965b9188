package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/usage"
)

func (a *app) rotateCommand() *cobra.Command {
	var keyFile, proofFile, oldKeyFile string
	c := &cobra.Command{
		Use:   "rotate METER-ID --key new.pub.pem (--proof proof.b64 | --old-key current.key.pem)",
		Short: "Replace a meter's key, with the meter's proof of possession",
		Long: `Replace a meter's key with a new one. The meter proves possession of its current
key by signing the rotation statement for the new key (docs/signing-format.md):

  {"type":"keyRotation","meterId":"<id>","keyVersion":<current+1>,"publicKeySha256":"<new fingerprint>"}

Give that signature with --proof (base64 of the DER signature, or the raw DER as
"openssl dgst -sha256 -sign" writes it), or give the current private key with
--old-key and pki reads the meter's key version and signs the statement itself.
The old key version stays in the meter's history.`,
		Example: `  pki rotate PTB-0001 --key new.pub.pem --old-key meter.key.pem
  pki rotate PTB-0001 --key new.pub.pem --proof proof.b64`,
		Args: exactArgs(1, "one meter ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := meterArg(id); err != nil {
				return err
			}
			if keyFile == "" {
				return usage.Errorf("--key is required: the meter's new public key")
			}
			if (proofFile == "") == (oldKeyFile == "") {
				return usage.Errorf("give exactly one of --proof and --old-key")
			}
			newKey, err := readPublicKey(keyFile)
			if err != nil {
				return err
			}
			req := api.RotateRequest{PublicKey: newKey.PEM()}
			var old *meter.PrivateKey
			if proofFile != "" {
				b, err := a.readInput(proofFile)
				if err != nil {
					return err
				}
				if req.Proof, err = proofText(b); err != nil {
					return usage.Errorf("%s: %v", proofFile, err)
				}
			} else if old, err = a.readPrivateKey(oldKeyFile); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if old != nil {
				if req.Proof, err = rotationProof(cmd, c, id, old, newKey); err != nil {
					return err
				}
			}
			r, err := c.RotateKey(cmd.Context(), id, req)
			if err != nil {
				return fmt.Errorf("rotate the key of meter %s: %w", id, err)
			}
			return a.print(r, func(w io.Writer) { receiptText(w, "rotated", r) })
		},
	}
	c.Flags().StringVar(&keyFile, "key", "", "the meter's new public key (PEM)")
	c.Flags().StringVar(&proofFile, "proof", "", "file with the current key's signature over the rotation statement (base64 or DER; - for stdin)")
	c.Flags().StringVar(&oldKeyFile, "old-key", "", "the meter's current private key, to sign the rotation statement here")
	return c
}

// rotationProof signs the rotation statement with the meter's current key,
// after checking that it is the key the ledger holds.
func rotationProof(cmd *cobra.Command, c *client.Client, id string, old *meter.PrivateKey, newKey *meter.PublicKey) (string, error) {
	m, err := c.GetMeter(cmd.Context(), id, client.Read{})
	if err != nil {
		return "", fmt.Errorf("read meter %s: %w", id, err)
	}
	if fp := old.Public().Fingerprint(); fp != m.Fingerprint {
		return "", usage.Errorf("--old-key is not the current key of meter %s: its fingerprint is %s, the registry holds %s (key version %d)", id, fp, m.Fingerprint, m.KeyVersion)
	}
	sig, err := old.Sign(meter.RotationStatement(id, m.KeyVersion+1, newKey))
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// proofText accepts a signature as base64 text or as raw DER.
func proofText(b []byte) (string, error) {
	text := string(bytes.TrimSpace(b))
	if sig, err := base64.StdEncoding.DecodeString(text); err == nil && len(sig) > 0 {
		return text, nil
	}
	if len(b) > 0 && b[0] == 0x30 {
		return base64.StdEncoding.EncodeToString(b), nil
	}
	return "", fmt.Errorf("the proof is neither base64 nor a DER signature")
}

func (a *app) revokeCommand() *cobra.Command {
	var req api.RevokeRequest
	var reason string
	c := &cobra.Command{
		Use:   "revoke METER-ID --reason REASON [--invalidity-date RFC3339]",
		Short: "Revoke a meter's key",
		Long: `Revoke a meter's key, with an RFC 5280 reason: unspecified, keyCompromise,
affiliationChanged, superseded, cessationOfOperation, or certificateHold (which
"pki reinstate" can lift). Measurements signed after the revocation are refused;
those accepted before stay valid. --invalidity-date states since when the key is
known or suspected to be invalid.`,
		Example: `  pki revoke PTB-0001 --reason keyCompromise --invalidity-date 2026-05-01T00:00:00Z
  pki revoke PTB-0002 --reason certificateHold`,
		Args: exactArgs(1, "one meter ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := meterArg(id); err != nil {
				return err
			}
			if reason == "" {
				return usage.Errorf("--reason is required: one of unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold")
			}
			var err error
			if req.Reason, err = meter.ParseReason(reason); err != nil {
				return usage.Wrap(err)
			}
			if req.InvalidityDate != "" {
				if _, err := time.Parse(time.RFC3339, req.InvalidityDate); err != nil {
					return usage.Errorf("--invalidity-date %q is not RFC 3339 (e.g. 2026-05-01T00:00:00Z)", req.InvalidityDate)
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.RevokeMeter(cmd.Context(), id, req)
			if err != nil {
				return fmt.Errorf("revoke meter %s: %w", id, err)
			}
			return a.print(r, func(w io.Writer) { receiptText(w, "revoked", r) })
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "revocation reason (RFC 5280 CRLReason)")
	c.Flags().StringVar(&req.InvalidityDate, "invalidity-date", "", "since when the key is known or suspected to be invalid (RFC 3339)")
	return c
}

func (a *app) reinstateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "reinstate METER-ID",
		Short: "Lift a certificateHold",
		Long: `Reinstate a meter whose key was revoked with reason certificateHold; any other
revocation is final.`,
		Example: `  pki reinstate PTB-0002`,
		Args:    exactArgs(1, "one meter ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := meterArg(id); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.ReinstateMeter(cmd.Context(), id)
			if err != nil {
				return fmt.Errorf("reinstate meter %s: %w", id, err)
			}
			return a.print(r, func(w io.Writer) { receiptText(w, "reinstated", r) })
		},
	}
}
