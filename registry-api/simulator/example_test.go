package simulator_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/simulator"
)

// A meter's register readings over the first hour of a day: the same seed,
// meter and time give the same values in every run.
func ExampleProfile_Readings() {
	p := simulator.London()
	s := simulator.Schedule{Start: time.Date(2026, 5, 20, 0, 0, 0, 0, time.UTC), Interval: 15 * time.Minute, Slots: 4}
	readings, err := p.Readings(p.Household(1, "PTB-0001"), s)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range readings {
		fmt.Println(r.Measurement("PTB-0001").Time, r.Seq, r.Value(), simulator.Unit)
	}
	// Output:
	// 2026-05-20T00:15:00Z 3356655 22680.098 kWh
	// 2026-05-20T00:30:00Z 3356670 22680.160 kWh
	// 2026-05-20T00:45:00Z 3356685 22680.251 kWh
	// 2026-05-20T01:00:00Z 3356700 22680.319 kWh
}

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
		Schedule: simulator.LastSlots(time.Now(), 15*time.Minute, 96), Batch: 500, Concurrency: 2})
	if err != nil {
		log.Fatal(err)
	}
	summary.WriteText(os.Stdout)
}
