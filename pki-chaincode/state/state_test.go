package state_test

import (
	"strings"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/state"
)

func TestDecodeRequest(t *testing.T) {
	type request struct {
		MeterID string `json:"meterId"`
	}
	var ok request
	if err := state.DecodeRequest(`{"meterId":"M-1"}`, &ok, 64); err != nil || ok.MeterID != "M-1" {
		t.Fatalf("a good request: %+v, %v", ok, err)
	}
	for _, c := range []struct {
		name, body string
		limit      int
		code       meter.Code
		says       string
	}{
		{"unknown field", `{"meterId":"M-1","owner":"CMIMSP"}`, 64, meter.CodeMalformed, `unknown field "owner"`},
		{"trailing data", `{"meterId":"M-1"}{}`, 64, meter.CodeMalformed, "data after its JSON value"},
		{"stray bracket", `{"meterId":"M-1"}]`, 64, meter.CodeMalformed, "data after its JSON value"},
		{"not JSON", `meterId=M-1`, 64, meter.CodeMalformed, "not valid JSON"},
		{"empty", ``, 64, meter.CodeMalformed, "not valid JSON"},
		{"too large in KiB", `{"meterId":"` + strings.Repeat("x", 2048) + `"}`, 2 << 10, meter.CodeTooLarge, "at most 2 KiB"},
		{"too large in MiB", strings.Repeat(" ", 1<<20+1), 1 << 20, meter.CodeTooLarge, "at most 1 MiB"},
		{"too large in bytes", `{"meterId":"M-1"}`, 10, meter.CodeTooLarge, "at most 10 bytes"},
	} {
		var r request
		err := state.DecodeRequest(c.body, &r, c.limit)
		if meter.CodeOf(err) != c.code || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want %s saying %q", c.name, err, c.code, c.says)
		}
	}
}
