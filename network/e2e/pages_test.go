//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"

	"github.com/inter-nmi/pki/network/internal/consortium"
	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
)

// widths are the screens the explorer must serve: a laptop, a wide screen
// and a phone on a site visit.
var widths = []struct {
	name          string
	width, height int64
	mobile        bool
}{
	{"1280", 1280, 800, false},
	{"1920", 1920, 1080, false},
	{"390", 390, 844, true},
}

// axeScript is axe-core's browser build, installed pinned by `make e2e`
// (network/e2e/axe: npm ci).
func axeScript(t *testing.T) string {
	t.Helper()
	path := os.Getenv("PKI_AXE")
	if path == "" {
		path = filepath.Join("axe", "node_modules", "axe-core", "axe.min.js")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("axe-core is not installed (make e2e installs it: npm ci --prefix network/e2e/axe): %v", err)
	}
	return string(b)
}

// axeViolation is one rule axe-core found broken on a page.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

// overflow is what the page check found beyond the viewport's right edge
// or cut off: the document's width, and the elements at fault.
type overflow struct {
	Width       int      `json:"width"`
	ScrollWidth int      `json:"scrollWidth"`
	Outside     []string `json:"outside"`
	Cut         []string `json:"cut"`
}

// overflowCheck finds, on the page as laid out, every visible element that
// reaches beyond the viewport's left or right edge without a horizontally
// scrolling (or clipping) ancestor inside the viewport to hold it, and
// every element whose text is cut off with an ellipsis.
const overflowCheck = `(() => {
  const w = document.documentElement.clientWidth;
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\s+/).join('.') : '');
  const held = el => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (/(auto|scroll|hidden|clip)/.test(s.overflowX)) {
        const r = p.getBoundingClientRect();
        if (r.right <= w + 1 && r.left >= -1) return true;
      }
    }
    return false;
  };
  const outside = [], cut = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const s = getComputedStyle(el);
    if (s.visibility === 'hidden') continue;
    if ((r.right > w + 1 || r.left < -1) && !held(el)) outside.push(name(el) + ' [' + Math.round(r.left) + ', ' + Math.round(r.right) + ']');
    if (s.textOverflow === 'ellipsis' && el.scrollWidth > el.clientWidth + 1) cut.push(name(el) + ': ' + el.textContent.trim().slice(0, 60));
  }
  return {width: w, scrollWidth: document.documentElement.scrollWidth, outside: outside.slice(0, 12), cut: cut.slice(0, 12)};
})()`

// axeRun audits the page for WCAG 2.0/2.1 A and AA, and axe-core's best
// practices.
const axeRun = `axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}, resultTypes: ['violations']}).then(r => r.violations)`

// TestExplorerPagesAtEveryWidth opens every page of the explorer, signed
// in as an auditor, at 1,280, 1,920 and 390 pixels wide: nothing may reach
// beyond the viewport or be cut off, axe-core may find no violation of
// impact serious or critical, and each page's full-page screenshot is kept
// as <page>-<width>.png among the test artifacts.
func TestExplorerPagesAtEveryWidth(t *testing.T) {
	ctx := context.Background()
	operator, ingest := registry(t, "PTB", api.RoleOperator), registry(t, "PTB", api.RoleIngest)
	ledger := connect(t, "CMI", consortium.UserAuditor)

	// What the pages show: a meter of a type with an accepted and a
	// refused reading, the type with a withdrawn version.
	v1, v2 := softwareOf("EM-FW 7.0.0"), softwareOf("EM-FW 7.0.1")
	typeID := uniqueID("PTB-PAGES")
	from := time.Now().Add(-30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	if _, err := operator.RecordMeterType(ctx, api.TypeRecordRequest{TypeID: typeID, Manufacturer: "Example Metering GmbH", Model: "EM-7000",
		Certificate: "DE-26-MI003-PTB070", Versions: []meter.VersionApproval{{Software: v1, ApprovedFrom: from}, {Software: v2, ApprovedFrom: from}}}); err != nil {
		t.Fatal(err)
	}
	key, err := meter.GenerateKey(meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	id := typeID + "-M01"
	if _, err := operator.RegisterMeter(ctx, proved(t, "PTBMSP", key, meter.Registration{MeterID: id, PublicKey: key.Public().PEM(), TypeID: typeID,
		Metadata: meter.Metadata{Manufacturer: "Example Metering GmbH", Model: "EM-7000", SerialNumber: "SN-PAGES-01", SoftwareID: v1.ID, SoftwareChecksum: v1.Checksum}})); err != nil {
		t.Fatal(err)
	}
	good := sign(t, key, id, 1, time.Now().Add(-time.Minute))
	forged := sign(t, key, id, 2, time.Now())
	forged.Signature = []byte("not a DER signature at all, as a broken concentrator sends it")
	batch, err := ingest.SubmitBatch(ctx, []meter.SignedMeasurement{good, forged})
	if err != nil || batch.Accepted != 1 || batch.Rejected != 1 {
		t.Fatalf("batch %+v, %v", batch, err)
	}
	if _, err := operator.WithdrawSoftware(ctx, typeID, api.WithdrawRequest{SoftwareID: v2.ID, Reason: "fault in the tariff register"}); err != nil {
		t.Fatal(err)
	}
	invalid, carrier := conflict(t, key, id)
	t.Logf("transaction %s invalidated by a concurrent write; its reading carried by %s", invalid, carrier)
	height, err := channel.Height(ctx, ledger.network)
	if err != nil {
		t.Fatal(err)
	}

	token, err := os.ReadFile(filepath.Join(network.SurveillanceCredentialsDir(), "auditor.token"))
	if err != nil {
		t.Fatal(err)
	}
	base := consortium.ExplorerURL(network.Topology)
	b := browser(t)
	axe := axeScript(t)

	type page = explorerPage
	pages := []page{{"login", "/login"}}
	audit := map[string][]axeViolation{} // by page and width
	var failures []string
	check := func(p page, w string) {
		t.Helper()
		res, err := chromedp.Run(b, chromedp.Evaluate[overflow](overflowCheck))
		if err != nil {
			t.Fatalf("%s at %s: %v", p.name, w, err)
		}
		if res.ScrollWidth > res.Width+1 || len(res.Outside) > 0 || len(res.Cut) > 0 {
			failures = append(failures, fmt.Sprintf("%s at %s px: document %d px wide in a %d px viewport; beyond its edge: %v; cut off: %v",
				p.name, w, res.ScrollWidth, res.Width, res.Outside, res.Cut))
		}
		if _, err := chromedp.Run(b, chromedp.Evaluate[chromedp.Void](axe)); err != nil {
			t.Fatalf("inject axe-core into %s: %v", p.name, err)
		}
		violations, err := chromedp.Run(b, chromedp.Evaluate[[]axeViolation](axeRun, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("axe-core on %s at %s: %v", p.name, w, err)
		}
		audit[p.name+" "+w] = violations
		screenshot(t, b, p.name+"-"+w)
	}
	visit := func(p page) {
		t.Helper()
		for _, w := range widths {
			opts := []chromedp.EmulateViewportOption{}
			if w.mobile {
				opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
			}
			if err := chromedp.Do(b, chromedp.EmulateViewport(w.width, w.height, opts...), chromedp.Navigate(base+p.path), chromedp.WaitReady(`body`)); err != nil {
				t.Fatalf("%s at %s: %v", p.name, w.name, err)
			}
			check(p, w.name)
		}
	}
	visit(pages[0])

	err = chromedp.Do(b,
		chromedp.EmulateViewport(1280, 800),
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(`input[name="token"]`),
		chromedp.SendKeys(`input[name="token"]`, strings.TrimSpace(string(token))),
		chromedp.Submit(`input[name="token"]`),
		chromedp.WaitVisible(`#height`),
	)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(b, chromedp.Poll[bool](fmt.Sprintf(`parseInt(document.querySelector('#height').textContent.replace(/\D/g,'')) >= %d`, height),
		chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Fatalf("the dashboard never showed height %d: %v", height, err)
	}
	pages = []page{
		{"dashboard", "/"},
		{"blocks", "/blocks"},
		{"block", fmt.Sprintf("/blocks/%d", batch.Block)},
		{"transaction", "/tx/" + batch.TxID},
		{"meter", "/meters/" + id},
		{"types", "/types"},
		{"type", "/types/" + typeID},
		{"withdrawn-software", "/software/withdrawn"},
		{"refusals", "/refusals"},
		{"invalid-transactions", "/invalid"},
		{"invalid-transaction", "/tx/" + invalid},
		{"findings", "/findings"},
		{"search", "/search?q=" + url.QueryEscape("PTB-PAGES")},
		{"not-found", "/meters/PTB-NO-SUCH-METER"},
	}
	for _, p := range pages {
		visit(p)
	}

	// The invalidated transaction is listed apart, with its plain reason
	// and a link to the transaction that carried its reading.
	if err := chromedp.Do(b, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(base+"/invalid"),
		chromedp.WaitVisible(fmt.Sprintf(`a.carried-by[href="/tx/%s"]`, carrier))); err != nil {
		t.Errorf("the invalid transactions do not link %s to the transaction that carried its reading, %s: %v", invalid, carrier, err)
	}
	if err := chromedp.Do(b, chromedp.Navigate(base+"/refusals"), chromedp.WaitVisible(`table`)); err != nil {
		t.Fatal(err)
	}
	if listed, err := chromedp.Run(b, chromedp.Evaluate[bool](fmt.Sprintf(`document.body.innerHTML.includes(%q)`, invalid))); err != nil || listed {
		t.Errorf("the refusals list the invalidated transaction %s among refused measurements (%v)", invalid, err)
	}

	// The audit, by rule: impact, on how many pages and widths, nodes.
	type rule struct {
		impact, help string
		where        []string
		nodes        int
	}
	rules := map[string]*rule{}
	for where, vs := range audit {
		for _, v := range vs {
			r, ok := rules[v.ID]
			if !ok {
				r = &rule{impact: v.Impact, help: v.Help}
				rules[v.ID] = r
			}
			r.where = append(r.where, where)
			r.nodes += len(v.Nodes)
		}
	}
	ids := make([]string, 0, len(rules))
	for id := range rules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var table strings.Builder
	fmt.Fprintf(&table, "axe-core on %d page views: %d rules violated\n", len(audit), len(rules))
	for _, id := range ids {
		r := rules[id]
		sort.Strings(r.where)
		fmt.Fprintf(&table, "  %-28s %-9s %3d views %4d nodes  %s (e.g. %s)\n", id, r.impact, len(r.where), r.nodes, r.help, r.where[0])
		if r.impact == "serious" || r.impact == "critical" {
			failures = append(failures, fmt.Sprintf("axe-core: %s (%s) on %d views: %s; e.g. %s", id, r.impact, len(r.where), r.help, strings.Join(r.where[:min(4, len(r.where))], ", ")))
		}
	}
	t.Log(table.String())
	slices.Sort(failures)
	for _, f := range failures {
		t.Error(f)
	}
}

// conflict makes what a busy meter makes: two readings of the meter
// endorsed against the same state, the second invalidated at commit
// (MVCC_READ_CONFLICT) by the first's write of the meter's replay guard,
// and its reading delivered again and accepted in a third transaction. It
// returns the invalidated transaction and the one that carried its item.
func conflict(t *testing.T, key *meter.PrivateKey, id string) (invalid, carrier string) {
	t.Helper()
	s := connect(t, "PTB", consortium.UserIngest)
	endorse := func(sm meter.SignedMeasurement) *client.Transaction {
		t.Helper()
		p, err := s.contract.NewProposal(wire.TxSubmitMeasurement, client.WithArguments(sm.MeterID,
			base64.StdEncoding.EncodeToString(sm.Payload), base64.StdEncoding.EncodeToString(sm.Signature)))
		if err != nil {
			t.Fatal(err)
		}
		tx, err := p.Endorse()
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	first, second := sign(t, key, id, 3, time.Now().Add(-30*time.Second)), sign(t, key, id, 4, time.Now().Add(-20*time.Second))
	a, b := endorse(first), endorse(second)
	if st, err := s.hand(a); err != nil || !st.Successful {
		t.Fatalf("the first reading: %+v, %v", st, err)
	}
	st, err := s.hand(b)
	if err != nil {
		t.Fatal(err)
	}
	if st.Successful || st.Code != peer.TxValidationCode_MVCC_READ_CONFLICT {
		t.Fatalf("the second reading, endorsed before the first committed, committed as %s, want MVCC_READ_CONFLICT", st.Code)
	}
	again := s.submit(t, wire.TxSubmitMeasurement, second.MeterID, base64.StdEncoding.EncodeToString(second.Payload), base64.StdEncoding.EncodeToString(second.Signature))
	return st.TransactionID, again.txID
}

// explorerPage is one page of the explorer: its name in the artifacts and
// its path.
type explorerPage struct{ name, path string }
