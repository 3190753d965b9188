package governance

import (
	"encoding/asn1"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"
)

func sign(t *testing.T, p *Proposal, signers ...Signer) {
	t.Helper()
	for _, s := range signers {
		if err := p.Sign(s); err != nil {
			t.Fatal(err)
		}
	}
}

func onlyRequirement(t *testing.T, s Status) Requirement {
	t.Helper()
	if len(s.Requirements) != 1 {
		t.Fatalf("requirements %v", s.Requirements)
	}
	return s.Requirements[0]
}

func TestStatusAddOrg(t *testing.T) {
	cfg := ownConfig(t)
	p, err := AddOrg(cfg, channelID, "METAS", metasDefinition(t, "metas.good.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := p.Status(cfg)
	r := onlyRequirement(t, s)
	if r.Policy != "/Channel/Application/Admins" || r.Rule != "MAJORITY Admins" || r.Required != 3 || len(r.Members) != 5 || r.Met || s.Met {
		t.Fatalf("unsigned: %+v", r)
	}
	if !slices.Equal(r.Elements, []string{"group /Channel/Application"}) {
		t.Errorf("elements %v", r.Elements)
	}
	if got := r.String(); got != "Application admins: none signed — 0 of 3 required: not yet" {
		t.Errorf("summary %q", got)
	}

	sign(t, p, signer(t, "PTB", "Admin"), signer(t, "CMI", "Admin"))
	s = p.Status(cfg)
	if got := onlyRequirement(t, s).String(); got != "Application admins: PTB, CMI signed — 2 of 3 required: not yet" {
		t.Errorf("summary %q", got)
	}
	if r := onlyRequirement(t, s); !slices.Equal(r.SignedMSPIDs, []string{"PTBMSP", "CMIMSP"}) {
		t.Errorf("signed MSP IDs %v", r.SignedMSPIDs)
	}

	// Signatures that must not count.
	ptb := signer(t, "PTB", "Admin")
	wrongOrg := Signer{MSPID: "CMIMSP", Certificate: ptb.Certificate, PrivateKey: ptb.PrivateKey}
	other, err := RemoveOrg(cfg, channelID, "NMIM")
	if err != nil {
		t.Fatal(err)
	}
	sign(t, other, signer(t, "INMETRO", "Admin"))
	sign(t, p, signer(t, "NMIJ", "Client"), signer(t, "METAS", "Admin"), wrongOrg)
	p.Signatures = append(p.Signatures,
		other.Signatures[0],                             // INMETRO's, over another update
		highS(t, p, signer(t, "NMIM", "Admin")),         // malleated
		freshSignature(t, p, signer(t, "PTB", "Admin")), // PTB again, as peer signconfigtx would add it
	)
	s = p.Status(cfg)
	r = onlyRequirement(t, s)
	if len(r.Signed) != 2 || r.Met || s.Met {
		t.Fatalf("requirement after bad signatures %+v", r)
	}
	wantProblems := []string{
		"", "",
		"", // NMIJ client: valid, not an admin
		"MSP METASMSP is not a member of the channel",
		"certificate not issued by MSP CMIMSP's CA",
		"signature does not verify",
		"high-S signature",
		"a second signature by the same identity",
	}
	if len(s.Signatures) != len(wantProblems) {
		t.Fatalf("%d signature checks", len(s.Signatures))
	}
	for i, want := range wantProblems {
		c := s.Signatures[i]
		if (want == "") != (c.Problem == "") || !strings.Contains(c.Problem, want) {
			t.Errorf("signature %d (%s): problem %q, want %q", i, c.MSPID, c.Problem, want)
		}
	}
	if c := s.Signatures[2]; c.Admin || c.MSPID != "NMIJMSP" {
		t.Errorf("NMIJ client check %+v", c)
	}
	text := s.String()
	for _, want := range []string{
		"Application admins: PTB, CMI signed — 2 of 3 required: not yet",
		"Not an admin: NMIJMSP CN=Client@nmij.nmi.test",
		"Not counted: METASMSP CN=Admin@metas.nmi.test,OU=admin,O=metas.nmi.test,C=CH: MSP METASMSP is not a member of the channel",
		"Not ready to submit",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}

	sign(t, p, signer(t, "INMETRO", "Admin"))
	s = p.Status(cfg)
	if r := onlyRequirement(t, s); r.String() != "Application admins: PTB, CMI, INMETRO signed — 3 of 3 required: met" || !s.Met {
		t.Errorf("%s (met %v)", r, s.Met)
	}
	if !strings.HasSuffix(s.String(), "Ready to submit") {
		t.Errorf("summary:\n%s", s)
	}
}

// highS is a valid signature by s turned into its high-S twin, which ECDSA
// accepts and Fabric refuses.
func highS(t *testing.T, p *Proposal, s Signer) *common.ConfigSignature {
	t.Helper()
	sig := freshSignature(t, p, s)
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig.Signature, &rs); err != nil {
		t.Fatal(err)
	}
	rs.S.Sub(s.PrivateKey.Curve.Params().N, rs.S)
	b, err := asn1.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	sig.Signature = b
	return sig
}

func freshSignature(t *testing.T, p *Proposal, s Signer) *common.ConfigSignature {
	t.Helper()
	sig, err := s.signingIdentity().CreateConfigSignature(p.Update)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestSignTwiceRefused(t *testing.T) {
	cfg := ownConfig(t)
	p, err := AddOrg(cfg, channelID, "METAS", metasDefinition(t, "metas.good.json"))
	if err != nil {
		t.Fatal(err)
	}
	sign(t, p, signer(t, "PTB", "Admin"))
	if err := p.Sign(signer(t, "PTB", "Admin")); err == nil || !strings.Contains(err.Error(), ErrAlreadySigned.Error()) {
		t.Fatalf("second signature: %v", err)
	}
	// Another identity of the same organisation may sign; it counts once.
	sign(t, p, signer(t, "PTB", "Client"))
	ptb := signer(t, "PTB", "Admin")
	ptb.PrivateKey = signer(t, "CMI", "Admin").PrivateKey
	if err := p.Sign(ptb); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("mismatched key: %v", err)
	}
}

func TestStatusConsenter(t *testing.T) {
	cfg := ownConfig(t)
	p, err := AddConsenter(cfg, channelID, "METAS", metasDefinition(t, "metas.good.json"), metasConsenter(t))
	if err != nil {
		t.Fatal(err)
	}
	// NMIM runs no orderer: its admin does not count for the Orderer group.
	sign(t, p, signer(t, "NMIM", "Admin"), signer(t, "NMIJ", "Admin"), signer(t, "PTB", "Admin"))
	s := p.Status(cfg)
	r := onlyRequirement(t, s)
	if r.Policy != "/Channel/Orderer/Admins" || !slices.Equal(r.Members, []string{"CMI", "INMETRO", "NMIJ", "PTB"}) {
		t.Fatalf("requirement %+v", r)
	}
	if want := []string{"group /Channel/Orderer", "policy /Channel/Orderer/BlockValidation", "value /Channel/Orderer/Orderers"}; !slices.Equal(r.Elements, want) {
		t.Errorf("elements %v", r.Elements)
	}
	if got := r.String(); got != "Orderer admins: NMIJ, PTB signed — 2 of 3 required: not yet" {
		t.Errorf("summary %q", got)
	}
	sign(t, p, signer(t, "CMI", "Admin"))
	if s := p.Status(cfg); !s.Met {
		t.Errorf("not met:\n%s", s)
	}
}

func TestStatusStale(t *testing.T) {
	cfg := ownConfig(t)
	p, err := AddOrg(cfg, channelID, "METAS", metasDefinition(t, "metas.good.json"))
	if err != nil {
		t.Fatal(err)
	}
	sign(t, p, signer(t, "PTB", "Admin"), signer(t, "CMI", "Admin"), signer(t, "INMETRO", "Admin"))
	leave, err := RemoveOrg(cfg, channelID, "NMIM")
	if err != nil {
		t.Fatal(err)
	}
	s := p.Status(apply(t, cfg, leave))
	if s.Met || len(s.Problems) == 0 || !strings.Contains(s.Problems[0], "computed against group /Channel/Application at version 0, the channel has version 1") {
		t.Errorf("stale proposal: %v", s.Problems)
	}
}

// An organisation's own values are governed by its own Admins, a signature
// policy; channel values by the channel's Admins, a majority of the
// Application and Orderer groups' Admins.
func TestStatusOtherPolicies(t *testing.T) {
	cfg := ownConfig(t)
	edit := func(f func(*common.Config)) *Proposal {
		tx, err := startTx(cfg)
		if err != nil {
			t.Fatal(err)
		}
		f(tx.UpdatedConfig())
		p, err := newProposal(tx, channelID, "test")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	anchors := edit(func(c *common.Config) {
		if err := setValue(c.ChannelGroup.Groups[applicationGroup].Groups["PTB"], anchorPeersKey, &peer.AnchorPeers{AnchorPeers: []*peer.AnchorPeer{{Host: "peer1.ptb.nmi.test", Port: 7051}}}); err != nil {
			t.Fatal(err)
		}
	})
	sign(t, anchors, signer(t, "CMI", "Admin"))
	r := onlyRequirement(t, anchors.Status(cfg))
	if r.Policy != "/Channel/Application/PTB/Admins" || r.Rule != "signature policy" || r.Met {
		t.Errorf("anchor peers by CMI: %+v", r)
	}
	sign(t, anchors, signer(t, "PTB", "Admin"))
	if r := onlyRequirement(t, anchors.Status(cfg)); !r.Met || r.String() != "PTB admins: PTBMSP signed — 1 of 1 required: met" {
		t.Errorf("anchor peers by PTB: %s", r)
	}

	capabilities := edit(func(c *common.Config) {
		if err := setValue(c.ChannelGroup, "Capabilities", &common.Capabilities{Capabilities: map[string]*common.Capability{"V3_0": {}, "V3_1": {}}}); err != nil {
			t.Fatal(err)
		}
	})
	sign(t, capabilities, signer(t, "NMIM", "Admin"), signer(t, "NMIJ", "Admin"), signer(t, "CMI", "Admin"))
	r = onlyRequirement(t, capabilities.Status(cfg))
	// Application: NMIM, NMIJ, CMI = 3 of 5; Orderer: NMIJ, CMI = 2 of 4.
	if r.Policy != "/Channel/Admins" || r.String() != "Channel admins: Application signed — 1 of 2 required: not yet" {
		t.Errorf("channel capabilities: %s", r)
	}
	sign(t, capabilities, signer(t, "PTB", "Admin"))
	if r := onlyRequirement(t, capabilities.Status(cfg)); !r.Met || !slices.Equal(r.Signed, []string{"Application", "Orderer"}) {
		t.Errorf("channel capabilities: %s", r)
	}
}

func TestStatusUnreadable(t *testing.T) {
	p := &Proposal{ChannelID: channelID, Update: []byte("not a config update")}
	if s := p.Status(ownConfig(t)); s.Met || len(s.Problems) != 1 {
		t.Errorf("%+v", s)
	}
	empty := &Proposal{ChannelID: channelID, Update: mustMarshal(t, &common.ConfigUpdate{ChannelId: channelID, ReadSet: &common.ConfigGroup{}, WriteSet: &common.ConfigGroup{}})}
	if s := empty.Status(ownConfig(t)); s.Met || !slices.Contains(s.Problems, "the update changes nothing") {
		t.Errorf("%+v", s)
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
