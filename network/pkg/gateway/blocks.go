package gateway

import (
	"context"
	"fmt"
	"strconv"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/network/pkg/chain"
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

// TransactionByID reads one committed transaction of the network's channel
// from the peer (qscc GetTransactionByID) and parses it as it reads in its
// block (chain.ParseProcessed), with its validation code. Its place in the
// block (Tx.Index) is not part of the answer.
func TransactionByID(ctx context.Context, network *client.Network, txID string) (*chain.Tx, error) {
	raw, err := network.GetContract("qscc").EvaluateWithContext(ctx, "GetTransactionByID",
		client.WithArguments(network.Name(), txID))
	if err != nil {
		return nil, fmt.Errorf("read transaction %s: %w", txID, err)
	}
	tx, err := chain.ParseProcessed(raw)
	if err != nil {
		return nil, fmt.Errorf("transaction %s: %w", txID, err)
	}
	if tx.ID != txID {
		return nil, fmt.Errorf("asked for transaction %s, the peer answered %s", txID, tx.ID)
	}
	return tx, nil
}
