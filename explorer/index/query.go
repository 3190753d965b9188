package index

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Height is the number of blocks indexed.
func (s *Store) Height() (uint64, error) {
	next, _, err := s.Checkpoint()
	return next, err
}

// Blocks returns up to limit blocks below before (newest first); before 0
// means from the newest.
func (s *Store) Blocks(before uint64, limit int) ([]BlockSummary, error) {
	var out []BlockSummary
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bBlocks).Cursor()
		var k, v []byte
		if before == 0 {
			k, v = c.Last()
		} else {
			c.Seek(u64(before))
			k, v = c.Prev()
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			var b BlockSummary
			if err := json.Unmarshal(v, &b); err != nil {
				return err
			}
			out = append(out, b)
		}
		return nil
	})
	return out, err
}

// Block returns one block.
func (s *Store) Block(n uint64) (*BlockSummary, error) {
	b := new(BlockSummary)
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bBlocks).Get(u64(n))
		if raw == nil {
			return ErrNotFound
		}
		return json.Unmarshal(raw, b)
	})
	return b, err
}

// Tx returns one transaction.
func (s *Store) Tx(id string) (*TxDetail, error) {
	d := new(TxDetail)
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bTxs).Get([]byte(id))
		if raw == nil {
			return ErrNotFound
		}
		return json.Unmarshal(raw, d)
	})
	return d, err
}

// MeterView is everything the meter page shows.
type MeterView struct {
	Current MeterState `json:"current"`
	// History is every version of the record, oldest first.
	History []MeterVersion `json:"history"`
	// Keys is every key version, oldest first.
	Keys []KeyVersion `json:"keys"`
	// Recent are the newest readings, accepted and refused, newest first.
	Recent []Reading `json:"recent"`
}

// Meter returns a meter with its history, keys and its newest readings.
func (s *Store) Meter(id string, recent int) (*MeterView, error) {
	v := new(MeterView)
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bMeters).Get([]byte(id))
		if raw == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(raw, &v.Current); err != nil {
			return err
		}
		prefix := append([]byte(id), 0)
		c := tx.Bucket(bMeterHist).Cursor()
		for k, val := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, val = c.Next() {
			var h MeterVersion
			if err := json.Unmarshal(val, &h); err != nil {
				return err
			}
			v.History = append(v.History, h)
		}
		c = tx.Bucket(bKeys).Cursor()
		for k, val := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, val = c.Next() {
			var kv KeyVersion
			if err := json.Unmarshal(val, &kv); err != nil {
				return err
			}
			v.Keys = append(v.Keys, kv)
		}
		c = tx.Bucket(bReadings).Cursor()
		k, val := lastBefore(c, append([]byte(id), 1))
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(v.Recent) < recent; k, val = c.Prev() {
			var r Reading
			if err := json.Unmarshal(val, &r); err != nil {
				return err
			}
			v.Recent = append(v.Recent, r)
		}
		return nil
	})
	return v, err
}

// RefusalFilter selects refusals; zero fields do not filter.
type RefusalFilter struct {
	NMI, MeterID, Code string
	From, To           time.Time
	// Before continues a listing: the refusals of blocks below it.
	Before uint64
	Limit  int
}

// Refusals lists refusals, newest first.
func (s *Store) Refusals(f RefusalFilter) ([]Refusal, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	var out []Refusal
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bRefusals).Cursor()
		var k, v []byte
		if f.Before == 0 {
			k, v = c.Last()
		} else {
			c.Seek(u64(f.Before))
			k, v = c.Prev()
		}
		for ; k != nil && len(out) < f.Limit; k, v = c.Prev() {
			var r Refusal
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			// Block times are the submitters' clocks and need not grow,
			// so a time filter cannot stop the scan early.
			switch {
			case !f.From.IsZero() && r.Time.Before(f.From),
				!f.To.IsZero() && r.Time.After(f.To),
				f.NMI != "" && r.NMI != f.NMI && r.Submitter != f.NMI,
				f.MeterID != "" && r.MeterID != f.MeterID,
				f.Code != "" && r.Code != f.Code:
				continue
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Hours returns the statistics of the hours from..to, oldest first, with
// empty hours filled in.
func (s *Store) Hours(from, to time.Time) ([]HourStat, error) {
	first, last := from.Unix()/3600, to.Unix()/3600
	var out []HourStat
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bHours)
		for h := first; h <= last; h++ {
			st := HourStat{Hour: time.Unix(h*3600, 0).UTC()}
			if err := getJSON(b, u64(uint64(h)), &st); err != nil {
				return err
			}
			out = append(out, st)
		}
		return nil
	})
	return out, err
}

// TxRate is the transactions per second over the window before now, and
// the count per minute of that window, oldest first.
func (s *Store) TxRate(now time.Time, window time.Duration) (float64, []uint64, error) {
	minutes := int(window / time.Minute)
	if minutes < 1 {
		minutes = 1
	}
	counts := make([]uint64, minutes)
	var total uint64
	last := now.Unix() / 60
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bMinutes)
		for i := range counts {
			counts[i] = decodeU64(b.Get(u64(uint64(last - int64(minutes-1-i)))))
			total += counts[i]
		}
		return nil
	})
	return float64(total) / window.Seconds(), counts, err
}

// Hit is what a search found.
type Hit struct {
	Kind string // "block", "tx", "meter"
	ID   string // block number, tx ID, meter ID
}

var hexRE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// Search finds a block by number or header hash, a transaction by ID, or a
// meter by ID.
func (s *Store) Search(q string) (Hit, error) {
	q = strings.TrimSpace(q)
	var hit Hit
	err := s.db.View(func(tx *bolt.Tx) error {
		if n, err := strconv.ParseUint(q, 10, 64); err == nil && tx.Bucket(bBlocks).Get(u64(n)) != nil {
			hit = Hit{Kind: "block", ID: q}
			return nil
		}
		if hexRE.MatchString(q) {
			lower := strings.ToLower(q)
			if raw := tx.Bucket(bBlockHash).Get([]byte(lower)); raw != nil {
				hit = Hit{Kind: "block", ID: strconv.FormatUint(decodeU64(raw), 10)}
				return nil
			}
			if tx.Bucket(bTxs).Get([]byte(lower)) != nil {
				hit = Hit{Kind: "tx", ID: lower}
				return nil
			}
		}
		if tx.Bucket(bMeters).Get([]byte(q)) != nil {
			hit = Hit{Kind: "meter", ID: q}
			return nil
		}
		return ErrNotFound
	})
	return hit, err
}

// Entry is a meter as the registry stood at some block, with the
// transaction that set it.
type Entry = MeterState

// Registry calls each for every meter registered at or before block, in
// meter-ID order, with its record as it stood after that block.
func (s *Store) Registry(block uint64, each func(Entry) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		hist := tx.Bucket(bMeterHist).Cursor()
		meters := tx.Bucket(bMeters).Cursor()
		for id, _ := meters.First(); id != nil; id, _ = meters.Next() {
			prefix := append(append([]byte(nil), id...), 0)
			k, v := lastBefore(hist, join(id, u64(block+1)))
			if k == nil || !bytes.HasPrefix(k, prefix) {
				continue // registered after block
			}
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if err := each(e); err != nil {
				return err
			}
		}
		return nil
	})
}

// Active is the number of the NMI's meters whose key is not revoked.
func (c *Count) Active() uint64 { return c.Registered - c.Revoked }

// lastBefore positions c on the last entry whose key sorts before key.
func lastBefore(c *bolt.Cursor, key []byte) ([]byte, []byte) {
	if k, _ := c.Seek(key); k == nil {
		return c.Last()
	}
	return c.Prev()
}

// Findings lists up to limit integrity findings of the blocks below before
// (0: from the newest), newest first.
func (s *Store) Findings(before uint64, limit int) ([]Finding, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []Finding
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bFindings).Cursor()
		var k, v []byte
		if before == 0 {
			k, v = c.Last()
		} else {
			k, v = lastBefore(c, u64(before))
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			var f Finding
			if err := json.Unmarshal(v, &f); err != nil {
				return err
			}
			out = append(out, f)
		}
		return nil
	})
	return out, err
}

// FindingsIn lists the integrity findings of one block, in order.
func (s *Store) FindingsIn(block uint64) ([]Finding, error) {
	var out []Finding
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := u64(block)
		c := tx.Bucket(bFindings).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var f Finding
			if err := json.Unmarshal(v, &f); err != nil {
				return err
			}
			out = append(out, f)
		}
		return nil
	})
	return out, err
}

// Attestation returns the meter's latest valid attestation.
func (s *Store) Attestation(meterID string) (*Attested, error) {
	var a Attested
	var found bool
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		a, found, err = attestations.Latest(tx, meterID)
		return err
	})
	if err == nil && !found {
		err = ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// ConfigBlocks returns the numbers of the configuration blocks up to and
// including block, ascending, block 0 first.
func (s *Store) ConfigBlocks(block uint64) (out []uint64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		out, err = attestations.ConfigBlocks(tx, block)
		return err
	})
	return out, err
}
