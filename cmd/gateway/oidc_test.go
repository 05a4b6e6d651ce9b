package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// nurse is an NHS Lothian partner as the identity provider knows them:
// the gateway's claims (org, roles, purposes) in the ID token.
type nurse struct{ sub string }

func (n nurse) ID() string                        { return n.sub }
func (n nurse) Userinfo([]string) ([]byte, error) { return []byte(`{"sub":"` + n.sub + `"}`), nil }
func (n nurse) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return &struct {
		*mockoidc.IDTokenClaims
		Org      string   `json:"org"`
		Roles    []string `json:"roles"`
		Purposes []string `json:"purposes"`
	}{base, "NHS Lothian", []string{"partner"}, []string{"health-and-social-care"}}, nil
}

// oidcGateway starts an OpenID Connect provider (oauth2-proxy's mockoidc,
// on 127.0.0.1) and the demo gateway signing its console in through it,
// reached as http://localhost:<port>: another site than the provider, as
// in real life, so the browser's cookie rules are the real ones.
func oidcGateway(t *testing.T) (*mockoidc.MockOIDC, string) {
	t.Helper()
	return oidcGatewayWith(t, "")
}

// TestConsoleSignsInThroughOIDC: a partner signs in at their
// organisation's identity provider (authorization code with PKCE) in
// Chromium, and the console is theirs: the requester the gateway makes of
// the ID token's claims, under their policy, audited as them.
func TestConsoleSignsInThroughOIDC(t *testing.T) {
	ctx := browser(t)
	m, base := oidcGateway(t)
	m.QueueUser(nurse{sub: "nurse@nhs-lothian"})
	do(t, ctx, chromedp.Navigate(base+"/ui/login"), chromedp.WaitVisible(chromedp.CSS("#oidc")))
	if label := value(t, ctx, chromedp.Text(chromedp.CSS("#oidc"))); label != "Sign in with NHS Lothian sign-in" {
		t.Errorf("the button says %q", label)
	}
	do(t, ctx, chromedp.Click(chromedp.CSS("#oidc")), chromedp.WaitVisible(chromedp.CSS("#who")))
	waitText(t, ctx, "#who", "nurse@nhs-lothian")
	waitText(t, ctx, "nav#catalog", "std.planning_applications")
	out := runQuery(t, ctx, "SELECT count(*) AS n FROM std.planning_applications")
	if !strings.Contains(out, "1 row") {
		t.Errorf("the partner's query: %q", out)
	}
	r := post(t, base, "demo-governance", "", sqlFor("SELECT requester_id, requester_organisation, action, outcome FROM gateway.audit WHERE requester_id = 'nurse@nhs-lothian' AND action = 'query' ORDER BY seq", "audit"))
	if !strings.Contains(string(r.body), `["nurse@nhs-lothian","NHS Lothian","query","completed"]`) {
		t.Errorf("the audit log: %.600s", r.body)
	}
}

// TestOIDCSignInAttacks: the sign-in's state is the browser's own and
// good once, the PKCE verifier and the nonce are checked end to end (a
// flow whose challenge or nonce was changed on its way to the provider
// signs no one in), and what the provider says comes back as text.
func TestOIDCSignInAttacks(t *testing.T) {
	m, base := oidcGateway(t)
	newClient := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	get := func(c *http.Client, u string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	// begin starts a sign-in and returns the provider's authorize URL.
	begin := func(c *http.Client) *url.URL {
		t.Helper()
		resp, _ := get(c, base+"/ui/oidc/start")
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), m.AuthorizationEndpoint()) {
			t.Fatalf("start: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		q := loc.Query()
		if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || q.Get("nonce") == "" || q.Get("state") == "" {
			t.Errorf("the authorize request: %v", q)
		}
		return loc
	}
	// authorize has the provider sign the user in and returns the
	// callback URL it sends the browser to.
	authorize := func(c *http.Client, loc *url.URL) string {
		t.Helper()
		m.QueueUser(nurse{sub: "nurse@nhs-lothian"})
		resp, _ := get(c, loc.String())
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("authorize: %d", resp.StatusCode)
		}
		return resp.Header.Get("Location")
	}
	signedIn := func(resp *http.Response) bool {
		for _, ck := range resp.Cookies() {
			if (ck.Name == "gateway_session" || ck.Name == "gateway_oidc_done") && ck.Value != "" {
				return true
			}
		}
		return false
	}

	// The honest flow, then its callback replayed: good once. The
	// callback hands the session to /ui/oidc/finish, a navigation of the
	// gateway's own site, which sets the session cookie.
	alice := newClient()
	callback := authorize(alice, begin(alice))
	resp, body := get(alice, callback)
	if resp.StatusCode != 200 || !signedIn(resp) || !strings.Contains(body, "nurse@nhs-lothian") || !strings.Contains(body, `url=/ui/oidc/finish`) {
		t.Fatalf("the callback: %d %v %.300s", resp.StatusCode, resp.Cookies(), body)
	}
	resp, _ = get(alice, base+"/ui/oidc/finish")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("finish: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	session := false
	for _, ck := range resp.Cookies() {
		if ck.Name == "gateway_session" && ck.Value != "" {
			session = true
			if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
				t.Errorf("the session cookie: %+v", ck)
			}
		}
	}
	if !session {
		t.Errorf("finish set no session cookie: %v", resp.Header["Set-Cookie"])
	}
	if resp, _ := get(alice, base+"/ui/oidc/finish"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" || signedIn(resp) {
		t.Errorf("finish again: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body = get(alice, callback)
	if resp.StatusCode != 403 || signedIn(resp) || !strings.Contains(body, "already used") {
		t.Errorf("the callback replayed: %d %.300s", resp.StatusCode, body)
	}

	// Login CSRF: Mallory's callback (his code, his state) opened in
	// Bob's browser, with or without a sign-in of Bob's own under way,
	// signs Bob in as no one.
	mallory, bob := newClient(), newClient()
	malloryCallback := authorize(mallory, begin(mallory))
	for _, started := range []bool{false, true} {
		if started {
			begin(bob)
		}
		resp, body := get(bob, malloryCallback)
		if resp.StatusCode != 403 || signedIn(resp) || strings.Contains(body, "nurse@nhs-lothian") {
			t.Errorf("another browser's callback (a sign-in of its own under way: %v): %d %.300s", started, resp.StatusCode, body)
		}
	}

	// PKCE and the nonce, end to end: the authorize request changed on
	// its way (another challenge, another nonce) signs no one in.
	for _, c := range []struct{ param, status, says string }{
		{"code_challenge", "502", "refused to exchange"},
		{"nonce", "401", "could not be verified"},
	} {
		eve := newClient()
		loc := begin(eve)
		q := loc.Query()
		q.Set(c.param, strings.Repeat("A", 43))
		loc.RawQuery = q.Encode()
		resp, body := get(eve, authorize(eve, loc))
		if strconv.Itoa(resp.StatusCode) != c.status || signedIn(resp) || !strings.Contains(body, c.says) {
			t.Errorf("%s changed: %d %.300s", c.param, resp.StatusCode, body)
		}
	}

	// The provider's refusal, shown as text.
	carol := newClient()
	state := begin(carol).Query().Get("state")
	resp, body = get(carol, base+"/ui/oidc/callback?"+url.Values{"state": {state}, "error": {"access_denied"}, "error_description": {"<script>alert(1)</script>"}}.Encode())
	if resp.StatusCode != 401 || signedIn(resp) || !strings.Contains(body, "access_denied") || strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("the provider's refusal: %d %.400s", resp.StatusCode, body)
	}
	// A callback with no sign-in started, and a code made up.
	resp, body = get(newClient(), base+"/ui/oidc/callback?code=made-up&state=made-up")
	if resp.StatusCode != 403 || signedIn(resp) {
		t.Errorf("a made-up callback: %d %.300s", resp.StatusCode, body)
	}
}
