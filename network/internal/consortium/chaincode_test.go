package consortium

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	mspproto "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/network/internal/consortium/ccaas"
	"github.com/inter-nmi/pki/network/pkg/channel"
)

func TestDefinitionPolicy(t *testing.T) {
	d := definition{Sequence: 3, Version: "1.0", Endorsers: 2, Members: []string{"PTBMSP", "CMIMSP", "NMIMMSP"}}
	if got := d.policy(); got != "OutOf(2, 'PTBMSP.peer', 'CMIMSP.peer', 'NMIMMSP.peer')" {
		t.Fatalf("policy() = %s", got)
	}
	same := definition{Sequence: 1, Version: "1.0", Endorsers: 2, Members: []string{"NMIMMSP", "PTBMSP", "CMIMSP"}}
	if !d.sameAs(same) {
		t.Fatal("definitions differing in sequence and member order differ")
	}
	for _, other := range []definition{
		{Version: "1.1", Endorsers: 2, Members: d.Members},
		{Version: "1.0", Endorsers: 3, Members: d.Members},
		{Version: "1.0", Endorsers: 2, Members: d.Members[:2]},
	} {
		if d.sameAs(other) {
			t.Errorf("%+v counts as the same as %+v", other, d)
		}
	}
}

// A committed definition's validation parameter reads back as the
// OutOf(k, ...) policy it was approved with.
func TestDecodePolicy(t *testing.T) {
	role := func(mspID string) *mspproto.MSPPrincipal {
		b, err := proto.Marshal(&mspproto.MSPRole{MspIdentifier: mspID, Role: mspproto.MSPRole_PEER})
		if err != nil {
			t.Fatal(err)
		}
		return &mspproto.MSPPrincipal{PrincipalClassification: mspproto.MSPPrincipal_ROLE, Principal: b}
	}
	signedBy := func(i int32) *common.SignaturePolicy {
		return &common.SignaturePolicy{Type: &common.SignaturePolicy_SignedBy{SignedBy: i}}
	}
	encode := func(ap *peer.ApplicationPolicy) []byte {
		b, err := proto.Marshal(ap)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	outOf := &peer.ApplicationPolicy{Type: &peer.ApplicationPolicy_SignaturePolicy{SignaturePolicy: &common.SignaturePolicyEnvelope{
		Rule: &common.SignaturePolicy{Type: &common.SignaturePolicy_NOutOf_{NOutOf: &common.SignaturePolicy_NOutOf{
			N: 2, Rules: []*common.SignaturePolicy{signedBy(0), signedBy(1), signedBy(2)}}}},
		Identities: []*mspproto.MSPPrincipal{role("PTBMSP"), role("CMIMSP"), role("INMETROMSP")},
	}}}
	n, members, err := decodePolicy(encode(outOf))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || !slices.Equal(members, []string{"PTBMSP", "CMIMSP", "INMETROMSP"}) {
		t.Fatalf("decodePolicy = %d, %v", n, members)
	}

	reference := &peer.ApplicationPolicy{Type: &peer.ApplicationPolicy_ChannelConfigPolicyReference{ChannelConfigPolicyReference: "/Channel/Application/Endorsement"}}
	if _, _, err := decodePolicy(encode(reference)); err == nil || !strings.Contains(err.Error(), "not a signature policy") {
		t.Errorf("a channel policy reference: %v", err)
	}
	identity := &peer.ApplicationPolicy{Type: &peer.ApplicationPolicy_SignaturePolicy{SignaturePolicy: &common.SignaturePolicyEnvelope{
		Rule:       signedBy(0),
		Identities: []*mspproto.MSPPrincipal{{PrincipalClassification: mspproto.MSPPrincipal_IDENTITY, Principal: []byte("cert")}},
	}}}
	if _, _, err := decodePolicy(encode(identity)); err == nil || !strings.Contains(err.Error(), "not an MSP role") {
		t.Errorf("an identity principal: %v", err)
	}
	signed := &peer.ApplicationPolicy{Type: &peer.ApplicationPolicy_SignaturePolicy{SignaturePolicy: &common.SignaturePolicyEnvelope{
		Rule: signedBy(0), Identities: []*mspproto.MSPPrincipal{role("PTBMSP")},
	}}}
	if _, _, err := decodePolicy(encode(signed)); err == nil || !strings.Contains(err.Error(), "not an OutOf policy") {
		t.Errorf("a SignedBy rule: %v", err)
	}
}

// The wanted definition counts the peers of the NMIs the channel has as
// members, never more endorsers than members.
func TestWantedDefinition(t *testing.T) {
	top := realTopology(t)
	nw := &Network{Topology: top}
	all := &channel.Config{}
	for i := len(top.NMIs) - 1; i >= 0; i-- {
		all.Members = append(all.Members, channel.Member{Name: top.NMIs[i].Name, MSPID: top.NMIs[i].MSPID})
	}
	d, nmis := nw.wantedDefinition(all)
	if d.Version != top.Chaincode.Version || d.Endorsers != top.Chaincode.Endorsers || len(d.Members) != len(top.NMIs) || len(nmis) != len(top.NMIs) {
		t.Fatalf("all members: %+v", d)
	}
	for i := range top.NMIs {
		if d.Members[i] != top.NMIs[i].MSPID || nmis[i].Name != top.NMIs[i].Name {
			t.Fatalf("members not in topology order: %v", d.Members)
		}
	}
	one := &channel.Config{Members: []channel.Member{{MSPID: top.NMIs[1].MSPID}, {MSPID: "STRANGERMSP"}}}
	d, nmis = nw.wantedDefinition(one)
	if d.Endorsers != 1 || !slices.Equal(d.Members, []string{top.NMIs[1].MSPID}) || len(nmis) != 1 {
		t.Fatalf("one member: %+v", d)
	}
	if !isMember(one, top.NMIs[1].MSPID) || isMember(one, top.NMIs[0].MSPID) {
		t.Fatal("isMember")
	}
	ptb := nmi(t, top, "PTB")
	consenters := &channel.Config{Consenters: []channel.Consenter{{ID: 1, Host: ptb.Host, Port: uint32(ptb.Orderer.Port), MSPID: ptb.MSPID}}}
	if !isConsenter(consenters, ptb) {
		t.Fatal("PTB's orderer is not a consenter")
	}
	moved := *ptb.Orderer
	moved.Port++
	elsewhere := *ptb
	elsewhere.Orderer = &moved
	if isConsenter(consenters, &elsewhere) {
		t.Fatal("an orderer on another port counts as the consenter")
	}
}

// The chaincode package holds the NMI's chaincode server address and the
// credentials from its crypto directory; its package ID depends only on them.
func TestChaincodePackage(t *testing.T) {
	top := realTopology(t)
	ptb := nmi(t, top, "PTB")
	write := func(root string) *Network {
		nw := &Network{Layout: Layout{Root: root}, Topology: top}
		for path, body := range map[string]string{
			filepath.Join(nw.chaincodeDir(ptb), "client", "key.pem"):  "client key",
			filepath.Join(nw.chaincodeDir(ptb), "client", "cert.pem"): "client cert",
			nw.tlsCA(ptb): "tls root",
		} {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return nw
	}
	nw := write(t.TempDir())
	path, id, err := nw.chaincodePackage(ptb)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pkg)
	label := top.Chaincode.Name + "_" + top.Chaincode.Version
	if id != label+":"+hex.EncodeToString(sum[:]) {
		t.Fatalf("package ID %s", id)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("package mode %v: it holds the peer's client key", info.Mode())
	}
	if _, again, _ := write(t.TempDir()).chaincodePackage(ptb); again != id {
		t.Fatalf("the same connection details packaged as %s and %s", id, again)
	}

	want, err := ccaas.Package(label, ccaas.Connection{Address: ptb.ChaincodeAddress(), ClientKey: "client key", ClientCert: "client cert", RootCert: "tls root"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pkg, want) {
		t.Fatal("the package does not hold the NMI's chaincode server address and credentials")
	}
}
