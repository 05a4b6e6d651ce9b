package console

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// OIDC signs the console in through an OpenID Connect provider: the
// authorization code flow with PKCE (S256), a state bound to the browser
// that started it, and a nonce in the ID token. The provider's discovery
// document is read at the first sign-in (and again after a failure), so a
// provider that is down does not stop the gateway. The session then holds
// the token named by Credential (the ID token by default), which the API
// verifies as any bearer JWT (auth.jwt): one place decides who a token is.
type OIDC struct {
	Config       config.OIDC
	ClientSecret string
	// HTTPClient reaches the provider (default: one with a 10 s timeout).
	HTTPClient *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
	flows    map[string]*flow // started sign-ins, by their cookie's id
}

// flow is one started sign-in, until its callback or flowTTL.
type flow struct {
	state, nonce, verifier string
	started                time.Time
}

const (
	// flowCookie names the started sign-in in the browser. SameSite=Lax:
	// the provider's redirect back is a navigation from another site,
	// which a Strict cookie would not come with.
	flowCookie = "gateway_oidc"
	flowTTL    = 10 * time.Minute
	// maxFlows bounds the sign-ins started and not finished; beyond it,
	// new ones are refused until some expire.
	maxFlows = 10000
)

// setup is the provider (discovered once) and the OAuth 2 client.
func (o *OIDC) setup(ctx context.Context) (*oidc.Provider, *oauth2.Config, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider == nil {
		client := o.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: 10 * time.Second}
		}
		dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, client), 10*time.Second)
		defer cancel()
		p, err := oidc.NewProvider(dctx, o.Config.Issuer)
		if err != nil {
			return nil, nil, fmt.Errorf("the identity provider %s could not be reached for its discovery document: %w", o.Config.Issuer, err)
		}
		o.provider = p
	}
	oc := &oauth2.Config{ClientID: o.Config.ClientID, ClientSecret: o.ClientSecret, Endpoint: o.provider.Endpoint(),
		RedirectURL: o.Config.RedirectURL, Scopes: o.Config.Scopes}
	return o.provider, oc, nil
}

func (o *OIDC) client(ctx context.Context) context.Context {
	if o.HTTPClient != nil {
		return oidc.ClientContext(ctx, o.HTTPClient)
	}
	return oidc.ClientContext(ctx, &http.Client{Timeout: 10 * time.Second})
}

// begin records a new sign-in and returns its cookie id and flow.
func (o *OIDC) begin(now time.Time) (string, *flow, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.flows == nil {
		o.flows = map[string]*flow{}
	}
	for k, f := range o.flows {
		if now.Sub(f.started) > flowTTL {
			delete(o.flows, k)
		}
	}
	if len(o.flows) >= maxFlows {
		return "", nil, errors.New("too many sign-ins are under way; try again in a few minutes")
	}
	id := randomToken()
	f := &flow{state: randomToken(), nonce: randomToken(), verifier: oauth2.GenerateVerifier(), started: now}
	o.flows[id] = f
	return id, f, nil
}

// finish takes the browser's started sign-in (once: a callback replayed
// finds nothing) if its state matches.
func (o *OIDC) finish(id, state string, now time.Time) *flow {
	o.mu.Lock()
	defer o.mu.Unlock()
	f := o.flows[id]
	delete(o.flows, id)
	if f == nil || now.Sub(f.started) > flowTTL || subtle.ConstantTimeCompare([]byte(f.state), []byte(state)) != 1 {
		return nil
	}
	return f
}

// oidcStart sends the browser to the provider.
func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	o := c.OIDC
	_, oc, err := o.setup(r.Context())
	if err != nil {
		c.Log.Warn("console: OIDC discovery failed", "issuer", o.Config.Issuer, "err", err)
		c.loginForm(w, r, http.StatusBadGateway, "The sign-in through "+o.Config.Name+" is unavailable: its identity provider could not be reached. Try again, or sign in with an API key.")
		return
	}
	id, f, err := o.begin(time.Now())
	if err != nil {
		c.loginForm(w, r, http.StatusServiceUnavailable, "Too many sign-ins are under way; try again in a few minutes.")
		return
	}
	http.SetCookie(w, c.Sessions.cookie(flowCookie, id, "/ui/oidc/", int(flowTTL/time.Second), http.SameSiteLaxMode))
	http.Redirect(w, r, oc.AuthCodeURL(f.state, oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce)), http.StatusFound)
}

// oidcCallback finishes a sign-in: the browser's own flow, the code
// exchanged with its PKCE verifier, the ID token verified (issuer,
// audience, expiry, signature, nonce), and the chosen token
// authenticated as the API would.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	o := c.OIDC
	q := r.URL.Query()
	http.SetCookie(w, c.Sessions.cookie(flowCookie, "", "/ui/oidc/", -1, http.SameSiteLaxMode))
	addr := remoteHost(r)
	if c.Sessions.guessing(addr) {
		c.loginForm(w, r, http.StatusTooManyRequests, "Too many failed sign-ins from your address; wait a minute and try again.")
		return
	}
	var f *flow
	if ck, err := r.Cookie(flowCookie); err == nil {
		f = o.finish(ck.Value, q.Get("state"), time.Now())
	}
	if f == nil {
		c.Sessions.fail(addr)
		c.loginForm(w, r, http.StatusForbidden, "The sign-in expired, was already used, or was started in another browser; sign in again.")
		return
	}
	if e := q.Get("error"); e != "" {
		msg := "The identity provider did not sign you in: " + e
		if d := q.Get("error_description"); d != "" {
			msg += " (" + d + ")"
		}
		c.loginForm(w, r, http.StatusUnauthorized, msg+".")
		return
	}
	provider, oc, err := o.setup(r.Context())
	if err != nil {
		c.loginForm(w, r, http.StatusBadGateway, "The identity provider could not be reached to finish the sign-in; try again.")
		return
	}
	ctx := o.client(r.Context())
	tok, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		c.Sessions.fail(addr)
		c.Log.Warn("console: OIDC code exchange failed", "issuer", o.Config.Issuer, "err", err)
		c.loginForm(w, r, http.StatusBadGateway, "The identity provider refused to exchange the sign-in's code; sign in again.")
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		c.loginForm(w, r, http.StatusBadGateway, "The identity provider's answer has no ID token (is the scope openid granted to the client?).")
		return
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: o.Config.ClientID}).Verify(ctx, rawID)
	if err != nil || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.nonce)) != 1 {
		c.Sessions.fail(addr)
		c.Log.Warn("console: OIDC ID token refused", "issuer", o.Config.Issuer, "err", err)
		c.loginForm(w, r, http.StatusUnauthorized, "The identity provider's ID token could not be verified (signature, issuer, audience, expiry or nonce); sign in again.")
		return
	}
	credential := rawID
	if o.Config.Credential == "access_token" {
		credential = tok.AccessToken
	}
	req, err := c.Auth.Authenticate(r.Context(), credential)
	if err != nil {
		c.Sessions.fail(addr)
		c.loginForm(w, r, http.StatusUnauthorized, "You signed in at the identity provider, but the gateway does not accept its "+strings.ReplaceAll(o.Config.Credential, "_", " ")+": "+errorText(err)+".")
		return
	}
	c.Sessions.end(r)
	sid, _, err := c.Sessions.start(credential, req.ID)
	if err != nil {
		c.loginForm(w, r, http.StatusServiceUnavailable, "The gateway holds as many console sessions as it may; try again later.")
		return
	}
	http.SetCookie(w, c.Sessions.cookie(c.Sessions.CookieName(), sid, "/", 0, http.SameSiteStrictMode))
	c.Log.Info("console: signed in", "requester", req.ID, "remote", r.RemoteAddr, "via", "oidc")
	// Not a redirect: the provider's redirect made this a navigation from
	// another site, and the browser would not send the new SameSite=Strict
	// cookie along a redirect from it. The page moves on by itself, as a
	// navigation of this site.
	c.render(w, http.StatusOK, "signedin.html", map[string]any{"Requester": req})
}

// errorText is an authentication error's message for the person it is
// about (never the token).
func errorText(err error) string {
	var ge *gateway.Error
	if errors.As(err, &ge) {
		return strings.TrimSuffix(ge.Message, ".")
	}
	return "the token was refused"
}
