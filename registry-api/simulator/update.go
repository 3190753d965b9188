package simulator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/loadprofile"
)

// Update has every meter of a run load other legally relevant software
// mid-run, as a fleet does when its NMI approved a new version: after its
// After-th reading the meter loads To, signs the update statement with its
// own key (from the software it ran, at half an interval after that
// reading, result success), has it delivered, and names To in the
// readings that follow.
type Update struct {
	To meter.Software
	// After is how many readings each meter sends before the update: at
	// least 1, and fewer than the schedule's slots.
	After int
}

// Updater delivers update statements; *client.Client is one.
type Updater interface {
	SubmitSoftwareUpdate(ctx context.Context, su meter.SignedUpdate) (*api.SoftwareUpdateReceipt, error)
}

// UpdateSummary is what became of a run's software update.
type UpdateSummary struct {
	// To is the new software, "<id> (<checksum>)".
	To    string `json:"to"`
	After int    `json:"after"`
	// Sent counts the statements delivered, one per meter.
	Sent int `json:"sent"`
	// Accepted counts those recorded in their meter's software log;
	// Duplicates, among them, those recorded before.
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	// Refused counts those the ledger refused (kept on it as evidence), by
	// code in RefusedByCode.
	Refused       int            `json:"refused"`
	RefusedByCode map[string]int `json:"refusedByCode"`
	// Failed counts those whose request got no verdict, by problem code in
	// Errors.
	Failed  int            `json:"failed"`
	Errors  map[string]int `json:"errors"`
	Latency Latency        `json:"latencyMs"`
}

func (u *Update) validate(s loadprofile.Schedule) error {
	if err := u.To.Validate("update "); err != nil {
		return fmt.Errorf("the update's software: %w", err)
	}
	if u.After < 1 || u.After >= s.Slots {
		return fmt.Errorf("the update after %d readings must come after the first reading and before the last (1 to %d)", u.After, s.Slots-1)
	}
	return nil
}

// updates is a run's record of its update statements; run.mu guards it.
type updates struct {
	sent, accepted, duplicates, refused, failed int
	refusedBy, errors                           map[string]int
	latency                                     []time.Duration
}

// namesSoftware reports whether the run's readings name their software.
func (r *run) namesSoftware() bool { return r.o.NameSoftware || r.o.Update != nil }

// updateDue reports whether a meter loads the new software before its
// reading of slot.
func (r *run) updateDue(slot int) bool { return r.o.Update != nil && slot == r.o.Update.After }

// measurement is the payload meter m signs for its reading of slot: named
// with the software it runs then, if the run names software.
func (r *run) measurement(m *Meter, slot int, rd loadprofile.Reading) meter.Measurement {
	ms := rd.Measurement(m.ID)
	if !r.namesSoftware() {
		return ms
	}
	ms.SoftwareID = m.Runs().ID
	if r.o.Update != nil && slot >= r.o.Update.After {
		ms.SoftwareID = r.o.Update.To.ID
	}
	return ms
}

// updateTime is when each meter's update ends: half an interval after its
// last reading with the software it ran.
func (r *run) updateTime() string {
	s := r.o.Schedule
	return s.Time(r.o.Update.After - 1).Add(s.Interval / 2).UTC().Truncate(time.Second).Format(time.RFC3339)
}

// deliverUpdate has meter m sign its update statement and delivers it.
func (r *run) deliverUpdate(ctx context.Context, m *Meter) error {
	st := meter.UpdateStatement{MeterID: m.ID, Time: r.updateTime(), From: m.Runs(), To: r.o.Update.To, Result: meter.UpdateSuccess}
	su, err := meter.SignUpdate(m.Key, st)
	if err != nil {
		return fmt.Errorf("sign the update statement of meter %s: %w", m.ID, err)
	}
	if ctx.Err() != nil {
		return nil
	}
	begin := time.Now()
	rec, err := r.o.Updater.SubmitSoftwareUpdate(ctx, su)
	r.recordUpdate(rec, err, time.Since(begin))
	return nil
}

func (r *run) recordUpdate(rec *api.SoftwareUpdateReceipt, err error, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := &r.updates
	u.sent++
	u.latency = append(u.latency, d)
	if err == nil {
		u.accepted++
		if rec.Duplicate {
			u.duplicates++
		}
		return
	}
	code := problemCode(err)
	var p *api.Problem
	// The ledger's refusals are answered 4xx, and kept on it as evidence;
	// a credential or route that cannot work ends the run.
	if errors.As(err, &p) && p.Status >= http.StatusBadRequest && p.Status < http.StatusInternalServerError &&
		!fatal[code] && code != api.CodeIdempotencyConflict {
		u.refused++
		u.refusedBy[code]++
		return
	}
	u.failed++
	u.errors[code]++
	if fatal[code] {
		r.abort(err)
	}
}

// updateSummary is the run's update in its summary; nil without one.
func (r *run) updateSummary() *UpdateSummary {
	if r.o.Update == nil {
		return nil
	}
	u := &r.updates
	return &UpdateSummary{To: r.o.Update.To.String(), After: r.o.Update.After, Sent: u.sent, Accepted: u.accepted,
		Duplicates: u.duplicates, Refused: u.refused, RefusedByCode: u.refusedBy, Failed: u.failed, Errors: u.errors,
		Latency: latencyOf(u.latency)}
}
