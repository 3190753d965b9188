// Command registry-api serves one NMI's registry: the REST API through which
// its operators register meters and data concentrators deliver signed
// measurements, in front of the NMI's own peer.
//
//	registry-api -config registry.yaml [-listen 127.0.0.1:8081]
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only with REGISTRY_PPROF_ADDRESS
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/inter-nmi/pki/network/pkg/credentials"
	"github.com/inter-nmi/pki/network/pkg/follow"
	"github.com/inter-nmi/pki/registry-api/config"
	"github.com/inter-nmi/pki/registry-api/idempotency"
	"github.com/inter-nmi/pki/registry-api/ledger"
	"github.com/inter-nmi/pki/registry-api/readings"
	"github.com/inter-nmi/pki/registry-api/server"
)

func main() {
	configFile := flag.String("config", "registry.yaml", "configuration file")
	listen := flag.String("listen", "", "listen address, overriding the configuration")
	flag.Parse()
	cfg, err := config.Load(*configFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "registry-api:", err)
		os.Exit(2)
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("nmi", cfg.NMI)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("registry stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	creds, err := credentials.Load(cfg.Credentials)
	if err != nil {
		return err
	}
	store, err := idempotency.Open(cfg.Data, idempotency.WithMaxBytes(cfg.DataMaxBytes()))
	if err != nil {
		return err
	}
	defer store.Close()
	fabric, err := ledger.Open(cfg.Ledger(), log, reg)
	if err != nil {
		return err
	}
	defer fabric.Close()

	index, err := readings.Open(cfg.ReadingsPath(), cfg.Chaincode)
	if err != nil {
		return err
	}
	defer index.Close()
	index.SetEvidence(fabric.Transaction)
	// What an operator alerts on: a full disk (writes refused, requests
	// answered 503 STORAGE_FULL) and an index behind the peer.
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "registry_storage_full_total",
			Help: "Writes of the registry's databases refused for lack of space (its answers store and its index of the blocks)."},
			func() float64 { return float64(store.FullWrites() + index.FullWrites()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "registry_idempotency_evictions_total",
			Help: "Idempotency records pruned before their 24 hours for the store's byte bound (dataMaxMiB): while it grows, the bound decides how long a retry is recognised."},
			func() float64 { return float64(store.Evictions()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "registry_index_next_block",
			Help: "The block the registry's index of the peer's blocks reads next: all before it are indexed."},
			func() float64 { return float64(index.Next()) }),
	)
	go func() {
		if err := follow.Run(ctx, fabric.Blocks, follow.Parsed(index), follow.Options{Log: log}); err != nil {
			log.Error("the index of the peer's blocks stopped", "err", err)
		}
	}()

	// gin's debug mode prints every route at start-up and warns on every
	// request; the registry logs its own way.
	gin.SetMode(gin.ReleaseMode)
	srv := server.New(server.Options{Channel: cfg.Channel, NMI: cfg.NMI, Ledger: fabric, Credentials: creds, Idempotency: store, Log: log,
		Metrics: reg, Gatherer: reg, Readings: index, GroupSlots: cfg.GroupSlots, GroupWindow: cfg.GroupWindow})
	defer srv.Close()
	cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	hs := &http.Server{
		Addr:              cfg.Listen,
		Handler:           srv.Handler(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      11 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go prune(ctx, store, log)
	if addr := os.Getenv("REGISTRY_PPROF_ADDRESS"); addr != "" {
		// For finding where CPU goes under load; never on the API's port.
		go func() { log.Warn("pprof stopped", "err", http.ListenAndServe(addr, nil)) }()
	}

	errc := make(chan error, 2)
	go func() { errc <- hs.ListenAndServeTLS("", "") }()
	log.Info("registry listening", "address", "https://"+cfg.Listen, "peer", cfg.Peer.Address)
	if cfg.Operations != "" {
		opsTLS := hs.TLSConfig.Clone()
		pem, err := os.ReadFile(cfg.OperationsClientCA)
		if err != nil {
			return fmt.Errorf("operations client CA: %w", err)
		}
		opsTLS.ClientCAs = x509.NewCertPool()
		if !opsTLS.ClientCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("operations client CA %s: no certificate", cfg.OperationsClientCA)
		}
		opsTLS.ClientAuth = tls.VerifyClientCertIfGiven
		ops := &http.Server{Addr: cfg.Operations, Handler: srv.OperationsHandler(), TLSConfig: opsTLS,
			ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute,
			ErrorLog: hs.ErrorLog}
		defer ops.Close()
		go func() { errc <- fmt.Errorf("operations: %w", ops.ListenAndServeTLS("", "")) }()
		log.Info("operations listening", "address", "https://"+cfg.Operations)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Graceful shutdown: stop accepting, let requests in flight (and their
	// transactions) finish.
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// prune drops idempotency answers past their retention or beyond the
// store's bound, and compacts its file once most of it is free, hourly.
func prune(ctx context.Context, store *idempotency.Store, log *slog.Logger) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		if p, err := store.Prune(); err != nil {
			log.Warn("prune idempotency store", "err", err)
		} else if p.Expired+p.Evicted > 0 || p.Before > 0 {
			log.Info("pruned idempotency store", "expired", p.Expired, "evicted", p.Evicted, "liveBytes", p.Live,
				"fileBytesBefore", p.Before, "fileBytesAfter", p.After)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
