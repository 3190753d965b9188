// Package audit is what an index of the channel checks of every valid
// transaction of the chaincode before it believes it, trusting no
// endorser: two NMIs running modified chaincode satisfy the chaincode's
// endorsement policy (2 of 5) and can commit any write under a key that
// does not exist yet, and any answer. The explorer's index and each
// registry's readings index apply these checks; what fails one is an
// integrity finding, and is not indexed.
package audit

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// Finding kinds: what is wrong with a valid transaction.
const (
	// KindValue: the value does not decode as the record its key holds.
	KindValue = "value"
	// KindKey: the key is not one the chaincode writes (no valid meter ID,
	// or a key version number not written as 6 or more digits).
	KindKey = "key"
	// KindMismatch: the value names another meter or key version than the
	// key it was written under.
	KindMismatch = "mismatch"
	// KindUnbound: a key version, or an entry of a meter's software log,
	// written without its meter's record at that version (counting that
	// entry) in the same transaction.
	KindUnbound = "unbound"
	// KindOwner: a record whose owner is not the NMI that submitted its
	// registration, or that changes a meter's owner; a meter type recorded
	// in another NMI's name or namespace, or whose certifying NMI changes.
	KindOwner = "owner"
	// KindFunction: a valid transaction of the chaincode under a name that
	// is none of its transactions'.
	KindFunction = "function"
	// KindSignature: an item marked accepted that the chaincode would not
	// accept: no such meter, the meter not active, another key version in
	// force, or a signature that does not verify; likewise a software log
	// entry whose statement its meter's key did not sign.
	KindSignature = "signature"
	// KindRewrite: a record changed in a way the chaincode never changes
	// it: a meter type's versions dropped or their approval changed, a
	// withdrawal undone, a meter's type changed once set.
	KindRewrite = "rewrite"
	// KindMeasurements: a measurement transaction that cannot be decoded;
	// its measurements are not indexed.
	KindMeasurements = "measurements"
	// KindStatement: a software update transaction that cannot be decoded,
	// or one whose statement is marked accepted without the log entry the
	// chaincode writes for it; its statement is not indexed.
	KindStatement = "statement"
)

// Finding is what is wrong, in words an auditor reads.
type Finding struct {
	Kind    string
	Problem string
}

func found(kind, format string, args ...any) *Finding {
	return &Finding{Kind: kind, Problem: fmt.Sprintf(format, args...)}
}

// Function says why a valid transaction's function is none of the
// chaincode's, nil when it is one. Honest endorsers answer each transaction
// by its one name only; what a transaction under another name did
// (accepted readings, an advanced replay guard) no index would read.
func Function(fn string) *Finding {
	if wire.IsTransaction(fn) || agreement.IsTransaction(fn) {
		return nil
	}
	return found(KindFunction, "the chaincode has no transaction named %q; what this valid transaction did is not indexed", cut(fn, 64))
}

// Record checks a meter record written under meter/<id> by a transaction
// of creator: the key names a meter, the value is that meter's record, a
// new meter's owner is the NMI that submitted it, and an owner never
// changes. prev is the meter's record before, nil for a new meter.
func Record(key, id string, value []byte, prev *meter.Meter, creator string) (*meter.Meter, *Finding) {
	if meter.ValidateMeterID(id) != nil {
		return nil, found(KindKey, "%q is not a meter ID; the record was not applied", cut(id, 64))
	}
	var m meter.Meter
	if err := json.Unmarshal(value, &m); err != nil {
		return nil, found(KindValue, "the value is not a meter record (%s); it was not applied", cut(err.Error(), 256))
	}
	switch {
	case m.ID != id:
		return nil, found(KindMismatch, "the value is the record of meter %q, written under the key of meter %q; it was not applied to either", cut(m.ID, 64), id)
	case prev == nil && m.NMI != creator:
		return nil, found(KindOwner, "the new meter's record names %q as its owner, but %q submitted it; it was not applied", cut(m.NMI, 64), creator)
	case prev != nil && m.NMI != prev.NMI:
		return nil, found(KindOwner, "the record changes the meter's owner from %q to %q; it was not applied", prev.NMI, cut(m.NMI, 64))
	case prev != nil && prev.TypeID != "" && m.TypeID != prev.TypeID:
		return nil, found(KindRewrite, "the record changes the meter's type from %q to %q, which never changes once set; it was not applied", prev.TypeID, cut(m.TypeID, 64))
	}
	return &m, nil
}

// KeyVersion checks a key version written under keyver/<id>/<version>
// (rest is what follows "keyver/"): the key is well formed, the value is
// that meter's version, and the same transaction wrote the meter's record
// at that version and key (written: the records it wrote, as applied), as
// the chaincode writes them.
func KeyVersion(key, rest string, value []byte, written map[string]meter.Meter) (*meter.KeyVersion, *Finding) {
	id, num, _ := cutLast(rest, "/")
	version, err := strconv.Atoi(num)
	if meter.ValidateMeterID(id) != nil || err != nil || version < 1 || wire.KeyVersionKey(id, version) != key {
		return nil, found(KindKey, "the key is not keyver/<meter ID>/<version of 6 or more digits>; the key version was not applied")
	}
	var k meter.KeyVersion
	if err := json.Unmarshal(value, &k); err != nil {
		return nil, found(KindValue, "the value is not a key version (%s); it was not applied", cut(err.Error(), 256))
	}
	if k.MeterID != id || k.Version != version {
		return nil, found(KindMismatch, "the value is version %d of meter %q, written under the key of version %d of meter %q; it was not applied to either",
			k.Version, cut(k.MeterID, 64), version, id)
	}
	if m, ok := written[id]; !ok || m.KeyVersion != version || m.Fingerprint != k.Fingerprint {
		return nil, found(KindUnbound, "key version %d of meter %q was written without the meter's record at that version and key in the same transaction, as the chaincode writes them; it was not applied",
			version, id)
	}
	return &k, nil
}

// Accepted says why an item the endorsers marked accepted is not a
// reading the chaincode accepts, nil when it is one: the meter (m, nil if
// not registered) must be active with the key version the outcome names in
// force, and the signature must verify against that version's key (pem).
// Two NMIs running modified chaincode could otherwise commit garbage
// marked accepted, and with it a replay guard set to any seq, so that the
// meter's genuine readings are then refused as replays.
func Accepted(it wire.Item, m *meter.Meter, pem string) *Finding {
	id, seq, v := it.Signed.MeterID, it.Result.Seq, it.Result.KeyVersion
	switch {
	case m == nil:
		return found(KindSignature, "meter %q's reading seq %d is marked accepted, but no such meter is registered; it was not indexed as accepted", cut(id, 64), seq)
	case m.Status != meter.StatusActive:
		return found(KindSignature, "meter %s's reading seq %d is marked accepted, but the meter is %s; it was not indexed as accepted", id, seq, m.Status)
	case m.KeyVersion != v:
		return found(KindSignature, "meter %s's reading seq %d is marked accepted with key version %d, but version %d is in force; it was not indexed as accepted", id, seq, v, m.KeyVersion)
	}
	key, err := parsedKey(pem)
	if err != nil {
		return found(KindSignature, "meter %s's key version %d cannot be read (%v); its reading seq %d was not indexed as accepted", id, v, err, seq)
	}
	if _, err := it.Signed.Open(key); err != nil {
		return found(KindSignature, "meter %s's reading seq %d is marked accepted, but %v; it was not indexed as accepted", id, seq, cut(err.Error(), 256))
	}
	return nil
}

// keyCache keeps parsed meter keys by their PEM, a pure function of it, so
// a busy meter's key is parsed once per process, but not every meter's key
// for good: 2.7 million meters' keys would take gigabytes of an index's
// memory.
var keyCache = newKeys(keyCacheSize)

// keyCacheSize bounds the keys kept: between it and twice it.
const keyCacheSize = 32 << 10

func parsedKey(pem string) (*meter.PublicKey, error) {
	if k, ok := keyCache.get(pem); ok {
		return k, nil
	}
	k, err := meter.ParsePublicKeyPEM(pem)
	if err != nil {
		return nil, err
	}
	keyCache.put(pem, k)
	return k, nil
}

// keys is a cache of two generations: lookups find keys of both, new keys
// go to the current one, and when it is full the previous one is dropped.
// A key in use is found in the current generation or moved into it.
type keys struct {
	mu        sync.Mutex
	size      int
	cur, prev map[string]*meter.PublicKey
}

func newKeys(size int) *keys {
	return &keys{size: size, cur: map[string]*meter.PublicKey{}}
}

func (c *keys) get(pem string) (*meter.PublicKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.cur[pem]; ok {
		return k, true
	}
	k, ok := c.prev[pem]
	if ok {
		c.add(pem, k)
	}
	return k, ok
}

func (c *keys) put(pem string, k *meter.PublicKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(pem, k)
}

func (c *keys) add(pem string, k *meter.PublicKey) {
	if len(c.cur) >= c.size {
		c.prev, c.cur = c.cur, make(map[string]*meter.PublicKey, c.size)
	}
	c.cur[pem] = k
}

func (c *keys) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev)
}

// cutLast slices s around the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && (s[n]&0xc0) == 0x80 {
		n--
	}
	return s[:n] + "…"
}
