package stubtest

import (
	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// Run executes fn as the transaction of stub, calling the contract directly
// with the context contractapi would build. Its writes are committed to the
// stub's ledger only if fn succeeds.
func Run[T any](t testing.TB, stub *Stub, fn func(contractapi.TransactionContextInterface) (T, error)) (T, error) {
	t.Helper()
	ctx, err := Context(stub)
	if err != nil {
		t.Fatal(err)
	}
	v, err := fn(ctx)
	if err == nil {
		stub.Commit()
	}
	return v, err
}

// Ok runs fn and fails the test if it is refused.
func Ok[T any](t testing.TB, stub *Stub, fn func(contractapi.TransactionContextInterface) (T, error)) T {
	t.Helper()
	v, err := Run(t, stub, fn)
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	return v
}

// Refused runs fn, requires a refusal with code want, and requires that the
// committed state of l is unchanged.
func Refused[T any](t testing.TB, l *Ledger, stub *Stub, want meter.Code, fn func(contractapi.TransactionContextInterface) (T, error)) error {
	t.Helper()
	before := l.Snapshot()
	_, err := Run(t, stub, fn)
	if err == nil {
		t.Fatalf("accepted, want %s", want)
	}
	if got := meter.CodeOf(err); got != want {
		t.Fatalf("refused with %v, want code %s", err, want)
	}
	if d := before.Diff(l.Snapshot()); d != "" {
		t.Fatalf("refused transaction changed the state: %s", d)
	}
	return err
}
