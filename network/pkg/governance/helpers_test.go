package governance

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	mspproto "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/network/pkg/msp"
)

const channelID = "metrology"

// The real channel's organisations; ours get fresh MSP material with the
// same MSP IDs, since the real admins' keys are not in testdata.
var nmis = []struct{ name, country string }{
	{"PTB", "DE"}, {"CMI", "CZ"}, {"INMETRO", "BR"}, {"NMIJ", "JP"}, {"NMIM", "MX"},
}

// fixtureDir holds the generated organisations for the whole test run.
var fixtureDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "governance-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fixtureDir = dir
	if err := generateOrgs(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func generateOrgs(dir string) error {
	for _, n := range nmis {
		domain := strings.ToLower(n.name) + ".nmi.test"
		o, err := msp.Open(filepath.Join(dir, n.name), n.name+"MSP", domain, n.country)
		if err != nil {
			return err
		}
		for _, u := range []msp.Identity{
			{Name: "Admin@" + domain, OU: msp.OUAdmin},
			{Name: "Client@" + domain, OU: msp.OUClient},
		} {
			if err := o.Enrol(o.UserDir(strings.Split(u.Name, "@")[0]), u); err != nil {
				return err
			}
		}
		if err := o.TLSPair(filepath.Join(dir, n.name, "orderer-tls"), "orderer0."+domain, []string{"127.0.0.1"}); err != nil {
			return err
		}
	}
	return nil
}

// realConfig is the configuration of the real metrology channel's genesis
// block.
func realConfig(t *testing.T) *common.Config {
	t.Helper()
	b, err := os.ReadFile("../../../testdata/blocks/0000.block")
	if err != nil {
		t.Fatal(err)
	}
	var block common.Block
	if err := proto.Unmarshal(b, &block); err != nil {
		t.Fatal(err)
	}
	var env common.Envelope
	if err := proto.Unmarshal(block.GetData().GetData()[0], &env); err != nil {
		t.Fatal(err)
	}
	var payload common.Payload
	if err := proto.Unmarshal(env.GetPayload(), &payload); err != nil {
		t.Fatal(err)
	}
	var ce common.ConfigEnvelope
	if err := proto.Unmarshal(payload.GetData(), &ce); err != nil {
		t.Fatal(err)
	}
	return ce.GetConfig()
}

// ownConfig is the real configuration with each organisation's MSP, in the
// Application and Orderer groups, replaced by our generated one.
func ownConfig(t *testing.T) *common.Config {
	t.Helper()
	cfg := realConfig(t)
	for _, n := range nmis {
		v := mspValue(t, filepath.Join(fixtureDir, n.name, "msp"), n.name+"MSP")
		for _, top := range []string{applicationGroup, ordererGroup} {
			if org := cfg.ChannelGroup.Groups[top].Groups[n.name]; org != nil {
				org.Values[mspKey].Value = v
			}
		}
	}
	return cfg
}

// mspValue builds an MSP value from an MSP directory of network/pkg/msp's
// layout, as configtxgen does.
func mspValue(t *testing.T, dir, id string) []byte {
	t.Helper()
	read := func(p string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ca := read("cacerts/ca.pem")
	ou := func(name string) *mspproto.FabricOUIdentifier {
		return &mspproto.FabricOUIdentifier{Certificate: ca, OrganizationalUnitIdentifier: name}
	}
	fc, err := proto.Marshal(&mspproto.FabricMSPConfig{
		Name:         id,
		RootCerts:    [][]byte{ca},
		TlsRootCerts: [][]byte{read("tlscacerts/tlsca.pem")},
		CryptoConfig: &mspproto.FabricCryptoConfig{SignatureHashFamily: "SHA2", IdentityIdentifierHashFunction: "SHA256"},
		FabricNodeOus: &mspproto.FabricNodeOUs{
			Enable:             true,
			ClientOuIdentifier: ou(msp.OUClient), PeerOuIdentifier: ou(msp.OUPeer),
			AdminOuIdentifier: ou(msp.OUAdmin), OrdererOuIdentifier: ou(msp.OUOrderer),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := proto.Marshal(&mspproto.MSPConfig{Type: 0, Config: fc})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// signer loads a generated user (Admin or Client) of an organisation.
func signer(t *testing.T, org, user string) Signer {
	t.Helper()
	dir := filepath.Join(fixtureDir, org, "users", user, "msp")
	if org == "METAS" {
		dir = filepath.Join("testdata", "metas", "users", user, "msp")
	}
	s, err := SignerFromMSPDir(org+"MSP", dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func metasDefinition(t *testing.T, file string) *common.ConfigGroup {
	t.Helper()
	org, err := ReadOrgDefinition(filepath.Join("testdata", "orgs", file))
	if err != nil {
		t.Fatal(err)
	}
	return org
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// metasConsenter is METAS's orderer node from testdata.
func metasConsenter(t *testing.T) Consenter {
	t.Helper()
	tls := readFile(t, "testdata/metas/orderers/orderer0/tls/cert.pem")
	return Consenter{
		Host: "127.0.0.1", Port: 7650, MSPID: "METASMSP",
		Identity:      readFile(t, "testdata/metas/orderers/orderer0/msp/signcerts/cert.pem"),
		ClientTLSCert: tls, ServerTLSCert: tls,
	}
}

func update(t *testing.T, p *Proposal) *common.ConfigUpdate {
	t.Helper()
	u, err := p.ConfigUpdate()
	if err != nil {
		t.Fatal(err)
	}
	if u.GetChannelId() != channelID {
		t.Fatalf("update for channel %q", u.GetChannelId())
	}
	return u
}

// apply computes the configuration an update leads to, as Fabric's configtx
// validator does: a group whose version changes takes its membership from
// the write set; members the update does not change keep their current
// content.
func apply(t *testing.T, cfg *common.Config, p *Proposal) *common.Config {
	t.Helper()
	u := update(t, p)
	out := proto.Clone(cfg).(*common.Config)
	out.ChannelGroup = applyGroup(cfg.GetChannelGroup(), u.GetReadSet(), u.GetWriteSet())
	out.Sequence++
	return out
}

func applyGroup(cur, r, w *common.ConfigGroup) *common.ConfigGroup {
	if cur == nil {
		return proto.Clone(w).(*common.ConfigGroup)
	}
	out := proto.Clone(cur).(*common.ConfigGroup)
	changed := func(rv, wv uint64, inRead bool) bool { return !inRead || rv != wv }
	if w.GetVersion() != cur.GetVersion() {
		out.Version, out.ModPolicy = w.GetVersion(), w.GetModPolicy()
		out.Groups, out.Values, out.Policies = map[string]*common.ConfigGroup{}, map[string]*common.ConfigValue{}, map[string]*common.ConfigPolicy{}
	}
	for k, wg := range w.GetGroups() {
		out.Groups[k] = applyGroup(cur.GetGroups()[k], r.GetGroups()[k], wg)
	}
	for k, wv := range w.GetValues() {
		rv, ok := r.GetValues()[k]
		if changed(rv.GetVersion(), wv.GetVersion(), ok) {
			out.Values[k] = proto.Clone(wv).(*common.ConfigValue)
		} else {
			out.Values[k] = proto.Clone(cur.GetValues()[k]).(*common.ConfigValue)
		}
	}
	for k, wp := range w.GetPolicies() {
		rp, ok := r.GetPolicies()[k]
		if changed(rp.GetVersion(), wp.GetVersion(), ok) {
			out.Policies[k] = proto.Clone(wp).(*common.ConfigPolicy)
		} else {
			out.Policies[k] = proto.Clone(cur.GetPolicies()[k]).(*common.ConfigPolicy)
		}
	}
	return out
}

func consenterIDs(t *testing.T, cfg *common.Config) []uint32 {
	t.Helper()
	set, err := consenters(cfg.ChannelGroup.Groups[ordererGroup])
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint32
	for _, c := range set.ConsenterMapping {
		ids = append(ids, c.Id)
	}
	return ids
}
