// Command pki-chaincode serves the meter-PKI contract, and beside it the
// billing contract (package billing, called as "billing:<transaction>"),
// as an external chaincode service (chaincode as a service): the NMI runs it
// as its own process and its peer connects to it over mutual TLS.
//
// Configuration comes from the environment, as Fabric's external chaincode
// convention has it:
//
//	CHAINCODE_ID              installed package ID (label:hash), required
//	CHAINCODE_SERVER_ADDRESS  listen address, required (host:port)
//	CHAINCODE_TLS_CERT        server certificate (PEM file)
//	CHAINCODE_TLS_KEY         server private key (PEM file)
//	CHAINCODE_CLIENT_CA_CERT  CA of the peer's client certificates (PEM file)
//	CHAINCODE_PPROF_ADDRESS   if set, serve Go's pprof there (host:port), for profiling
//
// TLS is on when CHAINCODE_TLS_CERT is set; then the key and client CA are
// required and the peer must present a client certificate.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only with CHAINCODE_PPROF_ADDRESS
	"os"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/billing"
	"github.com/inter-nmi/pki/pki-chaincode/contract"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("chaincode server stopped", "err", err)
		os.Exit(1)
	}
}

type config struct {
	id, address         string
	cert, key, clientCA string
}

func configFromEnv() (config, error) {
	c := config{
		id:       os.Getenv("CHAINCODE_ID"),
		address:  os.Getenv("CHAINCODE_SERVER_ADDRESS"),
		cert:     os.Getenv("CHAINCODE_TLS_CERT"),
		key:      os.Getenv("CHAINCODE_TLS_KEY"),
		clientCA: os.Getenv("CHAINCODE_CLIENT_CA_CERT"),
	}
	switch {
	case c.id == "":
		return c, errors.New("CHAINCODE_ID is not set: give the installed package ID (label:hash)")
	case c.address == "":
		return c, errors.New("CHAINCODE_SERVER_ADDRESS is not set: give the host:port to listen on")
	case c.cert != "" && (c.key == "" || c.clientCA == ""):
		return c, errors.New("with CHAINCODE_TLS_CERT set, CHAINCODE_TLS_KEY and CHAINCODE_CLIENT_CA_CERT are required")
	}
	return c, nil
}

func run(log *slog.Logger) error {
	cfg, err := configFromEnv()
	if err != nil {
		return err
	}
	// The pki contract comes first: it stays the default, so its transactions
	// keep answering without a contract prefix.
	cc, err := contractapi.NewChaincode(contract.New(), billing.New())
	if err != nil {
		return fmt.Errorf("build chaincode: %w", err)
	}
	tls := shim.TLSProperties{Disabled: true}
	if cfg.cert != "" {
		tls = shim.TLSProperties{}
		if tls.Cert, err = os.ReadFile(cfg.cert); err != nil {
			return fmt.Errorf("read TLS certificate: %w", err)
		}
		if tls.Key, err = os.ReadFile(cfg.key); err != nil {
			return fmt.Errorf("read TLS key: %w", err)
		}
		if tls.ClientCACerts, err = os.ReadFile(cfg.clientCA); err != nil {
			return fmt.Errorf("read client CA: %w", err)
		}
	}
	if addr := os.Getenv("CHAINCODE_PPROF_ADDRESS"); addr != "" {
		go func() {
			log.Info("serving pprof", "address", addr)
			log.Warn("pprof stopped", "err", http.ListenAndServe(addr, nil))
		}()
	}
	server := &shim.ChaincodeServer{CCID: cfg.id, Address: cfg.address, CC: cc, TLSProps: tls}
	log.Info("serving meter-PKI chaincode", "address", cfg.address, "package", cfg.id, "tls", !tls.Disabled,
		"version", contract.Version, "billingVersion", billing.Version)
	return server.Start()
}
