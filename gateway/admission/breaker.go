package admission

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/go-sql-driver/mysql"

	"github.com/councildata/gateway/gateway"
)

// breaker is one source's circuit breaker: after Failures scans in a row
// fail (at start or while streaming, for the store's own reasons, not the
// query's), the source is skipped for a cooling period, each call failing
// at once with its last error, so queries that need it do not each wait on
// a store that is down. After the period one call is let through: if it
// works the breaker closes, if not it opens again for longer (exponential,
// with jitter, from Cooldown up to MaxCooldown; cenkalti/backoff).
type breaker struct {
	id, council string
	failures    int // to open; 0: never opens

	mu        sync.Mutex
	bo        *backoff.ExponentialBackOff
	run       int       // failures in a row
	openUntil time.Time // zero while closed
	trial     bool      // one call is being let through after the period
	last      string    // the last failure, in the gateway's words
	lastAt    time.Time
}

// BreakerLimits configure a source's breaker (sources[].breaker_failures,
// sources[].breaker_cooldown).
type BreakerLimits struct {
	// Failures in a row that open the breaker; 0 turns it off.
	Failures int
	// Cooldown is the first cooling period; each reopening doubles it, up
	// to MaxCooldown.
	Cooldown, MaxCooldown time.Duration
}

func newBreaker(id, council string, lim BreakerLimits) *breaker {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = max(lim.Cooldown, time.Second)
	bo.MaxInterval = max(lim.MaxCooldown, bo.InitialInterval)
	bo.Multiplier = 2
	bo.RandomizationFactor = 0.2
	bo.Reset()
	return &breaker{id: id, council: council, failures: lim.Failures, bo: bo}
}

// allow says whether a call may go to the store now; when it may not, the
// error names the council, its last failure and when it is tried again.
func (b *breaker) allow() error {
	if b == nil || b.failures <= 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openUntil.IsZero() {
		return nil
	}
	now := time.Now()
	if now.After(b.openUntil) && !b.trial {
		b.trial = true // this call tries the store again
		return nil
	}
	wait := max(time.Until(b.openUntil), time.Second)
	if b.trial {
		wait = time.Second // a trial call is under way
	}
	return &gateway.Error{Code: gateway.CodeSourceFailed, Source: b.id, RetryAfter: wait,
		Message: fmt.Sprintf("council source %q (%s) is skipped: its last %d scans failed, the last at %s with: %s; it is tried again in %s (sources[].breaker_failures, sources[].breaker_cooldown); other councils are not affected",
			b.id, b.council, b.run, b.lastAt.UTC().Format(time.RFC3339), b.last, wait.Round(time.Second))}
}

// done records the outcome of a call that allow let through, made under
// ctx: err nil is a success; an error that is the query's (its context
// ended, a bad request, a missing table) counts for nothing.
func (b *breaker) done(ctx context.Context, err error) {
	if b == nil || b.failures <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		b.run, b.openUntil, b.trial = 0, time.Time{}, false
		b.bo.Reset()
		return
	}
	if ctx.Err() != nil || !storeFailure(err) {
		b.trial = false
		return
	}
	b.run++
	b.last, b.lastAt = failureText(err), time.Now()
	if b.run >= b.failures {
		b.openUntil = time.Now().Add(b.bo.NextBackOff())
	}
	b.trial = false
}

// started records that a call allow let through started its stream: the
// store answers again, so a trial closes the breaker, but the failures in
// a row are only forgotten when a stream ends well (done), so a store that
// starts scans and fails them while streaming still opens it.
func (b *breaker) started() {
	if b == nil || b.failures <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.trial {
		b.trial, b.openUntil = false, time.Time{}
	}
}

// BreakerState is a source's breaker as /readyz shows it.
type BreakerState struct {
	// State is "closed" (calls go to the store), "open" (they fail at once
	// until RetryAt) or "trial" (one call is trying the store again).
	State       string    `json:"state"`
	Failures    int       `json:"consecutive_failures"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	RetryAt     time.Time `json:"retry_at,omitzero"`
}

func (b *breaker) state() BreakerState {
	if b == nil {
		return BreakerState{State: "closed"}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st := BreakerState{State: "closed", Failures: b.run, LastError: b.last, LastErrorAt: b.lastAt}
	switch {
	case b.trial:
		st.State = "trial"
	case !b.openUntil.IsZero():
		st.State, st.RetryAt = "open", b.openUntil
	}
	return st
}

// storeFailure reports whether err is the store's failure rather than the
// query's (whose context has not ended): not a bad request, a missing
// table, a query failure or a busy store (which the stall timeout
// handles).
func storeFailure(err error) bool {
	var ge *gateway.Error
	if errors.As(err, &ge) {
		switch ge.Code {
		case gateway.CodeTimeout, gateway.CodeCanceled, gateway.CodeBadRequest, gateway.CodeNotFound, gateway.CodeSourceBusy, gateway.CodeQueryFailed:
			return false
		}
	}
	// The store answered with an error of SQL (a PostgreSQL SQLSTATE, a
	// MariaDB error number): it is up, and the statement, which carries
	// the requester's literals, is what failed. Counting it would let a
	// requester take a council out of everyone's answers.
	var pgErr interface{ SQLState() string }
	var myErr *mysql.MySQLError
	if errors.As(err, &pgErr) || errors.As(err, &myErr) {
		return false
	}
	return true
}

// failureText is a failure in the gateway's words, never the store's raw
// message, which may not be every requester's to read.
func failureText(err error) string {
	var ge *gateway.Error
	if errors.As(err, &ge) && ge.Code != gateway.CodeInternal {
		return ge.Message
	}
	return "the store failed (the gateway's log has the cause)"
}
