package credentials

// Role is what a credential allows at a registry (and, for auditors, at the
// explorer).
//
// The API's roles are not the certificates' roles (the pki.role attribute
// the chaincode reads, wire.RoleRegistrar and the others): a registry acts
// for each API role with one of its NMI's Fabric identities, and this is the
// one mapping (docs/registry.md has it with what each role may call):
//
//	API role   Fabric identity (pki.role)
//	operator   registrar
//	ingest     ingest
//	auditor    auditor
//	customer   ingest     (authority: the customer's signature on statements)
//	utility    ingest     (authority: the utility's signature on statements)
type Role string

// Roles of the registry's clients.
const (
	RoleOperator Role = "operator" // registers, rotates, revokes the NMI's meters
	RoleIngest   Role = "ingest"   // delivers signed measurements
	RoleAuditor  Role = "auditor"  // reads
	// The parties of privacy-preserving billing. Their authority on the
	// ledger comes from their signatures on billing statements; their
	// credential lets them call the billing endpoints and read, and the
	// registry submits for them as its ingest identity.
	RoleCustomer Role = "customer"
	RoleUtility  Role = "utility"
)

// Roles lists every role.
var Roles = []Role{RoleOperator, RoleIngest, RoleAuditor, RoleCustomer, RoleUtility}
