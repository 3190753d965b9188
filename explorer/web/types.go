package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// Meter types and their legally relevant software (docs/software.md):
// the list of types, a type's page, and the meters running withdrawn
// software.

// typeMetersPerPage is the length of a type's list of meters.
const typeMetersPerPage = 50

// Software states: where a meter's software stands with its type at a
// time.
const (
	softwareApproved   = "approved"
	softwareWithdrawn  = "withdrawn"
	softwareNotYet     = "not yet approved"
	softwareNotVersion = "not a version of the type"
)

// softwareState says where sw stands with type mt at t, and the type's
// version of it (nil if it is none).
func softwareState(mt *meter.MeterType, sw meter.Software, t time.Time) (string, *meter.ApprovedSoftware) {
	v := mt.Version(sw.ID)
	switch {
	case v == nil || v.Checksum != sw.Checksum:
		return softwareNotVersion, nil
	case index.WithdrawnAt(v, t):
		return softwareWithdrawn, v
	case v.ApprovedAtTime(t):
		return softwareApproved, v
	}
	return softwareNotYet, v
}

type typesPage struct {
	Rows []typeRow
	Now  time.Time
}

type typeRow struct {
	index.TypeSummary
	Approved, Withdrawn int
}

func (s *Server) types(w http.ResponseWriter, r *http.Request) error {
	now := s.now()
	list, err := s.store.Types()
	if err != nil {
		return fmt.Errorf("meter types: %w", err)
	}
	p := typesPage{Now: now}
	for _, t := range list {
		row := typeRow{TypeSummary: t}
		for i := range t.Type.Versions {
			if index.WithdrawnAt(&t.Type.Versions[i], now) {
				row.Withdrawn++
			} else {
				row.Approved++
			}
		}
		p.Rows = append(p.Rows, row)
	}
	s.render(w, r, http.StatusOK, "types", view{Title: "Meter types", Nav: "types", Body: p})
	return nil
}

type typePage struct {
	V       *index.TypeView
	T       meter.MeterType
	NameNMI string
	// Versions are the type's versions as they stand now, with how many
	// meters run each; Other is software its meters run that is none of
	// them.
	Versions []versionRow
	Other    []index.SoftwareCount
	Active   uint64
	Revoked  uint64
	Changes  []typeChange
	// Meters is a page of the type's meters (of one version in service,
	// when Filter is set), after After; Next continues it ("" on the last).
	Meters      []typeMeterRow
	Filter      *meter.Software
	FilterState string
	After       string
	Next        string
	Now         time.Time
}

type versionRow struct {
	meter.ApprovedSoftware
	State           string
	Active, Revoked uint64
	// Link lists the meters in service that run it.
	Link string
}

// typeChange is a version of the type's record and what it changed.
type typeChange struct {
	index.TypeState
	What []string
}

type typeMeterRow struct {
	index.MeterState
	Software meter.Software
	Since    string
	State    string
}

func (s *Server) meterType(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := meter.ValidateTypeID(id); err != nil {
		return badRequest("%q is not a meter type ID: 1 to 64 letters, digits and . _ : -, starting with a letter or digit.", id)
	}
	q := r.URL.Query()
	after := q.Get("after")
	if after != "" && meter.ValidateMeterID(after) != nil {
		return badRequest("after must be a meter ID, not %q.", after)
	}
	var filter *meter.Software
	if sw, sum := q.Get("software"), q.Get("checksum"); sw != "" || sum != "" {
		f := meter.Software{ID: sw, Checksum: sum}
		if f.Validate("") != nil {
			return badRequest("software and checksum must name a software: its identifier, and its checksum as <algorithm>:<hex>.")
		}
		filter = &f
	}
	v, err := s.store.Type(id)
	if errors.Is(err, index.ErrNotFound) {
		return notFound("Meter type %s is not recorded in the index.", id)
	}
	if err != nil {
		return fmt.Errorf("meter type %s: %w", id, err)
	}
	now := s.now()
	p := typePage{V: v, T: v.Current.Type, Filter: filter, After: after, Now: now}
	if p.NameNMI, err = s.memberName(p.T.NMI); err != nil {
		return err
	}
	counted := map[meter.Software]bool{}
	byVersion := map[meter.Software]index.SoftwareCount{}
	for _, c := range v.Software {
		byVersion[c.Software] = c
		p.Active += c.Active
		p.Revoked += c.Revoked
	}
	for _, ver := range p.T.Versions {
		state, _ := softwareState(&p.T, ver.Software, now)
		c := byVersion[ver.Software]
		counted[ver.Software] = true
		p.Versions = append(p.Versions, versionRow{ApprovedSoftware: ver, State: state, Active: c.Active, Revoked: c.Revoked,
			Link: typeLink(id, url.Values{"software": {ver.ID}, "checksum": {ver.Checksum}})})
	}
	for _, c := range v.Software {
		if !counted[c.Software] {
			p.Other = append(p.Other, c)
		}
	}
	var prev *meter.MeterType
	for _, st := range v.History {
		p.Changes = append(p.Changes, typeChange{TypeState: st, What: changes(prev, &st.Type)})
		prev = &st.Type
	}
	slices.Reverse(p.Changes)
	var list []index.MeterState
	if filter != nil {
		p.FilterState, _ = softwareState(&p.T, *filter, now)
		list, err = s.store.SoftwareMeters(id, *filter, after, typeMetersPerPage+1)
	} else {
		list, err = s.store.TypeMeters(id, after, typeMetersPerPage+1)
	}
	if err != nil {
		return fmt.Errorf("meters of type %s: %w", id, err)
	}
	if len(list) > typeMetersPerPage {
		list = list[:typeMetersPerPage]
		next := url.Values{"after": {list[len(list)-1].Meter.ID}}
		if filter != nil {
			next.Set("software", filter.ID)
			next.Set("checksum", filter.Checksum)
		}
		p.Next = typeLink(id, next)
	}
	for _, m := range list {
		p.Meters = append(p.Meters, meterRow(m, &p.T, now))
	}
	s.render(w, r, http.StatusOK, "type", view{Title: "Meter type " + id, Nav: "types", Body: p})
	return nil
}

// meterRow is a meter with the software it runs now and where that stands
// with its type (mt, nil if not recorded) at now.
func meterRow(st index.MeterState, mt *meter.MeterType, now time.Time) typeMeterRow {
	row := typeMeterRow{MeterState: st, Software: st.Meter.CurrentSoftware(), Since: softwareSince(&st.Meter)}
	if mt != nil {
		row.State, _ = softwareState(mt, row.Software, now)
	}
	return row
}

// softwareSince is when the meter started running its current software:
// its last successful update's time, or its registration's.
func softwareSince(m *meter.Meter) string {
	if n := len(m.Software); n > 0 {
		return m.Software[n-1].Since
	}
	return m.RegisteredAt
}

func typeLink(id string, q url.Values) string {
	return "/types/" + url.PathEscape(id) + "?" + q.Encode()
}

// changes says what a version of a type's record changed from the one
// before (nil for the first).
func changes(prev, cur *meter.MeterType) []string {
	if prev == nil {
		return []string{fmt.Sprintf("recorded by %s with %d software version%s", cur.NMI, len(cur.Versions), plural(len(cur.Versions)))}
	}
	var out []string
	for _, v := range cur.Versions {
		before := prev.Version(v.ID)
		switch {
		case before == nil:
			out = append(out, fmt.Sprintf("approved %s from %s", v.ID, v.ApprovedFrom))
		case before.Withdrawal == nil && v.Withdrawal != nil:
			out = append(out, fmt.Sprintf("withdrew %s from %s: %s", v.ID, v.Withdrawal.From, v.Withdrawal.Reason))
		case !sameVersion(before, &v):
			out = append(out, "changed "+v.ID)
		}
	}
	for _, v := range prev.Versions {
		if cur.Version(v.ID) == nil {
			out = append(out, "removed "+v.ID)
		}
	}
	if prev.Manufacturer != cur.Manufacturer || prev.Model != cur.Model || prev.Certificate != cur.Certificate {
		out = append(out, "changed the manufacturer, model or certificate")
	}
	if len(out) == 0 {
		out = append(out, "no change to the versions")
	}
	return out
}

// sameVersion compares two versions, their withdrawals by value.
func sameVersion(a, b *meter.ApprovedSoftware) bool {
	if a.Software != b.Software || a.ApprovedFrom != b.ApprovedFrom || a.ApprovedTx != b.ApprovedTx || a.ApprovedAt != b.ApprovedAt {
		return false
	}
	if a.Withdrawal == nil || b.Withdrawal == nil {
		return a.Withdrawal == b.Withdrawal
	}
	return *a.Withdrawal == *b.Withdrawal
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// withdrawnMeters is how many meters of each withdrawn version the page of
// meters on withdrawn software lists; the type's page lists them all.
const withdrawnMeters = 100

type withdrawnPage struct {
	Status index.SoftwareStatus
	Rows   []withdrawnRow
	Now    time.Time
}

type withdrawnRow struct {
	index.Withdrawn
	// List is the first of the meters; More says there are others, which
	// All lists on the type's page.
	List []typeMeterRow
	More bool
	All  string
}

// withdrawn lists the meters in service whose current software their
// type's NMI has withdrawn as of now, version by version.
func (s *Server) withdrawn(w http.ResponseWriter, r *http.Request) error {
	now := s.now()
	st, err := s.store.Software(now)
	if err != nil {
		return fmt.Errorf("software of the meters: %w", err)
	}
	p := withdrawnPage{Status: st, Now: now}
	for _, v := range st.Withdrawn {
		row := withdrawnRow{Withdrawn: v, All: typeLink(v.TypeID, url.Values{"software": {v.Version.ID}, "checksum": {v.Version.Checksum}})}
		if v.Meters > 0 {
			list, err := s.store.SoftwareMeters(v.TypeID, v.Version.Software, "", withdrawnMeters)
			if err != nil {
				return fmt.Errorf("meters of type %s on %s: %w", v.TypeID, v.Version.ID, err)
			}
			for _, m := range list {
				row.List = append(row.List, typeMeterRow{MeterState: m, Software: v.Version.Software, Since: softwareSince(&m.Meter), State: softwareWithdrawn})
			}
			row.More = uint64(len(list)) < v.Meters
		}
		p.Rows = append(p.Rows, row)
	}
	s.render(w, r, http.StatusOK, "withdrawn", view{Title: "Meters on withdrawn software", Nav: "types", Body: p})
	return nil
}

// memberName is an NMI's organisation name from the channel
// configuration, "" if it is not (or no longer) a member or no
// configuration is indexed yet.
func (s *Server) memberName(mspID string) (string, error) {
	cfg, err := s.store.Config()
	if errors.Is(err, index.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("channel configuration: %w", err)
	}
	for _, m := range cfg.Members {
		if m.MSPID == mspID {
			return m.Name, nil
		}
	}
	return "", nil
}
