package governance

import (
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"
)

// configtxgen computed the genesis BlockValidation policy with Fabric's
// EncodeBFTBlockVerificationPolicy; ours must agree byte for byte, since the
// orderer compares them so.
func TestBlockValidationPolicyMatchesFabric(t *testing.T) {
	cfg := realConfig(t)
	ord := cfg.ChannelGroup.Groups[ordererGroup]
	set, err := consenters(ord)
	if err != nil {
		t.Fatal(err)
	}
	got, err := BlockValidationPolicy(set.ConsenterMapping)
	if err != nil {
		t.Fatal(err)
	}
	if want := ord.Policies[blockValidationKey].Policy; !proto.Equal(got, want) {
		t.Fatalf("BlockValidation differs from the genesis block's")
	}
}

func TestBFTQuorum(t *testing.T) {
	// n: 4 -> 3, 5 -> 4, 6 -> 4, 7 -> 5 (Fabric's ComputeBFTQuorum).
	for n, want := range map[int]int{1: 1, 3: 2, 4: 3, 5: 4, 6: 4, 7: 5, 10: 7} {
		if got := bftQuorum(n); got != want {
			t.Errorf("quorum of %d: %d, want %d", n, got, want)
		}
	}
}

func blockValidationQuorum(t *testing.T, p *common.Policy) (int32, int) {
	t.Helper()
	var env common.SignaturePolicyEnvelope
	if err := proto.Unmarshal(p.Value, &env); err != nil {
		t.Fatal(err)
	}
	return env.Rule.GetNOutOf().GetN(), len(env.Identities)
}

func TestAddConsenter(t *testing.T) {
	for _, tc := range []struct {
		file     string
		endpoint string
	}{
		{"metas.good.json", "127.0.0.1:7650"},         // from the consenter
		{"metas-orderer.good.json", "127.0.0.1:7650"}, // from the definition
	} {
		t.Run(tc.file, func(t *testing.T) {
			cfg := realConfig(t)
			before := proto.Clone(cfg)
			p, err := AddConsenter(cfg, channelID, "METAS", metasDefinition(t, tc.file), metasConsenter(t))
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(cfg, before) {
				t.Fatal("AddConsenter modified the configuration it was given")
			}
			if !strings.Contains(p.Description, "Add consenter 5 (127.0.0.1:7650, MSP METASMSP)") || !strings.Contains(p.Description, "5 nodes, tolerating 1 faulty, block quorum 4") {
				t.Errorf("description %q", p.Description)
			}
			u := update(t, p)
			if _, ok := u.WriteSet.Groups[applicationGroup]; ok {
				t.Error("the update touches the Application group")
			}
			r, w := u.ReadSet.Groups[ordererGroup], u.WriteSet.Groups[ordererGroup]
			if r.Version != 0 || w.Version != 1 {
				t.Errorf("Orderer group version %d -> %d (an organisation joins it)", r.Version, w.Version)
			}
			if v := w.Values[orderersKey]; v == nil || v.Version != 1 {
				t.Fatalf("Orderers value in the write set: %v", v)
			}
			if pol := w.Policies[blockValidationKey]; pol == nil || pol.Version != 1 || pol.ModPolicy != adminsPolicy {
				t.Fatalf("BlockValidation in the write set: %v", pol)
			}
			metas := w.Groups["METAS"]
			if got := slices.Sorted(maps.Keys(metas.GetValues())); !slices.Equal(got, []string{endpointsKey, mspKey}) {
				t.Fatalf("Orderer/METAS values %v", got)
			}
			var ep common.OrdererAddresses
			if err := proto.Unmarshal(metas.Values[endpointsKey].Value, &ep); err != nil || !slices.Equal(ep.Addresses, []string{tc.endpoint}) {
				t.Errorf("endpoints %v (%v)", ep.Addresses, err)
			}

			next := apply(t, cfg, p)
			if got := consenterIDs(t, next); !slices.Equal(got, []uint32{1, 2, 3, 4, 5}) {
				t.Errorf("consenters %v", got)
			}
			ord := next.ChannelGroup.Groups[ordererGroup]
			set, _ := consenters(ord)
			want, _ := BlockValidationPolicy(set.ConsenterMapping)
			if !proto.Equal(ord.Policies[blockValidationKey].Policy, want) {
				t.Error("BlockValidation does not match the new consenter set")
			}
			if n, ids := blockValidationQuorum(t, want); n != 4 || ids != 5 {
				t.Errorf("BlockValidation %d of %d, want 4 of 5", n, ids)
			}
		})
	}
}

// Once METAS is a member, its Application definition serves.
func TestAddConsenterOfMember(t *testing.T) {
	cfg := realConfig(t)
	join, err := AddOrg(cfg, channelID, "METAS", metasDefinition(t, "metas.good.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg = apply(t, cfg, join)
	c := metasConsenter(t)
	c.ID = 9
	p, err := AddConsenter(cfg, channelID, "METAS", nil, c)
	if err != nil {
		t.Fatal(err)
	}
	next := apply(t, cfg, p)
	if got := consenterIDs(t, next); !slices.Equal(got, []uint32{1, 2, 3, 4, 9}) {
		t.Errorf("consenters %v", got)
	}
	if _, _, err := fabricMSP(next.ChannelGroup.Groups[ordererGroup].Groups["METAS"]); err != nil {
		t.Error(err)
	}
}

func TestAddConsenterRefuses(t *testing.T) {
	cfg := realConfig(t)
	def := metasDefinition(t, "metas.good.json")
	ptbTLS := readFile(t, filepath.Join(fixtureDir, "PTB", "orderer-tls", "cert.pem"))
	ptbAdmin := readFile(t, filepath.Join(fixtureDir, "PTB", "users", "Admin", "msp", "signcerts", "cert.pem"))
	realPTB, _ := consenters(cfg.ChannelGroup.Groups[ordererGroup])
	for _, tc := range []struct {
		name   string
		org    string
		def    *common.ConfigGroup
		edit   func(*Consenter)
		want   error
		saying string
	}{
		{"taken ID", "METAS", def, func(c *Consenter) { c.ID = 3 }, ErrInvalidConsenter, "ID 3 is consenter 127.0.0.1:7350"},
		{"taken address", "METAS", def, func(c *Consenter) { c.Port = 7150 }, ErrInvalidConsenter, "127.0.0.1:7150 is consenter 1"},
		{"identity of another CA", "METAS", def, func(c *Consenter) { c.Identity = ptbAdmin }, ErrInvalidConsenter, "identity certificate"},
		{"TLS of another CA", "METAS", def, func(c *Consenter) { c.ServerTLSCert = ptbTLS }, ErrInvalidConsenter, "server TLS certificate"},
		{"no TLS", "METAS", def, func(c *Consenter) { c.ClientTLSCert = nil }, ErrInvalidConsenter, "no client TLS certificate"},
		{"MSP mismatch", "METAS", def, func(c *Consenter) { c.MSPID = "PTBMSP" }, ErrInvalidConsenter, "the consenter is of MSP PTBMSP"},
		{"no port", "METAS", def, func(c *Consenter) { c.Port = 0 }, ErrInvalidConsenter, "host and port"},
		{"unknown org without definition", "METAS", nil, func(*Consenter) {}, ErrUnknownOrg, "give its definition"},
		{"wrong Orderer org", "PTB", nil, func(*Consenter) {}, ErrInvalidConsenter, "Orderer organisation PTB of MSP PTBMSP"},
		{"same identity", "PTB", nil, func(c *Consenter) {
			first := realPTB.ConsenterMapping[0]
			*c = Consenter{Host: "127.0.0.1", Port: 7999, MSPID: "PTBMSP", Identity: first.Identity, ClientTLSCert: first.ClientTlsCert, ServerTLSCert: first.ServerTlsCert}
		}, ErrInvalidConsenter, "its identity is consenter 1's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := metasConsenter(t)
			tc.edit(&c)
			_, err := AddConsenter(cfg, channelID, tc.org, tc.def, c)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.saying) {
				t.Fatalf("got %v, want %v saying %q", err, tc.want, tc.saying)
			}
		})
	}
}

func TestRemoveConsenter(t *testing.T) {
	genesis := realConfig(t)
	add, err := AddConsenter(genesis, channelID, "METAS", metasDefinition(t, "metas.good.json"), metasConsenter(t))
	if err != nil {
		t.Fatal(err)
	}
	five := apply(t, genesis, add)
	before := proto.Clone(five)

	p, err := RemoveConsenter(five, channelID, 5)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(five, before) {
		t.Fatal("RemoveConsenter modified the configuration it was given")
	}
	if !strings.Contains(p.Description, "4 nodes, tolerating 1 faulty, block quorum 3") || !strings.Contains(p.Description, "organisation METAS, which runs no other consenter, leaves the Orderer group") {
		t.Errorf("description %q", p.Description)
	}
	u := update(t, p)
	w := u.WriteSet.Groups[ordererGroup]
	if w.Version != 2 || w.Groups["METAS"] != nil || w.Values[orderersKey].GetVersion() != 2 || w.Policies[blockValidationKey].GetVersion() != 2 {
		t.Errorf("Orderer write set: version %d, groups %v", w.Version, slices.Sorted(maps.Keys(w.Groups)))
	}
	four := apply(t, five, p)
	if got := consenterIDs(t, four); !slices.Equal(got, []uint32{1, 2, 3, 4}) {
		t.Errorf("consenters %v", got)
	}
	// Back to the genesis consenters: back to the genesis policy, exactly.
	if !proto.Equal(four.ChannelGroup.Groups[ordererGroup].Policies[blockValidationKey].Policy, genesis.ChannelGroup.Groups[ordererGroup].Policies[blockValidationKey].Policy) {
		t.Error("BlockValidation is not the genesis policy again")
	}
	if got := slices.Sorted(maps.Keys(four.ChannelGroup.Groups[ordererGroup].Groups)); !slices.Equal(got, []string{"CMI", "INMETRO", "NMIJ", "PTB"}) {
		t.Errorf("Orderer organisations %v", got)
	}
}

func TestRemoveConsenterRefuses(t *testing.T) {
	cfg := realConfig(t)
	_, err := RemoveConsenter(cfg, channelID, 4)
	if !errors.Is(err, ErrTooFewConsenters) || !strings.Contains(err.Error(), "3 would remain; SmartBFT needs n >= 3f+1, so at least 4") {
		t.Errorf("below four: %v", err)
	}
	_, err = RemoveConsenter(cfg, channelID, 7)
	if !errors.Is(err, ErrUnknownConsenter) || !strings.Contains(err.Error(), "[1 2 3 4]") {
		t.Errorf("unknown: %v", err)
	}
}
