// Command explorer is the auditors' dashboard of the consortium: it follows
// the channel's blocks, checks their integrity itself, indexes where the
// blocks, transactions, meter records, measurements and refusals are, and
// serves them over HTTPS to signed-in auditors, reading what the index does
// not keep from its peer's blocks.
//
//	explorer -config explorer.yaml
//	explorer -genesis-hash metrology.block
//
// The second form prints the header hash of a genesis block file (from
// configtxgen, or peer channel fetch 0), the value the configuration's
// genesisBlockHash pins.
package main

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/explorer/config"
	"github.com/inter-nmi/pki/explorer/follow"
	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/explorer/web"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/credentials"
	blockfollow "github.com/inter-nmi/pki/network/pkg/follow"
	"github.com/inter-nmi/pki/network/pkg/gateway"
	"github.com/inter-nmi/pki/network/pkg/health"
)

func main() {
	configFile := flag.String("config", "explorer.yaml", "configuration file")
	genesisFile := flag.String("genesis-hash", "", "print the header hash of this genesis block file and exit")
	flag.Parse()
	if *genesisFile != "" {
		h, err := genesisHash(*genesisFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "explorer:", err)
			os.Exit(1)
		}
		fmt.Println(h)
		return
	}
	cfg, err := config.Load(*configFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "explorer:", err)
		os.Exit(2)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("explorer stopped", "err", err)
		os.Exit(1)
	}
}

// genesisHash is the header hash of the genesis block in a file, in hex.
func genesisHash(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var b common.Block
	if err := proto.Unmarshal(raw, &b); err != nil {
		return "", fmt.Errorf("%s is not a block: %w", path, err)
	}
	h, err := chain.GenesisHash(&b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h), nil
}

func run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	genesis, err := cfg.GenesisHash()
	if err != nil {
		return err
	}
	var creds []credentials.Credential
	for _, f := range cfg.Credentials {
		file, err := credentials.ReadFile(f)
		if err != nil {
			return err
		}
		creds = append(creds, file.Credentials...)
	}
	credentials, err := credentials.New(creds)
	if err != nil {
		return err
	}
	store, err := index.Open(cfg.Data)
	if err != nil {
		return err
	}
	defer store.Close()
	if store.Reset {
		log.Info("the index was of an older layout: reading the chain again from block 0", "index", cfg.Data)
	}
	poller, err := health.New(cfg.Nodes)
	if err != nil {
		return err
	}
	conn, err := gateway.Dial(cfg.Peer, cfg.Identity, gateway.DefaultOptions)
	if err != nil {
		return err
	}
	defer conn.Close()

	network := conn.GetNetwork(cfg.Channel)
	// The peer's blocks: the attestation bundles are assembled from them,
	// and the transactions and readings the index keeps only the place of
	// are read from them, each block checked against the index.
	peerBlock := func(ctx context.Context, n uint64) (*common.Block, error) {
		return gateway.BlockByNumber(ctx, network, n)
	}
	srv := web.New(web.Options{Store: store, Credentials: credentials, Health: poller, Log: log, Channel: cfg.Channel, Genesis: cfg.GenesisBlockHash,
		Blocks: peerBlock, Evidence: store.FromPeer(peerBlock)})
	follower := &follow.Follower{Blocks: blockfollow.FromNetwork(network), Store: store, Genesis: genesis,
		OnBlock: srv.Notify, Log: log}
	cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	hs := &http.Server{
		Addr: cfg.Listen, Handler: srv.Handler(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	// Live event streams end at shutdown instead of holding it up.
	hs.RegisterOnShutdown(srv.Close)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go poller.Run(ctx, 5*time.Second)
	go func() { errc <- follower.Run(ctx) }()
	go func() { errc <- hs.ListenAndServeTLS("", "") }()
	log.Info("explorer listening", "address", "https://"+cfg.Listen, "peer", cfg.Peer.Address)
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	cancel()
	shutdown, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	if serr := hs.Shutdown(shutdown); serr != nil && err == nil {
		err = serr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
