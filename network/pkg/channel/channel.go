// Package channel reads what the channel itself says about the consortium:
// its member NMIs and ordering nodes from the channel configuration, its
// height, and the chaincode definition, through the gateway's access to the
// peer's system chaincodes (cscc, qscc, _lifecycle).
package channel

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/orderer"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer/lifecycle"
	"google.golang.org/protobuf/proto"
)

// Config is the consortium as the channel configuration defines it.
type Config struct {
	// Sequence counts the configuration updates since the genesis block.
	Sequence uint64 `json:"sequence"`
	// Members are the organisations of the application group: the NMIs.
	Members []Member `json:"members"`
	// ConsensusType is the ordering service's type (BFT).
	ConsensusType string `json:"consensusType"`
	// Consenters are the ordering nodes.
	Consenters []Consenter `json:"consenters"`
}

// Member is one NMI's organisation.
type Member struct {
	Name             string   `json:"name"`
	MSPID            string   `json:"mspId"`
	AnchorPeers      []string `json:"anchorPeers"`
	OrdererEndpoints []string `json:"ordererEndpoints,omitempty"`
	// TLSRootCerts are the PEM roots its nodes' TLS certificates chain to.
	TLSRootCerts []string `json:"-"`
	// MSPType is the kind of its MSP: MSPTypeX509 (Fabric's X.509 MSP),
	// whose identities are certificates, or another (Idemix).
	MSPType int32 `json:"-"`
	// RootCerts are the PEM certificates of the CAs its identities (peers,
	// clients, admins, orderers) are issued under: the roots of trust of
	// its signing identities, not of its TLS certificates.
	RootCerts []string `json:"-"`
	// IntermediateCerts are the PEM certificates of its intermediate CAs,
	// through which an identity may chain to one of RootCerts.
	IntermediateCerts []string `json:"-"`
	// RevocationLists are its CRLs (PEM), each issued by one of its CAs.
	RevocationLists []string `json:"-"`
	// NodeOUs is how its certificates say what a node is (peer, client,
	// admin, orderer); nil when the MSP does not classify its identities.
	NodeOUs *NodeOUs `json:"-"`
}

// MSPTypeX509 is the type of Fabric's X.509 MSP (msp.ProviderType FABRIC).
const MSPTypeX509 = 0

// NodeOUs is an MSP's node classification: with it enabled, an identity's
// certificate carries exactly one of the OUs, and that OU says whether it
// is a peer, a client, an admin or an orderer.
type NodeOUs struct {
	Enabled bool   `json:"enabled"`
	Client  NodeOU `json:"client"`
	Peer    NodeOU `json:"peer"`
	Admin   NodeOU `json:"admin"`
	Orderer NodeOU `json:"orderer"`
}

// NodeOU is the organisational unit that marks one kind of node.
type NodeOU struct {
	// OU is the organisational unit's name in the certificate ("peer").
	OU string `json:"ou"`
	// Certificate, when set, is the PEM certificate of the CA that must
	// have issued an identity for the OU to count.
	Certificate string `json:"certificate,omitempty"`
}

// Consenter is one BFT ordering node.
type Consenter struct {
	ID    uint32 `json:"id"`
	Host  string `json:"host"`
	Port  uint32 `json:"port"`
	MSPID string `json:"mspId"`
	// Subject names the orderer's enrolment certificate.
	Subject string `json:"subject"`
	// Identity is the orderer's enrolment certificate (PEM), which signs blocks.
	Identity []byte `json:"-"`
}

// Parse reads the parts of a channel configuration this project needs.
func Parse(cfg *common.Config) (*Config, error) {
	root := cfg.GetChannelGroup()
	if root == nil {
		return nil, errors.New("channel configuration has no channel group")
	}
	out := &Config{Sequence: cfg.GetSequence()}
	app := root.GetGroups()["Application"]
	if app == nil {
		return nil, errors.New("channel configuration has no Application group")
	}
	for _, name := range slices.Sorted(maps.Keys(app.GetGroups())) {
		m, err := parseMember(name, app.GetGroups()[name])
		if err != nil {
			return nil, err
		}
		if ord := root.GetGroups()["Orderer"]; ord != nil {
			if og := ord.GetGroups()[name]; og != nil {
				var ep common.OrdererAddresses
				if v := og.GetValues()["Endpoints"]; v != nil {
					if err := proto.Unmarshal(v.GetValue(), &ep); err != nil {
						return nil, fmt.Errorf("orderer endpoints of %s: %w", name, err)
					}
				}
				m.OrdererEndpoints = ep.GetAddresses()
			}
		}
		out.Members = append(out.Members, m)
	}
	if ord := root.GetGroups()["Orderer"]; ord != nil {
		if v := ord.GetValues()["ConsensusType"]; v != nil {
			var ct orderer.ConsensusType
			if err := proto.Unmarshal(v.GetValue(), &ct); err != nil {
				return nil, fmt.Errorf("consensus type: %w", err)
			}
			out.ConsensusType = ct.GetType()
		}
		if v := ord.GetValues()["Orderers"]; v != nil {
			var os common.Orderers
			if err := proto.Unmarshal(v.GetValue(), &os); err != nil {
				return nil, fmt.Errorf("consenters: %w", err)
			}
			for _, c := range os.GetConsenterMapping() {
				out.Consenters = append(out.Consenters, Consenter{
					ID: c.GetId(), Host: c.GetHost(), Port: c.GetPort(), MSPID: c.GetMspId(),
					Subject: subject(c.GetIdentity()), Identity: c.GetIdentity(),
				})
			}
		}
	}
	return out, nil
}

func parseMember(name string, g *common.ConfigGroup) (Member, error) {
	m := Member{Name: name}
	if v := g.GetValues()["MSP"]; v != nil {
		var mc msp.MSPConfig
		if err := proto.Unmarshal(v.GetValue(), &mc); err != nil {
			return m, fmt.Errorf("MSP of %s: %w", name, err)
		}
		var fc msp.FabricMSPConfig
		if err := proto.Unmarshal(mc.GetConfig(), &fc); err != nil {
			return m, fmt.Errorf("MSP of %s: %w", name, err)
		}
		m.MSPID = fc.GetName()
		m.MSPType = mc.GetType()
		for _, c := range fc.GetTlsRootCerts() {
			m.TLSRootCerts = append(m.TLSRootCerts, string(c))
		}
		for _, c := range fc.GetRootCerts() {
			m.RootCerts = append(m.RootCerts, string(c))
		}
		for _, c := range fc.GetIntermediateCerts() {
			m.IntermediateCerts = append(m.IntermediateCerts, string(c))
		}
		for _, c := range fc.GetRevocationList() {
			m.RevocationLists = append(m.RevocationLists, string(c))
		}
		if ous := fc.GetFabricNodeOus(); ous != nil {
			m.NodeOUs = &NodeOUs{
				Enabled: ous.GetEnable(),
				Client:  nodeOU(ous.GetClientOuIdentifier()),
				Peer:    nodeOU(ous.GetPeerOuIdentifier()),
				Admin:   nodeOU(ous.GetAdminOuIdentifier()),
				Orderer: nodeOU(ous.GetOrdererOuIdentifier()),
			}
		}
	}
	if v := g.GetValues()["AnchorPeers"]; v != nil {
		var ap peer.AnchorPeers
		if err := proto.Unmarshal(v.GetValue(), &ap); err != nil {
			return m, fmt.Errorf("anchor peers of %s: %w", name, err)
		}
		for _, a := range ap.GetAnchorPeers() {
			m.AnchorPeers = append(m.AnchorPeers, fmt.Sprintf("%s:%d", a.GetHost(), a.GetPort()))
		}
	}
	return m, nil
}

func nodeOU(id *msp.FabricOUIdentifier) NodeOU {
	return NodeOU{OU: id.GetOrganizationalUnitIdentifier(), Certificate: string(id.GetCertificate())}
}

// FromBlock reads the configuration carried by a configuration block.
func FromBlock(block *common.Block) (*Config, error) {
	data := block.GetData().GetData()
	if len(data) != 1 {
		return nil, fmt.Errorf("block %d has %d transactions; a configuration block has one", block.GetHeader().GetNumber(), len(data))
	}
	var env common.Envelope
	if err := proto.Unmarshal(data[0], &env); err != nil {
		return nil, err
	}
	var payload common.Payload
	if err := proto.Unmarshal(env.GetPayload(), &payload); err != nil {
		return nil, err
	}
	var ce common.ConfigEnvelope
	if err := proto.Unmarshal(payload.GetData(), &ce); err != nil {
		return nil, err
	}
	return Parse(ce.GetConfig())
}

// Query reads the current channel configuration from the gateway's peer.
func Query(ctx context.Context, network *client.Network) (*Config, error) {
	cfg, err := QueryRaw(ctx, network)
	if err != nil {
		return nil, err
	}
	return Parse(cfg)
}

// QueryRaw reads the current channel configuration as the protocol has it,
// the starting point of a configuration update.
func QueryRaw(ctx context.Context, network *client.Network) (*common.Config, error) {
	b, err := network.GetContract("cscc").EvaluateWithContext(ctx, "GetChannelConfig", client.WithArguments(network.Name()))
	if err != nil {
		return nil, fmt.Errorf("read channel configuration: %w", err)
	}
	cfg := new(common.Config)
	if err := proto.Unmarshal(b, cfg); err != nil {
		return nil, fmt.Errorf("decode channel configuration: %w", err)
	}
	return cfg, nil
}

// Height is the number of blocks the gateway's peer has committed.
func Height(ctx context.Context, network *client.Network) (uint64, error) {
	b, err := network.GetContract("qscc").EvaluateWithContext(ctx, "GetChainInfo", client.WithArguments(network.Name()))
	if err != nil {
		return 0, fmt.Errorf("read chain info: %w", err)
	}
	var info common.BlockchainInfo
	if err := proto.Unmarshal(b, &info); err != nil {
		return 0, fmt.Errorf("decode chain info: %w", err)
	}
	return info.GetHeight(), nil
}

// Definition is a chaincode's committed definition.
type Definition struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Sequence int64  `json:"sequence"`
}

// ChaincodeDefinition reads the committed definition of a chaincode.
func ChaincodeDefinition(ctx context.Context, network *client.Network, name string) (*Definition, error) {
	arg, err := proto.Marshal(&lifecycle.QueryChaincodeDefinitionArgs{Name: name})
	if err != nil {
		return nil, err
	}
	b, err := network.GetContract("_lifecycle").EvaluateWithContext(ctx, "QueryChaincodeDefinition", client.WithBytesArguments(arg))
	if err != nil {
		return nil, fmt.Errorf("read chaincode definition: %w", err)
	}
	var def lifecycle.QueryChaincodeDefinitionResult
	if err := proto.Unmarshal(b, &def); err != nil {
		return nil, fmt.Errorf("decode chaincode definition: %w", err)
	}
	return &Definition{Name: name, Version: def.GetVersion(), Sequence: def.GetSequence()}, nil
}

func subject(certPEM []byte) string {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return ""
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return ""
	}
	return cert.Subject.String()
}
