package web

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"short": short,
	"utc":   utc,
	"num":   num,
	"rate":  func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
	"f1":    func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"valid": validSignatures,
	"plain": plain,
	// stateClass colours a software state (types.go).
	"stateClass": func(state string) string {
		switch state {
		case softwareApproved:
			return "ok"
		case softwareWithdrawn, softwareNotVersion:
			return "bad"
		}
		return ""
	},
	"invalid": func(txs []index.TxSummary) int {
		n := 0
		for _, t := range txs {
			if t.Code != "VALID" {
				n++
			}
		}
		return n
	},
}

// plain says in a sentence what a refusal code or a peer's validation
// code means; the code itself stays beside it on the pages.
func plain(code string) string {
	if s := chain.PlainCode(code); s != "" {
		return s
	}
	if s := agreement.Plain(meter.Code(code)); s != "" {
		return s
	}
	return "The explorer has no description of this code."
}

func validSignatures(sigs []chain.Signature) int {
	n := 0
	for _, s := range sigs {
		if s.Valid {
			n++
		}
	}
	return n
}

// short shortens a hash or ID for display; pages put the full value in a
// title attribute.
func short(s string) string {
	if len(s) <= 16 {
		return s
	}
	return s[:8] + "…" + s[len(s)-8:]
}

// utc shows a time in UTC, RFC 3339.
func utc(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format(time.RFC3339)
}

// num groups the digits of a count in threes, with a thin space (the SI
// way: no confusion between decimal comma and point).
func num(v any) string {
	var s string
	switch n := v.(type) {
	case uint64:
		s = strconv.FormatUint(n, 10)
	case int:
		s = strconv.Itoa(n)
	case uint32:
		s = strconv.FormatUint(uint64(n), 10)
	default:
		return fmt.Sprint(v)
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	return b.String()
}

// compact shows a chart axis value: 950, 1.2k, 35k, 1.5M.
func compact(n uint64) string {
	switch {
	case n < 1000:
		return strconv.FormatUint(n, 10)
	case n < 1_000_000:
		return trimZero(strconv.FormatFloat(float64(n)/1e3, 'f', 1, 64)) + "k"
	default:
		return trimZero(strconv.FormatFloat(float64(n)/1e6, 'f', 1, 64)) + "M"
	}
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

// preview shows stored bytes for people: JSON indented, other text as it
// is, anything else as hexadecimal. The index cuts long values, so a value
// may end in the middle of a character; that tail is dropped rather than
// turning the whole value into hexadecimal.
func preview(b []byte) (text string, isHex bool) {
	if len(b) == 0 {
		return "", false
	}
	if json.Valid(b) {
		var out bytes.Buffer
		if json.Indent(&out, b, "", "  ") == nil {
			return out.String(), false
		}
	}
	t := b
	for i := 0; i < utf8.UTFMax-1 && len(t) > 0 && !utf8.Valid(t); i++ {
		t = t[:len(t)-1]
	}
	if s := string(t); len(t) > 0 && utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool {
		return !unicode.IsPrint(r) && r != '\n' && r != '\r' && r != '\t'
	}) < 0 {
		return s, false
	}
	return hex.EncodeToString(b), true
}
