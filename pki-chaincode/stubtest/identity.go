package stubtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/cid"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"google.golang.org/protobuf/proto"
)

// Identity is a client as Fabric presents it: a serialized MSP identity
// carrying an X.509 certificate issued by the organisation's CA.
type Identity struct {
	MSP, Role string
	// Creator is the serialized identity, as the stub's GetCreator returns it.
	Creator []byte
}

// attrOID is the Fabric CA attribute extension.
var attrOID = asn1.ObjectIdentifier{1, 2, 3, 4, 5, 6, 7, 8, 1}

// The test CA and the identities it issued, shared by the tests of a process
// so each identity is made once.
var (
	caOnce sync.Once
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	idMu   sync.Mutex
	ids    = map[string]*Identity{}
)

// Client returns the identity of a client of mspID whose certificate carries
// role in wire.RoleAttribute ("" for a certificate without the
// attribute).
func Client(t testing.TB, mspID, role string) *Identity {
	t.Helper()
	return identity(t, mspID, role, "client")
}

// Admin returns the identity of an NMI admin of mspID (node OU "admin").
func Admin(t testing.TB, mspID string) *Identity {
	t.Helper()
	return identity(t, mspID, "", "admin")
}

func identity(t testing.TB, mspID, role, ou string) *Identity {
	t.Helper()
	caOnce.Do(func() {
		var err error
		if caKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca.test", Organization: []string{"Test CA"}},
			NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
		if err != nil {
			panic(err)
		}
		if caCert, err = x509.ParseCertificate(der); err != nil {
			panic(err)
		}
	})
	idMu.Lock()
	defer idMu.Unlock()
	name := role + "@" + mspID
	if ou != "client" {
		name = ou + ":" + name
	}
	if id, ok := ids[name]; ok {
		return id
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(len(ids) + 2)), Subject: pkix.Name{CommonName: name, OrganizationalUnit: []string{ou}},
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if role != "" {
		attrs, err := json.Marshal(map[string]map[string]string{"attrs": {wire.RoleAttribute: role}})
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: attrOID, Value: attrs}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	creator, err := proto.Marshal(&msp.SerializedIdentity{Mspid: mspID,
		IdBytes: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})})
	if err != nil {
		t.Fatal(err)
	}
	id := &Identity{MSP: mspID, Role: role, Creator: creator}
	ids[name] = id
	return id
}

// Context is the transaction context contractapi would build for the stub's
// transaction, for calling a contract's methods directly.
func Context(stub *Stub) (*contractapi.TransactionContext, error) {
	ctx := new(contractapi.TransactionContext)
	ctx.SetStub(stub)
	ci, err := cid.New(stub)
	if err != nil {
		return nil, err
	}
	ctx.SetClientIdentity(ci)
	return ctx, nil
}
