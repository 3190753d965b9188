package wire

import "slices"

// The meter-PKI contract's transactions, by the one name each answers to.
// The contract is the chaincode's default: it is invoked by these names
// exactly, without a contract prefix and in this case; any other spelling
// is refused, so that every index reads each transaction by one name.
// The measurement path's names (TxSubmitMeasurement, TxSubmitMeasurements,
// TxSubmitPacked) and TxAttestMeter are in wire.go.
const (
	TxRegisterMeter        = "RegisterMeter"
	TxRegisterMeters       = "RegisterMeters"
	TxPreEnrollMeter       = "PreEnrollMeter"
	TxWithdrawPreEnrolment = "WithdrawPreEnrolment"
	TxRotateKey            = "RotateKey"
	TxRevokeMeter          = "RevokeMeter"
	TxReinstateMeter       = "ReinstateMeter"
	TxSetMembers           = "SetMembers"
	TxVoteConsortium       = "VoteConsortium"
	TxRefreshPolicies      = "RefreshPolicies"
	TxRecordMeterType      = "RecordMeterType"
	TxApproveSoftware      = "ApproveSoftware"
	TxWithdrawSoftware     = "WithdrawSoftware"
	TxAssignMeterType      = "AssignMeterType"
	TxSubmitSoftwareUpdate = "SubmitSoftwareUpdate"

	TxGetMeter          = "GetMeter"
	TxListMeters        = "ListMeters"
	TxGetMeterHistory   = "GetMeterHistory"
	TxGetMeterKeys      = "GetMeterKeys"
	TxGetPreEnrolment   = "GetPreEnrolment"
	TxVerifyMeasurement = "VerifyMeasurement"
	TxGetMembers        = "GetMembers"
	TxGetVotes          = "GetVotes"

	TxGetMeterType        = "GetMeterType"
	TxListMeterTypes      = "ListMeterTypes"
	TxGetMeterTypeHistory = "GetMeterTypeHistory"
	TxListTypeMeters      = "ListTypeMeters"
	TxGetSoftwareLog      = "GetSoftwareLog"
)

// Transactions lists every transaction of the meter-PKI contract: a
// committed transaction of the chaincode whose function is neither one of
// these nor one of the billing contract's (agreement.Transactions) is one
// no honest endorser answered.
var Transactions = []string{
	TxRegisterMeter, TxRegisterMeters, TxPreEnrollMeter, TxWithdrawPreEnrolment, TxRotateKey,
	TxRevokeMeter, TxReinstateMeter, TxSetMembers, TxVoteConsortium, TxRefreshPolicies,
	TxSubmitMeasurement, TxSubmitMeasurements, TxSubmitPacked, TxAttestMeter,
	TxGetMeter, TxListMeters, TxGetMeterHistory, TxGetMeterKeys, TxGetPreEnrolment,
	TxVerifyMeasurement, TxGetMembers, TxGetVotes,
	TxRecordMeterType, TxApproveSoftware, TxWithdrawSoftware, TxAssignMeterType, TxSubmitSoftwareUpdate,
	TxGetMeterType, TxListMeterTypes, TxGetMeterTypeHistory, TxListTypeMeters, TxGetSoftwareLog,
}

// EvaluateTransactions are the read-only transactions among them.
var EvaluateTransactions = []string{
	TxGetMeter, TxListMeters, TxGetMeterHistory, TxGetMeterKeys, TxGetPreEnrolment,
	TxVerifyMeasurement, TxGetMembers, TxGetVotes,
	TxGetMeterType, TxListMeterTypes, TxGetMeterTypeHistory, TxListTypeMeters, TxGetSoftwareLog,
}

// IsTransaction reports whether fn is the exact name of one of the
// meter-PKI contract's transactions.
func IsTransaction(fn string) bool { return slices.Contains(Transactions, fn) }
