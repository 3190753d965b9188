package governance

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"
)

func TestProposalFileRoundTrip(t *testing.T) {
	cfg := ownConfig(t)
	p, err := AddOrg(cfg, channelID, "METAS", metasDefinition(t, "metas.good.json"))
	if err != nil {
		t.Fatal(err)
	}
	sign(t, p, signer(t, "PTB", "Admin"))
	path := filepath.Join(t.TempDir(), "add-metas.pb")
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}

	// The file is what `peer channel signconfigtx -f` reads: an Envelope
	// whose payload is a CONFIG_UPDATE carrying a ConfigUpdateEnvelope.
	var env common.Envelope
	if err := proto.Unmarshal(readFile(t, path), &env); err != nil {
		t.Fatal(err)
	}
	var payload common.Payload
	if err := proto.Unmarshal(env.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	var ch common.ChannelHeader
	if err := proto.Unmarshal(payload.Header.ChannelHeader, &ch); err != nil {
		t.Fatal(err)
	}
	if ch.Type != int32(common.HeaderType_CONFIG_UPDATE) || ch.ChannelId != channelID {
		t.Fatalf("channel header %v", &ch)
	}
	var cue common.ConfigUpdateEnvelope
	if err := proto.Unmarshal(payload.Data, &cue); err != nil {
		t.Fatal(err)
	}
	if string(cue.ConfigUpdate) != string(p.Update) || len(cue.Signatures) != 1 {
		t.Fatalf("config update envelope: %d signatures", len(cue.Signatures))
	}

	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.ChannelID != channelID || loaded.Description != p.Description || string(loaded.Update) != string(p.Update) {
		t.Errorf("loaded %q %q", loaded.ChannelID, loaded.Description)
	}
	if got := onlyRequirement(t, loaded.Status(cfg)).String(); got != "Application admins: PTB signed — 1 of 3 required: not yet" {
		t.Errorf("loaded status %q", got)
	}

	// Without its sidecar, the description comes from the update.
	if err := os.Remove(DescriptionFile(path)); err != nil {
		t.Fatal(err)
	}
	loaded, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Update of channel metrology: Channel/Application: adds METAS"; loaded.Description != want {
		t.Errorf("derived description %q, want %q", loaded.Description, want)
	}
}

// signConfigTx does what `peer channel signconfigtx` does to the file
// (internal/peer/channel/create.go sanityCheckAndSignConfigTx): append a
// signature, then rebuild the envelope, signed by the same identity.
func signConfigTx(t *testing.T, path string, s Signer) {
	t.Helper()
	var env common.Envelope
	if err := proto.Unmarshal(readFile(t, path), &env); err != nil {
		t.Fatal(err)
	}
	var payload common.Payload
	if err := proto.Unmarshal(env.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	var cue common.ConfigUpdateEnvelope
	if err := proto.Unmarshal(payload.Data, &cue); err != nil {
		t.Fatal(err)
	}
	sig, err := s.signingIdentity().CreateConfigSignature(cue.ConfigUpdate)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proposal{Update: cue.ConfigUpdate, Signatures: append(cue.Signatures, sig)}
	signed, err := p.Envelope(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, mustMarshal(t, signed), 0o660); err != nil {
		t.Fatal(err)
	}
}

func TestProposalSignedByPeerCLI(t *testing.T) {
	cfg := ownConfig(t)
	p, err := AddOrg(cfg, channelID, "METAS", metasDefinition(t, "metas.good.json"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "add-metas.pb")
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	signConfigTx(t, path, signer(t, "CMI", "Admin"))
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Description != p.Description {
		t.Errorf("description %q", loaded.Description)
	}
	sign(t, loaded, signer(t, "PTB", "Admin"))
	if err := loaded.Save(path); err != nil {
		t.Fatal(err)
	}
	signConfigTx(t, path, signer(t, "NMIJ", "Admin"))
	loaded, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if s := loaded.Status(cfg); !s.Met || onlyRequirement(t, s).String() != "Application admins: CMI, PTB, NMIJ signed — 3 of 3 required: met" {
		t.Errorf("status:\n%s", s)
	}
}

func TestUnmarshalProposalRefuses(t *testing.T) {
	genesis := readFile(t, "../../../testdata/blocks/0000.block")
	var block common.Block
	if err := proto.Unmarshal(genesis, &block); err != nil {
		t.Fatal(err)
	}
	p, err := AddOrg(realConfig(t), channelID, "METAS", metasDefinition(t, "metas.good.json"))
	if err != nil {
		t.Fatal(err)
	}
	mismatch := mustMarshal(t, &common.Envelope{Payload: mustMarshal(t, &common.Payload{
		Header: &common.Header{ChannelHeader: mustMarshal(t, &common.ChannelHeader{Type: int32(common.HeaderType_CONFIG_UPDATE), ChannelId: "elsewhere"})},
		Data:   mustMarshal(t, &common.ConfigUpdateEnvelope{ConfigUpdate: p.Update}),
	})})
	for name, tc := range map[string]struct {
		data []byte
		says string
	}{
		"not protobuf":      {[]byte("hello, world"), "malformed proposal"},
		"a config envelope": {block.Data.Data[0], "an envelope of type CONFIG, not CONFIG_UPDATE"},
		"an empty envelope": {mustMarshal(t, &common.Envelope{}), "no header"},
		"channel mismatch":  {mismatch, `update for channel "metrology" in an envelope for channel "elsewhere"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := UnmarshalProposal(tc.data)
			if !errors.Is(err, ErrMalformedProposal) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want %q", err, tc.says)
			}
		})
	}
}
