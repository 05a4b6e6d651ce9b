package admission

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/councildata/gateway/gateway"
)

// Limits are a Controller's limits, from the query section of the config.
type Limits struct {
	// Slots is how many queries may run at once (query.max_concurrent).
	Slots int
	// MaxQueued is how many may wait for a slot (query.max_queued); 0
	// means none may wait.
	MaxQueued int
	// PerRequester is how many one requester may have running or waiting
	// (query.max_per_requester); 0 means no cap.
	PerRequester int
	// MemoryBudget is the memory all running queries share, in bytes
	// (query.memory_budget); each reserves QueryMemory of it to run. 0
	// means no budget.
	MemoryBudget int64
	// QueryMemory is what one query reserves (query.memory_limit).
	QueryMemory int64
	// Timeout is the longest a query may take from its arrival, its wait
	// included (query.timeout); 0 means the caller's context alone.
	Timeout time.Duration
	// MaxQueueWait is the longest a query may wait for a slot
	// (query.max_queue_wait); one whose estimated wait is longer is
	// refused at once. 0 means as long as its timeout.
	MaxQueueWait time.Duration
}

// Controller admits queries. It is safe for concurrent use; a nil
// Controller admits everything at once.
type Controller struct {
	lim Limits

	mu       sync.Mutex
	running  int
	reserved int64
	queue    []*waiter
	per      map[string]int // running or waiting, by requester
	hold     time.Duration  // moving average of how long a query holds its slot
	booked   time.Time      // until when the retries told to refused queries fill the slots
	counts   Counts
	draining bool // the gateway is stopping: no query is admitted
}

// Drain stops admitting queries: each is refused at once (503, Retry-After:
// another replica, or this one restarted, will answer). The queries
// already running or queued go on.
func (c *Controller) Drain() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	// The queries waiting for a slot have not started: refused as new ones.
	for _, w := range c.queue {
		w.refused = true
		c.forgetLocked(w.who)
		close(w.ready)
	}
	c.queue = nil
}

// errDraining refuses a query while the gateway drains.
var errDraining = &gateway.Error{Code: gateway.CodeUnavailable, RetryAfter: 5 * time.Second,
	Message: "the gateway is shutting down: it finishes the queries it is running and takes no new ones; retry (another replica, or this one restarted, will answer)"}

// Draining reports whether Drain was called.
func (c *Controller) Draining() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draining
}

// waiter is a query in the queue.
type waiter struct {
	ready   chan struct{} // closed when it is given a slot, or refused
	granted bool
	refused bool // the gateway began to drain while it waited
	who     string
}

// Counts are what a Controller has decided since it started.
type Counts struct {
	Admitted    uint64 `json:"admitted"`
	Overloaded  uint64 `json:"refused_overloaded"`
	TooMany     uint64 `json:"refused_per_requester"`
	GaveUp      uint64 `json:"gave_up_waiting"`
	QueuedTotal uint64 `json:"waited"`
}

// New returns a Controller. Slots below 1 count as 1.
func New(lim Limits) *Controller {
	lim.Slots = max(lim.Slots, 1)
	lim.MaxQueued = max(lim.MaxQueued, 0)
	if lim.MemoryBudget > 0 && lim.QueryMemory > lim.MemoryBudget {
		lim.QueryMemory = lim.MemoryBudget // one query may always run
	}
	return &Controller{lim: lim, per: map[string]int{}}
}

// Slots is how many queries may run at once: the configured slots, or
// fewer when the memory budget holds fewer queries' memory limits.
func (c *Controller) Slots() int {
	n := c.lim.Slots
	if c.lim.MemoryBudget > 0 && c.lim.QueryMemory > 0 {
		n = min(n, int(c.lim.MemoryBudget/c.lim.QueryMemory))
	}
	return max(n, 1)
}

// Ticket is an admitted query's slot and memory. Release it exactly when
// the query's Result is closed, or when the query fails to start.
type Ticket struct {
	c        *Controller
	who      string
	mem      int64
	start    time.Time
	deadline time.Time
	once     sync.Once
}

// Deadline is when the query's timeout, counted from its arrival, ends;
// zero when there is none.
func (t *Ticket) Deadline() time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.deadline
}

// Release gives the slot and the memory back; later calls do nothing.
func (t *Ticket) Release() {
	if t == nil {
		return
	}
	t.once.Do(func() { t.c.release(t) })
}

// Admit waits for a slot for a query of requester who that arrived at
// arrived with its own timeout (0: the configured one), and returns its
// Ticket. It refuses the query at once when the requester is at its cap
// (CodeTooManyRequests), when the queue is full or the wait would outlast
// the query's timeout (CodeOverloaded); it gives up with CodeOverloaded
// when the query's timeout passes while it waits, and with CodeCanceled
// when ctx ends.
func (c *Controller) Admit(ctx context.Context, who string, arrived time.Time, timeout time.Duration) (*Ticket, error) {
	if c == nil {
		return nil, nil
	}
	var deadline time.Time
	if d := c.lim.Timeout; d > 0 || timeout > 0 {
		if timeout <= 0 || d > 0 && d < timeout {
			timeout = d
		}
		deadline = arrived.Add(timeout)
	}
	c.mu.Lock()
	if c.draining {
		c.counts.Overloaded++
		c.mu.Unlock()
		return nil, errDraining
	}
	if c.lim.PerRequester > 0 && c.per[who] >= c.lim.PerRequester {
		c.counts.TooMany++
		retry := c.retryLocked(1)
		c.mu.Unlock()
		return nil, &gateway.Error{Code: gateway.CodeTooManyRequests, RetryAfter: retry,
			Message: fmt.Sprintf("requester %s already has %d queries running or waiting, as many as one requester may (query.max_per_requester); retry when one has finished", who, c.lim.PerRequester)}
	}
	t := &Ticket{c: c, who: who, mem: c.lim.QueryMemory, deadline: deadline}
	if len(c.queue) == 0 && c.fitsLocked() {
		c.grantLocked(t.who)
		c.mu.Unlock()
		t.start = time.Now()
		return t, nil
	}
	if len(c.queue) >= c.lim.MaxQueued {
		c.counts.Overloaded++
		retry := c.bookLocked(len(c.queue) + 1)
		running, queued := c.running, len(c.queue)
		c.mu.Unlock()
		return nil, &gateway.Error{Code: gateway.CodeOverloaded, RetryAfter: retry,
			Message: fmt.Sprintf("the gateway is at capacity: %d queries running (query.max_concurrent, query.memory_budget) and %d waiting, as many as may wait (query.max_queued); retry after %s", running, queued, seconds(retry))}
	}
	// Its turn, estimated from how long queries hold their slots: a wait
	// longer than max_queue_wait is refused now; so is one that, with its
	// own run, would not finish within its timeout, rather than run late
	// and be cut off, wasting the work.
	wait := c.waitLocked(len(c.queue) + 1)
	if m := c.lim.MaxQueueWait; m > 0 && wait > m {
		c.counts.Overloaded++
		queued := len(c.queue)
		retry := c.bookLocked(queued + 1)
		c.mu.Unlock()
		return nil, &gateway.Error{Code: gateway.CodeOverloaded, RetryAfter: retry,
			Message: fmt.Sprintf("the gateway is at capacity: the %d queries waiting ahead of this one would take about %s, longer than a query may wait (query.max_queue_wait %s); retry after %s", queued, seconds(wait), m, seconds(retry))}
	}
	if !deadline.IsZero() && wait > 0 && time.Now().Add(wait+c.hold).After(deadline) {
		c.counts.Overloaded++
		queued := len(c.queue)
		retry := c.bookLocked(queued + 1)
		c.mu.Unlock()
		return nil, &gateway.Error{Code: gateway.CodeOverloaded, RetryAfter: retry,
			Message: fmt.Sprintf("the gateway is at capacity: the %d queries waiting ahead of this one and its own run would take about %s, longer than its timeout allows; retry after %s", queued, seconds(wait+c.hold), seconds(retry))}
	}
	w := &waiter{ready: make(chan struct{}), who: who}
	c.queue = append(c.queue, w)
	c.per[who]++
	c.counts.QueuedTotal++
	c.mu.Unlock()

	waitUntil := deadline
	if m := c.lim.MaxQueueWait; m > 0 && (waitUntil.IsZero() || time.Now().Add(m).Before(waitUntil)) {
		waitUntil = time.Now().Add(m)
	}
	var expired <-chan time.Time
	if !waitUntil.IsZero() {
		timer := time.NewTimer(time.Until(waitUntil))
		defer timer.Stop()
		expired = timer.C
	}
	var err error
	select {
	case <-w.ready:
		if w.refused {
			return nil, errDraining
		}
		t.start = time.Now()
		return t, nil
	case <-ctx.Done():
		err = gateway.Wrap(gateway.CodeCanceled, ctx.Err(), "the query was cancelled while it waited for a slot")
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = gateway.Wrap(gateway.CodeTimeout, ctx.Err(), "the query's timeout passed while it waited for a slot")
		}
	case <-expired:
		what := fmt.Sprintf("%s, its whole timeout", seconds(timeout))
		if waitUntil.Before(deadline) || deadline.IsZero() {
			what = fmt.Sprintf("%s (query.max_queue_wait)", c.lim.MaxQueueWait)
		}
		err = &gateway.Error{Code: gateway.CodeOverloaded, RetryAfter: time.Second,
			Message: fmt.Sprintf("the gateway is at capacity: the query waited %s for one of the %d query slots; retry later", what, c.Slots())}
	}
	c.mu.Lock()
	c.counts.GaveUp++
	if w.granted { // given a slot as it gave up: hand it on
		c.mu.Unlock()
		t.start = time.Now()
		t.Release()
		return nil, err
	}
	for i, q := range c.queue {
		if q == w {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			break
		}
	}
	c.forgetLocked(who)
	c.mu.Unlock()
	return nil, err
}

// fitsLocked reports whether one more query may run now.
func (c *Controller) fitsLocked() bool {
	if c.running >= c.lim.Slots {
		return false
	}
	return c.lim.MemoryBudget <= 0 || c.reserved+c.lim.QueryMemory <= c.lim.MemoryBudget
}

// grantLocked gives a slot to a query that is not in the queue.
func (c *Controller) grantLocked(who string) {
	c.running++
	c.reserved += c.lim.QueryMemory
	c.per[who]++
	c.counts.Admitted++
}

func (c *Controller) forgetLocked(who string) {
	if c.per[who]--; c.per[who] <= 0 {
		delete(c.per, who)
	}
}

func (c *Controller) release(t *Ticket) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running--
	c.reserved -= t.mem
	c.forgetLocked(t.who)
	if held := time.Since(t.start); c.hold == 0 {
		c.hold = held
	} else {
		c.hold = (c.hold*7 + held) / 8
	}
	for !c.draining && len(c.queue) > 0 && c.fitsLocked() {
		w := c.queue[0]
		c.queue = c.queue[1:]
		c.running++
		c.reserved += c.lim.QueryMemory
		c.counts.Admitted++
		w.granted = true
		close(w.ready)
	}
}

// waitLocked estimates how long the n-th query in line waits for a slot:
// slots free at about Slots per average hold. 0 when nothing is known yet.
func (c *Controller) waitLocked(n int) time.Duration {
	return time.Duration(float64(c.hold) * float64(n) / float64(c.Slots()))
}

// retryLocked is the Retry-After for the n-th in line: its estimated
// wait, at least a second, at most a minute.
func (c *Controller) retryLocked(n int) time.Duration {
	return min(max(c.waitLocked(n), time.Second), time.Minute)
}

// bookLocked is the Retry-After for a query refused because the gateway
// is at capacity, the n-th in line had it waited. Telling every refused
// client the same wait (the queue's) brings them all back at once, to be
// refused again: under a crowd most of the machine would go on refusals.
// Instead each refusal books the next free turn after those already
// told, one slot's hold apart (hold / Slots), so the retries come back at
// about the rate the slots free. Only the advice is booked: admission
// stays first come, first served, and a client that does not come back
// costs nothing but the advice others got. The booking never reaches
// past a minute from now.
func (c *Controller) bookLocked(n int) time.Duration {
	now := time.Now()
	start := now.Add(c.waitLocked(n))
	if c.booked.Before(start) {
		c.booked = start
	}
	turn := c.hold / time.Duration(c.Slots())
	if c.booked = c.booked.Add(turn); c.booked.After(now.Add(time.Minute)) {
		c.booked = now.Add(time.Minute)
	}
	return min(max(c.booked.Sub(now), time.Second), time.Minute)
}

// seconds writes a duration in whole seconds, at least 1.
func seconds(d time.Duration) string {
	return fmt.Sprintf("%ds", int(max(math.Ceil(d.Seconds()), 1)))
}

// Stats is a Controller's state, for readyz.
type Stats struct {
	Running         int    `json:"running"`
	Queued          int    `json:"queued"`
	Slots           int    `json:"slots"`
	MaxQueued       int    `json:"max_queued"`
	MaxPerRequester int    `json:"max_per_requester"`
	MaxQueueWaitMS  int64  `json:"max_queue_wait_ms"`
	MemoryReserved  int64  `json:"memory_reserved_bytes"`
	MemoryBudget    int64  `json:"memory_budget_bytes"`
	AverageHoldMS   int64  `json:"average_query_ms"`
	Saturated       bool   `json:"saturated"` // every slot taken and the queue full
	Counts          Counts `json:"counts"`
}

// Stats reports the Controller's state now.
func (c *Controller) Stats() Stats {
	if c == nil {
		return Stats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Running: c.running, Queued: len(c.queue), Slots: c.Slots(), MaxQueued: c.lim.MaxQueued,
		MaxPerRequester: c.lim.PerRequester, MaxQueueWaitMS: c.lim.MaxQueueWait.Milliseconds(), MemoryReserved: c.reserved, MemoryBudget: c.lim.MemoryBudget,
		AverageHoldMS: c.hold.Milliseconds(), Saturated: !c.fitsLocked() && len(c.queue) >= c.lim.MaxQueued, Counts: c.counts}
}
