package web

import (
	"encoding/csv"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/explorer/index/synth"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

var (
	newer   = meter.Software{ID: "EM-FW 4.3.0", Checksum: "sha256:4d967a30111bf29f"}
	unknown = meter.Software{ID: "EM-FW 9.9.9", Checksum: "sha256:0000000000000000"}
)

const (
	withdrawalReason = "fault found in the energy register"
	refusalReason    = "meter SYN-0000003 may not load EM-FW 9.9.9 (sha256:0000000000000000): software EM-FW 9.9.9 is not a version of type PTB-T1"
)

// softwareBlocks is the fixture's chain (chainBlocks) and a meter type's
// life after it:
//
//	6: PTB records type PTB-T1, EM-FW 4.2.1 (synth.Software) approved
//	7: PTB approves EM-FW 4.3.0
//	8, 9: PTB names the type of SYN-0000001 and SYN-0000003
//	10: INMETRO delivers SYN-0000001's statement: updated to 4.3.0, accepted
//	11: CMI delivers SYN-0000003's statement: updated to 9.9.9, refused
//	12: PTB withdraws EM-FW 4.2.1
//	13: INMETRO delivers two readings of SYN-0000001 that name its software
func softwareBlocks(t *testing.T) []*chain.Block {
	c, blocks := fixtureChain(t)
	blocks = append(blocks,
		c.RecordType("PTBMSP", "PTB-T1", synth.Software),
		c.ApproveSoftware("PTB-T1", newer),
		c.AssignType(synth.MeterID(1), "PTB-T1"),
		c.AssignType(synth.MeterID(3), "PTB-T1"),
		c.Update("INMETROMSP", synth.MeterID(1), newer, meter.UpdateSuccess),
		c.RefusedUpdate("CMIMSP", synth.MeterID(3), unknown, meter.CodeSoftwareNotApproved, refusalReason),
		c.WithdrawSoftware("PTB-T1", synth.Software.ID, withdrawalReason),
	)
	c.NameSoftware(true)
	return append(blocks, c.Measurements("INMETROMSP", []string{synth.MeterID(1)}, 2, 0))
}

func TestSoftwarePages(t *testing.T) {
	blocks := softwareBlocks(t)
	f := newFixtureWith(t, nil, blocks, nil)
	cookie := f.session(t)
	tx := func(n int) string { return blocks[n].Txs[0].ID }
	versionLink := func(sw meter.Software) string {
		return "/types/PTB-T1?" + url.Values{"checksum": {sw.Checksum}, "software": {sw.ID}}.Encode()
	}
	// inHTML is a link as html/template writes it in an attribute.
	inHTML := strings.NewReplacer("&", "&amp;", "+", "&#43;").Replace
	for _, tc := range []struct {
		path    string
		want    []string
		wantRE  []*regexp.Regexp
		notWant []string
	}{
		{path: "/", want: []string{
			`id="withdrawn-software" class="verdict bad">Meters on withdrawn software: <a id="withdrawn-count" href="/software/withdrawn">1</a>`,
			`(1 withdrawn version)`, `of 2 meters in service of a recorded type`, `3 in service are of unknown type`,
			`<a href="/types">1 meter type</a>`, `<span id="updates-accepted">1</span> accepted`, `1 refused</a>`,
			`href="/export/types.csv"`, `formaction="/export/types.json"`, `<a href="/types">Types</a>`,
		}},
		{path: "/types", want: []string{
			`<tr data-type="PTB-T1">`, `<a href="/types/PTB-T1">PTB-T1</a>`, `DE-M 26 MI003 PTB-T1`, `Example Metering GmbH`, `EM-3000`,
			`<td class="num">1</td>`, `<span class="bad">1</span>`, `href="/tx/` + tx(12) + `"`, `aria-current="page">Types`,
		}},
		{path: "/types/PTB-T1", want: []string{
			`<td id="certificate">DE-M 26 MI003 PTB-T1</td>`, `<td id="manufacturer">Example Metering GmbH</td>`, `<td id="model">EM-3000</td>`,
			`<td id="certifying-nmi">PTBMSP (PTB)</td>`, `<td id="type-meters-count">2 in service, 0 revoked</td>`,
			`<tr data-software="EM-FW 4.2.1" data-version="EM-FW 4.2.1" data-withdrawn class="invalid">`, `data-software-state="withdrawn">withdrawn</span>`, withdrawalReason,
			`<tr data-software="EM-FW 4.3.0" data-version="EM-FW 4.3.0">`, `data-software-state="approved">approved</span>`,
			`href="/tx/` + tx(6) + `"`, `href="/tx/` + tx(7) + `"`, `href="/tx/` + tx(12) + `"`,
			`<td class="num" data-running><a href="` + inHTML(versionLink(synth.Software)) + `" title="list them">1</a>`, `href="` + inHTML(versionLink(newer)) + `" title="list them">1</a>`,
			`id="type-history"`, `recorded by PTBMSP with 1 software version`, `approved EM-FW 4.3.0 from`, `withdrew EM-FW 4.2.1 from`,
			`<tr data-meter="SYN-0000001">`, `<tr data-meter="SYN-0000003">`, `id="meters-of-type">Meters of the type`,
		}, notWant: []string{`data-meter="SYN-0000002"`, `id="next-meters"`}},
		{path: versionLink(synth.Software), want: []string{
			`<tr data-meter="SYN-0000003">`, `in service running <code>EM-FW 4.2.1</code> <span class="badge bad">withdrawn</span>`,
			`All meters of the type`,
		}, notWant: []string{`<tr data-meter="SYN-0000001">`}},
		{path: "/types/PTB-T1?after=SYN-0000001", want: []string{`<tr data-meter="SYN-0000003">`, `(after SYN-0000001)`}, notWant: []string{`<tr data-meter="SYN-0000001">`}},
		{path: "/software/withdrawn", want: []string{
			`<strong>1</strong> meter on withdrawn software, of 2 in service of a recorded type`,
			`data-type="PTB-T1" data-software="EM-FW 4.2.1"`, withdrawalReason, `<tr data-meter="SYN-0000003"><td><a href="/meters/SYN-0000003">`,
		}, notWant: []string{`data-meter="SYN-0000001"`}},
		{path: "/meters/SYN-0000001", want: []string{
			`<td id="meter-type"><a href="/types/PTB-T1">PTB-T1</a>: Example Metering GmbH EM-3000, certificate DE-M 26 MI003 PTB-T1, certified by PTBMSP`,
			`<td id="current-software"><code>EM-FW 4.3.0</code>`, `data-software-state="approved">approved</span>`,
			`id="software-history"`, `<tr data-outcome="registered">`, `<tr data-outcome="accepted">`,
			`<code>EM-FW 4.2.1</code> → <code>EM-FW 4.3.0</code>`, `✓ accepted</span> <span class="sub">(log entry 1)</span>`,
			`<td>INMETROMSP</td>`, `href="/tx/` + tx(10) + `"`, `<td>success</td>`,
			// The readings name their software.
			`<td><code>EM-FW 4.3.0</code></td>`,
		}},
		{path: "/meters/SYN-0000003", want: []string{
			`<td id="meter-type"><a href="/types/PTB-T1">PTB-T1</a>`, `data-software-state="withdrawn">withdrawn</span> from`, withdrawalReason,
			`<tr data-outcome="refused" class="invalid">`, `<code>EM-FW 4.2.1</code> → <code>EM-FW 9.9.9</code>`,
			`✗ refused</span> <span class="badge bad">SOFTWARE_NOT_APPROVED</span> <span class="plain">` + template.HTMLEscapeString(meter.Plain(meter.CodeSoftwareNotApproved)) + `</span>`,
			`<summary>Technical detail</summary><code>` + refusalReason + `</code>`, `<td>CMIMSP</td>`, `href="/tx/` + tx(11) + `"`,
		}, notWant: []string{`data-outcome="accepted"`}},
		{path: "/meters/SYN-0000004", want: []string{`<span class="badge" id="type-unknown">type unknown</span>`, `<tr data-outcome="registered">`},
			notWant: []string{`data-software-state`}},
		{path: "/refusals?meter=SYN-0000003", want: []string{`refused update statement`, `SOFTWARE_NOT_APPROVED`, `href="/tx/` + tx(11) + `"`}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res, body := f.get(t, tc.path, cookie)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %s", w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(body, w) {
					t.Errorf("page has %s", w)
				}
			}
			if t.Failed() {
				t.Log(body)
			}
		})
	}
	if res, _ := f.get(t, "/search?q=PTB-T1", cookie); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/types/PTB-T1" {
		t.Errorf("search for the type: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
}

// Without any type, the dashboard counts no meter on withdrawn software,
// and the types and withdrawn pages say there is none.
func TestNoTypes(t *testing.T) {
	f := newFixture(t, nil)
	cookie := f.session(t)
	for path, want := range map[string]string{
		"/":                   `class="verdict ok">Meters on withdrawn software: <a id="withdrawn-count" href="/software/withdrawn">0</a>`,
		"/types":              `No meter type recorded yet.`,
		"/software/withdrawn": `<p id="no-withdrawn">No software version is withdrawn as of now.</p>`,
	} {
		if _, body := f.get(t, path, cookie); !strings.Contains(body, want) {
			t.Errorf("%s lacks %s:\n%s", path, want, body)
		}
	}
}

// A type's meters are listed a page at a time, in meter ID order.
func TestTypeMetersPaging(t *testing.T) {
	c, blocks := fixtureChain(t)
	blocks = append(blocks, c.RecordType("PTBMSP", "PTB-T1", synth.Software), c.RegisterOfType("PTBMSP", typeMetersPerPage+2, "PTB-T1"))
	f := newFixtureWith(t, nil, blocks, nil)
	cookie := f.session(t)
	_, page := f.get(t, "/types/PTB-T1", cookie)
	last := synth.MeterID(6 + typeMetersPerPage)
	next := `<a id="next-meters" href="/types/PTB-T1?after=` + last + `#meters-of-type">`
	if n := strings.Count(page, `<tr data-meter=`); n != typeMetersPerPage || !strings.Contains(page, next) ||
		!strings.Contains(page, `data-meter="`+synth.MeterID(7)+`"`) {
		t.Fatalf("first page: %d meters, want %d and a link after %s:\n%s", n, typeMetersPerPage, last, page)
	}
	_, page = f.get(t, "/types/PTB-T1?after="+last, cookie)
	if n := strings.Count(page, `<tr data-meter=`); n != 2 || strings.Contains(page, `id="next-meters"`) ||
		!strings.Contains(page, `data-meter="`+synth.MeterID(8+typeMetersPerPage)+`"`) {
		t.Fatalf("second page: %d meters:\n%s", n, page)
	}
}

func TestSoftwareExport(t *testing.T) {
	blocks := softwareBlocks(t)
	f := newFixtureWith(t, nil, blocks, nil)
	cookie := f.session(t)

	res, body := f.get(t, "/export/registry.csv", cookie)
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("%d %v: %s", res.StatusCode, err, body)
	}
	col := func(row []string, name string) string { return row[slices.Index(csvHeader, name)] }
	for _, tc := range []struct {
		row                          int
		typeID, software, status, at string
	}{
		{1, "PTB-T1", newer.ID, softwareApproved, blocks[10].Time.Format("2006-01-02T15:04:05Z07:00")},
		{3, "PTB-T1", synth.Software.ID, softwareWithdrawn, blocks[0].Time.Format("2006-01-02T15:04:05Z07:00")},
		{4, "", synth.Software.ID, "", blocks[1].Time.Format("2006-01-02T15:04:05Z07:00")},
	} {
		r := rows[tc.row]
		if col(r, "typeId") != tc.typeID || col(r, "currentSoftwareId") != tc.software || col(r, "softwareStatus") != tc.status ||
			col(r, "currentSoftwareSince") != tc.at || col(r, "softwareId") != synth.Software.ID {
			t.Errorf("%s: %v", col(r, "meterId"), r)
		}
	}
	// As of block 11, before the withdrawal, SYN-0000003's software was approved.
	_, body = f.get(t, "/export/registry.csv?block=11", cookie)
	rows, _ = csv.NewReader(strings.NewReader(body)).ReadAll()
	if r := rows[3]; col(r, "softwareStatus") != softwareApproved {
		t.Errorf("SYN-0000003 as of block 11: %v", r)
	}

	_, body = f.get(t, "/export/registry.json", cookie)
	var doc struct {
		Meters []struct {
			index.Entry
			CurrentSoftware meter.Software `json:"currentSoftware"`
			SoftwareStatus  string         `json:"softwareStatus"`
		} `json:"meters"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if m := doc.Meters[0]; m.Meter.TypeID != "PTB-T1" || m.CurrentSoftware != newer || m.SoftwareStatus != softwareApproved || len(m.Meter.Software) != 2 {
		t.Errorf("SYN-0000001 in the JSON export: %+v", m)
	}

	res, body = f.get(t, "/export/types.csv", cookie)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Disposition") != `attachment; filename=meter-types-metrology-block-13.csv` {
		t.Fatalf("%d %v", res.StatusCode, res.Header)
	}
	rows, err = csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "typeId,nmi,manufacturer,model,certificate,softwareId,softwareChecksum,status,"+
		"approvedFrom,approvedTx,withdrawnFrom,withdrawalReason,withdrawalTx,recordedTx,txId,block" || len(rows) != 3 {
		t.Fatalf("types export %v", rows)
	}
	tcol := func(row []string, name string) string { return row[slices.Index(typesHeader, name)] }
	if r := rows[1]; tcol(r, "typeId") != "PTB-T1" || tcol(r, "softwareId") != synth.Software.ID || tcol(r, "status") != softwareWithdrawn ||
		tcol(r, "withdrawalReason") != withdrawalReason || tcol(r, "withdrawalTx") != blocks[12].Txs[0].ID || tcol(r, "block") != "12" ||
		tcol(r, "certificate") != "DE-M 26 MI003 PTB-T1" || tcol(r, "nmi") != "PTBMSP" || tcol(r, "approvedTx") != blocks[6].Txs[0].ID {
		t.Errorf("withdrawn version %v", r)
	}
	if r := rows[2]; tcol(r, "softwareId") != newer.ID || tcol(r, "status") != softwareApproved || tcol(r, "withdrawnFrom") != "" {
		t.Errorf("approved version %v", r)
	}
	// As of block 6 the type had one version, approved.
	_, body = f.get(t, "/export/types.csv?block=6", cookie)
	if rows, _ := csv.NewReader(strings.NewReader(body)).ReadAll(); len(rows) != 2 || tcol(rows[1], "status") != softwareApproved {
		t.Errorf("types as of block 6: %v", rows)
	}
	if _, body := f.get(t, "/export/types.csv?block=5", cookie); strings.Count(body, "\n") != 1 {
		t.Errorf("types as of block 5, before any: %q", body)
	}

	_, body = f.get(t, "/export/types.json?block=7", cookie)
	var types struct {
		AsOfBlock uint64            `json:"asOfBlock"`
		Types     []index.TypeState `json:"types"`
	}
	if err := json.Unmarshal([]byte(body), &types); err != nil {
		t.Fatal(err)
	}
	if types.AsOfBlock != 7 || len(types.Types) != 1 || types.Types[0].Block != 7 || len(types.Types[0].Type.Versions) != 2 {
		t.Errorf("types as of block 7: %+v", types)
	}
}

func TestSoftwareBadRequests(t *testing.T) {
	f := newFixtureWith(t, nil, softwareBlocks(t), nil)
	cookie := f.session(t)
	for path, want := range map[string]int{
		"/types/bad%20id":                  http.StatusBadRequest,
		"/types/PTB-T9":                    http.StatusNotFound,
		"/types/PTB-T1?after=%3Cx%3E":      http.StatusBadRequest,
		"/types/PTB-T1?software=EM-FW%201": http.StatusBadRequest,
		"/types/PTB-T1?checksum=sha256:00": http.StatusBadRequest,
		"/export/types.csv?block=x":        http.StatusBadRequest,
		"/export/types.json?block=99":      http.StatusNotFound,
	} {
		if res, body := f.get(t, path, cookie); res.StatusCode != want || !strings.Contains(body, `<p class="message">`) {
			t.Errorf("%s: status %d, want %d: %s", path, res.StatusCode, want, body)
		}
	}
}

// CMI and INMETRO, running modified chaincode, record a type in PTB's
// namespace in CMI's name (block 6) and write a log entry of PTB's meter
// without its record (block 7). Neither is shown as a type or a
// statement; both are findings.
func TestForgedSoftwareShownAsFindings(t *testing.T) {
	c, blocks := fixtureChain(t)
	forgedType := meter.MeterType{ID: "PTB-T9", NMI: "CMIMSP", Manufacturer: "Forged", Model: "F", Certificate: "none",
		Versions: []meter.ApprovedSoftware{{Software: unknown, ApprovedFrom: start.Format("2006-01-02T15:04:05Z")}}}
	blocks = append(blocks,
		c.Forge("CMIMSP", "INMETROMSP", "type/PTB-T9", synth.Value(forgedType)),
		c.Forge("CMIMSP", "INMETROMSP", "swlog/SYN-0000001/000001", synth.Value(meter.UpdateReport{MeterID: synth.MeterID(1), Number: 1,
			From: synth.Software, To: unknown, Result: meter.UpdateSuccess})))
	f := newFixtureWith(t, nil, blocks, nil)
	cookie := f.session(t)
	_, page := f.get(t, "/findings", cookie)
	for _, w := range []string{`data-kind="owner"`, `<code class="wrap">type/PTB-T9</code>`, `namespace`,
		`data-kind="unbound"`, `<code class="wrap">swlog/SYN-0000001/000001</code>`, `2 integrity findings in all`} {
		if !strings.Contains(page, w) {
			t.Errorf("findings page lacks %s", w)
		}
	}
	if t.Failed() {
		t.Log(page)
	}
	if _, page := f.get(t, "/types", cookie); strings.Contains(page, "PTB-T9") {
		t.Error("the forged type is listed")
	}
	if res, _ := f.get(t, "/types/PTB-T9", cookie); res.StatusCode != http.StatusNotFound {
		t.Errorf("the forged type's page: %d", res.StatusCode)
	}
	if _, page := f.get(t, "/meters/"+synth.MeterID(1), cookie); strings.Contains(page, `data-outcome="accepted"`) || strings.Contains(page, unknown.ID) {
		t.Error("the forged log entry is shown as the meter's statement")
	}
	if _, dash := f.get(t, "/", cookie); !strings.Contains(dash, `<strong id="findings-count">2 integrity findings</strong>`) {
		t.Error("the dashboard does not warn of the findings")
	}
}
