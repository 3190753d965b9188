package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/explorer/index/synth"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/network/pkg/credentials"
	"github.com/inter-nmi/pki/network/pkg/health"
	"github.com/inter-nmi/pki/network/pkg/proof"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

var start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// Hostile metadata an NMI could register: markup for the pages, a formula
// for the auditor's spreadsheet.
const (
	hostileManufacturer = `<script>alert("pwned")</script>`
	hostileModel        = `=HYPERLINK("http://evil.example","x")`
)

// clock is the fixture's settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// peerBlocks is a fake of the explorer's peer for the pages that read
// transactions from their blocks: it serves the fixture's blocks, parsed,
// or fails with err if set.
type peerBlocks struct {
	blocks []*chain.Block
	err    error
}

func (p *peerBlocks) Block(_ context.Context, n uint64) (*chain.Block, error) {
	if p.err != nil {
		return nil, p.err
	}
	for _, b := range p.blocks {
		if b.Number == n {
			return b, nil
		}
	}
	return nil, fmt.Errorf("the peer has no block %d", n)
}

type fakeHealth []health.NodeStatus

func (f fakeHealth) Nodes() []health.NodeStatus { return f }

type fixture struct {
	srv               *Server
	peer              *peerBlocks
	h                 http.Handler
	auditor, operator string
	clock             *clock
	blocks            []*chain.Block
	log               *bytes.Buffer
}

var testConfig = &channel.Config{
	Sequence: 3, ConsensusType: "BFT",
	Members: []channel.Member{
		{Name: "PTB", MSPID: "PTBMSP", AnchorPeers: []string{"peer0.ptb.example:7051"}},
		{Name: "CMI", MSPID: "CMIMSP", AnchorPeers: []string{"peer0.cmi.example:7051"}},
		{Name: "INMETRO", MSPID: "INMETROMSP", AnchorPeers: []string{"peer0.inmetro.example:7051"}},
		{Name: "NMIJ", MSPID: "NMIJMSP", AnchorPeers: []string{"peer0.nmij.example:7051"}},
		{Name: "NMIM", MSPID: "NMIMMSP", AnchorPeers: []string{"peer0.nmim.example:7051"}},
	},
	Consenters: []channel.Consenter{
		{ID: 1, Host: "orderer0.ptb.example", Port: 7050, MSPID: "PTBMSP", Subject: "CN=orderer0,O=PTB"},
		{ID: 2, Host: "orderer0.cmi.example", Port: 7050, MSPID: "CMIMSP", Subject: "CN=orderer0,O=CMI"},
		{ID: 3, Host: "orderer0.inmetro.example", Port: 7050, MSPID: "INMETROMSP", Subject: "CN=orderer0,O=INMETRO"},
		{ID: 4, Host: "orderer0.nmij.example", Port: 7050, MSPID: "NMIJMSP", Subject: "CN=orderer0,O=NMIJ"},
	},
}

// chainBlocks is the fixture's chain:
//
//	0: PTB registers SYN-0000001..3 (with the channel configuration)
//	1: CMI registers SYN-0000004..5
//	2: INMETRO submits 9 readings of meters 1..3; items 3 (meter 1) and 7 (meter 2) refused as replays
//	3: PTB revokes SYN-0000002 (keyCompromise)
//	4: CMI's revocation of SYN-0000001, invalid (ENDORSEMENT_POLICY_FAILURE)
//	5: NMIJ registers SYN-0000006 with hostile metadata
func chainBlocks(t testing.TB) []*chain.Block {
	_, blocks := fixtureChain(t)
	return blocks
}

// fixtureChain is chainBlocks with the chain that made them, to extend it.
func fixtureChain(t testing.TB) (*synth.Chain, []*chain.Block) {
	c := synth.New(start)
	blocks := []*chain.Block{
		c.Register("PTBMSP", 3),
		c.Register("CMIMSP", 2),
		c.Measurements("INMETROMSP", c.Meters()[:3], 9, 4),
		c.Revoke("PTBMSP", synth.MeterID(2), meter.ReasonKeyCompromise),
		c.Invalid("CMIMSP", synth.MeterID(1), "ENDORSEMENT_POLICY_FAILURE"),
		c.Register("NMIJMSP", 1),
	}
	revoke := &blocks[3].Txs[0]
	revoke.Events = []chain.Event{{Name: "MeterRevoked", Payload: []byte(`{"meterId":"SYN-0000002","reason":"keyCompromise"}`)}}
	revoke.Reads = []chain.Read{{Namespace: "pki", Key: "meter/SYN-0000002", Block: 0, Tx: 0}}

	w := &blocks[5].Txs[0].Writes[0]
	var m meter.Meter
	if err := json.Unmarshal(w.Value, &m); err != nil {
		t.Fatal(err)
	}
	m.Metadata.Manufacturer, m.Metadata.Model = hostileManufacturer, hostileModel
	w.Value, _ = json.Marshal(m)
	return c, blocks
}

func newFixture(t *testing.T, broken *index.Break) *fixture {
	t.Helper()
	return newFixtureWith(t, broken, chainBlocks(t), nil)
}

// newFixtureWith serves an index of the blocks given; peer, if set, is the
// explorer's peer that attestation bundles are read from.
func newFixtureWith(t *testing.T, broken *index.Break, blocks []*chain.Block, peer proof.Blocks) *fixture {
	t.Helper()
	store, err := index.Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	store.SetNoSync(true)
	f := &fixture{clock: &clock{t: start.Add(30 * time.Second)}, blocks: blocks, log: &bytes.Buffer{}, peer: &peerBlocks{blocks: blocks}}
	for _, b := range f.blocks {
		integrity := index.Integrity{Checked: true, CheckedThrough: b.Number}
		if broken != nil && b.Number >= broken.Block {
			integrity.Broken = broken
		}
		var cfg *channel.Config
		if b.Number == 0 {
			cfg = testConfig
		}
		if err := store.Add(b, integrity, nil, cfg); err != nil {
			t.Fatalf("add block %d: %v", b.Number, err)
		}
	}
	var creds []credentials.Credential
	for _, tc := range []struct {
		id   string
		role credentials.Role
		dst  *string
	}{{"ptb-auditor", credentials.RoleAuditor, &f.auditor}, {"ptb-operator", credentials.RoleOperator, &f.operator}} {
		token, cred, err := credentials.NewToken(tc.id, tc.role)
		if err != nil {
			t.Fatal(err)
		}
		*tc.dst = token
		creds = append(creds, cred)
	}
	credentials, err := credentials.New(creds)
	if err != nil {
		t.Fatal(err)
	}
	health := fakeHealth{
		{Name: "peer0.ptb.example", Role: "peer", NMI: "PTBMSP", Address: "peer0.ptb.example:7051", Healthy: true, Detail: "height 6", Checked: start},
		{Name: "orderer0.cmi.example", Role: "orderer", NMI: "CMIMSP", Address: "orderer0.cmi.example:7050", Detail: "connection refused", Checked: start},
	}
	f.srv = New(Options{Store: store, Credentials: credentials, Health: health, Now: f.clock.now, Channel: "metrology", Blocks: peer,
		Evidence: f.peer,
		Genesis:  genesisHash(t),
		Log:      slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	f.h = f.srv.Handler()
	return f
}

// genesisHash is the genesis block hash of the channel the attestation
// fixtures come from (testdata/attestations), the one the explorer pins.
func genesisHash(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "attestations", "genesis.hash"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// signIn posts a token and returns the response.
func (f *fixture) signIn(t *testing.T, token, next string) *http.Response {
	t.Helper()
	form := url.Values{"token": {token}, "next": {next}}
	req := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec.Result()
}

// session signs the auditor in and returns the session cookie.
func (f *fixture) session(t *testing.T) *http.Cookie {
	t.Helper()
	res := f.signIn(t, f.auditor, "/")
	for _, c := range res.Cookies() {
		if c.Name == cookieName {
			return c
		}
	}
	t.Fatalf("no session cookie after signing in: %d", res.StatusCode)
	return nil
}

// get requests a path, with the cookie if given, and returns the response
// and its body.
func (f *fixture) get(t *testing.T, path string, cookie *http.Cookie) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec.Result(), rec.Body.String()
}

func TestSignIn(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name, token, next string
		status            int
		location, says    string
	}{
		{"auditor, back to the page", f.auditor, "/blocks/3?x=1", http.StatusSeeOther, "/blocks/3?x=1", ""},
		{"auditor, no next", f.auditor, "", http.StatusSeeOther, "/", ""},
		{"next on another host", f.auditor, "//evil.example/x", http.StatusSeeOther, "/", ""},
		{"next with a scheme", f.auditor, "https://evil.example/", http.StatusSeeOther, "/", ""},
		{"next with a backslash", f.auditor, `/\evil.example`, http.StatusSeeOther, "/", ""},
		{"next relative", f.auditor, "blocks", http.StatusSeeOther, "/", ""},
		{"operator refused", f.operator, "/", http.StatusForbidden, "", "admits auditors only"},
		{"unknown token", "nmipki_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "/", http.StatusUnauthorized, "", "not valid"},
		{"not a token", "hunter2", "/", http.StatusUnauthorized, "", "not valid"},
		{"empty", "", "/", http.StatusUnauthorized, "", "not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := f.signIn(t, tc.token, tc.next)
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if got := res.Header.Get("Location"); got != tc.location {
				t.Errorf("redirected to %q, want %q", got, tc.location)
			}
			if !strings.Contains(string(body), tc.says) {
				t.Errorf("page does not say %q: %s", tc.says, body)
			}
			var cookie *http.Cookie
			for _, c := range res.Cookies() {
				if c.Name == cookieName {
					cookie = c
				}
			}
			if tc.status != http.StatusSeeOther {
				if cookie != nil {
					t.Fatal("a refused sign-in got a session cookie")
				}
				return
			}
			if cookie == nil || !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" || len(cookie.Value) < 20 {
				t.Fatalf("session cookie %+v", cookie)
			}
			if res, body := f.get(t, "/", cookie); res.StatusCode != http.StatusOK || !strings.Contains(body, `id="height">6<`) {
				t.Fatalf("dashboard with the session: %d", res.StatusCode)
			}
		})
	}
	if strings.Contains(f.log.String(), f.auditor) || strings.Contains(f.log.String(), f.operator) || strings.Contains(f.log.String(), "hunter2") {
		t.Fatalf("a token reached the log:\n%s", f.log)
	}
	if !strings.Contains(f.log.String(), "ptb-operator") {
		t.Errorf("the refused operator credential is not logged by ID:\n%s", f.log)
	}
}

func TestSignedOut(t *testing.T) {
	f := newFixture(t, nil)
	for path, want := range map[string]int{
		"/":                            http.StatusSeeOther,
		"/blocks/3?x=1":                http.StatusSeeOther,
		"/meters/SYN-0000001":          http.StatusSeeOther,
		"/events":                      http.StatusUnauthorized,
		"/export/registry.csv":         http.StatusUnauthorized,
		"/export/registry.json":        http.StatusUnauthorized,
		"/login":                       http.StatusOK,
		"/login?next=/refusals":        http.StatusOK,
		"/healthz":                     http.StatusOK,
		"/static/style.css":            http.StatusOK,
		"/static/live.js":              http.StatusOK,
		"/static/":                     http.StatusNotFound,
		"/nowhere-at-all":              http.StatusSeeOther,
		"/tx/" + f.blocks[0].Txs[0].ID: http.StatusSeeOther,
	} {
		res, body := f.get(t, path, nil)
		if res.StatusCode != want {
			t.Errorf("%s: status %d, want %d", path, res.StatusCode, want)
			continue
		}
		if want == http.StatusSeeOther {
			if loc := res.Header.Get("Location"); loc != "/login?next="+url.QueryEscape(path) {
				t.Errorf("%s: redirected to %q", path, loc)
			}
		}
		if want == http.StatusUnauthorized && strings.Contains(body, "<html") {
			t.Errorf("%s: a program asking without a session gets a page: %s", path, body)
		}
	}
	res, body := f.get(t, "/login?next=/refusals", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `name="token"`) || !strings.Contains(body, `value="/refusals"`) ||
		!strings.Contains(body, `type="submit"`) {
		t.Fatalf("login page: %s", body)
	}
	if res, _ := f.get(t, "/static/style.css", nil); !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") {
		t.Errorf("style.css served as %s", res.Header.Get("Content-Type"))
	}
}

func TestSessionEnds(t *testing.T) {
	f := newFixture(t, nil)
	cookie := f.session(t)
	f.clock.add(sessionTTL - time.Minute)
	if res, _ := f.get(t, "/", cookie); res.StatusCode != http.StatusOK {
		t.Fatalf("before expiry: %d", res.StatusCode)
	}
	f.clock.add(time.Minute)
	if res, _ := f.get(t, "/", cookie); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("after 8 hours: %d, want a redirect to sign in", res.StatusCode)
	}

	cookie = f.session(t)
	req := httptest.NewRequest("POST", "/logout", nil)
	req.AddCookie(cookie)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/login" {
		t.Fatalf("sign out: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	if res, _ := f.get(t, "/", cookie); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("after signing out: %d", res.StatusCode)
	}
}

func TestCrossOriginSignInRefused(t *testing.T) {
	f := newFixture(t, nil)
	req := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"token": {f.auditor}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("cross-site sign-in: %d", rec.Code)
	}
}

// row matches the table row of an NMI's meter counts.
func nmiRowRE(msp string, registered, revoked, active int) *regexp.Regexp {
	return regexp.MustCompile(`data-nmi="` + msp + `">.*<td class="num">` + strconv.Itoa(registered) + `</td><td class="num">` +
		strconv.Itoa(revoked) + `</td><td class="num">` + strconv.Itoa(active) + `</td></tr>`)
}

func TestPages(t *testing.T) {
	f := newFixture(t, nil)
	cookie := f.session(t)
	revokeTx, invalidTx := f.blocks[3].Txs[0].ID, f.blocks[4].Txs[0].ID
	for _, tc := range []struct {
		path    string
		want    []string
		wantRE  []*regexp.Regexp
		notWant []string
	}{
		{path: "/", want: []string{
			`<span id="height">6</span>`, `id="meters-by-nmi"`, `<svg class="chart"`,
			`intact through block <a href="/blocks/5">5</a>`, `7 accepted, 2 refused`,
			// Measurements per second over the last 5 minutes (7 accepted and
			// 2 refused in 300 s), transactions per second beside them.
			`<span id="measurement-rate">0.02</span> <small>accepted/s</small>`, `<span id="refused-rate">0.01</span> refused/s`,
			`<span id="tps">0.02</span> transactions/s`,
			// Refused items and invalid transactions counted apart, the
			// invalid ones by cause.
			`<a id="refused-measurements" href="/refusals?kind=measurement">2</a>`, `<a id="refused-updates" href="/refusals?kind=update">0</a>`,
			`<span id="accepted-measurements">7</span>`, `<a id="invalid-transactions" href="/invalid">1 invalid</a>`, `<span id="invalid-carried">0</span>`,
			`<li data-code="ENDORSEMENT_POLICY_FAILURE"><a href="/invalid?code=ENDORSEMENT_POLICY_FAILURE">ENDORSEMENT_POLICY_FAILURE</a> 1</li>`,
			// Per minute over the last hour, charted and as a table.
			`<span id="minutes-accepted">7</span> accepted, <span id="minutes-refused">2</span> refused`,
			`aria-label="measurements per minute, accepted and refused stacked"`,
			`<tr><th scope="row" class="time">2026-11-01T00:00:00Z</th><td class="num">7</td><td class="num">2</td><td class="num">6</td></tr>`,
			`orderer0.inmetro.example:7050`, `CN=orderer0,O=NMIJ`, `peer0.nmim.example:7051`,
			`badge ok">healthy`, `badge bad">unhealthy`, `connection refused`,
			`action="/export/registry.csv"`, `formaction="/export/registry.json"`, `/static/live.js`,
		}, wantRE: []*regexp.Regexp{
			nmiRowRE("PTBMSP", 3, 1, 2), nmiRowRE("CMIMSP", 2, 0, 2), nmiRowRE("NMIJMSP", 1, 0, 1), nmiRowRE("NMIMMSP", 0, 0, 0),
			regexp.MustCompile(`(?s)Transactions</h2>\s*<p class="big" id="transactions">6</p>`),
		}},
		{path: "/blocks", want: []string{`id="height">6<`, `<span class="bad">1</span>`, `3 of 3`, `href="/blocks/5"`, `href="/blocks/0"`, `data-live`, `/static/live.js`}},
		{path: "/blocks?before=3", want: []string{`href="/blocks/2"`, `href="/blocks/0"`, `href="/blocks">← Newer`}, notWant: []string{`href="/blocks/3"`, `data-live`}},
		{path: "/blocks/3", want: []string{
			`<a href="/blocks/2"><code title="` + hexOf(f.blocks[2].HeaderHash) + `">`, `title="` + hexOf(f.blocks[3].HeaderHash) + `"`,
			`href="/tx/` + revokeTx + `"><code class="wrap">` + revokeTx + `</code>`, `RevokeMeter`, `PTBMSP`, `(3 of 3 valid)`, `title="valid">✓`,
		}},
		{path: "/blocks/4", want: []string{`badge bad">ENDORSEMENT_POLICY_FAILURE`, `class="invalid"`}},
		{path: "/tx/" + revokeTx, want: []string{
			`href="/blocks/3"`, `RevokeMeter`, `keyCompromise`, `MeterRevoked`, `&#34;reason&#34;: &#34;keyCompromise&#34;`,
			`meter/SYN-0000002`, `<a href="/blocks/0">0</a>:0`, `badge ok">VALID`, `registrar`,
		}},
		{path: "/tx/" + strings.ToUpper(invalidTx), want: []string{`id="code" class="badge warn">ENDORSEMENT_POLICY_FAILURE`, `href="/blocks/4"`,
			chain.PlainCode("ENDORSEMENT_POLICY_FAILURE"), `<p id="carried-by">No later transaction carried its request again.`}},
		{path: "/meters/SYN-0000002", want: []string{
			`<span class="badge bad">revoked</span>`, `data-registration-block="0"`, `href="/blocks/3"`, `href="/tx/` + revokeTx + `"`,
			`keyCompromise`, `✗ refused`, `REPLAY`, `✓ accepted`, `Owner</th><td>PTBMSP (PTB)`,
			// What the readings measured, read from their transaction.
			`2.004 kWh`, `1.001 kWh`, `2026-11-01T00:30:00Z`,
		}},
		{path: "/meters/SYN-0000004", want: []string{
			`<span class="badge ok">active</span>`, `<a href="/blocks/1" data-registration-block="1">1</a>`, `-----BEGIN PUBLIC KEY-----`,
			`Example Metering GmbH`, `EM-3000`, `SNSYN-0000004`, `EM-FW 4.2.1`, `sha256:9f86d081884c7d65`, `No reading yet.`,
		}},
		{path: "/refusals", want: []string{
			`<tr data-meter="SYN-0000002" data-kind="measurement" data-code="REPLAY">`, `<tr data-meter="SYN-0000001" data-kind="measurement" data-code="REPLAY">`,
			`href="/meters/SYN-0000002"`, `refused measurement`,
			// The plain sentence, the chaincode's reason folded away.
			`<span class="badge bad">REPLAY</span> <span class="plain">` + template.HTMLEscapeString(meter.Plain(meter.CodeReplay)) + `</span>`,
			`<details class="detail"><summary>Technical detail</summary><code>meter SYN-0000002: seq 2 was accepted before</code></details>`,
			// Invalid transactions are elsewhere.
			`(1) are not refusals`, `<a href="/invalid">invalid transactions</a>`,
		}, notWant: []string{`ENDORSEMENT_POLICY_FAILURE`, `href="/tx/` + invalidTx + `"`}},
		{path: "/refusals?meter=SYN-0000002", want: []string{`data-meter="SYN-0000002"`}, notWant: []string{`data-meter="SYN-0000001"`}},
		{path: "/refusals?code=REPLAY&nmi=PTBMSP", want: []string{`data-meter="SYN-0000001"`}},
		{path: "/refusals?code=ENDORSEMENT_POLICY_FAILURE", want: []string{`No refusal matches.`}},
		{path: "/refusals?kind=measurement", want: []string{`data-kind="measurement"`, `<option value="measurement" selected>`}},
		{path: "/refusals?kind=update", want: []string{`No refusal matches.`}},
		{path: "/refusals?from=2026-11-01&to=2026-11-01", want: []string{`data-meter="SYN-0000002"`}},
		{path: "/refusals?from=2026-11-02", want: []string{`No refusal matches.`}},
		{path: "/refusals?before=3", want: []string{`data-meter="SYN-0000002"`}},
		{path: "/invalid", want: []string{
			`<tr data-code="ENDORSEMENT_POLICY_FAILURE">`, `href="/tx/` + invalidTx + `"`, `<code>RevokeMeter</code>`, `<td>CMIMSP</td>`,
			`meter <a href="/meters/SYN-0000001">SYN-0000001</a>`, `<span class="sub">not carried again</span>`,
			`<span class="badge warn">ENDORSEMENT_POLICY_FAILURE</span> <span class="plain">` + template.HTMLEscapeString(chain.PlainCode("ENDORSEMENT_POLICY_FAILURE")),
			`<strong>1</strong> invalid transaction, <strong>0</strong> of them carried again`,
		}},
		{path: "/invalid?code=MVCC_READ_CONFLICT", want: []string{`No invalid transaction matches.`}},
		{path: "/invalid?nmi=CMIMSP&before=5", want: []string{`<tr data-code="ENDORSEMENT_POLICY_FAILURE">`}},
		{path: "/search", want: []string{`name="q"`}},
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
			for _, re := range tc.wantRE {
				if !re.MatchString(body) {
					t.Errorf("page does not match %s", re)
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
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// After NMIJ leaves the consortium (a configuration without it), its meter
// stays listed and readable, marked as a former member's.
func TestFormerMember(t *testing.T) {
	f := newFixture(t, nil)
	c, _ := fixtureChain(t)
	b := c.Register("PTBMSP", 1)
	left := *testConfig
	left.Sequence++
	left.Members = slices.DeleteFunc(slices.Clone(testConfig.Members), func(m channel.Member) bool { return m.MSPID == "NMIJMSP" })
	if err := f.srv.store.Add(b, index.Integrity{Checked: true, CheckedThrough: b.Number}, nil, &left); err != nil {
		t.Fatal(err)
	}
	cookie := f.session(t)
	_, page := f.get(t, "/meters/"+synth.MeterID(6), cookie)
	if !strings.Contains(page, `Owner</th><td>NMIJMSP <span class="badge revoked"`) || !strings.Contains(page, "former member") {
		t.Errorf("meter page of a former member's meter:\n%s", page)
	}
	if _, page := f.get(t, "/meters/"+synth.MeterID(4), cookie); strings.Contains(page, "former member") {
		t.Error("a member's meter is marked as a former member's")
	}
	_, dash := f.get(t, "/", cookie)
	row := regexp.MustCompile(`<tr data-nmi="NMIJMSP"><td>[^<]*<span class="badge revoked">former member</span>`)
	if !row.MatchString(dash) {
		t.Errorf("dashboard row of the former member:\n%s", dash)
	}
	if strings.Count(dash, "former member") != 1 {
		t.Errorf("%d NMIs marked as former members, want 1", strings.Count(dash, "former member"))
	}
}

func TestBrokenChain(t *testing.T) {
	f := newFixture(t, &index.Break{Block: 4, Reason: "previous hash mismatch"})
	_, body := f.get(t, "/", f.session(t))
	if !strings.Contains(body, `class="verdict bad">BROKEN at block <a href="/blocks/4">4</a>: previous hash mismatch`) {
		t.Fatalf("dashboard of a broken chain: %s", body)
	}
}

func TestEscaping(t *testing.T) {
	f := newFixture(t, nil)
	res, body := f.get(t, "/meters/SYN-0000006", f.session(t))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	if strings.Contains(body, hostileManufacturer) || strings.Contains(body, "<script>alert") {
		t.Fatal("the manufacturer's markup reached the page unescaped")
	}
	if !strings.Contains(body, `&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;`) {
		t.Fatalf("the manufacturer is not shown escaped: %s", body)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

func TestSearch(t *testing.T) {
	f := newFixture(t, nil)
	cookie := f.session(t)
	b3 := hexOf(f.blocks[3].HeaderHash)
	tx := f.blocks[2].Txs[0].ID
	for q, want := range map[string]string{
		"3":                 "/blocks/3",
		b3:                  "/blocks/3",
		strings.ToUpper(b3): "/blocks/3",
		tx:                  "/tx/" + tx,
		"  SYN-0000004 ":    "/meters/SYN-0000004",
		synth.MeterID(6):    "/meters/" + synth.MeterID(6),
	} {
		res, _ := f.get(t, "/search?q="+url.QueryEscape(q), cookie)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != want {
			t.Errorf("search %q: %d to %q, want %s", q, res.StatusCode, res.Header.Get("Location"), want)
		}
	}
	res, body := f.get(t, "/search?q=NOPE-42", cookie)
	if res.StatusCode != http.StatusNotFound || !strings.Contains(body, "Nothing in the index matches “NOPE-42”") {
		t.Fatalf("search for nothing: %d %s", res.StatusCode, body)
	}
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t, nil)
	cookie := f.session(t)
	for path, want := range map[string]int{
		"/blocks/99":                              http.StatusNotFound,
		"/blocks/x":                               http.StatusBadRequest,
		"/blocks/-1":                              http.StatusBadRequest,
		"/blocks?before=x":                        http.StatusBadRequest,
		"/blocks?before=0":                        http.StatusBadRequest,
		"/tx/" + strings.Repeat("0", 64):          http.StatusNotFound,
		"/tx/" + strings.Repeat("a", 300):         http.StatusBadRequest,
		"/meters/NOPE-1":                          http.StatusNotFound,
		"/meters/bad%20id":                        http.StatusBadRequest,
		"/refusals?from=yesterday":                http.StatusBadRequest,
		"/refusals?code=replay":                   http.StatusBadRequest,
		"/refusals?meter=%3Cx%3E":                 http.StatusBadRequest,
		"/refusals?from=2026-11-02&to=2026-11-01": http.StatusBadRequest,
		"/refusals?before=-3":                     http.StatusBadRequest,
		"/refusals?kind=transaction":              http.StatusBadRequest,
		"/invalid?code=mvcc":                      http.StatusBadRequest,
		"/invalid?nmi=%3Cx%3E":                    http.StatusBadRequest,
		"/invalid?before=0":                       http.StatusBadRequest,
		"/export/registry.csv?block=x":            http.StatusBadRequest,
		"/export/registry.json?block=6":           http.StatusNotFound,
		"/search?q=" + strings.Repeat("x", 300):   http.StatusBadRequest,
		"/nowhere":                                http.StatusNotFound,
	} {
		res, body := f.get(t, path, cookie)
		if res.StatusCode != want {
			t.Errorf("%s: status %d, want %d", path, res.StatusCode, want)
			continue
		}
		if !strings.Contains(body, `<p class="message">`) || !strings.Contains(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: no error page: %s", path, body)
		}
	}
	if strings.Contains(f.log.String(), "level=ERROR") {
		t.Errorf("a visitor's mistake was logged as a server error:\n%s", f.log)
	}
}
