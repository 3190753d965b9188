package simulator

import (
	"time"

	"github.com/inter-nmi/pki/registry-api/loadprofile"
)

// The load model moved to loadprofile. These names forward to it for the
// callers that still use them here (the end-to-end tests in network/e2e);
// new code uses loadprofile.

// MaxSlots is loadprofile.MaxSlots.
const MaxSlots = loadprofile.MaxSlots

// LastSlots is loadprofile.LastSlots.
func LastSlots(now time.Time, interval time.Duration, slots int) loadprofile.Schedule {
	return loadprofile.LastSlots(now, interval, slots)
}

// SeqAt is loadprofile.SeqAt.
func SeqAt(t time.Time) uint64 { return loadprofile.SeqAt(t) }
