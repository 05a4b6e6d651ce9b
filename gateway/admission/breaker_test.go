package admission

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/go-sql-driver/mysql"

	"github.com/councildata/gateway/gateway"
)

// flakySource fails its scans while down is set (at start, or in its stream
// when midStream), and counts the calls that reach it.
type flakySource struct {
	fakeSource
	mu        sync.Mutex
	down      bool
	midStream bool
	reached   int
}

func (f *flakySource) set(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *flakySource) Scan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanResult, error) {
	f.mu.Lock()
	f.reached++
	down, mid := f.down, f.midStream
	f.mu.Unlock()
	if down && !mid {
		return nil, errors.New("dial tcp 10.1.2.3:5432: connect: connection refused")
	}
	res, err := f.fakeSource.Scan(ctx, req)
	if err == nil && down {
		res.Reader = &failingReader{fakeReader: res.Reader.(*fakeReader)}
	}
	return res, err
}

func (f *flakySource) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reached
}

// failingReader ends its stream with an error.
type failingReader struct{ *fakeReader }

func (r *failingReader) Next() bool { return false }
func (r *failingReader) Err() error { return errors.New("connection reset by peer") }

// drain reads a scan to its end and releases it.
func drain(res *gateway.ScanResult) {
	for res.Reader.Next() {
	}
	res.Reader.Release()
}

// The breaker: after three failures in a row (at start or while
// streaming) the source is skipped at once, naming the council and its
// last failure in the gateway's words; after the cooling period one call
// tries it again; once it works, calls go through; the query's own end
// (its context) never counts.
func TestBreaker(t *testing.T) {
	for _, mid := range []bool{false, true} {
		name := map[bool]string{false: "refused at start", true: "failing mid-stream"}[mid]
		t.Run(name, func(t *testing.T) {
			f := &flakySource{fakeSource: fakeSource{alloc: memory.DefaultAllocator, batches: 1}, down: true, midStream: mid}
			src := LimitSource(f, "dundee", "Dundee City Council", SourceLimits{MaxConcurrent: 4,
				Breaker: BreakerLimits{Failures: 3, Cooldown: time.Second, MaxCooldown: 4 * time.Second}})
			ctx := context.Background()
			scan := func() error {
				res, err := src.Scan(ctx, gateway.ScanRequest{Table: "t"})
				if err != nil {
					return err
				}
				drain(res)
				return res.Reader.(interface{ Err() error }).Err()
			}
			// The query's own cancellation is not the store's failure.
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			if res, err := src.Scan(cancelled, gateway.ScanRequest{Table: "t"}); err == nil {
				drain(res)
			}
			for i := range 3 {
				if err := scan(); err == nil {
					t.Fatalf("scan %d of a store that is down worked", i)
				}
			}
			st := src.(*Limited).Breaker()
			if st.State != "open" || st.Failures != 3 || st.RetryAt.IsZero() || strings.Contains(st.LastError, "10.1.2.3") {
				t.Fatalf("after three failures: %+v", st)
			}
			before := f.calls()
			err := scan()
			var ge *gateway.Error
			if !errors.As(err, &ge) || ge.Code != gateway.CodeSourceFailed || ge.Source != "dundee" || ge.RetryAfter < time.Second ||
				!strings.Contains(ge.Message, "Dundee City Council") || !strings.Contains(ge.Message, "last 3 scans failed") ||
				strings.Contains(ge.Message, "10.1.2.3") || strings.Contains(ge.Message, "reset by peer") {
				t.Fatalf("open breaker: %v", err)
			}
			if f.calls() != before {
				t.Errorf("an open breaker let a call reach the store")
			}
			// After the cooling period (1 s ± 20%) one call tries again; it
			// fails, so the breaker opens for longer.
			time.Sleep(1300 * time.Millisecond)
			if err := scan(); err == nil || f.calls() != before+1 {
				t.Fatalf("trial: %v, %d calls reached the store", err, f.calls()-before)
			}
			if st := src.(*Limited).Breaker(); st.State != "open" || time.Until(st.RetryAt) < 1200*time.Millisecond {
				t.Errorf("after a failed trial: %+v (want open for about 2 s)", st)
			}
			// The store comes back: after the period the trial works, and
			// everything goes through.
			f.set(false)
			time.Sleep(time.Until(src.(*Limited).Breaker().RetryAt) + 100*time.Millisecond)
			for i := range 3 {
				if err := scan(); err != nil {
					t.Fatalf("scan %d after recovery: %v", i, err)
				}
			}
			if st := src.(*Limited).Breaker(); st.State != "closed" || st.Failures != 0 {
				t.Errorf("after recovery: %+v", st)
			}
		})
	}
}

// pgError stands for a PostgreSQL error response (pgconn.PgError has
// SQLState), an answer from a store that is up.
type pgError struct{}

func (pgError) Error() string    { return "ERROR: numeric field overflow (SQLSTATE 22003)" }
func (pgError) SQLState() string { return "22003" }

// An error the store answered with (SQL of the requester's making that it
// refused) never counts: a requester cannot open a council's breaker.
func TestBreakerIgnoresStatementErrors(t *testing.T) {
	b := newBreaker("angus", "Angus Council", BreakerLimits{Failures: 2, Cooldown: time.Second})
	for _, err := range []error{
		fmt.Errorf("scan: %w", pgError{}),
		fmt.Errorf("scan: %w", &mysql.MySQLError{Number: 1264, Message: "Out of range value"}),
		&gateway.Error{Code: gateway.CodeQueryFailed, Message: "the cast failed"},
	} {
		for range 3 {
			b.done(context.Background(), err)
		}
	}
	if err := b.allow(); err != nil || b.state().State != "closed" || b.state().Failures != 0 {
		t.Errorf("statement errors opened the breaker: %v %+v", err, b.state())
	}
	b.done(context.Background(), errors.New("read tcp: connection reset by peer"))
	b.done(context.Background(), errors.New("read tcp: connection reset by peer"))
	if b.allow() == nil {
		t.Errorf("two store failures in a row did not open it")
	}
}
