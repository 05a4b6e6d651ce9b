package admission

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/councildata/gateway/gateway"
)

// admitIn runs Admit in the background; the ticket or error arrives on the
// returned channel.
type admitted struct {
	t   *Ticket
	err error
}

func admitIn(c *Controller, ctx context.Context, who string, timeout time.Duration) <-chan admitted {
	ch := make(chan admitted, 1)
	go func() {
		t, err := c.Admit(ctx, who, time.Now(), timeout)
		ch <- admitted{t, err}
	}()
	return ch
}

// queued waits until n queries wait in c's queue.
func queued(t *testing.T, c *Controller, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Queued != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d queued, want %d", c.Stats().Queued, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func code(err error) gateway.Code {
	var ge *gateway.Error
	if errors.As(err, &ge) {
		return ge.Code
	}
	return ""
}

func retryAfter(err error) time.Duration {
	var ge *gateway.Error
	if errors.As(err, &ge) {
		return ge.RetryAfter
	}
	return 0
}

// The queue: queries beyond the slots wait in order; beyond the queue they
// are refused with 503's code and a Retry-After.
func TestQueueAndOverload(t *testing.T) {
	c := New(Limits{Slots: 2, MaxQueued: 2, Timeout: time.Minute})
	ctx := context.Background()
	a, err := c.Admit(ctx, "a", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Admit(ctx, "b", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	first := admitIn(c, ctx, "c", 0)
	queued(t, c, 1)
	second := admitIn(c, ctx, "d", 0)
	queued(t, c, 2)
	_, err = c.Admit(ctx, "e", time.Now(), 0)
	if code(err) != gateway.CodeOverloaded || retryAfter(err) < time.Second || !strings.Contains(err.Error(), "query.max_queued") {
		t.Fatalf("queue full: %v (retry after %s)", err, retryAfter(err))
	}
	if st := c.Stats(); !st.Saturated || st.Running != 2 || st.Counts.Overloaded != 1 {
		t.Errorf("stats %+v", st)
	}
	a.Release()
	a.Release() // a second release gives nothing back twice
	got := <-first
	if got.err != nil {
		t.Fatal(got.err)
	}
	select {
	case g := <-second:
		t.Fatalf("the second in line ran before a slot freed: %+v", g)
	case <-time.After(20 * time.Millisecond):
	}
	b.Release()
	if g := <-second; g.err != nil {
		t.Fatal(g.err)
	} else {
		g.t.Release()
	}
	got.t.Release()
	if st := c.Stats(); st.Running != 0 || st.Queued != 0 || st.MemoryReserved != 0 {
		t.Errorf("after every release: %+v", st)
	}
}

// A requester's running and waiting queries count against its cap; at
// the cap it gets 429's code and a Retry-After, and others are not held.
func TestPerRequesterCap(t *testing.T) {
	c := New(Limits{Slots: 1, MaxQueued: 10, PerRequester: 2, Timeout: time.Minute})
	ctx := context.Background()
	run, err := c.Admit(ctx, "greedy", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	wait := admitIn(c, ctx, "greedy", 0)
	queued(t, c, 1)
	_, err = c.Admit(ctx, "greedy", time.Now(), 0)
	if code(err) != gateway.CodeTooManyRequests || retryAfter(err) < time.Second || !strings.Contains(err.Error(), "query.max_per_requester") {
		t.Fatalf("over the cap: %v", err)
	}
	other := admitIn(c, ctx, "modest", 0)
	queued(t, c, 2)
	run.Release()
	g := <-wait
	if g.err != nil {
		t.Fatal(g.err)
	}
	// greedy has one running again, so one more may wait.
	again := admitIn(c, ctx, "greedy", 0)
	queued(t, c, 2)
	g.t.Release()
	o := <-other
	if o.err != nil {
		t.Fatal(o.err)
	}
	o.t.Release()
	a := <-again
	if a.err != nil {
		t.Fatal(a.err)
	}
	a.t.Release()
	if st := c.Stats(); st.Running != 0 || len(c.per) != 0 {
		t.Errorf("after every release: %+v %v", st, c.per)
	}
}

// The memory budget holds as many queries as it has room for memory
// limits, whatever the slots say.
func TestMemoryBudget(t *testing.T) {
	const gb = 1 << 30
	c := New(Limits{Slots: 16, MaxQueued: 4, MemoryBudget: 3 * gb, QueryMemory: gb, Timeout: time.Minute})
	if c.Slots() != 3 {
		t.Fatalf("slots %d", c.Slots())
	}
	ctx := context.Background()
	var held []*Ticket
	for range 3 {
		tk, err := c.Admit(ctx, "x", time.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, tk)
	}
	if st := c.Stats(); st.MemoryReserved != 3*gb {
		t.Errorf("reserved %d", st.MemoryReserved)
	}
	fourth := admitIn(c, ctx, "y", 0)
	queued(t, c, 1)
	held[0].Release()
	g := <-fourth
	if g.err != nil {
		t.Fatal(g.err)
	}
	for _, tk := range append(held[1:], g.t) {
		tk.Release()
	}
	// A memory limit above the budget still lets one query run.
	if New(Limits{Slots: 4, MemoryBudget: gb, QueryMemory: 2 * gb}).Slots() != 1 {
		t.Error("a budget below one memory limit admits nothing")
	}
}

// A query waits no longer than its own timeout, counted from its arrival;
// a client that goes away leaves the queue.
func TestWaitEnds(t *testing.T) {
	c := New(Limits{Slots: 1, MaxQueued: 4, Timeout: time.Minute})
	ctx := context.Background()
	run, err := c.Admit(ctx, "a", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Release()
	// Arrived 30 s ago with a 30.05 s timeout: 50 ms left to wait.
	_, err = c.Admit(ctx, "b", time.Now().Add(-30*time.Second), 30*time.Second+50*time.Millisecond)
	if code(err) != gateway.CodeOverloaded || !strings.Contains(err.Error(), "whole timeout") {
		t.Fatalf("timeout in the queue: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	gone := admitIn(c, cctx, "c", 0)
	queued(t, c, 1)
	cancel()
	if g := <-gone; code(g.err) != gateway.CodeCanceled {
		t.Fatalf("client gone: %v", g.err)
	}
	if st := c.Stats(); st.Queued != 0 || st.Counts.GaveUp != 2 || c.per["c"] != 0 {
		t.Errorf("after giving up: %+v", st)
	}
}

// Once queries are known to hold their slots for a while, one whose
// timeout would pass before its turn is refused at once instead of
// waiting for nothing.
func TestWaitLongerThanTimeoutRefused(t *testing.T) {
	c := New(Limits{Slots: 1, MaxQueued: 10, Timeout: time.Minute})
	ctx := context.Background()
	tk, _ := c.Admit(ctx, "a", time.Now(), 0)
	time.Sleep(200 * time.Millisecond)
	tk.Release() // queries hold their slot about 200 ms
	run, _ := c.Admit(ctx, "a", time.Now(), 0)
	defer run.Release()
	waiting := admitIn(c, ctx, "b", 0)
	queued(t, c, 1)
	// Its turn comes after about 200 ms and its run takes about as long:
	// a 300 ms timeout cannot be met.
	_, err := c.Admit(ctx, "c", time.Now(), 300*time.Millisecond)
	if code(err) != gateway.CodeOverloaded || !strings.Contains(err.Error(), "longer than its timeout") {
		t.Fatalf("hopeless wait: %v", err)
	}
	run.Release()
	if g := <-waiting; g.err != nil {
		t.Fatal(g.err)
	} else {
		g.t.Release()
	}
}

// No query waits longer than max_queue_wait, nor joins a queue whose
// estimated wait is longer.
func TestMaxQueueWait(t *testing.T) {
	c := New(Limits{Slots: 1, MaxQueued: 10, Timeout: time.Minute, MaxQueueWait: 50 * time.Millisecond})
	ctx := context.Background()
	run, _ := c.Admit(ctx, "a", time.Now(), 0)
	_, err := c.Admit(ctx, "b", time.Now(), 0)
	if code(err) != gateway.CodeOverloaded || !strings.Contains(err.Error(), "query.max_queue_wait") {
		t.Fatalf("a wait past max_queue_wait: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	run.Release() // queries hold their slot about 200 ms
	run, _ = c.Admit(ctx, "a", time.Now(), 0)
	defer run.Release()
	_, err = c.Admit(ctx, "b", time.Now(), 0)
	if code(err) != gateway.CodeOverloaded || !strings.Contains(err.Error(), "longer than a query may wait") {
		t.Fatalf("an estimated wait past max_queue_wait: %v", err)
	}
}

// A nil Controller admits everything, and its nil tickets release.
func TestNilController(t *testing.T) {
	var c *Controller
	tk, err := c.Admit(context.Background(), "a", time.Now(), 0)
	if err != nil || tk != nil {
		t.Fatal(tk, err)
	}
	tk.Release()
	if !tk.Deadline().IsZero() || c.Stats().Slots != 0 {
		t.Error("nil controller state")
	}
}

// Refusals under a crowd are told turns one slot's hold apart, not all the
// same wait, so the refused come back at the rate the slots free; the
// advice never passes a minute, and it starts again from the queue's wait
// once the booked turns have passed.
func TestOverloadRetriesAreSpread(t *testing.T) {
	c := New(Limits{Slots: 2, MaxQueued: 0, Timeout: time.Minute})
	ctx := context.Background()
	for _, who := range []string{"a", "b"} {
		if _, err := c.Admit(ctx, who, time.Now(), 0); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	c.hold = 2 * time.Second // each refusal books one more second: hold / 2 slots
	c.mu.Unlock()
	var got []time.Duration
	for i := range 70 {
		_, err := c.Admit(ctx, "x", time.Now(), 0)
		if code(err) != gateway.CodeOverloaded {
			t.Fatalf("refusal %d: %v", i, err)
		}
		got = append(got, retryAfter(err))
	}
	for i := 1; i < 50; i++ {
		if d := got[i] - got[i-1]; d < 900*time.Millisecond || d > 1100*time.Millisecond {
			t.Fatalf("refusal %d told %s after %s: turns %s apart, want about a second", i, got[i], got[i-1], d)
		}
	}
	if last := got[len(got)-1]; last > time.Minute || last < 59*time.Second {
		t.Errorf("the 70th refusal told %s, want the minute's cap", last)
	}
	c.mu.Lock()
	c.booked = time.Now().Add(-time.Second) // the booked turns have passed
	c.mu.Unlock()
	if _, err := c.Admit(ctx, "y", time.Now(), 0); retryAfter(err) > 2*time.Second {
		t.Errorf("after the booked turns passed: told %s, want the queue's wait again", retryAfter(err))
	}
}
