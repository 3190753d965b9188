package web

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/explorer/index/synth"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// CMI and INMETRO, running modified chaincode, write the new key
// meter/NEW-X with a value that is PTB's meter SYN-0000001, revoked (block
// 6), and then a value that does not decode (block 7). The dashboard and
// the export keep PTB's meter active; the dashboard warns and the findings
// page lists both.
func TestForgedWritesShownAsFindings(t *testing.T) {
	f := newFixture(t, nil)
	c, _ := fixtureChain(t)
	victim := synth.MeterID(1)
	forged := c.Record(victim)
	forged.Status = meter.StatusRevoked
	forged.Revocation = &meter.Revocation{Reason: meter.ReasonKeyCompromise, RevokedAt: start.Format(time.RFC3339)}
	b6 := c.Forge("CMIMSP", "INMETROMSP", "meter/NEW-X", synth.Value(forged))
	b7 := c.Forge("CMIMSP", "INMETROMSP", "meter/X", []byte(`{not json`))
	for _, b := range []*chain.Block{b6, b7} {
		if err := f.srv.store.Add(b, index.Integrity{Checked: true, CheckedThrough: b.Number}, nil, nil); err != nil {
			t.Fatalf("block %d: %v", b.Number, err)
		}
	}
	cookie := f.session(t)

	_, dash := f.get(t, "/", cookie)
	for _, w := range []string{
		`<strong id="findings-count">2 integrity findings</strong>`, `href="/findings">List every finding`,
		`href="/tx/` + b6.Txs[0].ID + `"`, `<code>meter/NEW-X</code>`, `by CMIMSP (endorsed by CMIMSP, INMETROMSP)`,
		`href="/findings">2 integrity findings</a>`,
	} {
		if !strings.Contains(dash, w) {
			t.Errorf("dashboard lacks %s", w)
		}
	}
	// PTB: 3 registered, 1 revoked (SYN-0000002), 2 active, as before.
	if !nmiRowRE("PTBMSP", 3, 1, 2).MatchString(dash) {
		t.Error("PTB's counts changed on the dashboard")
	}
	if t.Failed() {
		t.Log(dash)
	}

	res, page := f.get(t, "/findings", cookie)
	if res.StatusCode != http.StatusOK || strings.Count(page, `<tr data-kind=`) != 2 || !strings.Contains(page, `data-kind="mismatch"`) ||
		!strings.Contains(page, `data-kind="value"`) || !strings.Contains(page, `&#34;SYN-0000001&#34;`) || !strings.Contains(page, "2 integrity findings in all") {
		t.Errorf("findings page: %d\n%s", res.StatusCode, page)
	}
	if _, page := f.get(t, "/findings?before=7", cookie); strings.Count(page, `<tr data-kind=`) != 1 || !strings.Contains(page, `data-kind="mismatch"`) {
		t.Errorf("findings below block 7:\n%s", page)
	}

	_, body := f.get(t, "/export/registry.csv", cookie)
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := func(row []string, name string) string { return row[slices.Index(csvHeader, name)] }
	if len(rows) != 7 || col(rows[1], "meterId") != victim || col(rows[1], "status") != string(meter.StatusActive) || col(rows[1], "block") != "0" {
		t.Errorf("export after the forged write: %v", rows)
	}
	if _, page := f.get(t, "/meters/"+victim, cookie); !strings.Contains(page, `<span class="badge ok">active</span>`) {
		t.Errorf("PTB's meter page:\n%s", page)
	}
}

func TestNoFindings(t *testing.T) {
	f := newFixture(t, nil)
	const genesis = "4f71030e4adc68296714cf59925af0348070ea7506c9800888c2c17180963c64"
	f.srv.genesis = genesis
	cookie := f.session(t)
	_, dash := f.get(t, "/", cookie)
	if strings.Contains(dash, `id="findings-count"`) || !strings.Contains(dash, "no integrity finding") ||
		!strings.Contains(dash, `pinned genesis block <code id="genesis" title="`+genesis+`">`) {
		t.Errorf("dashboard without findings:\n%s", dash)
	}
	if _, page := f.get(t, "/findings", cookie); !strings.Contains(page, "No integrity finding.") {
		t.Errorf("findings page:\n%s", page)
	}
	for _, bad := range []string{"/findings?before=0", "/findings?before=x"} {
		if res, _ := f.get(t, bad, cookie); res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d", bad, res.StatusCode)
		}
	}
}

// forgeMany makes a block of one transaction with n writes the index
// refuses (null values).
func forgeMany(c *synth.Chain, prefix string, n int) *chain.Block {
	b := c.Forge("CMIMSP", "INMETROMSP", prefix+"-0", []byte(`null`))
	for i := 1; i < n; i++ {
		b.Txs[0].Writes = append(b.Txs[0].Writes, chain.Write{Namespace: "pki", Key: fmt.Sprintf("%s-%d", prefix, i), Value: []byte(`null`)})
	}
	return b
}

// Pages of findings start at block boundaries: a block split by the end of
// a page moves to the next page, and a block with more findings than a page
// is cut, with a note.
func TestFindingsPaging(t *testing.T) {
	for _, tc := range []struct {
		name        string
		older, more int // findings of blocks 6 and 7
		first       int // rows of the first page
		cut         bool
		second      int // rows of the page before block 7
	}{
		{"a block split by the page end moves on", 3, findingsPerPage - 1, findingsPerPage - 1, false, 3},
		{"a block larger than a page is cut", 1, findingsPerPage + 4, findingsPerPage, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			c, _ := fixtureChain(t)
			for _, b := range []*chain.Block{forgeMany(c, "meter/A", tc.older), forgeMany(c, "meter/B", tc.more)} {
				if err := f.srv.store.Add(b, index.Integrity{}, nil, nil); err != nil {
					t.Fatal(err)
				}
			}
			cookie := f.session(t)
			_, page := f.get(t, "/findings", cookie)
			if strings.Count(page, "<tr data-kind=") != tc.first || strings.Contains(page, "Block 7 has more findings than a page shows") != tc.cut ||
				!strings.Contains(page, `href="/findings?before=7"`) || strings.Contains(page, "meter/A-") {
				t.Fatalf("first page: %d rows\n%s", strings.Count(page, "<tr data-kind="), page)
			}
			if _, page := f.get(t, "/findings?before=7", cookie); strings.Count(page, "<tr data-kind=") != tc.second || strings.Contains(page, "meter/B-") {
				t.Fatalf("second page:\n%s", page)
			}
		})
	}
}
