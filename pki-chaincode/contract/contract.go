// Package contract is the meter-PKI chaincode: the ledger's registry of meter
// keys and the verifier of the measurements meters sign with them.
//
// Who may call what is decided from the submitting client's identity: its
// organisation (MSP ID) is the NMI it speaks for, and the attribute pki.role
// in its certificate (registrar, ingest, auditor) is its role.
package contract

import (
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-contract-api-go/v2/metadata"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/state"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// Version is the contract's version, reported in its metadata.
const Version = "1.0.0"

// Registry is the meter-PKI contract. Its exported methods are the chaincode's
// transactions.
type Registry struct {
	contractapi.Contract
	// clock is the endorsing peer's clock, against which proposal
	// timestamps are bounded (state.TxTime).
	clock func() time.Time
}

// Option sets up a Registry.
type Option func(*Registry)

// WithClock sets the clock proposal timestamps are checked against; nil
// checks none (tests whose transactions carry a fixed time).
func WithClock(now func() time.Time) Option { return func(r *Registry) { r.clock = now } }

// New returns the contract with its metadata set.
func New(opts ...Option) *Registry {
	r := &Registry{clock: time.Now}
	for _, o := range opts {
		o(r)
	}
	r.Name = wire.Contract
	r.BeforeTransaction = state.ExactName(wire.Transactions)
	r.Info = metadata.InfoMetadata{
		Title:       "Inter-NMI meter PKI",
		Description: "Registry of smart-meter public keys and verifier of signed measurements",
		Version:     Version,
	}
	return r
}

// GetEvaluateTransactions marks the read-only transactions in the metadata.
func (r *Registry) GetEvaluateTransactions() []string { return wire.EvaluateTransactions }

// caller is the submitting client as the contract sees it.
type caller struct {
	nmi  string // MSP ID
	role string // value of wire.RoleAttribute, "" if absent
}

func callerOf(ctx contractapi.TransactionContextInterface) (caller, error) {
	id := ctx.GetClientIdentity()
	msp, err := id.GetMSPID()
	if err != nil {
		return caller{}, meter.Errorf(meter.CodeForbidden, "cannot read the submitter's organisation: %v", err)
	}
	role, _, err := id.GetAttributeValue(wire.RoleAttribute)
	if err != nil {
		return caller{}, meter.Errorf(meter.CodeForbidden, "cannot read the submitter's role: %v", err)
	}
	return caller{nmi: msp, role: role}, nil
}

// registrar admits only a registrar of some NMI.
func registrar(ctx contractapi.TransactionContextInterface, action string) (caller, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return c, err
	}
	if c.role != wire.RoleRegistrar {
		return c, meter.Errorf(meter.CodeForbidden, "only an NMI registrar may %s; the submitter of %s has role %q", action, c.nmi, c.role)
	}
	return c, nil
}

// writer admits any client that is not read-only.
func writer(ctx contractapi.TransactionContextInterface, action string) (caller, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return c, err
	}
	if c.role == wire.RoleAuditor {
		return c, meter.Errorf(meter.CodeForbidden, "auditors are read-only and may not %s", action)
	}
	return c, nil
}

// owns refuses a change to a meter by any NMI but its owner.
func (c caller) owns(m *meter.Meter, action string) error {
	if m.NMI != c.nmi {
		return meter.Errorf(meter.CodeNotOwner, "meter %s belongs to %s; %s may not %s it", m.ID, m.NMI, c.nmi, action)
	}
	return nil
}

// tx carries what every write needs from the proposal: its ID and its time,
// the only clock an endorsed transaction may read.
type tx struct {
	ctx  contractapi.TransactionContextInterface
	id   string
	time time.Time
	// policies caches the key-level policy of each owner's keys for the
	// transaction (ownerPolicy reads the consortium's members once).
	policies map[string][]byte
}

func (r *Registry) newTx(ctx contractapi.TransactionContextInterface) (tx, error) {
	t, err := state.TxTime(ctx, r.clock)
	if err != nil {
		return tx{}, err
	}
	return tx{ctx: ctx, id: ctx.GetStub().GetTxID(), time: t, policies: map[string][]byte{}}, nil
}

func (t tx) stamp() string { return formatTime(t.time) }

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// putOwned writes v and binds key to its owner's key-level endorsement
// policy (ownerPolicy): a peer of the owning NMI, or a majority of the
// consortium's NMIs; no minority of other NMIs can change it, even
// together.
func (t tx) putOwned(key string, v any, owner string) error {
	if err := state.Put(t.ctx, key, v); err != nil {
		return err
	}
	policy, ok := t.policies[owner]
	if !ok {
		var err error
		if policy, err = ownerPolicy(t.ctx, owner); err != nil {
			return err
		}
		t.policies[owner] = policy
	}
	if err := t.ctx.GetStub().SetStateValidationParameter(key, policy); err != nil {
		return state.Internal("set key-level policy on "+key, err)
	}
	return nil
}

// page bounds a paginated query.
func page(size int32) (int32, error) {
	const def, max = 100, 1000
	switch {
	case size == 0:
		return def, nil
	case size < 0 || size > max:
		return 0, meter.Errorf(meter.CodeMalformed, "page size %d is out of range 1..%d", size, max)
	}
	return size, nil
}

func malformed(format string, args ...any) error {
	return meter.Errorf(meter.CodeMalformed, format, args...)
}
