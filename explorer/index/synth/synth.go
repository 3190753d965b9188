// Package synth makes synthetic but realistic chains for the explorer's
// tests and benchmarks: blocks of registrations, concentrator batches with
// some refused items, revocations and invalid transactions, meter types and
// software update statements, as parsed blocks (chain.Block), without a
// network.
package synth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// NMIs are the synthetic consortium's members.
var NMIs = []string{"PTBMSP", "CMIMSP", "INMETROMSP", "NMIJMSP", "NMIMMSP"}

// Chain builds blocks one after another, each linked to the previous.
type Chain struct {
	next   uint64
	prev   []byte
	start  time.Time
	meters []string
	seq    map[string]uint64
	record map[string]meter.Meter
	keys   map[string]*meter.PrivateKey
	guards map[string]*wire.Guard
	types  map[string]meter.MeterType
	// nameSoftware: readings name their meter's software (NameSoftware).
	nameSoftware bool
}

// New starts a chain whose first block is at start.
func New(start time.Time) *Chain {
	return &Chain{start: start, seq: map[string]uint64{}, record: map[string]meter.Meter{}, keys: map[string]*meter.PrivateKey{},
		guards: map[string]*wire.Guard{}, types: map[string]meter.MeterType{}}
}

// Meters returns the IDs of the meters registered so far.
func (c *Chain) Meters() []string { return c.meters }

// MeterID names the i-th synthetic meter.
func MeterID(i int) string { return fmt.Sprintf("SYN-%07d", i) }

// txID is the ID the chain gives transaction i of block n.
func txID(n uint64, i int) string {
	id := sha256.Sum256([]byte(fmt.Sprintf("tx %d/%d", n, i)))
	return hex.EncodeToString(id[:])
}

// now is the time of the next block.
func (c *Chain) now() time.Time { return c.start.Add(time.Duration(c.next) * 2 * time.Second) }

func (c *Chain) block(txs []chain.Tx) *chain.Block {
	n := c.next
	at := c.now()
	sum := sha256.Sum256([]byte(fmt.Sprintf("block %d", n)))
	b := &chain.Block{Number: n, HeaderHash: sum[:], PreviousHash: c.prev, DataHash: sum[:], Time: at, Size: encodedSize(txs)}
	for i := range txs {
		txs[i].Index, txs[i].Time = i, at
		if txs[i].ID == "" {
			txs[i].ID = txID(n, i)
		}
		if txs[i].Code == "" {
			txs[i].Code = "VALID"
		}
	}
	b.Txs = txs
	for id := uint32(1); id <= 3; id++ {
		b.Signatures = append(b.Signatures, chain.Signature{ConsenterID: id, MSPID: NMIs[id-1], Valid: true})
	}
	c.prev, c.next = sum[:], n+1
	return b
}

// txOverhead is about what a transaction's envelope adds to what it
// carries: the creator's and the endorsers' certificates and signatures
// (a single reading's transaction of the recorded test chain, testdata/blocks,
// takes 5.7 kB).
const txOverhead = 5000

// encodedSize is about the size of a block of these transactions as Fabric
// encodes it.
func encodedSize(txs []chain.Tx) int {
	n := 1000 // header, metadata and the orderers' signatures
	for _, t := range txs {
		n += txOverhead + len(t.ID) + len(t.Function) + len(t.ResponsePayload)
		for _, a := range t.Args {
			n += len(a)
		}
		for _, r := range t.Reads {
			n += len(r.Namespace) + len(r.Key) + 6
		}
		for _, w := range t.Writes {
			n += len(w.Namespace) + len(w.Key) + len(w.Value) + 4
		}
		for _, e := range t.Events {
			n += len(e.Name) + len(e.Payload)
		}
	}
	return n
}

func value(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// Software is what every synthetic meter runs when it is registered.
var Software = meter.Software{ID: "EM-FW 4.2.1", Checksum: "sha256:9f86d081884c7d65"}

// Register makes a block with one transaction registering n new meters for
// an NMI.
func (c *Chain) Register(nmi string, n int) *chain.Block { return c.RegisterOfType(nmi, n, "") }

// RegisterOfType makes a block with one transaction registering n new
// meters of a type for an NMI ("": of no type).
func (c *Chain) RegisterOfType(nmi string, n int, typeID string) *chain.Block {
	tx := chain.Tx{Type: "ENDORSER_TRANSACTION", CreatorMSP: nmi, CreatorRole: wire.RoleRegistrar, Chaincode: wire.Namespace,
		Function: wire.TxRegisterMeters, Endorsers: []string{nmi, NMIs[(indexOf(nmi)+1)%len(NMIs)]}}
	for range n {
		id := MeterID(len(c.meters) + 1)
		c.meters = append(c.meters, id)
		key, err := meter.GenerateKey(meter.P256)
		if err != nil {
			panic(err)
		}
		c.keys[id] = key
		m := meter.Meter{ID: id, NMI: nmi, PublicKey: key.Public().PEM(),
			Curve: meter.P256, Fingerprint: key.Public().Fingerprint(), KeyVersion: 1, Status: meter.StatusActive,
			Metadata: meter.Metadata{Manufacturer: "Example Metering GmbH", Model: "EM-3000", SerialNumber: "SN" + id,
				SoftwareID: Software.ID, SoftwareChecksum: Software.Checksum},
			RegisteredTx: txID(c.next, 0), RegisteredAt: c.now().Format(time.RFC3339), TypeID: typeID}
		m.UpdatedTx, m.UpdatedAt = m.RegisteredTx, m.RegisteredAt
		c.record[id] = m
		tx.Writes = append(tx.Writes,
			chain.Write{Namespace: wire.Namespace, Key: wire.MeterKey(id), Value: value(m)},
			chain.Write{Namespace: wire.Namespace, Key: wire.KeyVersionKey(id, 1), Value: value(meter.KeyVersion{MeterID: id, Version: 1,
				PublicKey: m.PublicKey, Curve: m.Curve, Fingerprint: m.Fingerprint})})
		if typeID != "" {
			tx.Writes = append(tx.Writes, chain.Write{Namespace: wire.Namespace, Key: wire.TypeIndexKey(typeID, id), Value: value(id)})
		}
	}
	return c.block([]chain.Tx{tx})
}

// Measurements makes a block with one concentrator batch of n readings of
// the given meters in turn, every refuseEvery-th one refused as a replay.
// The readings are the transaction's packed argument and its outcome, as
// the chaincode answers (package wire), signed with the meters' keys; the
// transaction reads each meter's record and replay guard and writes the
// guards of the meters it accepted readings of, as the chaincode does.
func (c *Chain) Measurements(submitter string, meters []string, n, refuseEvery int) *chain.Block {
	return c.block([]chain.Tx{c.measurements(submitter, meters, n, refuseEvery)})
}

// ConflictedMeasurements makes two blocks of one concentrator batch (as
// Measurements): in the first its transaction is marked invalid with code
// (MVCC_READ_CONFLICT: a concurrent transaction changed what it read), in
// the second the same request, endorsed again as the registry does, is
// committed and carries the readings.
func (c *Chain) ConflictedMeasurements(submitter string, meters []string, n, refuseEvery int, code string) (invalid, carried *chain.Block) {
	tx := c.measurements(submitter, meters, n, refuseEvery)
	first := tx
	first.Code = code
	return c.block([]chain.Tx{first}), c.block([]chain.Tx{tx})
}

func (c *Chain) measurements(submitter string, meters []string, n, refuseEvery int) chain.Tx {
	tx := chain.Tx{Type: "ENDORSER_TRANSACTION", CreatorMSP: submitter, CreatorRole: wire.RoleIngest, Chaincode: wire.Namespace,
		Function: wire.TxSubmitPacked, Endorsers: []string{submitter, NMIs[(indexOf(submitter)+2)%len(NMIs)]}}
	items := make([]meter.SignedMeasurement, n)
	out := wire.Outcome{Items: n, KeyVersions: map[string]int{}}
	touched := map[string]bool{}
	var order []string
	for i := range n {
		id := meters[i%len(meters)]
		if !touched[id] {
			touched[id] = true
			order = append(order, id)
		}
		refused := refuseEvery > 0 && i%refuseEvery == refuseEvery-1
		sm := c.reading(id, i, refused)
		items[i] = sm
		if refused {
			out.Rejected++
			out.Exceptions = append(out.Exceptions, replay(i, id, max(c.seq[id], 1)))
			continue
		}
		out.Accepted++
		out.KeyVersions[id] = c.record[id].KeyVersion
	}
	packed, err := wire.Pack(items)
	if err != nil {
		panic(err)
	}
	tx.Args = []string{string(packed)}
	tx.ResponsePayload = value(out)
	c.guardSets(&tx, order)
	return tx
}

// Singles makes a block with one SubmitMeasurement transaction for each of
// the meters, each delivering one reading; every refuseEvery-th is refused
// as a replay.
func (c *Chain) Singles(submitter string, meters []string, refuseEvery int) *chain.Block {
	var txs []chain.Tx
	for i, id := range meters {
		refused := refuseEvery > 0 && i%refuseEvery == refuseEvery-1
		sm := c.reading(id, i, refused)
		r := meter.ItemResult{MeterID: id, Seq: c.seq[id], Outcome: meter.OutcomeAccepted, KeyVersion: c.record[id].KeyVersion}
		if refused {
			r = replay(0, id, max(c.seq[id], 1))
		}
		tx := chain.Tx{Type: "ENDORSER_TRANSACTION", CreatorMSP: submitter, CreatorRole: wire.RoleIngest, Chaincode: wire.Namespace,
			Function: wire.TxSubmitMeasurement, Endorsers: []string{submitter, NMIs[(indexOf(submitter)+3)%len(NMIs)]},
			Args:            []string{id, base64.StdEncoding.EncodeToString(sm.Payload), base64.StdEncoding.EncodeToString(sm.Signature)},
			ResponsePayload: value(r)}
		c.guardSets(&tx, []string{id})
		txs = append(txs, tx)
	}
	return c.block(txs)
}

// reading signs the meter's next reading (i varies its value); a refused
// one repeats the last accepted seq (1 before any).
func (c *Chain) reading(id string, i int, refused bool) meter.SignedMeasurement {
	if !refused {
		c.seq[id]++
	}
	seq := max(c.seq[id], 1)
	at := c.start.Add(time.Duration(seq) * 15 * time.Minute).UTC().Format(time.RFC3339)
	m := meter.Measurement{MeterID: id, Seq: seq, Time: at, Value: fmt.Sprintf("%d.%03d", seq, i%1000), Unit: "kWh"}
	if c.nameSoftware {
		rec := c.record[id]
		m.SoftwareID = rec.CurrentSoftware().ID
	}
	payload, err := m.Payload()
	if err != nil {
		panic(err)
	}
	sig, err := c.keys[id].Sign(payload)
	if err != nil {
		panic(err)
	}
	if !refused {
		g := c.guards[id]
		if g == nil {
			g = &wire.Guard{KeyVersion: c.record[id].KeyVersion}
			c.guards[id] = g
		}
		g.Accept(seq, payload)
	}
	return meter.SignedMeasurement{MeterID: id, Payload: payload, Signature: sig}
}

func replay(i int, id string, seq uint64) meter.ItemResult {
	return meter.ItemResult{Index: i, MeterID: id, Seq: seq, Outcome: meter.OutcomeRejected,
		Code: meter.CodeReplay, Reason: fmt.Sprintf("meter %s: seq %d was accepted before", id, seq)}
}

// guardSets adds what a measurement transaction reads and writes: each
// meter's record and replay guard read, its guard written.
func (c *Chain) guardSets(tx *chain.Tx, meters []string) {
	for _, id := range meters {
		tx.Reads = append(tx.Reads, chain.Read{Namespace: wire.Namespace, Key: wire.MeterKey(id)},
			chain.Read{Namespace: wire.Namespace, Key: wire.GuardKey(id)})
		if g := c.guards[id]; g != nil {
			tx.Writes = append(tx.Writes, chain.Write{Namespace: wire.Namespace, Key: wire.GuardKey(id), Value: g.Marshal()})
		}
	}
}

// Revoke makes a block revoking a meter.
func (c *Chain) Revoke(nmi, id string, reason meter.Reason) *chain.Block {
	m := c.record[id]
	m.Status = meter.StatusRevoked
	m.Revocation = &meter.Revocation{Reason: reason, RevokedAt: c.start.Add(time.Duration(c.next) * 2 * time.Second).Format(time.RFC3339)}
	c.record[id] = m
	tx := chain.Tx{Type: "ENDORSER_TRANSACTION", CreatorMSP: nmi, CreatorRole: wire.RoleRegistrar, Chaincode: wire.Namespace,
		Function: wire.TxRevokeMeter, Args: []string{id, string(reason), ""},
		Writes: []chain.Write{{Namespace: wire.Namespace, Key: wire.MeterKey(id), Value: value(m)}}}
	return c.block([]chain.Tx{tx})
}

// Rotate makes a block with the owner's rotation of a meter's key: the
// record at the next key version and that key version written together,
// as the chaincode does. Its readings are signed with the new key from
// then on, in a new sequence space.
func (c *Chain) Rotate(nmi, id string) *chain.Block {
	key, err := meter.GenerateKey(meter.P256)
	if err != nil {
		panic(err)
	}
	m := c.record[id]
	m.KeyVersion++
	m.PublicKey, m.Fingerprint = key.Public().PEM(), key.Public().Fingerprint()
	c.record[id], c.keys[id] = m, key
	c.seq[id] = 0
	delete(c.guards, id)
	tx := chain.Tx{Type: "ENDORSER_TRANSACTION", CreatorMSP: nmi, CreatorRole: wire.RoleRegistrar, Chaincode: wire.Namespace,
		Function: wire.TxRotateKey, Args: []string{id}, Endorsers: []string{nmi, NMIs[(indexOf(nmi)+1)%len(NMIs)]},
		Writes: []chain.Write{
			{Namespace: wire.Namespace, Key: wire.KeyVersionKey(id, m.KeyVersion), Value: value(meter.KeyVersion{MeterID: id, Version: m.KeyVersion,
				PublicKey: m.PublicKey, Curve: m.Curve, Fingerprint: m.Fingerprint})},
			{Namespace: wire.Namespace, Key: wire.MeterKey(id), Value: value(m)}}}
	return c.block([]chain.Tx{tx})
}

// Key returns a meter's private key.
func (c *Chain) Key(id string) *meter.PrivateKey { return c.keys[id] }

// Record returns a meter's record as the chain last wrote it.
func (c *Chain) Record(id string) meter.Meter { return c.record[id] }

// Forge makes a block with one valid transaction of submitter, endorsed by
// submitter and endorser, that writes value under key: what two colluding
// NMIs running modified chaincode can commit under a key that does not
// exist yet, since a new key is guarded by the chaincode's 2-of-5 policy
// only, not by an owner's key-level policy. The chain's own records are not
// changed.
func (c *Chain) Forge(submitter, endorser, key string, value []byte) *chain.Block {
	return c.Tx(chain.Tx{Type: "ENDORSER_TRANSACTION", CreatorMSP: submitter, CreatorRole: wire.RoleRegistrar, Chaincode: wire.Namespace,
		Function: wire.TxRegisterMeter, Args: []string{`{}`}, Endorsers: []string{submitter, endorser},
		Writes: []chain.Write{{Namespace: wire.Namespace, Key: key, Value: value}}})
}

// Value is v as the chaincode stores it (JSON).
func Value(v any) []byte { return value(v) }

// Tx makes a block with one transaction as given; its ID, index, time and
// code (VALID) are filled in where unset.
func (c *Chain) Tx(tx chain.Tx) *chain.Block { return c.block([]chain.Tx{tx}) }

// Invalid makes a block with one transaction the peers marked invalid.
func (c *Chain) Invalid(nmi, id, code string) *chain.Block {
	tx := chain.Tx{Type: "ENDORSER_TRANSACTION", CreatorMSP: nmi, CreatorRole: wire.RoleRegistrar, Chaincode: wire.Namespace,
		Function: wire.TxRevokeMeter, Args: []string{id, "keyCompromise", ""}, Code: code,
		Writes: []chain.Write{{Namespace: wire.Namespace, Key: wire.MeterKey(id), Value: []byte(`{}`)}}}
	return c.block([]chain.Tx{tx})
}

func indexOf(nmi string) int {
	for i, n := range NMIs {
		if n == nmi {
			return i
		}
	}
	return 0
}
