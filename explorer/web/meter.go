package web

import (
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
	s.render(w, r, http.StatusOK, "meter", view{Title: "Meter " + id, Body: p})
	return nil
}
