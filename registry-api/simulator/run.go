// Package simulator drives a fleet of simulated smart meters against an NMI's
// registry: each meter has its own key, reads its register every interval
// along a household load shape from the London smart meter data, signs the
// reading in the project's format and delivers it alone or through a data
// concentrator's batches, at a chosen rate. A run ends in a Summary: counts,
// refusals by code, throughput and latency percentiles.
//
// The metersim command is its command line; tests and other tools call Run.
package simulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/loadprofile"
)

// Delivery modes.
const (
	ModeSingle = "single" // POST /meters/{id}/measurements, one reading per request
	ModeBatch  = "batch"  // POST /measurements/batch, a concentrator's batch per request
)

// Submitter delivers signed measurements; *client.Client is one.
type Submitter interface {
	SubmitMeasurement(ctx context.Context, sm meter.SignedMeasurement) (*api.MeasurementReceipt, error)
	SubmitBatch(ctx context.Context, items []meter.SignedMeasurement) (*api.BatchReceipt, error)
}

// Options configure a run.
type Options struct {
	// Submitter delivers the measurements, with an ingest credential.
	Submitter Submitter
	// Fleet are the meters; they must be registered for their readings to
	// be accepted.
	Fleet Fleet
	// Profile is the load shape; the zero Profile means loadprofile.London().
	Profile loadprofile.Profile
	// Seed makes the readings reproducible: the same seed, meters and
	// schedule give the same values.
	Seed     uint64
	Schedule loadprofile.Schedule
	// Batch is the number of measurements per concentrator batch (at most
	// api.MaxMeasurementBatch); 0 delivers each measurement alone.
	Batch int
	// Concurrency is how many meters deliver at once (single mode) or how
	// many concentrators, each with its own share of the meters, have a batch
	// in flight (batch mode). Default 1.
	Concurrency int
	// Rate bounds the measurements sent per second; 0 is as fast as possible.
	Rate float64
	// Replay sends the last request once more after the run, to show the
	// registry refusing it as a replay.
	Replay bool
	// Progress, if set, receives a progress line every ProgressEvery
	// (default one second).
	Progress      io.Writer
	ProgressEvery time.Duration
	// Acknowledged, if set, is told the registry's verdict on every
	// measurement delivered, as it arrives: a tool that reconciles a run
	// against the ledger keeps them.
	Acknowledged func(Ack)
	// NameSoftware makes every reading name the software its meter runs
	// at the reading's time (softwareId in the signed payload), which the
	// ledger then checks: the meter's Software, and after an Update the
	// new one.
	NameSoftware bool
	// Update, if set, has every meter load other software mid-run and
	// report it in an update statement it signs (readings then name their
	// software). Updater delivers the statements.
	Update  *Update
	Updater Updater
}

// Ack is the registry's verdict on one measurement.
type Ack struct {
	MeterID string
	Seq     uint64
	// Outcome is meter.OutcomeAccepted, OutcomeDuplicate (accepted before:
	// a re-delivery), OutcomeRejected, or "failed" (no verdict).
	Outcome string
	// Code is the refusal's or the failure's problem code.
	Code string
	// TxID is the transaction that accepted it, or that a failure names.
	TxID string
	At   time.Time
}

// OutcomeFailed: the request got no verdict on the measurement.
const OutcomeFailed = "failed"

// ErrAborted reports a run stopped early because no request could succeed
// (an unknown token, a role that may not deliver, a wrong address).
var ErrAborted = errors.New("run aborted")

// refusals are the codes with which the registry refuses one measurement;
// any other problem is a failure of the request.
var refusals = map[string]bool{
	string(meter.CodeMalformed): true, string(meter.CodeTooLarge): true, string(meter.CodeMeterNotFound): true,
	string(meter.CodeMeterRevoked): true, string(meter.CodeMeterMismatch): true, string(meter.CodeBadSignature): true,
	string(meter.CodeImplausibleTime): true, string(meter.CodeReplay): true,
	string(meter.CodeSoftwareMismatch): true, string(meter.CodeSoftwareNotApproved): true,
}

// fatal are the problems that every further request would meet too.
var fatal = map[string]bool{
	api.CodeUnauthenticated: true, api.CodeRoleForbidden: true, api.CodeNotFound: true, api.CodeMethodNotAllowed: true,
}

func (o *Options) validate() error {
	if o.Submitter == nil {
		return errors.New("simulator: no submitter")
	}
	if len(o.Fleet) == 0 {
		return errors.New("simulator: the fleet has no meters")
	}
	seen := make(map[string]bool, len(o.Fleet))
	for _, m := range o.Fleet {
		if seen[m.ID] {
			return fmt.Errorf("simulator: meter %s is in the fleet twice", m.ID)
		}
		seen[m.ID] = true
	}
	if o.Profile.DailyKWh == 0 {
		o.Profile = loadprofile.London()
	}
	if err := o.Profile.Validate(); err != nil {
		return err
	}
	if err := o.Schedule.Validate(); err != nil {
		return err
	}
	switch {
	case o.Batch < 0 || o.Batch > api.MaxMeasurementBatch:
		return fmt.Errorf("batch size %d must be between 0 (single measurements) and %d", o.Batch, api.MaxMeasurementBatch)
	case o.Concurrency < 0 || o.Concurrency > 10_000:
		return fmt.Errorf("concurrency %d must be between 1 and 10000", o.Concurrency)
	case o.Rate < 0:
		return fmt.Errorf("rate %g must not be negative", o.Rate)
	case o.Update != nil && o.Updater == nil:
		return errors.New("simulator: an update needs an Updater to deliver its statements")
	}
	if o.Update != nil {
		if err := o.Update.validate(o.Schedule); err != nil {
			return err
		}
	}
	if o.Concurrency == 0 {
		o.Concurrency = 1
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = time.Second
	}
	return nil
}

// run is one run's state.
type run struct {
	o       Options
	limiter *bucket
	abort   context.CancelCauseFunc

	requests, sent, accepted, duplicates, rejected, failed, inflight atomic.Int64

	mu         sync.Mutex
	rejectedBy map[string]int
	errors     map[string]int
	latency    []time.Duration
	perItem    []time.Duration
	last       []meter.SignedMeasurement // the last request's measurements
	updates    updates
}

// Run delivers every meter's readings over the schedule and summarises the
// outcome. Each meter's readings arrive in order: in single mode one worker
// owns a meter, in batch mode one concentrator. The Summary is returned also
// when the run was stopped or aborted, with the error.
func Run(ctx context.Context, o Options) (*Summary, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	r := &run{o: o, rejectedBy: map[string]int{}, errors: map[string]int{},
		updates: updates{refusedBy: map[string]int{}, errors: map[string]int{}}}
	if o.Rate > 0 {
		r.limiter = newBucket(o.Rate, max(o.Batch, 1))
	}
	runCtx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	r.abort = abort

	start := time.Now()
	stopProgress := r.progress(start)
	var err error
	if o.Batch > 0 {
		err = r.concentrators(runCtx)
	} else {
		err = r.singles(runCtx)
	}
	wall := time.Since(start)
	stopProgress()

	if err == nil {
		if cause := context.Cause(runCtx); cause != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", ErrAborted, cause)
		} else {
			err = ctx.Err()
		}
	}
	s := r.summary(wall)
	if o.Replay && err == nil {
		s.Replay = r.replay(ctx)
	}
	return s, err
}

// singles runs Concurrency workers, each delivering one meter's readings at a
// time, in order.
func (r *run) singles(ctx context.Context) error {
	jobs := make(chan *Meter)
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for range min(r.o.Concurrency, len(r.o.Fleet)) {
		wg.Go(func() {
			for m := range jobs {
				if err := r.deliverSingles(ctx, m); err != nil {
					once.Do(func() { firstErr = err })
					r.abort(err)
				}
			}
		})
	}
feed:
	for _, m := range r.o.Fleet {
		select {
		case jobs <- m:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	return firstErr
}

func (r *run) deliverSingles(ctx context.Context, m *Meter) error {
	readings, err := r.o.Profile.Readings(r.o.Profile.Household(r.o.Seed, m.ID), r.o.Schedule)
	if err != nil {
		return err
	}
	for slot, rd := range readings {
		if r.updateDue(slot) {
			if err := r.deliverUpdate(ctx, m); err != nil {
				return err
			}
		}
		sm, err := meter.Sign(m.Key, r.measurement(m, slot, rd))
		if err != nil {
			return fmt.Errorf("sign reading %d of meter %s: %w", rd.Seq, m.ID, err)
		}
		if r.take(ctx, 1) != nil {
			return nil
		}
		r.requests.Add(1)
		r.sent.Add(1)
		r.inflight.Add(1)
		begin := time.Now()
		rec, err := r.o.Submitter.SubmitMeasurement(ctx, sm)
		d := time.Since(begin)
		r.inflight.Add(-1)
		r.recordSingle(sm, rd.Seq, rec, err, d)
	}
	return nil
}

func (r *run) recordSingle(sm meter.SignedMeasurement, seq uint64, rec *api.MeasurementReceipt, err error, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latency = append(r.latency, d)
	r.last = []meter.SignedMeasurement{sm}
	ack := Ack{MeterID: sm.MeterID, Seq: seq, At: time.Now()}
	defer r.acknowledge(&ack)
	if err == nil {
		r.accepted.Add(1)
		ack.Outcome, ack.TxID = meter.OutcomeAccepted, rec.TxID
		if rec.Duplicate {
			r.duplicates.Add(1)
			ack.Outcome = meter.OutcomeDuplicate
		}
		return
	}
	code := problemCode(err)
	ack.Code = code
	var p *api.Problem
	if errors.As(err, &p) {
		ack.TxID = p.TxID
	}
	if refusals[code] {
		r.rejected.Add(1)
		r.rejectedBy[code]++
		ack.Outcome = meter.OutcomeRejected
		return
	}
	ack.Outcome = OutcomeFailed
	r.failed.Add(1)
	r.errors[code]++
	if fatal[code] {
		r.abort(err)
	}
}

func (r *run) acknowledge(a *Ack) {
	if r.o.Acknowledged != nil {
		r.o.Acknowledged(*a)
	}
}

// concentrators runs Concurrency concentrators over disjoint shares of the
// fleet. Disjoint shares keep each meter's readings in order, and keep
// concurrent batches from touching the same meters' records, which would
// make their transactions conflict on the ledger.
func (r *run) concentrators(ctx context.Context) error {
	shares := make([]Fleet, min(r.o.Concurrency, len(r.o.Fleet)))
	for i, m := range r.o.Fleet {
		shares[i%len(shares)] = append(shares[i%len(shares)], m)
	}
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for _, share := range shares {
		wg.Go(func() {
			if err := r.concentrate(ctx, share); err != nil {
				once.Do(func() { firstErr = err })
				r.abort(err)
			}
		})
	}
	wg.Wait()
	return firstErr
}

// concentrate delivers a share's readings slot by slot, as a concentrator
// collects them, in batches of up to Batch.
func (r *run) concentrate(ctx context.Context, share Fleet) error {
	readings := make([][]loadprofile.Reading, len(share))
	for i, m := range share {
		var err error
		if readings[i], err = r.o.Profile.Readings(r.o.Profile.Household(r.o.Seed, m.ID), r.o.Schedule); err != nil {
			return err
		}
	}
	items := make([]meter.SignedMeasurement, 0, r.o.Batch)
	for slot := range r.o.Schedule.Slots {
		if r.updateDue(slot) {
			// The readings before the update reach the ledger first, then
			// the meters' statements, then the readings naming the new
			// software.
			if len(items) > 0 {
				if !r.deliverBatch(ctx, items) {
					return nil
				}
				items = make([]meter.SignedMeasurement, 0, r.o.Batch)
			}
			for _, m := range share {
				if err := r.deliverUpdate(ctx, m); err != nil {
					return err
				}
			}
		}
		for i, m := range share {
			rd := readings[i][slot]
			sm, err := meter.Sign(m.Key, r.measurement(m, slot, rd))
			if err != nil {
				return fmt.Errorf("sign reading %d of meter %s: %w", rd.Seq, m.ID, err)
			}
			items = append(items, sm)
			if len(items) == r.o.Batch {
				if !r.deliverBatch(ctx, items) {
					return nil
				}
				items = make([]meter.SignedMeasurement, 0, r.o.Batch)
			}
		}
	}
	if len(items) > 0 {
		r.deliverBatch(ctx, items)
	}
	return nil
}

// deliverBatch sends one batch; false means the run is over.
func (r *run) deliverBatch(ctx context.Context, items []meter.SignedMeasurement) bool {
	if r.take(ctx, len(items)) != nil {
		return false
	}
	n := int64(len(items))
	r.requests.Add(1)
	r.sent.Add(n)
	r.inflight.Add(n)
	begin := time.Now()
	rec, err := r.o.Submitter.SubmitBatch(ctx, items)
	d := time.Since(begin)
	r.inflight.Add(-n)
	r.recordBatch(items, rec, err, d)
	return ctx.Err() == nil
}

func (r *run) recordBatch(items []meter.SignedMeasurement, rec *api.BatchReceipt, err error, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latency = append(r.latency, d)
	r.perItem = append(r.perItem, d/time.Duration(len(items)))
	r.last = items
	if err != nil {
		code := problemCode(err)
		r.failed.Add(int64(len(items)))
		r.errors[code]++
		if fatal[code] {
			r.abort(err)
		}
		if r.o.Acknowledged != nil {
			var p *api.Problem
			txID := ""
			if errors.As(err, &p) {
				txID = p.TxID
			}
			for _, sm := range items {
				m, _ := meter.ParseMeasurement(sm.Payload)
				r.acknowledge(&Ack{MeterID: sm.MeterID, Seq: m.Seq, Outcome: OutcomeFailed, Code: code, TxID: txID, At: time.Now()})
			}
		}
		return
	}
	accepted, duplicates, rejected := countItems(rec, r.rejectedBy)
	r.accepted.Add(int64(accepted))
	r.duplicates.Add(int64(duplicates))
	r.rejected.Add(int64(rejected))
	if r.o.Acknowledged != nil {
		for _, it := range rec.Items {
			ack := Ack{MeterID: it.MeterID, Seq: it.Seq, Outcome: it.Outcome, Code: string(it.Code), TxID: rec.TxID, At: time.Now()}
			if it.Outcome == meter.OutcomeDuplicate {
				ack.TxID = it.TxID
			}
			if it.Index >= 0 && it.Index < len(items) {
				if m, err := meter.ParseMeasurement(items[it.Index].Payload); err == nil {
					ack.Seq = m.Seq
				}
			}
			r.acknowledge(&ack)
		}
	}
}

// countItems counts a batch's outcomes, adding refusals to byCode. A
// duplicate (accepted before, re-delivered) counts as accepted too.
func countItems(rec *api.BatchReceipt, byCode map[string]int) (accepted, duplicates, rejected int) {
	for _, it := range rec.Items {
		switch it.Outcome {
		case meter.OutcomeAccepted:
			accepted++
		case meter.OutcomeDuplicate:
			accepted++
			duplicates++
		case meter.OutcomeRejected:
			rejected++
			byCode[string(it.Code)]++
		}
	}
	return accepted, duplicates, rejected
}

// take waits for the rate limit.
func (r *run) take(ctx context.Context, n int) error {
	if r.limiter == nil {
		return ctx.Err()
	}
	return r.limiter.wait(ctx, n)
}

// replay sends the last request once more.
func (r *run) replay(ctx context.Context) *Replay {
	if len(r.last) == 0 {
		return nil
	}
	out := &Replay{Items: len(r.last), RejectedByCode: map[string]int{}}
	if r.o.Batch > 0 {
		rec, err := r.o.Submitter.SubmitBatch(ctx, r.last)
		if err != nil {
			out.Error = err.Error()
			return out
		}
		out.Accepted, out.Duplicates, out.Rejected = countItems(rec, out.RejectedByCode)
		return out
	}
	rec, err := r.o.Submitter.SubmitMeasurement(ctx, r.last[0])
	switch code := problemCode(err); {
	case err == nil:
		out.Accepted = 1
		if rec.Duplicate {
			out.Duplicates = 1
		}
	case refusals[code]:
		out.Rejected = 1
		out.RejectedByCode[code] = 1
	default:
		out.Error = err.Error()
	}
	return out
}

// problemCode names what became of a failed request.
func problemCode(err error) string {
	var p *api.Problem
	var ne net.Error
	switch {
	case errors.As(err, &p):
		return p.Code
	case errors.Is(err, context.Canceled):
		return "CANCELED"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return api.CodeTimeout
	}
	return "TRANSPORT"
}

// progress writes a line every ProgressEvery until the returned function is
// called; that function returns once the writer is done.
func (r *run) progress(start time.Time) (stop func()) {
	if r.o.Progress == nil {
		return func() {}
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(r.o.ProgressEvery)
		defer tick.Stop()
		prev, prevAt := int64(0), start
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				sent := r.sent.Load()
				rate := float64(sent-prev) / now.Sub(prevAt).Seconds()
				prev, prevAt = sent, now
				fmt.Fprintf(r.o.Progress, "%6s  sent %d  accepted %d  rejected %d  failed %d  |  %.1f measurements/s  |  in flight %d\n",
					now.Sub(start).Round(time.Second), sent, r.accepted.Load(), r.rejected.Load(), r.failed.Load(), rate, r.inflight.Load())
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

func (r *run) summary(wall time.Duration) *Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.o
	s := &Summary{
		Mode: ModeSingle, Concurrency: min(o.Concurrency, len(o.Fleet)), RateLimit: o.Rate,
		Meters: len(o.Fleet), Slots: o.Schedule.Slots, Interval: o.Schedule.Interval.String(),
		From: o.Schedule.Time(0).Format(time.RFC3339), To: o.Schedule.End().Format(time.RFC3339), Seed: o.Seed,
		Requests: int(r.requests.Load()), Sent: int(r.sent.Load()), Accepted: int(r.accepted.Load()), Duplicates: int(r.duplicates.Load()),
		Rejected: int(r.rejected.Load()), RejectedByCode: r.rejectedBy, Failed: int(r.failed.Load()), Errors: r.errors,
		WallSeconds: wall.Seconds(), Latency: latencyOf(r.latency), Updates: r.updateSummary(),
	}
	if o.Batch > 0 {
		s.Mode, s.BatchSize = ModeBatch, o.Batch
		l := latencyOf(r.perItem)
		s.PerMeasurement = &l
	}
	if wall > 0 {
		s.PerSecond = float64(s.Sent) / wall.Seconds()
		s.AcceptedPerSecond = float64(s.Accepted) / wall.Seconds()
	}
	return s
}
