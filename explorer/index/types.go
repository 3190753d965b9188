package index

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/inter-nmi/pki/network/pkg/audit"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// Meter types (docs/software.md). A type's record is kept as meters' are:
// every version, with the transaction that wrote it (bucket typehist,
// under the type's ID, a zero byte, the block and the transaction). A
// type's meters are kept by the type's ID and each meter's ID (typemeters),
// and the meters in service by the software they run (typesw, under the
// type, the software's tag and the meter's ID), so that a type's meters and
// those running one version are ranges of keys, and how many run each
// version is a count kept with it (typecounts). Type and meter IDs hold no
// zero byte. All of it is per type and per meter, nothing per reading.

// TypeState is a version of a meter type's record and the transaction
// that set it.
type TypeState struct {
	Type  meter.MeterType `json:"type"`
	TxID  string          `json:"txId"`
	Block uint64          `json:"block"`
	Time  time.Time       `json:"time"`
}

// SoftwareCount is how many of a type's meters run one software now: those
// in service (active) and those whose key is revoked.
type SoftwareCount struct {
	Software meter.Software `json:"software"`
	Active   uint64         `json:"active"`
	Revoked  uint64         `json:"revoked"`
}

// TypeSummary is a type as the list of types shows it: its record and
// how many meters it has.
type TypeSummary struct {
	TypeState
	Active  uint64 `json:"active"`
	Revoked uint64 `json:"revoked"`
}

// TypeView is everything the type page shows but its meters (TypeMeters).
type TypeView struct {
	Current TypeState `json:"current"`
	// History is every version of the record, oldest first.
	History []TypeState `json:"history"`
	// Software counts the type's meters by the software they run now, by
	// software ID.
	Software []SoftwareCount `json:"software"`
}

// softwareTag is the 8 bytes that stand for a software (ID and checksum)
// in the keys of a type's meters: the start of their SHA-256.
func softwareTag(sw meter.Software) []byte {
	sum := sha256.Sum256([]byte(sw.ID + "\x00" + sw.Checksum))
	return sum[:8]
}

// typePrefix starts a type's keys in every type bucket.
func typePrefix(id string) []byte { return append([]byte(id), 0) }

func typeVersionKey(id string, block uint64, tx int) []byte {
	return key(typePrefix(id), u64(block), u32(uint32(tx)))
}

// putTypeVersion and getTypeVersion encode a version of a type's record:
// the transaction's time and ID, and the record (JSON, deflated); its
// block is in the key.
func putTypeVersion(st TypeState) (enc, error) {
	b, err := json.Marshal(st.Type)
	if err != nil {
		return nil, err
	}
	return enc{}.time(st.Time).txID(st.TxID).bytes(deflate(b)), nil
}

func getTypeVersion(k, v []byte) (TypeState, error) {
	r := &dec{b: v}
	st := TypeState{Block: decodeU64(k[len(k)-12 : len(k)-4]), Time: r.time(), TxID: r.txID()}
	z := r.next(r.uvarint())
	if err := r.end("type version"); err != nil {
		return st, err
	}
	b, err := inflate(z)
	if err != nil {
		return st, fmt.Errorf("type version: %w", err)
	}
	return st, json.Unmarshal(b, &st.Type)
}

// typeAt is a type's record as it stood after block (the newest with
// block ^uint64(0)), nil if it had none.
func typeAt(tx *bolt.Tx, id string, block uint64) (*TypeState, error) {
	p := typePrefix(id)
	limit := key(p, u64(block), u32(^uint32(0)), []byte{0xff})
	if block < ^uint64(0) {
		limit = key(p, u64(block+1))
	}
	k, v := lastBefore(tx.Bucket(bTypeHist).Cursor(), limit)
	if k == nil || !bytes.HasPrefix(k, p) || len(k) != len(p)+12 {
		return nil, nil
	}
	st, err := getTypeVersion(k, v)
	if err != nil {
		return nil, fmt.Errorf("meter type %s: %w", id, err)
	}
	return &st, nil
}

// meterType applies the record written to type/<id> if it is one the
// chaincode could have written there (audit.MeterType); otherwise it
// records a finding.
func (a *adder) meterType(t *chain.Tx, key, id string, value []byte) error {
	var prev *meter.MeterType
	if meter.ValidateTypeID(id) == nil {
		st, err := typeAt(a.tx, id, ^uint64(0))
		if err != nil {
			return err
		}
		if st != nil {
			prev = &st.Type
		}
	}
	mt, f := audit.MeterType(key, id, value, prev, t.CreatorMSP)
	if f != nil {
		return a.find(t, f.Kind, key, f.Problem)
	}
	v, err := putTypeVersion(TypeState{Type: *mt, TxID: t.ID, Block: a.block.Number, Time: t.Time})
	if err != nil {
		return err
	}
	return a.tx.Bucket(bTypeHist).Put(typeVersionKey(id, a.block.Number, t.Index), v)
}

// membership is where a meter stands among its type's meters.
type membership struct {
	typeID string
	sw     meter.Software
	active bool
}

func membershipOf(m *meter.Meter) (membership, bool) {
	if m == nil || m.TypeID == "" {
		return membership{}, false
	}
	return membership{typeID: m.TypeID, sw: m.CurrentSoftware(), active: m.Status == meter.StatusActive}, true
}

// retype moves a meter among its type's meters as a new version of its
// record (after) replaces the one before (nil for a new meter): its type,
// the software it runs now and whether it is in service.
func (a *adder) retype(id string, before, after *meter.Meter) error {
	old, had := membershipOf(before)
	now, has := membershipOf(after)
	if had == has && old == now {
		return nil
	}
	members, bySoftware := a.tx.Bucket(bTypeMeters), a.tx.Bucket(bTypeSoftware)
	if had {
		if !has || now.typeID != old.typeID {
			if err := members.Delete(key(typePrefix(old.typeID), []byte(id))); err != nil {
				return err
			}
		}
		if old.active {
			if err := bySoftware.Delete(key(typePrefix(old.typeID), softwareTag(old.sw), []byte(id))); err != nil {
				return err
			}
		}
		if err := a.count(old, -1); err != nil {
			return err
		}
	}
	if !has {
		return nil
	}
	if err := members.Put(key(typePrefix(now.typeID), []byte(id)), nil); err != nil {
		return err
	}
	if now.active {
		if err := bySoftware.Put(key(typePrefix(now.typeID), softwareTag(now.sw), []byte(id)), nil); err != nil {
			return err
		}
	}
	return a.count(now, 1)
}

// count adds by to the meters of a type running a software, in service or
// not; a count of none is removed.
func (a *adder) count(m membership, by int64) error {
	b := a.tx.Bucket(bTypeCounts)
	k := key(typePrefix(m.typeID), softwareTag(m.sw))
	c := SoftwareCount{Software: m.sw}
	if v := b.Get(k); v != nil {
		var err error
		if c, err = getCount(v); err != nil {
			return fmt.Errorf("meters of type %s running %s: %w", m.typeID, m.sw, err)
		}
	}
	n := &c.Revoked
	if m.active {
		n = &c.Active
	}
	*n = uint64(int64(*n) + by)
	if c.Active == 0 && c.Revoked == 0 {
		return b.Delete(k)
	}
	return b.Put(k, putCount(c))
}

func putCount(c SoftwareCount) enc {
	return enc{}.str(c.Software.ID).str(c.Software.Checksum).uvarint(c.Active).uvarint(c.Revoked)
}

func getCount(v []byte) (SoftwareCount, error) {
	r := &dec{b: v}
	c := SoftwareCount{Software: meter.Software{ID: r.str(), Checksum: r.str()}, Active: r.uvarint(), Revoked: r.uvarint()}
	return c, r.end("software count")
}

// counts lists the counts of a type's meters by software, by software ID.
func counts(tx *bolt.Tx, id string) ([]SoftwareCount, error) {
	var out []SoftwareCount
	p := typePrefix(id)
	c := tx.Bucket(bTypeCounts).Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		n, err := getCount(v)
		if err != nil {
			return nil, fmt.Errorf("meters of type %s: %w", id, err)
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b SoftwareCount) int {
		return cmp.Or(strings.Compare(a.Software.ID, b.Software.ID), strings.Compare(a.Software.Checksum, b.Software.Checksum))
	})
	return out, nil
}

// typeIDs calls each with every type's ID, in order.
func typeIDs(tx *bolt.Tx, each func(id string) error) error {
	c := tx.Bucket(bTypeHist).Cursor()
	for k, _ := c.First(); k != nil; {
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			return fmt.Errorf("type version key %q: %w", k, errCorrupt)
		}
		id := string(k[:i])
		if err := each(id); err != nil {
			return err
		}
		k, _ = c.Seek(append([]byte(id), 1)) // past the type's versions
	}
	return nil
}

// Types lists every meter type, by ID, with how many meters it has.
func (s *Store) Types() ([]TypeSummary, error) {
	var out []TypeSummary
	err := s.db.View(func(tx *bolt.Tx) error {
		return typeIDs(tx, func(id string) error {
			st, err := typeAt(tx, id, ^uint64(0))
			if err != nil || st == nil {
				return err
			}
			sum := TypeSummary{TypeState: *st}
			cs, err := counts(tx, id)
			if err != nil {
				return err
			}
			for _, c := range cs {
				sum.Active += c.Active
				sum.Revoked += c.Revoked
			}
			out = append(out, sum)
			return nil
		})
	})
	return out, err
}

// Type returns a meter type with its history and how many meters run each
// software.
func (s *Store) Type(id string) (*TypeView, error) {
	v := new(TypeView)
	err := s.db.View(func(tx *bolt.Tx) error {
		p := typePrefix(id)
		c := tx.Bucket(bTypeHist).Cursor()
		for k, val := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, val = c.Next() {
			st, err := getTypeVersion(k, val)
			if err != nil {
				return fmt.Errorf("meter type %s: %w", id, err)
			}
			v.History = append(v.History, st)
		}
		if len(v.History) == 0 {
			return ErrNotFound
		}
		v.Current = v.History[len(v.History)-1]
		var err error
		v.Software, err = counts(tx, id)
		return err
	})
	return v, err
}

// CurrentType returns a meter type's record as it stands.
func (s *Store) CurrentType(id string) (*TypeState, error) {
	var st *TypeState
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		if st, err = typeAt(tx, id, ^uint64(0)); err == nil && st == nil {
			err = ErrNotFound
		}
		return err
	})
	return st, err
}

// TypesAt calls each for every meter type recorded at or before block, in
// ID order, with its record as it stood after that block.
func (s *Store) TypesAt(block uint64, each func(TypeState) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return typeIDs(tx, func(id string) error {
			st, err := typeAt(tx, id, block)
			if err != nil || st == nil {
				return err
			}
			return each(*st)
		})
	})
}

// TypeMeters lists up to limit meters of a type, in ID order, from the
// first after the meter ID after ("": from the first), with their records
// as they stand.
func (s *Store) TypeMeters(typeID, after string, limit int) ([]MeterState, error) {
	return s.metersIn(bTypeMeters, typePrefix(typeID), after, limit)
}

// SoftwareMeters lists up to limit meters of a type in service (not
// revoked) that run sw now, as TypeMeters does.
func (s *Store) SoftwareMeters(typeID string, sw meter.Software, after string, limit int) ([]MeterState, error) {
	return s.metersIn(bTypeSoftware, key(typePrefix(typeID), softwareTag(sw)), after, limit)
}

// metersIn lists the meters whose IDs follow prefix in a bucket's keys.
func (s *Store) metersIn(bucket, prefix []byte, after string, limit int) ([]MeterState, error) {
	var out []MeterState
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		from := prefix
		if after != "" {
			from = key(prefix, []byte(after), []byte{0})
		}
		for k, _ := c.Seek(from); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Next() {
			id := string(k[len(prefix):])
			n := meterNumber(tx, id)
			if n == 0 {
				return fmt.Errorf("meter %s of a type has no number: %w", id, errCorrupt)
			}
			st, err := currentVersion(tx, n)
			if err != nil {
				return err
			}
			if st == nil {
				return fmt.Errorf("meter %s of a type has no record: %w", id, errCorrupt)
			}
			out = append(out, *st)
		}
		return nil
	})
	return out, err
}

// Withdrawn is a software version withdrawn as of some time, and how many
// meters of its type in service run it.
type Withdrawn struct {
	TypeID  string                 `json:"typeId"`
	NMI     string                 `json:"nmi"`
	Version meter.ApprovedSoftware `json:"version"`
	Meters  uint64                 `json:"meters"`
}

// SoftwareStatus is where the meters in service stand with their
// software at some time.
type SoftwareStatus struct {
	// Withdrawn are the versions withdrawn by then, by type and software
	// ID, each with how many meters in service run it now.
	Withdrawn []Withdrawn `json:"withdrawn"`
	// OnWithdrawn is how many meters in service run withdrawn software:
	// the sum of the versions' counts.
	OnWithdrawn uint64 `json:"onWithdrawn"`
	// Typed is how many meters in service are of a recorded type.
	Typed uint64 `json:"typed"`
	// Types is how many meter types are recorded.
	Types int `json:"types"`
}

// Software returns where the meters in service stand with their software
// at now: which versions are withdrawn by then and how many meters run
// them.
func (s *Store) Software(now time.Time) (SoftwareStatus, error) {
	var out SoftwareStatus
	err := s.db.View(func(tx *bolt.Tx) error {
		return typeIDs(tx, func(id string) error {
			st, err := typeAt(tx, id, ^uint64(0))
			if err != nil || st == nil {
				return err
			}
			out.Types++
			cs, err := counts(tx, id)
			if err != nil {
				return err
			}
			active := map[meter.Software]uint64{}
			for _, c := range cs {
				active[c.Software] = c.Active
				out.Typed += c.Active
			}
			for _, v := range st.Type.Versions {
				if !WithdrawnAt(&v, now) {
					continue
				}
				out.Withdrawn = append(out.Withdrawn, Withdrawn{TypeID: id, NMI: st.Type.NMI, Version: v, Meters: active[v.Software]})
				out.OnWithdrawn += active[v.Software]
			}
			return nil
		})
	})
	return out, err
}

// WithdrawnAt reports whether a version is withdrawn at t: its withdrawal
// takes effect at or before t.
func WithdrawnAt(v *meter.ApprovedSoftware, t time.Time) bool {
	if v.Withdrawal == nil {
		return false
	}
	from, err := meter.ParseTime(v.Withdrawal.From)
	return err == nil && !t.Before(from)
}
