package httpapi

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/councildata/gateway/gateway"
)

// writeDeadline gives every response the write timeout from the moment the
// gateway starts to answer, however long the answer took to prepare; a
// streamed result sets it again for each batch (stream). A client that
// takes nothing for that long makes the write fail instead of holding the
// handler, and the query behind it, for as long as it likes.
func (s *Server) writeDeadline(next http.Handler) http.Handler {
	if s.WriteTimeout <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&deadlineWriter{ResponseWriter: w, timeout: s.WriteTimeout}, r)
	})
}

// deadlineWriter sets the write deadline when the response starts.
type deadlineWriter struct {
	http.ResponseWriter
	timeout time.Duration
	started bool
}

func (d *deadlineWriter) start() {
	if !d.started {
		d.started = true
		_ = http.NewResponseController(d.ResponseWriter).SetWriteDeadline(time.Now().Add(d.timeout))
	}
}

func (d *deadlineWriter) WriteHeader(code int) {
	d.start()
	d.ResponseWriter.WriteHeader(code)
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.start()
	return d.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// retryAfter sets the Retry-After header an error asks for, in whole
// seconds (at least 1).
func retryAfter(w http.ResponseWriter, err error) {
	var ge *gateway.Error
	if errors.As(err, &ge) && ge.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(max(math.Ceil(ge.RetryAfter.Seconds()), 1))))
	}
}
