package meter_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// Codes is what clients check their mappings against, so a code declared
// but missing from it would go unnoticed by them: every constant of type
// Code in errors.go is listed, once, in the order declared.
func TestCodesListsEveryCode(t *testing.T) {
	file, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []meter.Code
	for _, decl := range file.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for _, v := range vs.Values {
				s, err := strconv.Unquote(v.(*ast.BasicLit).Value)
				if err != nil {
					t.Fatal(err)
				}
				declared = append(declared, meter.Code(s))
			}
		}
	}
	if len(declared) < 20 || !slices.Equal(declared, meter.Codes) {
		t.Errorf("errors.go declares %v\nmeter.Codes lists  %v", declared, meter.Codes)
	}
}
