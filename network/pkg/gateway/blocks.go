package gateway

import (
	"context"
	"fmt"
	"strconv"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"
)

// BlockByNumber reads one block of the network's channel from the peer
// (the query system chaincode, which any member of the channel may ask),
// as the peer stores it: with the orderers' signatures in its metadata.
func BlockByNumber(ctx context.Context, network *client.Network, number uint64) (*common.Block, error) {
	raw, err := network.GetContract("qscc").EvaluateWithContext(ctx, "GetBlockByNumber",
		client.WithArguments(network.Name(), strconv.FormatUint(number, 10)))
	if err != nil {
		return nil, fmt.Errorf("read block %d: %w", number, err)
	}
	var b common.Block
	if err := proto.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("block %d: %w", number, err)
	}
	if got := b.GetHeader().GetNumber(); got != number {
		return nil, fmt.Errorf("asked for block %d, the peer answered block %d", number, got)
	}
	return &b, nil
}
