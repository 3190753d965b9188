package governance

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"
)

func TestAddOrg(t *testing.T) {
	cfg := realConfig(t)
	before := proto.Clone(cfg)
	def := metasDefinition(t, "metas.good.json")
	p, err := AddOrg(cfg, channelID, "METAS", def)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(cfg, before) {
		t.Fatal("AddOrg modified the configuration it was given")
	}
	if p.ChannelID != channelID || !strings.Contains(p.Description, "METAS (MSP METASMSP)") {
		t.Errorf("proposal %q for %q", p.Description, p.ChannelID)
	}
	u := update(t, p)
	if _, ok := u.WriteSet.Groups[ordererGroup]; ok {
		t.Error("the update touches the Orderer group")
	}
	rApp, wApp := u.ReadSet.Groups[applicationGroup], u.WriteSet.Groups[applicationGroup]
	if rApp.GetVersion() != 0 || wApp.GetVersion() != 1 {
		t.Errorf("Application version %d -> %d, want 0 -> 1", rApp.GetVersion(), wApp.GetVersion())
	}
	if wApp.ModPolicy != adminsPolicy {
		t.Errorf("Application mod_policy %q", wApp.ModPolicy)
	}
	metas := wApp.Groups["METAS"]
	if metas == nil || metas.Version != 0 || rApp.Groups["METAS"] != nil {
		t.Fatalf("write set METAS %v, read set METAS %v", metas, rApp.Groups["METAS"])
	}
	if got := slices.Sorted(maps.Keys(metas.Values)); !slices.Equal(got, []string{anchorPeersKey, mspKey}) {
		t.Errorf("METAS values %v", got)
	}
	if got := slices.Sorted(maps.Keys(metas.Policies)); !slices.Equal(got, []string{adminsPolicy, "Endorsement", "Readers", "Writers"}) {
		t.Errorf("METAS policies %v", got)
	}
	// The others are carried at their version, unchanged: the read set pins them.
	for _, n := range nmis {
		if r, w := rApp.Groups[n.name], wApp.Groups[n.name]; r == nil || w == nil || r.Version != 0 || w.Version != 0 || len(w.Values) > 0 {
			t.Errorf("%s: read %v write %v", n.name, r, w)
		}
	}
	next := apply(t, cfg, p)
	if !proto.Equal(next.ChannelGroup.Groups[applicationGroup].Groups["METAS"], def) {
		t.Error("the resulting Application/METAS is not the definition")
	}
	if got := slices.Sorted(maps.Keys(next.ChannelGroup.Groups[applicationGroup].Groups)); len(got) != 6 {
		t.Errorf("members after the update: %v", got)
	}
}

// An orderer organisation's definition carries Endpoints, which an
// Application organisation may not.
func TestAddOrgDropsEndpoints(t *testing.T) {
	p, err := AddOrg(realConfig(t), channelID, "METAS", metasDefinition(t, "metas-orderer.good.json"))
	if err != nil {
		t.Fatal(err)
	}
	metas := update(t, p).WriteSet.Groups[applicationGroup].Groups["METAS"]
	if got := slices.Sorted(maps.Keys(metas.Values)); !slices.Equal(got, []string{mspKey}) {
		t.Errorf("METAS values %v", got)
	}
}

func TestAddOrgRefuses(t *testing.T) {
	cfg := realConfig(t)
	ptb := cfg.ChannelGroup.Groups[applicationGroup].Groups["PTB"]
	metas := metasDefinition(t, "metas.good.json")
	// METAS's MSP under the MSP ID of an existing member, but defined
	// differently: Fabric allows one definition per MSP ID.
	renamed := proto.Clone(ptb).(*common.ConfigGroup)
	renamed.Values[mspKey] = proto.Clone(metas.Values[mspKey]).(*common.ConfigValue)
	for _, tc := range []struct {
		name string
		org  *common.ConfigGroup
		want error
		says string
	}{
		{"PTB2", ptb, ErrMSPIDPresent, "MSP ID already present: PTBMSP is organisation PTB"},
		{"PTB", metas, ErrOrgPresent, "PTB is MSP PTBMSP"},
		{"METAS", &common.ConfigGroup{ModPolicy: adminsPolicy}, ErrMalformedDefinition, "no MSP value"},
		{"ME TAS", metas, nil, "not a valid organisation name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := AddOrg(cfg, channelID, tc.name, tc.org)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want %v saying %q", err, tc.want, tc.says)
			}
		})
	}
}

func TestRemoveOrg(t *testing.T) {
	cfg := realConfig(t)
	before := proto.Clone(cfg)
	p, err := RemoveOrg(cfg, channelID, "NMIM")
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(cfg, before) {
		t.Fatal("RemoveOrg modified the configuration it was given")
	}
	u := update(t, p)
	wApp := u.WriteSet.Groups[applicationGroup]
	if wApp.Version != 1 || wApp.Groups["NMIM"] != nil || len(wApp.Groups) != 4 {
		t.Errorf("Application write set version %d, members %v", wApp.Version, slices.Sorted(maps.Keys(wApp.Groups)))
	}
	next := apply(t, cfg, p)
	if got := slices.Sorted(maps.Keys(next.ChannelGroup.Groups[applicationGroup].Groups)); !slices.Equal(got, []string{"CMI", "INMETRO", "NMIJ", "PTB"}) {
		t.Errorf("members after the update: %v", got)
	}
	if !strings.Contains(Describe(u), "Channel/Application: members now CMI, INMETRO, NMIJ, PTB") {
		t.Errorf("derived description %q", Describe(u))
	}
}

func TestRemoveOrgRefuses(t *testing.T) {
	cfg := realConfig(t)
	_, err := RemoveOrg(cfg, channelID, "METAS")
	if !errors.Is(err, ErrUnknownOrg) {
		t.Errorf("unknown organisation: %v", err)
	}
	_, err = RemoveOrg(cfg, channelID, "CMI")
	if !errors.Is(err, ErrRunsConsenter) || !strings.Contains(err.Error(), "consenter 2 (127.0.0.1:7250); remove it from the consenter set first") {
		t.Errorf("consenter organisation: %v", err)
	}
}

// An NMI leaves in two steps: its consenter goes (with the organisation's
// place in the Orderer group), then the organisation.
func TestLeaveInTwoSteps(t *testing.T) {
	cfg := realConfig(t)
	add, err := AddConsenter(cfg, channelID, "METAS", metasDefinition(t, "metas.good.json"), metasConsenter(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg = apply(t, cfg, add)
	remove, err := RemoveConsenter(cfg, channelID, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg = apply(t, cfg, remove)
	if _, ok := cfg.ChannelGroup.Groups[ordererGroup].Groups["CMI"]; ok {
		t.Error("CMI is still an Orderer organisation")
	}
	leave, err := RemoveOrg(cfg, channelID, "CMI")
	if err != nil {
		t.Fatal(err)
	}
	cfg = apply(t, cfg, leave)
	if _, ok := cfg.ChannelGroup.Groups[applicationGroup].Groups["CMI"]; ok {
		t.Error("CMI is still an Application organisation")
	}
}

// An organisation listed in the Orderer group without a consenter leaves
// both groups, which needs both groups' admins.
func TestRemoveOrgFromBothGroups(t *testing.T) {
	cfg := ownConfig(t)
	nmim := cfg.ChannelGroup.Groups[applicationGroup].Groups["NMIM"]
	org, err := ordererOrg(nmim, Consenter{Host: "127.0.0.1", Port: 7550})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ChannelGroup.Groups[ordererGroup].Groups["NMIM"] = org
	p, err := RemoveOrg(cfg, channelID, "NMIM")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(p.Description, "and from its Orderer group") {
		t.Errorf("description %q", p.Description)
	}
	next := apply(t, cfg, p)
	if _, ok := next.ChannelGroup.Groups[ordererGroup].Groups["NMIM"]; ok {
		t.Error("NMIM is still an Orderer organisation")
	}
	var policies []string
	for _, r := range p.Status(cfg).Requirements {
		policies = append(policies, r.Policy)
	}
	if !slices.Equal(policies, []string{"/Channel/Application/Admins", "/Channel/Orderer/Admins"}) {
		t.Errorf("requirements %v", policies)
	}
}
