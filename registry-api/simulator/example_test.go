package simulator_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/loadprofile"
	"github.com/inter-nmi/pki/registry-api/simulator"
)

// Register ten meters and deliver a day of their readings in concentrator
// batches.
func ExampleRun() {
	ctx := context.Background()
	operator, err := client.New(client.Options{BaseURL: "https://127.0.0.1:8081", Token: os.Getenv("OPERATOR_TOKEN"), CACert: "tls-ca.pem"})
	if err != nil {
		log.Fatal(err)
	}
	ingest, err := client.New(client.Options{BaseURL: "https://127.0.0.1:8081", Token: os.Getenv("INGEST_TOKEN"), CACert: "tls-ca.pem"})
	if err != nil {
		log.Fatal(err)
	}
	fleet, err := simulator.Generate(simulator.MeterIDs("SIM-example", 1, 10), meter.P256)
	if err != nil {
		log.Fatal(err)
	}
	// The meters prove their keys for the NMI whose registry registers them.
	consortium, err := operator.Consortium(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := simulator.Register(ctx, operator, consortium.NMI, fleet, 0, nil); err != nil {
		log.Fatal(err)
	}
	summary, err := simulator.Run(ctx, simulator.Options{Submitter: ingest, Fleet: fleet, Seed: 1,
		Schedule: loadprofile.LastSlots(time.Now(), 15*time.Minute, 96), Batch: 500, Concurrency: 2})
	if err != nil {
		log.Fatal(err)
	}
	summary.WriteText(os.Stdout)
}
