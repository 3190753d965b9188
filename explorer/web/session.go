package web

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/inter-nmi/pki/network/pkg/credentials"
)

// sessionTTL is how long a sign-in lasts: a working day, then the auditor
// presents the token again.
const sessionTTL = 8 * time.Hour

// cookieName has the __Host- prefix, so browsers keep the cookie only if it
// is Secure, for this host and path /.
const cookieName = "__Host-explorer-session"

// maxLoginBody bounds the sign-in form.
const maxLoginBody = 8 << 10

// sessions are the signed-in auditors, in memory: a restart signs everyone out.
type sessions struct {
	mu   sync.Mutex
	byID map[string]session
	ttl  time.Duration
	now  func() time.Time
}

type session struct {
	principal credentials.Principal
	expires   time.Time
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{byID: map[string]session{}, ttl: ttl, now: now}
}

// start opens a session and returns its ID and expiry.
func (ss *sessions) start(p credentials.Principal) (string, time.Time) {
	id := rand.Text() // 26 base32 characters: 128 random bits
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, v := range ss.byID { // sign-ins are rare: sweeping here keeps the map small
		if !now.Before(v.expires) {
			delete(ss.byID, k)
		}
	}
	exp := now.Add(ss.ttl)
	ss.byID[id] = session{principal: p, expires: exp}
	return id, exp
}

// get returns the principal of a live session.
func (ss *sessions) get(id string) (credentials.Principal, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	v, ok := ss.byID[id]
	if !ok {
		return credentials.Principal{}, false
	}
	if !ss.now().Before(v.expires) {
		delete(ss.byID, id)
		return credentials.Principal{}, false
	}
	return v.principal, true
}

func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byID, id)
}

type (
	principalKey struct{}
	sessionKey   struct{}
)

func principalFrom(ctx context.Context) (credentials.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(credentials.Principal)
	return p, ok
}

// sessionFrom returns the ID of the request's session.
func sessionFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(sessionKey{}).(string)
	return id, ok
}

// signedIn returns the request with its auditor and session in its
// context, if its session is live.
func (s *Server) signedIn(r *http.Request) (*http.Request, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return r, false
	}
	p, ok := s.sessions.get(c.Value)
	if !ok {
		return r, false
	}
	ctx := context.WithValue(context.WithValue(r.Context(), principalKey{}, p), sessionKey{}, c.Value)
	return r.WithContext(ctx), true
}

// page admits signed-in auditors to a page and sends everyone else to the
// sign-in page, to come back afterwards.
func (s *Server) page(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, ok := s.signedIn(r)
		if !ok {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if err := h(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

// feed admits signed-in auditors to a download or stream; a request without
// a session gets 401, since a redirect to a form would not help a program.
func (s *Server) feed(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, ok := s.signedIn(r)
		if !ok {
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "sign in as an auditor first", http.StatusUnauthorized)
			return
		}
		if err := h(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

type loginView struct {
	Next    string
	Message string
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "login", view{Title: "Sign in", Body: loginView{Next: localPath(r.URL.Query().Get("next"))}})
}

// login checks the token and opens a session. The token itself is never
// logged, only the ID of its credential.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err != nil {
		s.render(w, r, http.StatusBadRequest, "login", view{Title: "Sign in", Body: loginView{Next: "/", Message: "The form could not be read."}})
		return
	}
	next := localPath(r.PostForm.Get("next"))
	refuse := func(code int, msg string) {
		s.render(w, r, code, "login", view{Title: "Sign in", Body: loginView{Next: next, Message: msg}})
	}
	p, err := s.creds.Authenticate(strings.TrimSpace(r.PostForm.Get("token")))
	if err != nil {
		s.log.Warn("sign-in refused: unknown token", "remote", r.RemoteAddr)
		refuse(http.StatusUnauthorized, "This token is not valid. Paste the auditor token your NMI issued to you.")
		return
	}
	if p.Role != credentials.RoleAuditor {
		s.log.Warn("sign-in refused: not an auditor", "credential", p.ID, "role", p.Role, "remote", r.RemoteAddr)
		refuse(http.StatusForbidden, "This token belongs to the "+string(p.Role)+" role. The explorer admits auditors only.")
		return
	}
	id, exp := s.sessions.start(p)
	s.log.Info("auditor signed in", "credential", p.ID, "remote", r.RemoteAddr)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", Expires: exp, MaxAge: int(sessionTTL / time.Second),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		if p, ok := s.sessions.get(c.Value); ok {
			s.log.Info("auditor signed out", "credential", p.ID)
		}
		s.sessions.end(c.Value)
		// The session's live streams end with it.
		s.events.endSession(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// localPath returns next if it is a path on this site, else "/": a sign-in
// must not send the auditor to another site.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}
