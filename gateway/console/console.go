package console

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/councildata/gateway/gateway"
)

//go:embed ui
var files embed.FS

var pages = template.Must(template.ParseFS(files, "ui/*.html"))

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
	r.Use(Headers)
	static, _ := fs.Sub(files, "ui/static")
	r.Handle("/static/*", http.StripPrefix("/ui/static/", http.FileServer(http.FS(static))))
	r.Get("/login", c.loginPage)
	r.Post("/login", c.login)
	r.Post("/logout", c.logout)
	r.Get("/", c.index)
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
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: token, Path: "/ui/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	c.render(w, status, "login.html", map[string]any{"CSRF": token, "Problem": problem})
}

// sameOrigin reports whether a form post came from the console's own
// origin, as far as the browser says: Sec-Fetch-Site, where it sends it,
// is same-origin; otherwise an Origin header names this host. A client
// that sends neither (not a browser) still needs the form's token.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		c.loginForm(w, r, http.StatusBadRequest, "The sign-in form could not be read.")
		return
	}
	lc, err := r.Cookie(loginCookie)
	if !sameOrigin(r) || err != nil || !sameToken(r.PostForm.Get("csrf"), lc.Value) {
		c.loginForm(w, r, http.StatusForbidden, "The sign-in form expired or came from another site; sign in again.")
		return
	}
	key := strings.TrimSpace(r.PostForm.Get("key"))
	req, err := c.Auth.Authenticate(r.Context(), key)
	if err != nil {
		c.Log.Info("console: sign-in refused", "remote", r.RemoteAddr)
		c.loginForm(w, r, http.StatusUnauthorized, "That API key or token is not one the gateway knows.")
		return
	}
	id, _ := c.Sessions.start(key, req.ID)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: id, Path: "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/ui/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
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
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
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
	c.render(w, http.StatusOK, "console.html", map[string]any{"CSRF": v.csrf, "Requester": req})
}
