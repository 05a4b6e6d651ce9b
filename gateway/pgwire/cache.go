package pgwire

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/councildata/gateway/gateway/catalog"
)

// catalogCache keeps each requester's catalog database, per purpose and
// session shape, for a short while: psql's \d sends a dozen catalog
// queries, and DBeaver's navigator many more. It holds at most
// maxCatalogs databases, and at most maxCatalogsPerRequester of one
// requester's (whose keys a client chooses, through its purpose and case
// reference): past that the oldest go.
type catalogCache struct {
	mu      sync.Mutex
	entries map[string]*catalogEntry
	ttl     time.Duration
}

// Bounds of the cache.
const (
	maxCatalogs             = 32
	maxCatalogsPerRequester = 4
)

type catalogEntry struct {
	db      *catalogDB
	who     string
	expires time.Time
	gen     *catalog.Catalog // the gateway's catalog it was built from
	refs    int
	stale   bool // replaced or evicted: closed when the last user lets go
}

// acquire returns the catalog database for key, building it with build
// when there is none, it has expired or the gateway's catalog changed.
// The caller must release it.
func (c *catalogCache) acquire(ctx context.Context, who, key string, gen *catalog.Catalog, build func(context.Context) (*catalogDB, error)) (*catalogEntry, error) {
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
	e := &catalogEntry{db: db, who: who, expires: time.Now().Add(c.ttl), gen: gen, refs: 1}
	var closing []*catalogDB
	c.mu.Lock()
	drop := func(k string) {
		x := c.entries[k]
		delete(c.entries, k)
		x.stale = true
		if x.refs == 0 {
			closing = append(closing, x.db)
		}
	}
	if c.entries[key] != nil {
		drop(key)
	}
	c.entries[key] = e
	now := time.Now()
	var mine, all []string
	for k, x := range c.entries {
		switch {
		case x == e:
		case now.After(x.expires) || x.gen != gen:
			drop(k)
		case x.who == who:
			mine = append(mine, k)
		}
	}
	oldest := func(keys []string) {
		sort.Slice(keys, func(i, j int) bool { return c.entries[keys[i]].expires.Before(c.entries[keys[j]].expires) })
	}
	if len(mine) >= maxCatalogsPerRequester {
		oldest(mine)
		for _, k := range mine[:len(mine)-maxCatalogsPerRequester+1] {
			drop(k)
		}
	}
	for k, x := range c.entries {
		if x != e {
			all = append(all, k)
		}
	}
	if len(all) >= maxCatalogs {
		oldest(all)
		for _, k := range all[:len(all)-maxCatalogs+1] {
			drop(k)
		}
	}
	c.mu.Unlock()
	// Closing a database takes a while; not under the lock.
	for _, db := range closing {
		db.close()
	}
	return e, nil
}

func (c *catalogCache) release(e *catalogEntry) {
	c.mu.Lock()
	e.refs--
	last := e.refs == 0 && e.stale
	c.mu.Unlock()
	if last {
		e.db.close()
	}
}

func (c *catalogCache) closeAll() {
	var closing []*catalogDB
	c.mu.Lock()
	for k, e := range c.entries {
		delete(c.entries, k)
		e.stale = true
		if e.refs == 0 {
			closing = append(closing, e.db)
		}
	}
	c.mu.Unlock()
	for _, db := range closing {
		db.close()
	}
}
