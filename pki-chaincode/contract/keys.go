package contract

import (
	"fmt"
	"time"
)

// The world-state layout. Keys are plain strings (so range queries work on
// LevelDB) with a prefix per kind; meter IDs cannot contain '/' or '~', so a
// prefix never captures another meter's keys and "~" closes every range.
//
//	meter/<id>                     the meter record (key-level policy: owner)
//	keyver/<id>/<version>          every key the meter has held (owner)
//	fp/<fingerprint>               which meter a key is bound to, for ever
//	pre/<id>                       pre-enrolment: hash of the meter identity (owner)
//	last/<id>                      last accepted sequence number: the replay guard
//	msmt/<id>/<time>/<seq>         accepted measurements, in meter-time order
//	rej/<id or ->/<txid>/<index>   measurements refused in a batch
//	ix/nmi/<nmi>/<status>/<id>     listing index by owner and status
//	ix/status/<status>/<id>        listing index by status
const rangeEnd = "~"

func meterKey(id string) string                   { return "meter/" + id }
func keyVersionKey(id string, version int) string { return fmt.Sprintf("keyver/%s/%06d", id, version) }
func keyVersionPrefix(id string) string           { return "keyver/" + id + "/" }
func fingerprintKey(fp string) string             { return "fp/" + fp }
func preEnrolmentKey(id string) string            { return "pre/" + id }
func lastSeqKey(id string) string                 { return "last/" + id }
func measurementPrefix(id string) string          { return "msmt/" + id + "/" }
func rejectionPrefix(id string) string            { return "rej/" + id + "/" }

func measurementKey(id string, at time.Time, seq uint64) string {
	return measurementPrefix(id) + timeKey(at) + fmt.Sprintf("/%020d", seq)
}

func rejectionKey(id, txID string, index int) string {
	return rejectionPrefix(id) + txID + fmt.Sprintf("/%04d", index)
}

// timeKey renders t in fixed width so keys sort chronologically.
func timeKey(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

func nmiIndexKey(nmi, status, id string) string { return "ix/nmi/" + nmi + "/" + status + "/" + id }
func statusIndexKey(status, id string) string   { return "ix/status/" + status + "/" + id }
