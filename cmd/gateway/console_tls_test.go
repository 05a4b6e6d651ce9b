package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// consoleClient signs in to the console at base with key, as a browser's
// form would (Origin origin, when not ""), and returns the client, the
// sign-in's answer and its session cookie (nil when refused).
func consoleClient(t *testing.T, base, key, origin string) (*http.Client, *http.Response, *http.Cookie) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/ui/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no sign-in form: %.300s", page)
	}
	req, _ := http.NewRequest("POST", base+"/ui/login", strings.NewReader(url.Values{"key": {key}, "csrf": {string(m[1])}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if strings.HasSuffix(ck.Name, "gateway_session") && ck.Value != "" {
			return c, resp, ck
		}
	}
	return c, resp, nil
}

// TestConsoleOverHTTPS: with server.http_tls the console's session cookie
// is a __Host- cookie (Secure, this host, path /), which Chromium takes
// and sends back, and a plain-named cookie, as a plain-HTTP answer could
// have planted, is not a session.
func TestConsoleOverHTTPS(t *testing.T) {
	ctx := browser(t, chromedp.Flag("ignore-certificate-errors", true))
	cfg, _ := demo(t, 42, true)
	dir := filepath.Dir(cfg)
	writeCert(t, dir)
	withServerConfig(t, cfg, "  http_tls: {cert_file: tls/cert.pem, key_file: tls/key.pem}\n")
	_, base, _ := startMainOn(t, cfg, "127.0.0.1:0", "off")
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("the door is %s", base)
	}
	signIn(t, ctx, base, "demo-analyst")
	waitText(t, ctx, "#who", "analyst@edinburgh")
	if out := runQuery(t, ctx, "SELECT count(*) AS n FROM std.spend_over_500"); !strings.Contains(out, "1 row") {
		t.Errorf("a query over HTTPS: %q", out)
	}

	_, resp, ck := consoleClient(t, base, "demo-analyst", base)
	if ck == nil {
		t.Fatalf("signing in over HTTPS: %d %v", resp.StatusCode, resp.Header["Set-Cookie"])
	}
	if ck.Name != "__Host-gateway_session" || !ck.Secure || !ck.HttpOnly || ck.Path != "/" || ck.Domain != "" || ck.SameSite != http.SameSiteStrictMode {
		t.Errorf("the session cookie over HTTPS: %+v", ck)
	}
	for _, set := range resp.Header["Set-Cookie"] {
		if !strings.Contains(set, "Secure") {
			t.Errorf("a cookie over HTTPS without Secure: %s", set)
		}
	}
	// The same session id under the plain name is no session.
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", base+"/ui/", nil)
	req.AddCookie(&http.Cookie{Name: "gateway_session", Value: ck.Value})
	if resp, err := plain.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Errorf("the session id under the plain name: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestConsoleBehindTLSProxy: with server.public_url on https, the gateway
// behind a proxy that terminates TLS sets the same Secure, __Host- cookies,
// and a form must come from the public origin, scheme included.
func TestConsoleBehindTLSProxy(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	withServerConfig(t, cfg, "  public_url: https://gateway.example.gov.uk\n")
	base := start(t, cfg)
	for _, c := range []struct {
		origin string
		ok     bool
	}{
		{"https://gateway.example.gov.uk", true},
		{"", true}, // not a browser: the form's token is still needed
		{"http://gateway.example.gov.uk", false},
		{base, false}, // the proxy's back end is not the origin browsers are on
		{"https://evil.example", false},
	} {
		_, resp, ck := consoleClient(t, base, "demo-analyst", c.origin)
		if c.ok != (ck != nil) {
			t.Errorf("Origin %q: signed in %v, want %v (%d)", c.origin, ck != nil, c.ok, resp.StatusCode)
		}
		if ck != nil && (ck.Name != "__Host-gateway_session" || !ck.Secure) {
			t.Errorf("the session cookie behind a TLS proxy: %+v", ck)
		}
	}
}

// TestConsoleOriginScheme: on a plain-HTTP gateway, a form posted from
// https:// on the same host is another origin, and refused.
func TestConsoleOriginScheme(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	host := strings.TrimPrefix(base, "http://")
	for _, c := range []struct {
		origin string
		ok     bool
	}{{base, true}, {"https://" + host, false}, {"http://" + host + ".evil.example", false}} {
		_, resp, ck := consoleClient(t, base, "demo-analyst", c.origin)
		if c.ok != (ck != nil) {
			t.Errorf("Origin %q: signed in %v, want %v (%d)", c.origin, ck != nil, c.ok, resp.StatusCode)
		}
		if ck != nil && (ck.Name != "gateway_session" || ck.Secure) {
			t.Errorf("the session cookie over plain HTTP: %+v", ck)
		}
	}
	// HEAD of the console's pages, and of the / that leads there: the
	// pages' headers, not the API's.
	for _, path := range []string{"/", "/ui/login"} {
		req, _ := http.NewRequest("HEAD", base+path, nil)
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 400 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("HEAD %s: %d %v", path, resp.StatusCode, resp.Header)
		}
	}
}
