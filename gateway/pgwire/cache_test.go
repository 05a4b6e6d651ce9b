package pgwire

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestCatalogCacheBounds: a requester choosing a new key for every query
// (a case reference each time) keeps at most maxCatalogsPerRequester
// catalog databases, all requesters together at most maxCatalogs, and an
// entry in use is closed only once released.
func TestCatalogCacheBounds(t *testing.T) {
	ctx := context.Background()
	c := &catalogCache{entries: map[string]*catalogEntry{}, ttl: time.Minute}
	build := func(context.Context) (*catalogDB, error) {
		return buildCatalog(ctx, nil, catalogInfo{database: "d", user: "u", version: "v", started: time.Now(), settings: map[string]string{}})
	}
	held, err := c.acquire(ctx, "public", "public/FOI-0", nil, build)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 10; i++ {
		e, err := c.acquire(ctx, "public", fmt.Sprintf("public/FOI-%d", i), nil, build)
		if err != nil {
			t.Fatal(err)
		}
		c.release(e)
	}
	if n := len(c.entries); n > maxCatalogsPerRequester {
		t.Errorf("one requester holds %d catalogs, at most %d", n, maxCatalogsPerRequester)
	}
	// The first one was evicted while held: still usable, closed on release.
	if _, _, err := held.db.query(ctx, "SELECT count(*) FROM main.pg_namespace"); err != nil {
		t.Errorf("an evicted catalog in use: %v", err)
	}
	c.release(held)
	for i := 0; i < maxCatalogs+10; i++ {
		e, err := c.acquire(ctx, fmt.Sprintf("r%d", i), fmt.Sprintf("r%d/", i), nil, build)
		if err != nil {
			t.Fatal(err)
		}
		c.release(e)
	}
	if n := len(c.entries); n > maxCatalogs {
		t.Errorf("the cache holds %d catalogs, at most %d", n, maxCatalogs)
	}
	c.closeAll()
}
