package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/councildata/gateway/gateway"
)

//go:embed ui
var files embed.FS

var pages = template.Must(template.New("pages").Funcs(template.FuncMap{
	"list":      func(xs ...string) []string { return xs },
	"pagesList": func() []navPage { return navPages },
	"cellHref": func(requester, purpose, dataset, source string) template.URL {
		return template.URL("/ui/governance/access/cell?" + url.Values{"requester": {requester}, "purpose": {purpose}, "dataset": {dataset}, "source": {source}}.Encode())
	},
}).ParseFS(files, "ui/*.html"))

// navPage is a page of the header's navigation, shown to the governance
// role (whose pages the others are refused anyway).
type navPage struct{ Path, Name string }

var navPages = []navPage{
	{"/ui/", "Console"},
	{"/ui/governance", "Agreements"},
	{"/ui/governance/access", "Who can see what"},
	{"/ui/governance/dry-run", "Dry run"},
	{"/ui/governance/audit", "Audit log"},
}

// Authenticator checks a credential as the API's Authorization header
// would carry it.
type Authenticator interface {
	Authenticate(ctx context.Context, bearer string) (*gateway.Requester, error)
}

// Console serves the web console.
type Console struct {
	Auth     Authenticator
	Sessions *Sessions
	Version  string
	Log      *slog.Logger
	// API is the gateway's HTTP API, which downloads are answered by:
	// the same POST /v1/query, with the session's credential.
	API http.Handler
	// Postgres is the PostgreSQL door's address, for the console's psql
	// snippet; "" when the gateway serves none.
	Postgres string
	// Demo: the gateway takes the demo's keys, which the sign-in page
	// then names (never on a gateway that does not).
	Demo bool
	// PublicURL, if set, is the address browsers reach the gateway at
	// (server.public_url): the origin a form must come from.
	PublicURL string
	// OIDC, if set, offers sign-in through the configured OpenID Connect
	// provider beside the API key.
	OIDC *OIDC
}

// ContentSecurityPolicy is every console page's policy: the console's own
// scripts, styles and API calls, nothing inline, no frames, no other
// origin.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Handler serves the console's pages below /ui/.
func (c *Console) Handler() http.Handler {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	r := chi.NewRouter()
	r.Use(Headers, middleware.GetHead) // HEAD of a page: its GET's headers
	static, _ := fs.Sub(files, "ui/static")
	serve := http.StripPrefix("/ui/static/", http.FileServer(http.FS(static)))
	r.Handle("/static/*", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no listing of the console's files
			http.NotFound(w, r)
			return
		}
		serve.ServeHTTP(w, r)
	}))
	r.Get("/login", c.loginPage)
	r.Post("/login", c.login)
	r.Post("/logout", c.logout)
	if c.OIDC != nil {
		r.Get("/oidc/start", c.oidcStart)
		r.Get("/oidc/callback", c.oidcCallback)
		r.Get("/oidc/finish", c.oidcFinish)
	}
	r.Post("/download", c.download)
	r.Get("/", c.index)
	r.Get("/governance", c.governance)
	r.Get("/governance/audit", c.auditPage)
	r.Get("/governance/access", c.accessPage)
	r.Get("/governance/access/cell", c.cellPage)
	r.Get("/governance/dry-run", c.dryRunPage)
	r.Post("/governance/dry-run", c.dryRun)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		c.render(w, http.StatusNotFound, "error.html", map[string]any{"Message": "There is no console page at " + r.URL.Path + "."})
	})
	return r
}

// Headers sets the console's security headers on a response: on every
// console page, and on anything a browser is sent to from one (the
// gateway's / that leads to /ui/): a page whose Cross-Origin-Opener-Policy
// differs from the page before it opens in a new browsing context.
func Headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/ui/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

func (c *Console) render(w http.ResponseWriter, status int, page string, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	data["Version"] = c.Version
	if req, ok := data["Requester"].(*gateway.Requester); ok && req != nil {
		data["Governance"] = slices.Contains(req.Roles, "governance")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, page, data); err != nil {
		c.Log.Error("console: render page", "page", page, "err", err)
	}
}

// loginCookie holds the sign-in form's CSRF token (double submit): a
// form posted from another site cannot carry it.
const loginCookie = "gateway_login"

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.loginForm(w, r, http.StatusOK, "")
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request, status int, problem string) {
	token := randomToken()
	http.SetCookie(w, c.Sessions.cookie(loginCookie, token, "/ui/", 3600, http.SameSiteStrictMode))
	data := map[string]any{"CSRF": token, "Problem": problem, "Demo": c.Demo}
	if c.OIDC != nil {
		data["OIDC"] = c.OIDC.Config.Name
	}
	c.render(w, status, "login.html", data)
}

// sameOrigin reports whether a form post came from the console's own
// origin, as far as the browser says: Sec-Fetch-Site, where it sends it,
// is same-origin; otherwise an Origin header names this origin, scheme
// included (PublicURL's where it is set). A client that sends neither (not
// a browser) still needs the form's token.
func (c *Console) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	if c.PublicURL != "" {
		want, err := url.Parse(c.PublicURL)
		return err == nil && strings.EqualFold(u.Scheme, want.Scheme) && strings.EqualFold(u.Host, want.Host)
	}
	scheme := "http"
	if c.Sessions.Secure || r.TLS != nil {
		scheme = "https"
	}
	return u.Scheme == scheme && u.Host == r.Host
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		c.loginForm(w, r, http.StatusBadRequest, "The sign-in form could not be read.")
		return
	}
	lc, err := r.Cookie(loginCookie)
	if !c.sameOrigin(r) || err != nil || !sameToken(r.PostForm.Get("csrf"), lc.Value) {
		c.loginForm(w, r, http.StatusForbidden, "The sign-in form expired or came from another site; sign in again.")
		return
	}
	addr := remoteHost(r)
	if c.Sessions.guessing(addr) {
		c.loginForm(w, r, http.StatusTooManyRequests, "Too many failed sign-ins from your address; wait a minute and try again.")
		return
	}
	key := strings.TrimSpace(r.PostForm.Get("key"))
	req, err := c.Auth.Authenticate(r.Context(), key)
	if err != nil {
		c.Sessions.fail(addr)
		c.Log.Debug("console: sign-in refused", "remote", r.RemoteAddr)
		c.loginForm(w, r, http.StatusUnauthorized, "That API key or token is not one the gateway knows.")
		return
	}
	c.Sessions.end(r) // a browser signing in again leaves no session behind
	id, _, err := c.Sessions.start(key, req.ID)
	if err != nil {
		c.loginForm(w, r, http.StatusServiceUnavailable, "The gateway holds as many console sessions as it may; try again later.")
		return
	}
	http.SetCookie(w, c.Sessions.cookie(c.Sessions.CookieName(), id, "/", 0, http.SameSiteStrictMode))
	http.SetCookie(w, c.Sessions.cookie(loginCookie, "", "/ui/", -1, http.SameSiteStrictMode))
	c.Log.Info("console: signed in", "requester", req.ID, "remote", r.RemoteAddr)
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	v := c.Sessions.lookup(r)
	if v == nil || !sameToken(r.PostFormValue("csrf"), v.csrf) {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	c.Sessions.end(r)
	http.SetCookie(w, c.Sessions.cookie(c.Sessions.CookieName(), "", "/", -1, http.SameSiteStrictMode))
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// remoteHost is the client's address without its port.
func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// signedIn is the request's session and its requester as the gateway
// authenticates it now (a key revoked since sign-in ends the session).
func (c *Console) signedIn(r *http.Request) (*session, *gateway.Requester) {
	v := c.Sessions.lookup(r)
	if v == nil {
		return nil, nil
	}
	req, err := c.Auth.Authenticate(r.Context(), v.token)
	if err != nil {
		c.Sessions.end(r)
		return nil, nil
	}
	return v, req
}

func (c *Console) index(w http.ResponseWriter, r *http.Request) {
	v, req := c.signedIn(r)
	if v == nil {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "console.html", map[string]any{"CSRF": v.csrf, "Requester": req, "Postgres": c.Postgres, "Page": "/ui/"})
}

// downloads are the formats the console offers: the Accept header the
// API is asked with, and the file's extension.
var downloads = map[string]struct{ accept, ext string }{
	"csv":     {"text/csv", "csv"},
	"csv-bom": {"text/csv; bom=true", "excel.csv"},
	"parquet": {"application/vnd.apache.parquet", "parquet"},
	"arrow":   {"application/vnd.apache.arrow.stream", "arrow"},
}

// download answers the console's download form: the query is run by the
// API (POST /v1/query, with the session's credential, so the same policy,
// audit and limits), and its result streams into the file as it comes.
// An error before the first row is shown as a page, not saved as a file.
func (c *Console) download(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	v := c.Sessions.lookup(r)
	if v == nil {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			c.render(w, http.StatusRequestEntityTooLarge, "error.html", map[string]any{"Message": "The download's query is larger than the console sends (1 MiB)."})
			return
		}
		c.render(w, http.StatusBadRequest, "error.html", map[string]any{"Message": "The download form could not be read."})
		return
	}
	if !c.sameOrigin(r) || !sameToken(r.PostForm.Get("csrf"), v.csrf) {
		c.render(w, http.StatusForbidden, "error.html", map[string]any{"Message": "The download was refused: it did not come from this console's page (its CSRF token was missing or wrong)."})
		return
	}
	f, ok := downloads[r.PostForm.Get("format")]
	if !ok || c.API == nil {
		c.render(w, http.StatusBadRequest, "error.html", map[string]any{"Message": "Downloads are CSV (csv, csv-bom for Excel), Parquet (parquet) or Arrow (arrow); the form asked for " + strconv.Quote(r.PostForm.Get("format")) + "."})
		return
	}
	body := map[string]string{"sql": r.PostForm.Get("sql"), "purpose": r.PostForm.Get("purpose")}
	if ref := strings.TrimSpace(r.PostForm.Get("case_ref")); ref != "" {
		body["case_ref"] = ref
	}
	var raw bytes.Buffer
	enc := json.NewEncoder(&raw)
	enc.SetEscapeHTML(false) // the query as typed: no longer than the API takes it from the page
	_ = enc.Encode(body)
	req := c.apiRequest(r, v, http.MethodPost, "/v1/query", raw.Bytes())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", f.accept)
	name := "result-" + time.Now().UTC().Format("20060102-150405") + "." + f.ext
	a := &attachment{ResponseWriter: w, name: name, console: c}
	c.API.ServeHTTP(a, req)
	a.finish()
}

// apiRequest is a request to the API on behalf of the session v: its
// credential, the browser's address, and none of its cookies. It is
// routed on its own (chi keeps the routing state of r in its context).
func (c *Console) apiRequest(r *http.Request, v *session, method, path string, body []byte) *http.Request {
	ctx := context.WithValue(r.Context(), chi.RouteCtxKey, (*chi.Context)(nil))
	req, _ := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	req.RemoteAddr, req.Host = r.RemoteAddr, r.Host
	req.Header.Set("Authorization", "Bearer "+v.token)
	return req
}

// apiJSON runs a GET of the API for the session (a POST of a JSON body
// when body is set) and decodes its JSON answer, numbers as json.Number;
// for an error answer it returns the status and the error's message.
func (c *Console) apiJSON(r *http.Request, v *session, path string, body []byte, out any) (int, string) {
	method := http.MethodGet
	if body != nil {
		method = http.MethodPost
	}
	req := c.apiRequest(r, v, method, path, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &captured{header: http.Header{}}
	c.API.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		json.Unmarshal(rec.body.Bytes(), &e)
		return rec.status, e.Error.Message
	}
	dec := json.NewDecoder(&rec.body)
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return http.StatusInternalServerError, "the gateway's answer could not be read"
	}
	return http.StatusOK, ""
}

// captured is an API answer kept in memory (the governance pages' small
// JSON documents).
type captured struct {
	header http.Header
	status int
	body   bytes.Buffer
}

// Flush and SetWriteDeadline let the API stream into it as into a
// connection (the API stops a result its client cannot take).
func (c *captured) Flush()                           {}
func (c *captured) SetWriteDeadline(time.Time) error { return nil }

func (c *captured) Header() http.Header         { return c.header }
func (c *captured) WriteHeader(status int)      { c.status = status }
func (c *captured) Write(b []byte) (int, error) { return c.body.Write(b) }

// attachment passes a successful API response on as a file; an error
// response is kept and, once whole (finish), shown as the console's error
// page.
type attachment struct {
	http.ResponseWriter
	name    string
	console *Console
	status  int
	failed  bytes.Buffer
}

func (a *attachment) WriteHeader(status int) {
	if a.status != 0 {
		return
	}
	a.status = status
	if status != http.StatusOK {
		return
	}
	a.Header().Set("Content-Disposition", `attachment; filename="`+a.name+`"`)
	a.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox") // a file: nothing in it may run, whoever shows it
	a.ResponseWriter.WriteHeader(status)
}

func (a *attachment) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.WriteHeader(http.StatusOK)
	}
	if a.status != http.StatusOK {
		if a.failed.Len() < 64<<10 {
			a.failed.Write(b)
		}
		return len(b), nil
	}
	return a.ResponseWriter.Write(b)
}

// finish renders an error answer, once the API has written it whole, as
// the console's page.
func (a *attachment) finish() {
	if a.status == 0 || a.status == http.StatusOK {
		return
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	json.Unmarshal(a.failed.Bytes(), &e)
	h := a.ResponseWriter.Header()
	for _, k := range []string{"Content-Length", "Content-Type", "X-Query-Id"} {
		h.Del(k)
	}
	a.console.render(a.ResponseWriter, a.status, "error.html", map[string]any{"Message": "The download failed: " + e.Error.Message + " (" + e.Error.Code + ")."})
}

// Unwrap lets the API's streaming reach the connection (flushes, write
// deadlines).
func (a *attachment) Unwrap() http.ResponseWriter { return a.ResponseWriter }
