package pgwire

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// connReader is the session's reading side. Between messages the backend
// reads the connection through it; while a query runs nothing would, so
// watch reads ahead on its own: a client that goes away (EOF, reset) has
// its query cancelled at once, as the other doors do, and whatever the
// client sends meanwhile (a pipelined Sync) is kept for the backend.
type connReader struct {
	conn net.Conn
	mu   sync.Mutex
	buf  []byte
	err  error
}

// maxReadAhead bounds what watch keeps of a client's pipelined messages.
const maxReadAhead = 1 << 20

func (r *connReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	if len(r.buf) > 0 {
		n := copy(p, r.buf)
		r.buf = r.buf[n:]
		r.mu.Unlock()
		return n, nil
	}
	err := r.err
	r.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return r.conn.Read(p)
}

// watch reads ahead until stop is called, calling gone if the client
// goes away.
func (r *connReader) watch(gone func()) (stop func()) {
	var stopping sync.Once
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tmp := make([]byte, 4096)
		for {
			select {
			case <-quit:
				return
			default:
			}
			r.mu.Lock()
			full := len(r.buf) >= maxReadAhead || r.err != nil
			r.mu.Unlock()
			if full {
				<-quit
				return
			}
			n, err := r.conn.Read(tmp)
			r.mu.Lock()
			r.buf = append(r.buf, tmp[:n]...)
			if err != nil {
				select {
				case <-quit:
					// the deadline stop set: not the client's doing
				default:
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						r.err = err
					}
				}
			}
			failed := r.err != nil
			r.mu.Unlock()
			if failed {
				gone()
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return func() {
		stopping.Do(func() {
			close(quit)
			_ = r.conn.SetReadDeadline(time.Now())
			<-done
			_ = r.conn.SetReadDeadline(time.Time{})
		})
	}
}
