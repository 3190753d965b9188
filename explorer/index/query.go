package index

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
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
		d := newStrs(tx)
		c := tx.Bucket(bBlocks).Cursor()
		var k, v []byte
		if before == 0 {
			k, v = c.Last()
		} else {
			c.Seek(u64(before))
			k, v = c.Prev()
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			b, err := getBlock(d, decodeU64(k), v)
			if err != nil {
				return err
			}
			out = append(out, *b)
		}
		return nil
	})
	return out, err
}

// Block returns one block.
func (s *Store) Block(n uint64) (*BlockSummary, error) {
	var b *BlockSummary
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		b, err = block(tx, newStrs(tx), n)
		return err
	})
	return b, err
}

func block(tx *bolt.Tx, d *strs, n uint64) (*BlockSummary, error) {
	raw := tx.Bucket(bBlocks).Get(u64(n))
	if raw == nil {
		return nil, ErrNotFound
	}
	b, err := getBlock(d, n, raw)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", n, err)
	}
	return b, nil
}

// Tx returns where a transaction is. Should two transactions have the
// same ID (the peers mark the later one DUPLICATE_TXID), it is the first.
func (s *Store) Tx(id string) (*TxRef, error) {
	var ref *TxRef
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		ref, err = txRef(tx, newStrs(tx), id)
		return err
	})
	return ref, err
}

func txRef(tx *bolt.Tx, d *strs, id string) (*TxRef, error) {
	if id == "" {
		return nil, ErrNotFound
	}
	r := &dec{b: tx.Bucket(bTxIDs).Get(txKey(id))}
	for len(r.b) > 0 {
		n, i := r.uvarint(), r.int()
		if r.err != nil {
			return nil, fmt.Errorf("transaction %s: %w", id, r.err)
		}
		b, err := block(tx, d, n)
		if err != nil {
			return nil, err
		}
		if i < len(b.Txs) && b.Txs[i].ID == id {
			return &TxRef{TxSummary: b.Txs[i], Block: n, Index: i}, nil
		}
	}
	return nil, ErrNotFound
}

// summaries reads block summaries in one transaction, each once.
type summaries struct {
	tx     *bolt.Tx
	d      *strs
	blocks map[uint64]*BlockSummary
}

func newSummaries(tx *bolt.Tx) *summaries {
	return &summaries{tx: tx, d: newStrs(tx), blocks: map[uint64]*BlockSummary{}}
}

// txID is the ID of transaction i of block n.
func (s *summaries) txID(n uint64, i int) (string, error) {
	b := s.blocks[n]
	if b == nil {
		var err error
		if b, err = block(s.tx, s.d, n); err != nil {
			return "", err
		}
		s.blocks[n] = b
	}
	if i < 0 || i >= len(b.Txs) {
		return "", fmt.Errorf("block %d has no transaction %d: %w", n, i, errCorrupt)
	}
	return b.Txs[i].ID, nil
}

// blockByHash finds a block by its header hash.
func blockByHash(tx *bolt.Tx, d *strs, hash []byte) (uint64, bool, error) {
	r := &dec{b: tx.Bucket(bBlockHash).Get(prefix8(hash))}
	want := hex.EncodeToString(hash)
	for len(r.b) > 0 {
		n := r.uvarint()
		if r.err != nil {
			return 0, false, r.err
		}
		b, err := block(tx, d, n)
		if err != nil {
			return 0, false, err
		}
		if b.HeaderHash == want {
			return n, true, nil
		}
	}
	return 0, false, nil
}

// MeterView is everything the meter page shows.
type MeterView struct {
	Current MeterState `json:"current"`
	// History is every version of the record, oldest first.
	History []MeterVersion `json:"history"`
	// Keys is every key version, oldest first.
	Keys []KeyVersion `json:"keys"`
	// Recent are the newest readings, accepted and refused, newest first,
	// as the index has them (Evidence.Readings reads the rest).
	Recent []Reading `json:"recent"`
}

// meterNumber is a meter's number in the index, 0 if it has none.
func meterNumber(tx *bolt.Tx, id string) uint32 {
	if v := tx.Bucket(bMeterNums).Get([]byte(id)); len(v) == 4 {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

// currentVersion is the meter's record as the last transaction set it,
// nil if none did.
func currentVersion(tx *bolt.Tx, n uint32) (*MeterState, error) {
	k, v := lastBefore(tx.Bucket(bMeterHist).Cursor(), u32(n+1))
	if k == nil || !bytes.HasPrefix(k, u32(n)) || len(k) != 16 {
		return nil, nil
	}
	st, err := getVersion(decodeU64(k[4:12]), v)
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// Meter returns a meter with its history, keys and its newest readings.
func (s *Store) Meter(id string, recent int) (*MeterView, error) {
	v := new(MeterView)
	err := s.db.View(func(tx *bolt.Tx) error {
		n := meterNumber(tx, id)
		if n == 0 {
			return ErrNotFound
		}
		prefix := u32(n)
		c := tx.Bucket(bMeterHist).Cursor()
		for k, val := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, val = c.Next() {
			h, err := getVersion(decodeU64(k[4:12]), val)
			if err != nil {
				return err
			}
			v.History = append(v.History, h)
		}
		if len(v.History) == 0 {
			return ErrNotFound // readings refused, never registered
		}
		v.Current = v.History[len(v.History)-1]
		c = tx.Bucket(bKeys).Cursor()
		for k, val := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, val = c.Next() {
			kv, err := getKey(val)
			if err != nil {
				return err
			}
			v.Keys = append(v.Keys, kv)
		}
		var err error
		v.Recent, err = recentReadings(newSummaries(tx), n, recent)
		return err
	})
	return v, err
}

// recentReadings lists a meter's newest readings, newest first: its tail,
// then the chunks before it.
func recentReadings(sums *summaries, n uint32, limit int) ([]Reading, error) {
	var out []Reading
	tx := sums.tx
	refusals := tx.Bucket(bRefusals)
	chunk := tx.Bucket(bTails).Get(u32(n))
	for chunk != nil && len(out) < limit {
		before, more, spots, _, err := readChunk(chunk)
		if err != nil {
			return nil, err
		}
		for i := len(spots) - 1; i >= 0 && len(out) < limit; i-- {
			sp := spots[i]
			r := Reading{Seq: sp.Seq, Outcome: meter.OutcomeAccepted, Block: sp.Block, TxIndex: sp.Tx, Item: sp.Item}
			if sp.HasTime {
				r.Time = time.Unix(sp.Time, 0).UTC().Format(time.RFC3339)
			}
			if r.TxID, err = sums.txID(sp.Block, sp.Tx); err != nil {
				return nil, err
			}
			if sp.Refused {
				r.Outcome = meter.OutcomeRejected
				if raw := refusals.Get(key(u64(sp.Block), u32(uint32(sp.Tx)), u32(uint32(sp.Item)))); raw != nil {
					ref, err := getRefusal(sums.d, sp.Block, raw)
					if err != nil {
						return nil, err
					}
					r.Code, r.Reason = ref.Code, ref.Reason
				}
			}
			out = append(out, r)
		}
		chunk = nil
		if more {
			if chunk = tx.Bucket(bReadings).Get(closedKey(before, n)); chunk == nil {
				return nil, fmt.Errorf("readings of meter number %d: the chunk closed in block %d is missing: %w", n, before, errCorrupt)
			}
		}
	}
	return out, nil
}

// RefusalFilter selects refusals; zero fields do not filter.
type RefusalFilter struct {
	// Kind is RefusedMeasurement or RefusedUpdate.
	Kind               string
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
		sums := newSummaries(tx)
		c := tx.Bucket(bRefusals).Cursor()
		var k, v []byte
		if f.Before == 0 {
			k, v = c.Last()
		} else {
			c.Seek(u64(f.Before))
			k, v = c.Prev()
		}
		for ; k != nil && len(out) < f.Limit; k, v = c.Prev() {
			r, err := getRefusal(sums.d, decodeU64(k[:8]), v)
			if err != nil {
				return err
			}
			// Block times are the submitters' clocks and need not grow,
			// so a time filter cannot stop the scan early.
			switch {
			case !f.From.IsZero() && r.Time.Before(f.From),
				!f.To.IsZero() && r.Time.After(f.To),
				f.NMI != "" && r.NMI != f.NMI && r.Submitter != f.NMI,
				f.MeterID != "" && r.MeterID != f.MeterID,
				f.Code != "" && r.Code != f.Code,
				f.Kind != "" && r.Kind != f.Kind:
				continue
			}
			if r.TxID, err = sums.txID(r.Block, int(binary.BigEndian.Uint32(k[8:12]))); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// RefusalsOf lists the refusals of one transaction, in item order.
func (s *Store) RefusalsOf(block uint64, txIndex int) ([]Refusal, error) {
	var out []Refusal
	err := s.db.View(func(tx *bolt.Tx) error {
		sums := newSummaries(tx)
		prefix := key(u64(block), u32(uint32(txIndex)))
		c := tx.Bucket(bRefusals).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			r, err := getRefusal(sums.d, block, v)
			if err != nil {
				return err
			}
			if r.TxID, err = sums.txID(block, txIndex); err != nil {
				return err
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
			st, err := getHour(h, b.Get(u64(uint64(h))))
			if err != nil {
				return err
			}
			out = append(out, st)
		}
		return nil
	})
	return out, err
}

// Minutes returns the counts of the minutes from..to, oldest first, with
// empty minutes filled in.
func (s *Store) Minutes(from, to time.Time) ([]MinuteStat, error) {
	first, last := from.Unix()/60, to.Unix()/60
	var out []MinuteStat
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bMinutes)
		for m := first; m <= last; m++ {
			st, err := getMinute(m, b.Get(u64(uint64(m))))
			if err != nil {
				return err
			}
			out = append(out, st)
		}
		return nil
	})
	return out, err
}

// Hit is what a search found.
type Hit struct {
	Kind string // "block", "tx", "meter", "type"
	ID   string // block number, tx ID, meter ID, type ID
}

var hexRE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// Search finds a block by number or header hash, a transaction by ID, a
// meter by ID, or a meter type by ID.
func (s *Store) Search(q string) (Hit, error) {
	q = strings.TrimSpace(q)
	var hit Hit
	err := s.db.View(func(tx *bolt.Tx) error {
		d := newStrs(tx)
		if n, err := strconv.ParseUint(q, 10, 64); err == nil && tx.Bucket(bBlocks).Get(u64(n)) != nil {
			hit = Hit{Kind: "block", ID: q}
			return nil
		}
		if hexRE.MatchString(q) {
			lower := strings.ToLower(q)
			hash, _ := hex.DecodeString(lower)
			n, found, err := blockByHash(tx, d, hash)
			if err != nil {
				return err
			}
			if found {
				hit = Hit{Kind: "block", ID: strconv.FormatUint(n, 10)}
				return nil
			}
			switch _, err := txRef(tx, d, lower); {
			case err == nil:
				hit = Hit{Kind: "tx", ID: lower}
				return nil
			case !errors.Is(err, ErrNotFound):
				return err
			}
		}
		if n := meterNumber(tx, q); n != 0 {
			if st, err := currentVersion(tx, n); err != nil || st != nil {
				hit = Hit{Kind: "meter", ID: q}
				return err
			}
		}
		if st, err := typeAt(tx, q, ^uint64(0)); err != nil || st != nil {
			hit = Hit{Kind: "type", ID: q}
			return err
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
		nums := tx.Bucket(bMeterNums).Cursor()
		for id, num := nums.First(); id != nil; id, num = nums.Next() {
			if len(num) != 4 {
				continue
			}
			prefix := num
			k, v := lastBefore(hist, key(num, u64(block+1)))
			if k == nil || !bytes.HasPrefix(k, prefix) || len(k) != 16 {
				continue // registered after block, or never
			}
			e, err := getVersion(decodeU64(k[4:12]), v)
			if err != nil {
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
