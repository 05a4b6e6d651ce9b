package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Refresh limits for key sets.
const (
	// fileCheckEvery is how often a JWKS file is stat'ed for changes.
	fileCheckEvery = time.Second
	// refetchEvery is how often an unknown kid may force a key set to be
	// read or fetched again, so a flood of made-up kids cannot hammer the
	// file system or the identity provider.
	refetchEvery = 5 * time.Second
	// maxJWKSBytes bounds a JWKS file.
	maxJWKSBytes = 1 << 20
	// fetchTimeout bounds the first fetch of a JWKS URL and each forced
	// refresh.
	fetchTimeout = 10 * time.Second
	// urlMinInterval and urlMaxInterval bound the background refresh of a
	// JWKS URL (within them the provider's Cache-Control decides).
	urlMinInterval = 5 * time.Minute
	urlMaxInterval = time.Hour
)

// keySource provides the current key set.
type keySource interface {
	// current returns the key set in force.
	current(ctx context.Context) (jwk.Set, error)
	// refresh reads or fetches the key set again, unless that was done less
	// than refetchEvery ago; refreshed says whether it did.
	refresh(ctx context.Context) (set jwk.Set, refreshed bool)
	// lastError is the last failure to read or fetch the key set, or nil.
	lastError() error
	close() error
}

// fileKeys is a JWKS file, read once and again when its modification time
// or size changes, or when a token names an unknown kid. A file that fails
// to read or parse leaves the previous keys in force.
type fileKeys struct {
	path string
	// checkEvery and refetchEvery are the limits above (tests shorten them).
	checkEvery, refetchEvery time.Duration

	mu      sync.Mutex
	set     jwk.Set
	modTime time.Time
	size    int64
	checked time.Time // last stat
	forced  time.Time // last re-read for an unknown kid
	err     error
}

func newFileKeys(path string) (*fileKeys, error) {
	f := &fileKeys{path: path, checkEvery: fileCheckEvery, refetchEvery: refetchEvery}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.load(time.Now()); err != nil {
		return nil, err
	}
	return f, nil
}

// load reads the file; f.mu is held.
func (f *fileKeys) load(now time.Time) error {
	f.checked = now
	set, st, err := readJWKS(f.path)
	if err != nil {
		f.err = err
		return err
	}
	f.set, f.modTime, f.size, f.err = set, st.ModTime(), st.Size(), nil
	return nil
}

func readJWKS(path string) (jwk.Set, os.FileInfo, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("jwks_file: %w", err)
	}
	defer fh.Close()
	// Stat before reading: a change during the read shows up as a changed
	// file on the next check and is read again.
	st, err := fh.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("jwks_file: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(fh, maxJWKSBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("jwks_file %s: %w", path, err)
	}
	if len(raw) > maxJWKSBytes {
		return nil, nil, fmt.Errorf("jwks_file %s: larger than %d bytes", path, maxJWKSBytes)
	}
	set, err := jwk.Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("jwks_file %s: not a JSON Web Key Set: %w", path, err)
	}
	if set.Len() == 0 {
		return nil, nil, fmt.Errorf("jwks_file %s: the key set has no keys", path)
	}
	return set, st, nil
}

func (f *fileKeys) current(context.Context) (jwk.Set, error) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.Sub(f.checked) >= f.checkEvery {
		f.checked = now
		st, err := os.Stat(f.path)
		switch {
		case err != nil:
			f.err = fmt.Errorf("jwks_file: %w", err)
		case !st.ModTime().Equal(f.modTime) || st.Size() != f.size:
			_ = f.load(now) // on failure the previous keys stay in force
		}
	}
	return f.set, nil
}

func (f *fileKeys) refresh(context.Context) (jwk.Set, bool) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.forced.IsZero() && now.Sub(f.forced) < f.refetchEvery {
		return f.set, false
	}
	f.forced = now
	if err := f.load(now); err != nil {
		return f.set, false
	}
	return f.set, true
}

func (f *fileKeys) lastError() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *fileKeys) close() error { return nil }

// urlKeys is a JWKS URL kept fresh by jwx's cache, which refetches in the
// background as the provider's Cache-Control allows (between
// urlMinInterval and urlMaxInterval); an unknown kid forces a refetch.
type urlKeys struct {
	url          string
	cache        *jwk.Cache
	res          *httprc.ResourceBase[jwk.Set]
	stop         context.CancelFunc
	refetchEvery time.Duration

	mu        sync.Mutex
	refreshed time.Time
	err       error
	closed    bool
}

func newURLKeys(ctx context.Context, raw string) (*urlKeys, error) {
	if err := checkJWKSURL(raw); err != nil {
		return nil, err
	}
	// The cache's goroutines live until ctx ends or close is called.
	bg, stop := context.WithCancel(ctx)
	cache, err := jwk.NewCache(bg, httprc.NewClient())
	if err != nil {
		stop()
		return nil, fmt.Errorf("jwks_url: %w", err)
	}
	u := &urlKeys{url: raw, cache: cache, stop: stop, refetchEvery: refetchEvery}
	first, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	err = cache.Register(first, raw,
		jwk.WithHttprcResourceOption(httprc.WithMinInterval(urlMinInterval)),
		jwk.WithHttprcResourceOption(httprc.WithMaxInterval(urlMaxInterval)),
	)
	if err != nil {
		_ = u.close()
		return nil, fmt.Errorf("jwks_url %s: the key set could not be fetched: %w", raw, err)
	}
	if u.res, err = cache.LookupResource(first, raw); err != nil {
		_ = u.close()
		return nil, fmt.Errorf("jwks_url %s: %w", raw, err)
	}
	return u, nil
}

// checkJWKSURL accepts https, and http only to this machine: keys fetched
// over plain HTTP from elsewhere could be replaced on the way.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("jwks_url %q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("jwks_url %q: use https (plain http is only allowed to localhost)", raw)
	}
	return fmt.Errorf("jwks_url %q: the scheme must be https", raw)
}

// current returns the last set fetched: a snapshot that a refresh replaces
// rather than changes.
func (u *urlKeys) current(context.Context) (jwk.Set, error) {
	set := u.res.Resource()
	if set == nil {
		return nil, fmt.Errorf("jwks_url %s: no key set fetched", u.url)
	}
	return set, nil
}

func (u *urlKeys) refresh(ctx context.Context) (jwk.Set, bool) {
	now := time.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed || !u.refreshed.IsZero() && now.Sub(u.refreshed) < u.refetchEvery {
		return nil, false
	}
	u.refreshed = now
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	if _, err := u.cache.Refresh(ctx, u.url); err != nil {
		u.err = fmt.Errorf("jwks_url %s: %w", u.url, err)
		return nil, false
	}
	u.err = nil
	return u.res.Resource(), true
}

func (u *urlKeys) lastError() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func (u *urlKeys) close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	u.mu.Unlock()
	u.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := u.cache.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("jwks_url %s: stopping the refresh: %w", u.url, err)
	}
	return nil
}
