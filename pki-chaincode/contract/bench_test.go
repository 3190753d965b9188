package contract_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// BenchmarkSubmitMeasurement is one signed P-256 measurement verified and
// stored through the contract per op: one transaction with its client
// identity, the meter's record and replay guard read, two writes and the event.
func BenchmarkSubmitMeasurement(b *testing.B) {
	w := newWorld(b)
	key := privateKey(b, "p256")
	w.register(w.ptb, "PTB-0001", pubPEM(b, "p256"))
	// Signing is the meter's work, not the chaincode's: done before the timer.
	items := make([]meter.SignedMeasurement, b.N)
	for i := range items {
		items[i] = reading(b, key, "PTB-0001", uint64(i+1), readingTime)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		res, _, err := run(w, w.ingest, w.submit(items[i]))
		if err != nil {
			b.Fatalf("measurement %d: %v", i, err)
		}
		if res.Outcome != meter.OutcomeAccepted {
			b.Fatalf("measurement %d: %+v", i, res)
		}
	}
}

// BenchmarkSubmitMeasurements1000 is a data concentrator's batch of 1,000
// measurements, 10 from each of 100 P-256 meters, per op.
func BenchmarkSubmitMeasurements1000(b *testing.B) { benchBatch(b, false) }

// BenchmarkSubmitMeasurements1000Software is the same batch from meters of
// a recorded type that have reported one update, each reading naming its
// software: the type's record is read once per batch and every reading is
// judged against its meter's log and the type's approvals.
func BenchmarkSubmitMeasurements1000Software(b *testing.B) { benchBatch(b, true) }

func benchBatch(b *testing.B, software bool) {
	const meters, perMeter = 100, 10
	w := newWorld(b)
	if software {
		w.recordType(w.ptb, typeRecord())
	}
	keys := make([]*meter.PrivateKey, meters)
	regs := make([]meter.Registration, meters)
	for i := range keys {
		k, err := generateKey(meter.P256)
		if err != nil {
			b.Fatal(err)
		}
		keys[i] = k
		regs[i] = registration(fmt.Sprintf("PTB-%04d", i), k.Public().PEM())
		if software {
			regs[i].TypeID = "PTB-EM3000"
		}
	}
	req := mustJSON(b, regs)
	ok(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (any, error) {
		return w.cc.RegisterMeters(ctx, req)
	})
	softwareID := ""
	if software {
		for i, k := range keys {
			w.update(w.ingest, statement(b, k, fmt.Sprintf("PTB-%04d", i), readingTime.Add(-time.Hour), swV1, swV2, meter.UpdateSuccess))
		}
		softwareID = swV2.ID
	}
	batches := make([]string, b.N)
	for n := range batches {
		items := make([]meter.SignedMeasurement, 0, meters*perMeter)
		for j := range perMeter {
			for i, k := range keys {
				items = append(items, signedReading(b, k, fmt.Sprintf("PTB-%04d", i), uint64(n*perMeter+j+1), readingTime, softwareID))
			}
		}
		batches[n] = mustJSON(b, items)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := range b.N {
		res, _, err := run(w, w.ingest, func(ctx contractapi.TransactionContextInterface) (*wire.Outcome, error) {
			return w.cc.SubmitMeasurements(ctx, batches[n])
		})
		if err != nil {
			b.Fatalf("batch %d: %v", n, err)
		}
		if res.Accepted != meters*perMeter {
			b.Fatalf("batch %d: %d accepted: %+v", n, res.Accepted, res.Exceptions[:min(3, len(res.Exceptions))])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(meters*perMeter), "ns/measurement")
}

// BenchmarkRegisterMeters1000 is one NMI's enrolment of 1,000 P-256 meters
// in one transaction per op, as from a manufacturer's delivery list.
func BenchmarkRegisterMeters1000(b *testing.B) {
	const meters = 1000
	w := newWorld(b)
	w.setMembersB(b)
	reqs := make([]string, b.N)
	for n := range reqs {
		regs := make([]meter.Registration, meters)
		for i := range regs {
			k, err := generateKey(meter.P256)
			if err != nil {
				b.Fatal(err)
			}
			regs[i] = registration(fmt.Sprintf("PTB-%03d-%04d", n, i), k.Public().PEM())
		}
		reqs[n] = mustJSON(b, regs)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := range b.N {
		res, _, err := run(w, w.ptb, func(ctx contractapi.TransactionContextInterface) (*wire.Enrolment, error) {
			return w.cc.RegisterMeters(ctx, reqs[n])
		})
		if err != nil {
			b.Fatalf("enrolment %d: %v", n, err)
		}
		if len(res.MeterIDs) != meters {
			b.Fatalf("enrolment %d: %d registered", n, len(res.MeterIDs))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/meters, "ns/meter")
}
