package chain

// plainCodes says in one sentence what each of the peers' validation codes
// (Tx.Code, the names of peer.TxValidationCode) means, for people who do
// not know Fabric. A transaction of any code but VALID wrote nothing.
var plainCodes = map[string]string{
	"VALID":                        "The peers committed the transaction and kept what it wrote.",
	"NIL_ENVELOPE":                 "The transaction was empty; the peers kept nothing of it.",
	"BAD_PAYLOAD":                  "The transaction could not be read; the peers kept nothing of it.",
	"BAD_COMMON_HEADER":            "The transaction's header could not be read; the peers kept nothing of it.",
	"BAD_CREATOR_SIGNATURE":        "The submitter's signature on the transaction did not verify; the peers kept nothing of it.",
	"INVALID_ENDORSER_TRANSACTION": "The transaction was not well formed; the peers kept nothing of it.",
	"INVALID_CONFIG_TRANSACTION":   "The channel configuration change was not valid; the peers kept nothing of it.",
	"UNSUPPORTED_TX_PAYLOAD":       "The transaction is of a kind the peers do not process; they kept nothing of it.",
	"BAD_PROPOSAL_TXID":            "The transaction's ID did not match its contents; the peers kept nothing of it.",
	"DUPLICATE_TXID":               "A transaction with the same ID was committed before; this copy was ignored.",
	"ENDORSEMENT_POLICY_FAILURE":   "The transaction lacked the endorsements its policy asks for (often a meter registered or changed at the same moment by another transaction); nothing it wrote was kept.",
	"MVCC_READ_CONFLICT":           "Another transaction changed what this one had read before it was committed (two deliveries for the same meters at once); nothing it wrote was kept, and the registry endorses such a request again.",
	"PHANTOM_READ_CONFLICT":        "Another transaction changed a range of keys this one had read before it was committed; nothing it wrote was kept, and the registry endorses such a request again.",
	"UNKNOWN_TX_TYPE":              "The transaction is of an unknown type; the peers kept nothing of it.",
	"TARGET_CHAIN_NOT_FOUND":       "The transaction named a channel the peers do not have; they kept nothing of it.",
	"MARSHAL_TX_ERROR":             "The transaction could not be encoded; the peers kept nothing of it.",
	"NIL_TXACTION":                 "The transaction carried no action; the peers kept nothing of it.",
	"EXPIRED_CHAINCODE":            "The transaction was made for a chaincode version no longer in force; the peers kept nothing of it.",
	"CHAINCODE_VERSION_CONFLICT":   "The transaction was endorsed by another chaincode version than the one in force; the peers kept nothing of it.",
	"BAD_HEADER_EXTENSION":         "The transaction's header extension could not be read; the peers kept nothing of it.",
	"BAD_CHANNEL_HEADER":           "The transaction's channel header could not be read; the peers kept nothing of it.",
	"BAD_RESPONSE_PAYLOAD":         "The endorsers' response could not be read; the peers kept nothing of the transaction.",
	"BAD_RWSET":                    "The transaction's reads and writes could not be read; the peers kept nothing of it.",
	"ILLEGAL_WRITESET":             "The transaction wrote where it may not; the peers kept nothing of it.",
	"INVALID_WRITESET":             "The transaction's writes were not valid; the peers kept nothing of it.",
	"INVALID_CHAINCODE":            "The transaction named a chaincode not defined on the channel; the peers kept nothing of it.",
	"NOT_VALIDATED":                "The peers had not validated the transaction.",
	"INVALID_OTHER_REASON":         "The peers refused the transaction for another reason; they kept nothing of it.",
}

// PlainCode is the plain-language sentence of a peer's validation code
// (Tx.Code), "" for a name Fabric does not define.
func PlainCode(code string) string { return plainCodes[code] }

// Conflict reports whether a transaction was invalidated by a concurrent
// transaction rather than for what it carried: a read that another
// transaction changed first (MVCC, phantom), or a key-level endorsement
// policy that a concurrent registration set. The registries endorse such a
// request again, and it is normally carried by a later transaction.
func Conflict(code string) bool {
	switch code {
	case "MVCC_READ_CONFLICT", "PHANTOM_READ_CONFLICT", "ENDORSEMENT_POLICY_FAILURE":
		return true
	}
	return false
}
