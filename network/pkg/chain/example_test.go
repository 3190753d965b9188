package chain_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/network/pkg/chain"
)

// An explorer verifies each block before it parses it, so that a block that
// was tampered with is reported as such rather than as unreadable.
func Example() {
	v := chain.NewVerifier()
	for n := 0; n <= 12; n++ {
		data, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "blocks", fmt.Sprintf("%04d.block", n)))
		if err != nil {
			fmt.Println(err)
			return
		}
		var raw common.Block
		if err := proto.Unmarshal(data, &raw); err != nil {
			fmt.Println(err)
			return
		}
		if err := v.Verify(&raw, nil); err != nil {
			var ie *chain.IntegrityError
			if errors.As(err, &ie) {
				fmt.Println("tampered:", ie.Block, ie.Reason)
			}
			return
		}
		b, err := chain.Parse(&raw)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, tx := range b.Txs {
			what := tx.Type
			if tx.Function != "" {
				what = tx.Chaincode + "." + tx.Function
			}
			fmt.Printf("%2d/%d %s by %s %s [%s]\n", b.Number, tx.Index, what, tx.CreatorMSP, tx.CreatorRole, strings.Join(tx.Endorsers, " "))
			if !tx.Valid() {
				fmt.Println("     refused:", tx.Code)
			}
		}
	}
	fmt.Println("next block to verify:", v.State().Next)
	// Output:
	//  0/0 CONFIG by   []
	//  1/0 _lifecycle.ApproveChaincodeDefinitionForMyOrg by PTBMSP  [PTBMSP]
	//  1/1 _lifecycle.ApproveChaincodeDefinitionForMyOrg by NMIMMSP  [NMIMMSP]
	//  2/0 _lifecycle.ApproveChaincodeDefinitionForMyOrg by INMETROMSP  [INMETROMSP]
	//  3/0 _lifecycle.ApproveChaincodeDefinitionForMyOrg by NMIJMSP  [NMIJMSP]
	//  3/1 _lifecycle.ApproveChaincodeDefinitionForMyOrg by CMIMSP  [CMIMSP]
	//  4/0 _lifecycle.CommitChaincodeDefinition by PTBMSP  [PTBMSP CMIMSP INMETROMSP NMIJMSP NMIMMSP]
	//  5/0 pki.RegisterMeter by PTBMSP registrar [PTBMSP CMIMSP]
	//  6/0 pki.SubmitMeasurement by INMETROMSP ingest [INMETROMSP NMIJMSP]
	//  7/0 pki.SubmitMeasurements by INMETROMSP ingest [INMETROMSP CMIMSP]
	//  8/0 pki.RotateKey by PTBMSP registrar [PTBMSP INMETROMSP]
	//  9/0 pki.SubmitMeasurement by INMETROMSP ingest [INMETROMSP CMIMSP]
	// 10/0 pki.RevokeMeter by PTBMSP registrar [PTBMSP NMIMMSP]
	// 11/0 pki.RegisterMeter by PTBMSP registrar [PTBMSP CMIMSP]
	// 12/0 pki.RevokeMeter by PTBMSP registrar [INMETROMSP CMIMSP]
	//      refused: ENDORSEMENT_POLICY_FAILURE
	// next block to verify: 13
}
