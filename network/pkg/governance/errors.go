package governance

import (
	"errors"
	"fmt"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
)

// Errors a caller may need to tell apart; they come wrapped with context.
var (
	// ErrMalformedDefinition: an organisation definition is not what
	// `configtxgen -printOrg` produces for a usable organisation.
	ErrMalformedDefinition = errors.New("malformed definition")
	// ErrMSPIDPresent: the organisation's MSP ID is already a member.
	ErrMSPIDPresent = errors.New("MSP ID already present")
	// ErrOrgPresent: an organisation of that name is already a member.
	ErrOrgPresent = errors.New("organisation name already present")
	// ErrUnknownOrg: no organisation of that name in the group.
	ErrUnknownOrg = errors.New("unknown organisation")
	// ErrRunsConsenter: the organisation still runs a consenter, so it must
	// leave the consenter set before it leaves the channel.
	ErrRunsConsenter = errors.New("organisation still runs a consenter")
	// ErrUnknownConsenter: no consenter with that ID.
	ErrUnknownConsenter = errors.New("unknown consenter")
	// ErrInvalidConsenter: the consenter's data is incomplete, duplicates an
	// existing consenter, or its certificates do not belong to its organisation.
	ErrInvalidConsenter = errors.New("invalid consenter")
	// ErrTooFewConsenters: the update would leave fewer than MinConsenters.
	ErrTooFewConsenters = errors.New("too few consenters")
	// ErrAlreadySigned: the identity has signed the proposal already.
	ErrAlreadySigned = errors.New("already signed by this identity")
	// ErrMalformedProposal: a proposal file is not a CONFIG_UPDATE envelope.
	ErrMalformedProposal = errors.New("malformed proposal")
)

// BroadcastError is the ordering service's refusal of an envelope: its
// status and the reason it gave, such as an unsatisfied policy.
type BroadcastError struct {
	Status common.Status
	Info   string
}

func (e *BroadcastError) Error() string {
	return fmt.Sprintf("orderer refused the update: %s: %s", e.Status, e.Info)
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedDefinition, fmt.Sprintf(format, args...))
}
