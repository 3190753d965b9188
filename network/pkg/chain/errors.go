package chain

import (
	"errors"
	"fmt"
)

// Kinds of integrity failure, for errors.Is on an *IntegrityError.
var (
	// ErrHeader: the block has no header.
	ErrHeader = errors.New("block header missing")
	// ErrOrder: the block is not the next one the verifier expects.
	ErrOrder = errors.New("block out of order")
	// ErrPreviousHash: the header does not link to the previous block's header.
	ErrPreviousHash = errors.New("previous hash mismatch")
	// ErrDataHash: the block's transactions are not those its header commits to.
	ErrDataHash = errors.New("data hash mismatch")
	// ErrData: the block's transactions are not each one canonically encoded
	// envelope, so the data hash (over their concatenation) does not pin
	// down where one ends and the next begins.
	ErrData = errors.New("block data not well formed")
	// ErrQuorum: too few distinct consenters validly signed the block.
	ErrQuorum = errors.New("no BFT quorum of orderer signatures")
	// ErrConfig: a configuration block cannot be used, or the orderers'
	// signed view of the last configuration disagrees with the verifier's.
	ErrConfig = errors.New("configuration")
)

// IntegrityError reports the first block that breaks the chain's integrity.
type IntegrityError struct {
	// Block is the number the offending block carries (the number expected
	// when it has no header).
	Block uint64
	// Reason says what is wrong, for people.
	Reason string
	// Err is the kind of failure: one of ErrHeader, ErrOrder, ErrPreviousHash,
	// ErrDataHash, ErrData, ErrQuorum, ErrConfig.
	Err error
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("block %d fails integrity: %s", e.Block, e.Reason)
}

// Unwrap returns the kind of failure.
func (e *IntegrityError) Unwrap() error { return e.Err }

func integrity(block uint64, kind error, format string, args ...any) *IntegrityError {
	return &IntegrityError{Block: block, Reason: fmt.Sprintf(format, args...), Err: kind}
}
