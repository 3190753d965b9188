package governance_test

import (
	"fmt"
	"log"
	"os"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/network/pkg/governance"
)

// A new NMI joins: propose, then see whose signatures are missing. Admins
// then Sign (or use `peer channel signconfigtx`) and one of them submits
// with Envelope and Broadcast.
func ExampleAddOrg() {
	cfg, err := genesisConfig("../../../testdata/blocks/0000.block")
	if err != nil {
		log.Fatal(err)
	}
	org, err := governance.ReadOrgDefinition("testdata/orgs/metas.good.json")
	if err != nil {
		log.Fatal(err)
	}
	p, err := governance.AddOrg(cfg, "metrology", "METAS", org)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Description)
	fmt.Println(p.Status(cfg))
	// Output:
	// Add organisation METAS (MSP METASMSP) to the Application group of channel metrology
	// Application admins: none signed — 0 of 3 required: not yet
	// Not ready to submit
}

// genesisConfig reads the configuration of a channel's genesis block; a
// running network's comes from cscc GetChannelConfig instead.
func genesisConfig(path string) (*common.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var block common.Block
	if err := proto.Unmarshal(b, &block); err != nil {
		return nil, err
	}
	var env common.Envelope
	if err := proto.Unmarshal(block.GetData().GetData()[0], &env); err != nil {
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
	return ce.GetConfig(), nil
}
