package governance

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	mspproto "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"
)

// The good definitions are `configtxgen -printOrg METAS` output for
// testdata/metas/msp, as an application and as an orderer organisation; the
// bad ones are edits of the first.
func TestReadOrgDefinitionGood(t *testing.T) {
	for _, tc := range []struct {
		file      string
		endpoints bool
	}{
		{"metas.good.json", false},
		{"metas-orderer.good.json", true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			org := metasDefinition(t, tc.file)
			if id := mspID(org); id != "METASMSP" {
				t.Errorf("MSP ID %q", id)
			}
			_, hasEndpoints := org.Values[endpointsKey]
			_, hasAnchors := org.Values[anchorPeersKey]
			if hasEndpoints != tc.endpoints || hasAnchors == tc.endpoints {
				t.Errorf("values %v", slices.Sorted(maps.Keys(org.Values)))
			}
		})
	}
}

// Our test builder of MSP values must agree with configtxgen, or the tests
// on generated organisations would prove little.
func TestMSPValueMatchesConfigtxgen(t *testing.T) {
	org := metasDefinition(t, "metas.good.json")
	_, want, err := fabricMSP(org)
	if err != nil {
		t.Fatal(err)
	}
	var mc mspproto.MSPConfig
	if err := proto.Unmarshal(mspValue(t, "testdata/metas/msp", "METASMSP"), &mc); err != nil {
		t.Fatal(err)
	}
	var got mspproto.FabricMSPConfig
	if err := proto.Unmarshal(mc.Config, &got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got, want) {
		t.Errorf("builder MSP\n%v\nconfigtxgen MSP\n%v", &got, want)
	}
}

func TestReadOrgDefinitionBad(t *testing.T) {
	want := map[string]string{
		"empty-name.bad.json":            "the MSP has no name",
		"foreign-principal.bad.json":     "policy Admins: names MSP PTBMSP",
		"garbage-root.bad.json":          "root certificate 0",
		"leaf-root.bad.json":             "is not a CA certificate",
		"name-mismatch.bad.json":         "policy Readers: names MSP METASMSP, not the definition's MSP METAS",
		"no-admins-policy.bad.json":      "no Admins policy",
		"no-endorsement-policy.bad.json": "no Endorsement policy",
		"no-mod-policy.bad.json":         "value MSP has no mod_policy",
		"no-msp.bad.json":                "no MSP value",
		"no-root.bad.json":               "no root CA certificates",
		"no-tls-root.bad.json":           "no TLS root CA certificates",
		"truncated.bad.json":             "not JSON",
		"unknown-value.bad.json":         "Foo",
		"does-not-exist.bad.json":        "",
	}
	files, err := filepath.Glob("testdata/orgs/*.bad.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(want)-1 {
		t.Errorf("%d bad definitions in testdata, %d cases here", len(files), len(want)-1)
	}
	for name, fragment := range want {
		t.Run(name, func(t *testing.T) {
			_, err := ReadOrgDefinition(filepath.Join("testdata", "orgs", name))
			if fragment == "" {
				if !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("want a missing-file error, got %v", err)
				}
				return
			}
			if !errors.Is(err, ErrMalformedDefinition) {
				t.Fatalf("want ErrMalformedDefinition, got %v", err)
			}
			if !strings.Contains(err.Error(), fragment) || !strings.Contains(err.Error(), "malformed definition") {
				t.Errorf("error %q does not say %q", err, fragment)
			}
		})
	}
}

func TestValidateOrgDefinitionRefusesSubGroups(t *testing.T) {
	org := metasDefinition(t, "metas.good.json")
	org.Groups["Nested"] = proto.Clone(org).(*common.ConfigGroup)
	if err := ValidateOrgDefinition(org); !errors.Is(err, ErrMalformedDefinition) {
		t.Fatalf("got %v", err)
	}
	if err := ValidateOrgDefinition(nil); !errors.Is(err, ErrMalformedDefinition) {
		t.Fatalf("nil definition: got %v", err)
	}
}
