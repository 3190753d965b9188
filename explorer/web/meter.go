package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// recentReadings is how many readings the meter page lists.
const recentReadings = 20

type meterPage struct {
	V       *index.MeterView
	M       meter.Meter
	Revoked bool
	// NameNMI is the owner's organisation name from the channel
	// configuration, if known.
	NameNMI string
	// Former is set when the owner has left the consortium: its meters stay
	// on the ledger and still verify.
	Former bool
	// Attested is the meter's latest attestation, nil if it has none; its
	// bundle is offered for download when Bundles is set.
	Attested *index.Attested
	Bundles  bool
	// Genesis is the pinned genesis block hash a bundle verifies with.
	Genesis string
	// Unread says why what the readings measured could not be read from
	// their transactions.
	Unread   *unread
	Software meterSoftware
}

// meterUpdates is how many of a meter's newest update statements its page
// lists.
const meterUpdates = 100

// meterSoftware is a meter's type and software, as its page shows them.
type meterSoftware struct {
	// Type is the meter's type as it stands, nil if the meter names none
	// or names one the index has no record of (Missing).
	Type    *index.TypeState
	Missing bool
	// Current is the software the meter runs now, since Since, and State
	// where it stands with the type now (Version: the type's version of
	// it, nil if none).
	Current meter.Software
	Since   string
	State   string
	Version *meter.ApprovedSoftware
	// Updates are the meter's newest update statements, oldest first, of
	// UpdatesTotal in all.
	Updates      []index.Update
	UpdatesTotal int
}

func (s *Server) meter(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := meter.ValidateMeterID(id); err != nil {
		return badRequest("%q is not a meter ID: 1 to 64 letters, digits and . _ : -, starting with a letter or digit.", id)
	}
	v, err := s.store.Meter(id, recentReadings)
	if errors.Is(err, index.ErrNotFound) {
		return notFound("Meter %s is not registered in the index.", id)
	}
	if err != nil {
		return fmt.Errorf("meter %s: %w", id, err)
	}
	p := meterPage{V: v, M: v.Current.Meter, Revoked: v.Current.Meter.Status == meter.StatusRevoked}
	switch {
	case len(v.Recent) == 0:
	case s.evidence == nil:
		p.Unread = &unread{Reason: "this explorer has no connection to a peer"}
	default:
		ctx, cancel := context.WithTimeout(r.Context(), evidenceTimeout)
		defer cancel()
		if err := s.evidence.Readings(ctx, id, v.Recent); err != nil {
			p.Unread = s.readFailed(r, "readings of "+id, err)
		}
	}
	if cfg, err := s.store.Config(); err == nil {
		p.Former = true
		for _, m := range cfg.Members {
			if m.MSPID == p.M.NMI {
				p.NameNMI, p.Former = m.Name, false
			}
		}
	} else if !errors.Is(err, index.ErrNotFound) {
		return fmt.Errorf("channel configuration: %w", err)
	}
	if p.Software, err = s.meterSoftware(&p.M); err != nil {
		return err
	}
	p.Bundles, p.Genesis = s.bundles != nil, s.genesis
	if p.Attested, err = s.store.Attestation(id); err != nil && !errors.Is(err, index.ErrNotFound) {
		return fmt.Errorf("attestation of %s: %w", id, err)
	}
	s.render(w, r, http.StatusOK, "meter", view{Title: "Meter " + id, Body: p})
	return nil
}

// meterSoftware reads a meter's type and its software statements.
func (s *Server) meterSoftware(m *meter.Meter) (meterSoftware, error) {
	out := meterSoftware{Current: m.CurrentSoftware(), Since: softwareSince(m)}
	if m.TypeID != "" {
		st, err := s.store.CurrentType(m.TypeID)
		switch {
		case errors.Is(err, index.ErrNotFound):
			out.Missing = true
		case err != nil:
			return out, fmt.Errorf("type %s of meter %s: %w", m.TypeID, m.ID, err)
		default:
			out.Type = st
			out.State, out.Version = softwareState(&st.Type, out.Current, s.now())
		}
	}
	var err error
	if out.Updates, out.UpdatesTotal, err = s.store.Updates(m.ID, meterUpdates); err != nil {
		return out, fmt.Errorf("update statements of %s: %w", m.ID, err)
	}
	return out, nil
}

// attestation answers the bundle of the meter's latest attestation
// (package proof), assembled from the explorer's peer: the attestation's
// block and the configuration chain since genesis. ?chain=false leaves the
// chain out.
func (s *Server) attestation(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := meter.ValidateMeterID(id); err != nil {
		return badRequest("%q is not a meter ID.", id)
	}
	if s.bundles == nil {
		return notFound("This explorer does not serve attestation bundles: it has no connection to a peer.")
	}
	withChain := true
	switch r.URL.Query().Get("chain") {
	case "", "true":
	case "false":
		withChain = false
	default:
		return badRequest("chain must be true or false.")
	}
	a, err := s.store.Attestation(id)
	if errors.Is(err, index.ErrNotFound) {
		return notFound("Meter %s has no attestation on the ledger yet: an NMI's registry makes one (POST /api/v1/meters/%s/attestations, or pki attest %s).", id, id, id)
	}
	if err != nil {
		return fmt.Errorf("attestation of %s: %w", id, err)
	}
	var numbers []uint64
	if withChain {
		if numbers, err = s.store.ConfigBlocks(a.Block); err != nil {
			return fmt.Errorf("configuration blocks: %w", err)
		}
	}
	b, err := s.bundles.Bundle(r.Context(), id, a.TxID, a.Block, numbers, withChain)
	if err != nil {
		return fmt.Errorf("attestation bundle of %s: %w", id, err)
	}
	body, err := b.Marshal()
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fmt.Sprintf("%s-block-%d.attestation.json", id, a.Block)))
	h.Set("Cache-Control", "no-store")
	_, err = w.Write(body)
	return err
}
