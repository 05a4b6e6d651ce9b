package pgwire

import (
	"context"
	"sync"
	"time"

	"github.com/councildata/gateway/gateway/catalog"
)

// catalogCache keeps each requester's catalog database, per purpose and
// session shape, for a short while: psql's \d sends a dozen catalog
// queries, and DBeaver's navigator many more.
type catalogCache struct {
	mu      sync.Mutex
	entries map[string]*catalogEntry
	ttl     time.Duration
}

type catalogEntry struct {
	db      *catalogDB
	expires time.Time
	gen     *catalog.Catalog // the gateway's catalog it was built from
	refs    int
	stale   bool // replaced: closed when the last user lets go
}

// acquire returns the catalog database for key, building it with build
// when there is none, it has expired or the gateway's catalog changed.
// The caller must release it.
func (c *catalogCache) acquire(ctx context.Context, key string, gen *catalog.Catalog, build func(context.Context) (*catalogDB, error)) (*catalogEntry, error) {
	c.mu.Lock()
	if e := c.entries[key]; e != nil && e.gen == gen && time.Now().Before(e.expires) {
		e.refs++
		c.mu.Unlock()
		return e, nil
	}
	c.mu.Unlock()
	db, err := build(ctx)
	if err != nil {
		return nil, err
	}
	e := &catalogEntry{db: db, expires: time.Now().Add(c.ttl), gen: gen, refs: 1}
	c.mu.Lock()
	if old := c.entries[key]; old != nil {
		old.stale = true
		if old.refs == 0 {
			old.db.close()
		}
	}
	c.entries[key] = e
	// Drop what has expired, so the cache holds only live requesters.
	now := time.Now()
	for k, x := range c.entries {
		if x != e && now.After(x.expires) {
			delete(c.entries, k)
			x.stale = true
			if x.refs == 0 {
				x.db.close()
			}
		}
	}
	c.mu.Unlock()
	return e, nil
}

func (c *catalogCache) release(e *catalogEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	if e.refs == 0 && e.stale {
		e.db.close()
	}
}

func (c *catalogCache) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		delete(c.entries, k)
		e.stale = true
		if e.refs == 0 {
			e.db.close()
		}
	}
}
