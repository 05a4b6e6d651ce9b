package duckdbscan

import (
	"context"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/councildata/gateway/gateway/duckstream"
)

// pool hands out at most max connections to the Store's database; a
// caller beyond that waits for one to come back, or for its ctx.
type pool struct {
	db    *duckstream.DB
	slots chan struct{}

	mu     sync.Mutex
	idle   []*duckstream.Conn
	open   int
	closed bool
}

// PoolStats is what Store.Stats reports.
type PoolStats struct {
	Open  int // connections open
	InUse int // held by a reader or a statement
}

func newPool(db *duckstream.DB, max int) *pool {
	return &pool{db: db, slots: make(chan struct{}, max)}
}

func (p *pool) get(ctx context.Context) (*duckstream.Conn, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		return c, nil
	}
	c, err := p.db.Connect()
	if err != nil {
		<-p.slots
		return nil, err
	}
	p.open++
	return c, nil
}

func (p *pool) put(c *duckstream.Conn) {
	p.mu.Lock()
	if p.closed {
		c.Close()
		p.open--
	} else {
		p.idle = append(p.idle, c)
	}
	p.mu.Unlock()
	<-p.slots
}

func (p *pool) stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PoolStats{Open: p.open, InUse: p.open - len(p.idle)}
}

// close closes the idle connections and the database; connections still
// held are closed when they come back.
func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for _, c := range p.idle {
		c.Close()
		p.open--
	}
	p.idle = nil
	p.db.Close()
}

// goValue is one cell as a Go value: int64 for integers, float64, string,
// bool, or nil for NULL (and for types the catalog queries never return).
func goValue(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch a := a.(type) {
	case *array.Int64:
		return a.Value(i)
	case *array.Int32:
		return int64(a.Value(i))
	case *array.Int16:
		return int64(a.Value(i))
	case *array.Int8:
		return int64(a.Value(i))
	case *array.Uint64:
		return int64(a.Value(i))
	case *array.Float64:
		return a.Value(i)
	case *array.String:
		return string([]byte(a.Value(i))) // a copy: the batch's memory is freed with it
	case *array.Boolean:
		return a.Value(i)
	}
	return nil
}
