package web

import (
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

var (
	tagRE  = regexp.MustCompile(`<(/?)([a-zA-Z][a-zA-Z0-9]*)([^>]*)>`)
	idRE   = regexp.MustCompile(`\sid="([^"]+)"`)
	attrRE = func(name string) *regexp.Regexp { return regexp.MustCompile(`\s` + name + `="([^"]*)"`) }
)

// What the browser test audits with axe-core (WCAG 2.1 AA) and measures at
// 390, 1,280 and 1,920 pixels, checked here on the markup of every page
// so that a template cannot lose it unnoticed: the page's language and
// landmarks, one h1, a scope on every table header, a name for every form
// field, no duplicate id, every table in a region of its own that scrolls
// and can be focused, and no link without text.
func TestPagesAccessibleByConstruction(t *testing.T) {
	f := newFixture(t, nil)
	cookie := f.session(t)
	tx := f.blocks[3].Txs[0].ID
	sw := newFixtureWith(t, nil, softwareBlocks(t), nil)
	swCookie := sw.session(t)
	type page struct {
		f      *fixture
		cookie *http.Cookie
	}
	pages := map[string]page{"/login": {f, nil}}
	for _, p := range []string{"/", "/blocks", "/blocks/2", "/tx/" + tx, "/meters/SYN-0000002", "/meters/SYN-0000004", "/types",
		"/refusals", "/invalid", "/findings", "/search", "/search?q=NOPE-1", "/meters/NOPE-1"} {
		pages[p] = page{f, cookie}
	}
	for _, p := range []string{"/types/PTB-T1", "/software/withdrawn", "/meters/SYN-0000003"} {
		pages[p] = page{sw, swCookie}
	}
	for path, p := range pages {
		c := p.cookie
		t.Run(path, func(t *testing.T) {
			_, body := p.f.get(t, path, c)
			for _, want := range []string{`<html lang="en">`, `<meta name="viewport" content="width=device-width, initial-scale=1">`,
				`<header class="top">`, `<main id="main">`, `<footer>`} {
				if !strings.Contains(body, want) {
					t.Errorf("no %s", want)
				}
			}
			if c != nil && !strings.Contains(body, `<nav aria-label="Main">`) {
				t.Error("no navigation")
			}
			if n := strings.Count(body, "<h1"); n != 1 {
				t.Errorf("%d h1 elements", n)
			}
			checkMarkup(t, body)
		})
	}
}

// checkMarkup walks the page's tags.
func checkMarkup(t *testing.T, body string) {
	t.Helper()
	ids := map[string]bool{}
	labelled := map[string]bool{}
	for _, m := range attrRE("for").FindAllStringSubmatch(body, -1) {
		labelled[m[1]] = true
	}
	inLabel, inLink := 0, -1
	var lastOpen string // the previous opening tag, with its attributes
	for _, m := range tagRE.FindAllStringSubmatchIndex(body, -1) {
		closing, name, attrs := body[m[2]:m[3]] == "/", strings.ToLower(body[m[4]:m[5]]), body[m[6]:m[7]]
		if id := idRE.FindStringSubmatch(" " + attrs); id != nil && !closing {
			if ids[id[1]] {
				t.Errorf("duplicate id %q", id[1])
			}
			ids[id[1]] = true
		}
		switch {
		case name == "label":
			inLabel += map[bool]int{true: -1, false: 1}[closing]
		case name == "th" && !closing && !strings.Contains(attrs, `scope="`):
			t.Errorf("table header without scope: %s", body[m[0]:m[1]])
		case name == "table" && !closing:
			if !strings.HasPrefix(lastOpen, `<div class="scroll" tabindex="0" role="region" aria-label="`) {
				t.Errorf("table not in a focusable scrolling region: %s after %s", body[m[0]:m[1]], lastOpen)
			}
		case (name == "input" || name == "select") && !closing:
			hidden := strings.Contains(attrs, `type="hidden"`)
			id := idRE.FindStringSubmatch(" " + attrs)
			if !hidden && inLabel == 0 && !strings.Contains(attrs, "aria-label=") && (id == nil || !labelled[id[1]]) {
				t.Errorf("form field without a label: %s", body[m[0]:m[1]])
			}
		case name == "a" && !closing:
			inLink = m[1]
		case name == "a" && closing && inLink >= 0:
			text := tagRE.ReplaceAllString(body[inLink:m[0]], "")
			if strings.TrimSpace(text) == "" {
				t.Errorf("link without text before offset %d", m[0])
			}
			inLink = -1
		}
		if !closing {
			lastOpen = body[m[0]:m[1]]
		}
	}
}

// Nothing is cut off with an ellipsis, and the widest fixed parts give way
// on a narrow screen.
func TestStylesheetCutsNothingOff(t *testing.T) {
	css, err := os.ReadFile("static/style.css")
	if err != nil {
		t.Fatal(err)
	}
	s := string(css)
	for _, bad := range []string{"text-overflow", "overflow: hidden", "overflow-x: hidden", "minmax(420px", "minmax(230px"} {
		if strings.Contains(s, bad) {
			t.Errorf("style.css has %q", bad)
		}
	}
	for _, want := range []string{".scroll, .chart-wrap { overflow-x: auto;", ":focus-visible", "@media (max-width: 640px)", "code { overflow-wrap: anywhere; }"} {
		if !strings.Contains(s, want) {
			t.Errorf("style.css lacks %q", want)
		}
	}
}
