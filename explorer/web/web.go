// Package web is the explorer's pages for auditors: the dashboard, the
// blocks, transactions and meters, the meter types and their software, the
// refusals, search, the meter registry and the meter types as they stood
// after any block (CSV and JSON), and a stream of new blocks for live
// pages. Every page reads the explorer's own index (package index),
// which holds what the explorer parsed and verified itself; a transaction's
// contents and what a meter's readings measured are read from the blocks
// of the explorer's peer, each checked against the block the explorer
// verified (index.Evidence), so no page repeats the word of a single NMI.
// Only auditors may sign in.
//
// Pages are rendered on the server (html/template, SVG charts); the one
// script, static/live.js, only refreshes live sections when a block arrives.
package web

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/network/pkg/credentials"
	"github.com/inter-nmi/pki/network/pkg/health"
	"github.com/inter-nmi/pki/network/pkg/proof"
)

// Options configure a Server.
type Options struct {
	Store *index.Store
	// Credentials authenticate sign-ins; only the auditor role is admitted.
	Credentials *credentials.Store
	// Health reports the consortium's nodes; nil if the explorer checks none.
	Health Health
	Log    *slog.Logger
	// Now is the clock of sessions and of the dashboard's windows; nil means time.Now.
	Now func() time.Time
	// Channel is the channel's name, as the pages show it.
	Channel string
	// Genesis is the pinned genesis block hash (hex), as the dashboard
	// shows it, so auditors can compare it with the consortium's.
	Genesis string
	// Blocks reads a block of the channel from the explorer's peer, for
	// the attestation bundles the meter pages offer; nil offers none.
	Blocks proof.Blocks
	// Evidence gives the blocks a transaction's page and a meter's
	// readings are read from: Store.FromPeer of the explorer's peer. Nil
	// shows only what the index keeps.
	Evidence index.Source
	// EvidenceCache is the budget of the blocks kept for those pages, in
	// bytes (0: index.DefaultEvidenceCache).
	EvidenceCache int
}

// Health reports the state of the consortium's nodes.
type Health interface {
	Nodes() []health.NodeStatus
}

// Server serves the explorer's pages.
type Server struct {
	store    *index.Store
	creds    *credentials.Store
	health   Health
	log      *slog.Logger
	now      func() time.Time
	channel  string
	genesis  string
	bundles  *proof.Assembler
	evidence *index.Evidence
	pages    map[string]*template.Template
	sessions *sessions
	events   *broker
	handler  http.Handler
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New builds the server and its routes.
func New(o Options) *Server {
	s := &Server{store: o.Store, creds: o.Credentials, health: o.Health, log: o.Log, now: o.Now, channel: o.Channel, genesis: o.Genesis}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if o.Blocks != nil {
		s.bundles = proof.NewAssembler(o.Channel, o.Blocks)
	}
	if o.Evidence != nil {
		s.evidence = index.NewEvidence(o.Evidence, o.EvidenceCache)
	}
	s.pages = parseTemplates()
	s.sessions = newSessions(sessionTTL, s.now)
	s.events = newBroker(heartbeatInterval)
	s.handler = s.routes()
	return s
}

// Handler returns the HTTP handler of every page.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /static/", staticHandler())

	mux.Handle("GET /{$}", s.page(s.dashboard))
	mux.Handle("GET /blocks", s.page(s.blocks))
	mux.Handle("GET /blocks/{n}", s.page(s.block))
	mux.Handle("GET /tx/{id}", s.page(s.tx))
	mux.Handle("GET /meters/{id}", s.page(s.meter))
	mux.Handle("GET /meters/{id}/attestation.json", s.feed(s.attestation))
	mux.Handle("GET /types", s.page(s.types))
	mux.Handle("GET /types/{id}", s.page(s.meterType))
	mux.Handle("GET /software/withdrawn", s.page(s.withdrawn))
	mux.Handle("GET /refusals", s.page(s.refusals))
	mux.Handle("GET /invalid", s.page(s.invalid))
	mux.Handle("GET /findings", s.page(s.findings))
	mux.Handle("GET /search", s.page(s.search))
	mux.Handle("GET /export/registry.csv", s.feed(s.exportCSV))
	mux.Handle("GET /export/registry.json", s.feed(s.exportJSON))
	mux.Handle("GET /export/types.csv", s.feed(s.exportTypesCSV))
	mux.Handle("GET /export/types.json", s.feed(s.exportTypesJSON))
	mux.Handle("GET /events", s.feed(s.stream))
	mux.Handle("/", s.page(func(http.ResponseWriter, *http.Request) error {
		return notFound("There is no such page.")
	}))
	return secureHeaders(http.NewCrossOriginProtection().Handler(mux))
}

// secureHeaders keeps the pages out of frames and other sites' scripts:
// only the explorer's own CSS and script run, nothing inline.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "+
			"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

func staticHandler() http.Handler {
	files := http.FileServerFS(staticFS)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if _, err := s.store.Height(); err != nil {
		s.log.Error("health check: index unreadable", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "index unreadable")
		return
	}
	fmt.Fprintln(w, "ok")
}

// problem is a request the explorer cannot answer, with what the page says.
type problem struct {
	status int
	msg    string
}

func (p *problem) Error() string { return p.msg }

func badRequest(format string, a ...any) error {
	return &problem{status: http.StatusBadRequest, msg: fmt.Sprintf(format, a...)}
}

func notFound(format string, a ...any) error {
	return &problem{status: http.StatusNotFound, msg: fmt.Sprintf(format, a...)}
}

// status maps an error to its HTTP status and the message shown: the one
// place that does.
func status(err error) (int, string) {
	var p *problem
	switch {
	case errors.As(err, &p):
		return p.status, p.msg
	case errors.Is(err, index.ErrNotFound):
		return http.StatusNotFound, "Not found in the index."
	}
	return http.StatusInternalServerError, "The explorer could not answer this request. The error is logged."
}

// fail answers a request that failed with the error page.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := status(err)
	if code == http.StatusInternalServerError {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	s.render(w, r, code, "error", view{Title: http.StatusText(code), Body: msg})
}

// view is what a page template gets: the page's own data in Body, and what
// the layout needs.
type view struct {
	Title string
	// Nav is the navigation entry to highlight.
	Nav string
	// Live loads the script that refreshes the page's live sections.
	Live bool
	// Query refills the search box.
	Query   string
	Channel string
	User    string
	Body    any
}

// render writes a page, or the error page if the template fails (so a
// half-written page never reaches an auditor).
func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, v view) {
	v.Channel = s.channel
	if p, ok := principalFrom(r.Context()); ok {
		v.User = p.ID
	}
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		s.log.Error("render page", "page", name, "path", r.URL.Path, "err", err)
		if name != "error" {
			s.render(w, r, http.StatusInternalServerError, "error", view{Title: "Internal Server Error",
				Body: "The page could not be rendered. The error is logged."})
			return
		}
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

func parseTemplates() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err) // the pattern is constant
	}
	pages := map[string]*template.Template{}
	for _, file := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(file, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, file))
	}
	return pages
}
