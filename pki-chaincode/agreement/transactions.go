package agreement

import "slices"

// The billing contract's transactions, by the one name each answers to:
// "billing:" and the method's exact name; any other spelling is refused.
const (
	TxBindPeriod       = Contract + ":BindPeriod"
	TxAgreeTariff      = Contract + ":AgreeTariff"
	TxRecordKeyIssued  = Contract + ":RecordKeyIssued"
	TxRecordBill       = Contract + ":RecordBill"
	TxGetBillingPeriod = Contract + ":GetBillingPeriod"
)

// Transactions lists every transaction of the billing contract.
var Transactions = []string{TxBindPeriod, TxAgreeTariff, TxRecordKeyIssued, TxRecordBill, TxGetBillingPeriod}

// EvaluateTransactions are the read-only ones.
var EvaluateTransactions = []string{TxGetBillingPeriod}

// IsTransaction reports whether fn is the exact name of one of the billing
// contract's transactions.
func IsTransaction(fn string) bool { return slices.Contains(Transactions, fn) }
