package exec

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/councildata/gateway/gateway/duckstream"
)

// A query that runs in DuckDB gets a database of its own, opened for it
// and closed after it: nothing of one query is ever in another's. Opening
// one (DuckDB's instance, its built-in functions and extensions) took
// about 8 ms of a 33 ms one-council std query, idle. spares opens the
// next few ahead, in the background, so a query takes one already open;
// each is still used by exactly one query and closed after it, exactly
// as one opened on the spot, and none is shared or reused. When none is
// ready (a burst of queries), the query opens its own as before.

// spareDB is one query's database, its analyst connection, and its
// spill directory.
type spareDB struct {
	db      *duckstream.DB
	conn    *duckstream.Conn
	close   func()
	tempDir string
}

// release closes the database and removes its spill directory.
func (q *spareDB) release() {
	q.close()
	if q.tempDir != "" {
		os.RemoveAll(q.tempDir)
	}
}

type spares struct {
	open func() (*spareDB, error)
	ch   chan *spareDB
	once sync.Once
	stop chan struct{}
	done sync.WaitGroup
}

// spareCount is how many databases wait open: enough for a query
// arriving while another starts, on a small machine.
const spareCount = 2

func newSpares(open func() (*spareDB, error)) *spares {
	return &spares{open: open, ch: make(chan *spareDB, spareCount), stop: make(chan struct{})}
}

// take returns a fresh database: a spare if one is open, else one opened
// now. The first take starts the background opener.
func (s *spares) take() (*spareDB, error) {
	s.once.Do(func() {
		s.done.Add(1)
		go s.fill()
	})
	select {
	case q := <-s.ch:
		return q, nil
	default:
		return s.open()
	}
}

// fill keeps the spares open until Close.
func (s *spares) fill() {
	defer s.done.Done()
	for {
		q, err := s.open()
		if err != nil {
			slog.Warn("exec: could not open a spare query database; queries open their own", "err", err)
			select {
			case <-time.After(time.Second):
				continue
			case <-s.stop:
				return
			}
		}
		select {
		case s.ch <- q:
		case <-s.stop:
			q.release()
			return
		}
	}
}

// Close stops the opener and closes the spares not taken.
func (s *spares) Close() {
	select {
	case <-s.stop:
		return // closed already
	default:
	}
	close(s.stop)
	s.done.Wait()
	for {
		select {
		case q := <-s.ch:
			q.release()
		default:
			return
		}
	}
}

// spillDir is a fresh name for a query database's spill directory under
// root ("" when root is ""): DuckDB creates it only if the query spills.
func spillDir(root string) string {
	if root == "" {
		return ""
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return filepath.Join(root, "q-"+hex.EncodeToString(b))
}
