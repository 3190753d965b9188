package proof

import "fmt"

// Kind is the kind of a refusal, for errors.Is on a *Refusal. Its text is a
// short stable name that tools may print or match (pki verify-proof -o json).
type Kind string

func (k Kind) Error() string { return string(k) }

// Kinds of refusal.
const (
	// ErrBundle: the bundle is not a well-formed attestation bundle: a
	// field is missing, a block does not decode, or its configuration
	// blocks are not those before its block.
	ErrBundle Kind = "bundle"
	// ErrGenesis: the genesis block is not the pinned one, or cannot be
	// used as the trust anchor.
	ErrGenesis Kind = "genesis"
	// ErrChain: the configuration chain is missing, a configuration block
	// does not verify, or one is left out.
	ErrChain Kind = "chain"
	// ErrBlock: the attestation's block fails integrity: its data is not
	// what its header commits to, or a BFT quorum of the consenters in
	// force did not sign it.
	ErrBlock Kind = "block"
	// ErrTransaction: the block holds no such attestation transaction, or
	// the transaction is not an AttestMeter invocation of the meter by a
	// member's identity that signed it.
	ErrTransaction Kind = "transaction"
	// ErrEndorsement: an endorsement does not verify, is not a peer of a
	// member NMI, or fewer than two NMIs endorsed.
	ErrEndorsement Kind = "endorsement"
	// ErrRecord: what the endorsers signed is not an attestation of the
	// bundle's meter: the response, the record, or the read-write set.
	ErrRecord Kind = "record"
	// ErrMeter: the bundle attests another meter than the one asked about.
	ErrMeter Kind = "meter"
	// ErrInvalid: the peers' validation flags do not mark the transaction
	// valid, or the block carries none.
	ErrInvalid Kind = "invalid"
	// ErrAge: the attestation is older than the relying party accepts.
	ErrAge Kind = "age"
)

// Refusal is why a bundle does not verify: the first check that failed.
type Refusal struct {
	// Kind is the kind of failure: one of ErrBundle, ErrGenesis, ErrChain,
	// ErrBlock, ErrTransaction, ErrEndorsement, ErrRecord, ErrMeter,
	// ErrInvalid, ErrAge.
	Kind Kind
	// Where names the part of the bundle that failed ("configuration block
	// 7", "block 14", "endorsement 1 (CMIMSP)").
	Where string
	// Reason says what is wrong, for people.
	Reason string
	// Cause is the underlying error, if any: a *chain.IntegrityError when
	// a block failed integrity, so errors.Is(err, chain.ErrQuorum) works.
	Cause error
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("attestation refused: %s: %s", r.Where, r.Reason)
}

// Unwrap returns the kind of failure and the underlying error.
func (r *Refusal) Unwrap() []error {
	if r.Cause == nil {
		return []error{r.Kind}
	}
	return []error{r.Kind, r.Cause}
}

func refuse(kind Kind, where, format string, args ...any) *Refusal {
	return &Refusal{Kind: kind, Where: where, Reason: fmt.Sprintf(format, args...)}
}

// refuseCause is a refusal caused by err, whose text is the reason.
func refuseCause(kind Kind, where string, err error, format string, args ...any) *Refusal {
	r := refuse(kind, where, format, args...)
	r.Cause = err
	return r
}
