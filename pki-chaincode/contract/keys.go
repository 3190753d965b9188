package contract

import (
	"fmt"
)

// The world-state layout. Keys are plain strings (so range queries work on
// LevelDB) with a prefix per kind; meter IDs cannot contain '/' or '~', so a
// prefix never captures another meter's keys and "~" closes every range.
//
//	meter/<id>                     the meter record (key-level policy: owner or majority)
//	keyver/<id>/<version>          every key the meter has held (owner or majority)
//	fp/<fingerprint>               which meter a key is bound to, for ever
//	pre/<id>                       pre-enrolment: hash of the meter identity (owner or majority)
//	last/<id>                      the replay guard (wire.Guard): last accepted seq
//	                               and the hashes of the latest accepted readings
//	ix/nmi/<nmi>/<status>/<id>     listing index by owner and status
//	ix/status/<status>/<id>        listing index by status
//	att/<id>                       the latest attestation's transaction (AttestMeter)
//	consortium/members             the member NMIs (key-level policy: a majority of them)
//	vote/<action>/<id>/<nmi>       a member's vote for a consortium action (owner: the voter)
const rangeEnd = "~"

func meterKey(id string) string                   { return "meter/" + id }
func keyVersionKey(id string, version int) string { return fmt.Sprintf("keyver/%s/%06d", id, version) }
func keyVersionPrefix(id string) string           { return "keyver/" + id + "/" }
func fingerprintKey(fp string) string             { return "fp/" + fp }
func preEnrolmentKey(id string) string            { return "pre/" + id }

func nmiIndexKey(nmi, status, id string) string { return "ix/nmi/" + nmi + "/" + status + "/" + id }
func statusIndexKey(status, id string) string   { return "ix/status/" + status + "/" + id }
